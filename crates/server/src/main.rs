//! The `bedrock-gateway` binary: flags, config, logging, bind, then [`server::serve`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use server::Config;
use server::config::{TelemetryConfig, process_env};

/// jemalloc rather than glibc's malloc: less CPU per request, no arena lock contended by
/// the workers, and, with its background thread, freed memory given back to the system
/// while the gateway is idle (ARCHITECTURE.md, "Runtime, allocator and layers, by
/// measurement").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// An HTTP gateway in front of Amazon Bedrock: one provider-neutral request for every
/// model family, answered as JSON or streamed as Server-Sent Events.
#[derive(Debug, Parser)]
#[command(name = "bedrock-gateway", version)]
struct Cli {
    /// The TOML configuration file (listen address, upstream, model aliases).
    #[arg(long, value_name = "PATH", default_value = "config/gateway.toml", global = true)]
    config: PathBuf,
    /// Address to listen on, overriding `listen` in the config file (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
    /// Address of the admin listener (`/metrics`, health, reload), overriding
    /// `admin_listen` in the config file.
    #[arg(long, value_name = "HOST:PORT")]
    admin_listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file without serving; exits non-zero listing every problem.
    CheckConfig {
        /// The file to check.
        path: PathBuf,
    },
    /// Read an API key from standard input and print the SHA-256 digest that goes in
    /// the config's `[[auth.keys]]` (the key itself never goes in the file).
    HashKey,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::CheckConfig { path }) => {
            server::telemetry::init_logging(&TelemetryConfig::default(), process_env("RUST_LOG"));
            check_config(&path)
        }
        Some(Command::HashKey) => hash_key(),
        None => serve(cli.config, cli.listen, cli.admin_listen),
    };
    // The last lines (the drain, an error) are written before the process exits.
    server::telemetry::flush_logs();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bedrock-gateway: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    if let Some(tls) = &config.http.tls {
        server::listener::tls::acceptor(tls)
            .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
    }
    for warning in &config.warnings {
        eprintln!("{}: warning: {warning}", path.display());
    }
    eprintln!(
        "{}: OK ({} model aliases, listen {})",
        path.display(),
        config.models.len(),
        config.listen
    );
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the digest is the command's output")]
fn hash_key() -> anyhow::Result<()> {
    let mut key = String::new();
    std::io::stdin().read_line(&mut key).context("cannot read the key from standard input")?;
    if key.trim().is_empty() {
        anyhow::bail!("no key on standard input");
    }
    println!("{}", server::auth::hash_key(&key));
    Ok(())
}

fn serve(
    config_path: PathBuf,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let (mut config, text) = Config::load_text(&config_path)?;
    let overrides = server::Overrides { listen, admin_listen };
    overrides.apply(&mut config);
    server::telemetry::init_logging(&config.telemetry, process_env("RUST_LOG"));
    // `workers` single-threaded runtimes (one per CPU unless configured), the API
    // listener's connections spread over them (`server::runtime`).
    let runtimes =
        server::runtime::Runtimes::new(server::runtime::worker_count(config.http.workers))
            .context("cannot start the async runtimes")?;
    let workers = runtimes.workers();
    let result = runtimes.block_on(async move {
        let mut signals = Signals::new().context("cannot listen for SIGTERM and Ctrl-C")?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let admin_listener = tokio::net::TcpListener::bind(config.admin_listen)
            .await
            .with_context(|| format!("cannot listen on {} (admin_listen)", config.admin_listen))?;
        let options = server::Serve {
            listener,
            admin_listener: Some(admin_listener),
            config,
            config_file: Some((config_path, text)),
            overrides,
        };
        // The first signal starts the shutdown, which always ends (`server::listener`);
        // a second one ends the process at once.
        let (first_signal, shutdown) = tokio::sync::oneshot::channel::<()>();
        let signals = async move {
            let signal = signals.next().await;
            tracing::info!(
                message = "shutdown: signal received; a second one exits at once",
                signal = signal.name,
            );
            let _ = first_signal.send(());
            let signal = signals.next().await;
            tracing::warn!(
                message = "shutdown: second signal; exiting now, without draining",
                signal = signal.name,
                exit_status = signal.exit_status,
            );
            server::telemetry::flush_logs();
            std::process::exit(signal.exit_status);
        };
        let serve = server::serve_on(options, workers, async move {
            let _ = shutdown.await;
        });
        tokio::select! {
            result = serve => result?,
            () = signals => {}
        }
        Ok(())
    });
    // Whatever is left (a blocking task stuck on a DNS lookup, say) does not hold the exit.
    runtimes.shutdown();
    result
}

/// A shutdown signal: its name, and the exit status when a second one ends the process
/// (128 + the signal's number, as a shell reports a process killed by it).
struct Signal {
    name: &'static str,
    exit_status: i32,
}

/// SIGTERM (what Kubernetes sends before killing a pod) and SIGINT (Ctrl-C), listened to
/// from the start, so that none is missed between the first and the second.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.terminate.recv() => Signal { name: "SIGTERM", exit_status: 143 },
            _ = self.interrupt.recv() => Signal { name: "SIGINT", exit_status: 130 },
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> Signal {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Signal { name: "Ctrl-C", exit_status: 130 },
            Err(_) => std::future::pending().await,
        }
    }
}
