//! The `bedrock-gateway` binary: flags, config, logging, bind, then [`server::serve`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use server::Config;
use server::config::{TelemetryConfig, process_env};

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
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
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
        server::serve(options, shutdown_signal()).await?;
        Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
