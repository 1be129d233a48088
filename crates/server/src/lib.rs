//! The Bedrock gateway: one HTTP endpoint and one provider-neutral request in front,
//! the AWS SDK's `bedrock-runtime` client behind.
//!
//! [`run`] serves a [`Config`] on a bound listener until `shutdown` resolves; the
//! binary in `main.rs` only parses flags, loads the config and calls it. Tests bind
//! port 0 and call [`run`] the same way.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod limits;
pub mod pipeline;
pub mod routes;
pub mod upstream;

use std::future::Future;
use std::sync::atomic::Ordering;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::config::UpstreamTarget;
use crate::pipeline::Pipeline;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot set up the Bedrock client or the limits backend: {0}")]
    Upstream(String),
}

/// Serves the gateway on `listener` until `shutdown` resolves, then lets in-flight
/// requests and streams finish. With `upstream.kind = "simulator"` and no endpoint,
/// the Bedrock simulator is started here, on a loopback port of its own, and reached
/// through the very same AWS SDK client as real Bedrock.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let (stop_simulator, simulator_stopped) = tokio::sync::watch::channel(false);
    let mut simulator_endpoint = None;
    let mut simulator_task = None;
    if let UpstreamTarget::Simulator { endpoint_url: None } = &config.upstream.target {
        let simulator_listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", simulator_listener.local_addr()?);
        let mut stopped = simulator_stopped.clone();
        let stopped = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        simulator_task =
            Some(tokio::spawn(bedrock_sim::Simulator::new().serve(simulator_listener, stopped)));
        simulator_endpoint = Some(endpoint);
    }
    let pipeline = Pipeline::from_config(&config, simulator_endpoint.as_deref())
        .await
        .map_err(RunError::Upstream)?;
    match (&config.upstream.target, &simulator_endpoint) {
        (_, Some(endpoint)) => {
            tracing::info!(message = "upstream: embedded Bedrock simulator", %endpoint)
        }
        (UpstreamTarget::Simulator { endpoint_url: Some(endpoint) }, None) => {
            tracing::info!(message = "upstream: Bedrock simulator", %endpoint)
        }
        (UpstreamTarget::Bedrock { endpoint_url, .. }, None) => tracing::info!(
            message = "upstream: Amazon Bedrock",
            endpoint = endpoint_url.as_deref().unwrap_or("(AWS default)")
        ),
        _ => {}
    }

    if config.api_keys.is_empty() {
        tracing::warn!(
            "no API keys configured: the gateway is open to every caller ([[auth.keys]] adds keys)"
        );
    }
    let state = app::AppState::new(&config, pipeline);
    let ready = state.ready.clone();
    let router = app::router(state);
    tracing::info!(
        message = "bedrock-gateway listening",
        address = %format!("http://{}", listener.local_addr()?),
        models = config.models.len(),
    );
    let shutdown_delay = config.shutdown_delay;
    // SSE events are small writes that must leave at once: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready.store(false, Ordering::Relaxed);
            if !shutdown_delay.is_zero() {
                tracing::info!(message = "shutting down: /readyz now 503", ?shutdown_delay);
                tokio::time::sleep(shutdown_delay).await;
            }
            tracing::info!("shutting down: no new connections; draining in-flight requests");
        })
        .await?;

    // Only now: streams in flight during the drain still needed the simulator.
    let _ = stop_simulator.send(true);
    if let Some(task) = simulator_task {
        match task.await {
            Ok(result) => result?,
            Err(join_error) => tracing::warn!(message = "simulator task failed", %join_error),
        }
    }
    Ok(())
}
