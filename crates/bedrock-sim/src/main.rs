//! The `bedrock-sim` binary: parses the command line, sets up logging, binds and serves the
//! simulator until Ctrl-C.

use std::io::IsTerminal;

use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use bedrock_sim::{AccessKey, Auth, Simulator};

/// A local Amazon Bedrock runtime simulator for tests and keyless demos.
///
/// Point the AWS SDK at it with `endpoint_url("http://HOST:PORT")`. It serves InvokeModel and
/// InvokeModelWithResponseStream for Titan Text and Claude Text Completions models, plus a
/// control API under /_sim (PUT /_sim/behavior/{model_id}, DELETE /_sim/behavior,
/// PUT /_sim/quota/{model_id}, DELETE /_sim/quota, POST /_sim/release, GET /_sim/stats).
/// Logs go to stderr; set RUST_LOG to change the level (default info).
///
/// Every invoke request is authenticated as Bedrock does it: SigV4 signed with a known access
/// key (by default the test key AKIDBEDROCKSIMULATOR, secret
/// bedrock-simulator/test/secret-access-key), or a known bearer token (by default
/// ABSK-bedrock-simulator-test-api-key); anything else gets Bedrock's 403, and the log says
/// which part failed.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The address to listen on, as HOST:PORT. Port 0 picks a free port; the address
    /// actually used is logged at startup.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:4500")]
    listen: String,
    /// An access key to accept, instead of the test key (repeat for more). With a session
    /// token, the key's requests must carry it as X-Amz-Security-Token. Test credentials
    /// only: the command line is visible to other users of the machine.
    #[arg(long = "access-key", value_name = "ID:SECRET[:SESSION_TOKEN]", value_parser = parse_access_key)]
    access_keys: Vec<(String, AccessKey)>,
    /// A Bedrock API key to accept as `Authorization: Bearer <token>`, instead of the test
    /// token (repeat for more).
    #[arg(long = "bearer-token", value_name = "TOKEN")]
    bearer_tokens: Vec<String>,
    /// Serve every request whatever its signature or bearer token: for a simulator run by
    /// hand with clients of any credentials. Tests and the gateway's embedded simulator
    /// always verify.
    #[arg(long)]
    no_verify_auth: bool,
}

fn parse_access_key(text: &str) -> Result<(String, AccessKey), String> {
    let mut parts = text.splitn(3, ':');
    let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
        return Err("expected ID:SECRET or ID:SECRET:SESSION_TOKEN".to_owned());
    };
    if id.is_empty() || secret.is_empty() {
        return Err("the access key id and its secret must not be empty".to_owned());
    }
    let session_token = parts.next().filter(|token| !token.is_empty()).map(str::to_owned);
    Ok((id.to_owned(), AccessKey { secret_access_key: secret.to_owned(), session_token }))
}

impl Cli {
    fn auth(&self) -> Auth {
        let mut auth = Auth::default();
        if !self.access_keys.is_empty() {
            auth.access_keys = self.access_keys.iter().cloned().collect();
        }
        if !self.bearer_tokens.is_empty() {
            auth.bearer_tokens = self.bearer_tokens.iter().cloned().collect();
        }
        auth.verify = !self.no_verify_auth;
        auth
    }
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

    let auth = cli.auth();
    if auth.verify {
        let access_key_ids: Vec<&String> = auth.access_keys.keys().collect();
        tracing::info!(
            message = "authenticating requests: SigV4 or bearer token",
            ?access_key_ids,
            n_bearer_tokens = auth.bearer_tokens.len()
        );
    } else {
        tracing::warn!(message = "--no-verify-auth: every request is served, signed or not");
    }
    let listener = TcpListener::bind(&cli.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(message = "bedrock-sim listening", %address, endpoint_url = %format!("http://{address}"));
    Simulator::with_auth(auth).serve(listener, shutdown_signal()).await?;
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
