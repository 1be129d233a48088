//! The `bedrock-sim` binary: parses the command line, sets up logging, binds and serves the
//! simulator until Ctrl-C.

use std::io::IsTerminal;

use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use bedrock_sim::Simulator;

/// A local Amazon Bedrock runtime simulator for tests and keyless demos.
///
/// Point the AWS SDK at it with `endpoint_url("http://HOST:PORT")`. It serves InvokeModel and
/// InvokeModelWithResponseStream for Titan Text and Claude Text Completions models, plus a
/// control API under /_sim (PUT /_sim/behavior/{model_id}, DELETE /_sim/behavior,
/// PUT /_sim/quota/{model_id}, DELETE /_sim/quota, GET /_sim/stats). Logs go to stderr; set
/// RUST_LOG to change the level (default info).
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The address to listen on, as HOST:PORT. Port 0 picks a free port; the address
    /// actually used is logged at startup.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:4500")]
    listen: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();

    let listener = TcpListener::bind(&cli.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(message = "bedrock-sim listening", %address, endpoint_url = %format!("http://{address}"));
    Simulator::new().serve(listener, shutdown_signal()).await?;
    tracing::info!(message = "bedrock-sim stopped");
    Ok(())
}

/// Completes on Ctrl-C. If the handler cannot be installed, the server runs until killed.
async fn shutdown_signal() {
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!(message = "Ctrl-C received, shutting down"),
        Err(error) => {
            tracing::warn!(message = "cannot listen for Ctrl-C", %error);
            std::future::pending::<()>().await;
        }
    }
}
