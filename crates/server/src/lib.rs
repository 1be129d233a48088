//! The Bedrock gateway: one HTTP endpoint and one provider-neutral request in front,
//! the AWS SDK's `bedrock-runtime` client behind.
//!
//! [`serve`] serves a [`Config`] on bound listeners (the API, and the admin listener
//! with `/metrics`) until `shutdown` resolves; the binary in `main.rs` only parses
//! flags, loads the config, binds and calls it. Tests bind port 0 and call [`serve`]
//! (or [`run`], without an admin listener) the same way.

pub mod app;
pub mod auth;
pub mod config;
pub mod drain;
pub mod error;
pub mod image_fetch;
pub mod intake;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod options;
pub mod pipeline;
pub mod redact;
pub mod reload;
pub mod routes;
pub mod runtime;
pub mod telemetry;
pub mod upstream;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::config::UpstreamTarget;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// What [`serve`] serves.
#[derive(Debug)]
pub struct Serve {
    /// The API listener.
    pub listener: TcpListener,
    /// The admin listener (`/metrics`, health, `POST /-/reload`); `None`: none.
    pub admin_listener: Option<TcpListener>,
    pub config: Config,
    /// The file `config` was read from and its text, for reloads; `None`: no reloads.
    pub config_file: Option<(PathBuf, String)>,
    /// The command line's addresses, kept over the file's when the config is reloaded.
    pub overrides: Overrides,
}

/// `--listen` and `--admin-listen`: they win over the file at the start and at every
/// reload.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    pub listen: Option<std::net::SocketAddr>,
    pub admin_listen: Option<std::net::SocketAddr>,
}

impl Overrides {
    pub fn apply(&self, config: &mut Config) {
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(admin_listen) = self.admin_listen {
            config.admin_listen = admin_listen;
        }
    }
}

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot set up the Bedrock client or the limits backend: {0}")]
    Upstream(String),
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// Serves the gateway on `listener` until `shutdown` resolves, then shuts down in
/// bounded time (`listener.rs`: readiness off, `shutdown_delay`, the listener closed,
/// `drain_timeout` for requests and streams, open streams ended, closed). With `upstream.kind = "simulator"` and no endpoint,
/// the Bedrock simulator is started here, on a loopback port of its own, and reached
/// through the very same AWS SDK client as real Bedrock.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let serve_options = Serve {
        listener,
        admin_listener: None,
        config,
        config_file: None,
        overrides: Overrides::default(),
    };
    serve(serve_options, shutdown).await
}

/// [`run`], with an admin listener and reloads from the config file.
pub async fn serve(
    options: Serve,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    serve_on(options, runtime::Workers::local(), shutdown).await
}

/// [`serve`], with the API listener's connections spread over `workers` (the binary's
/// runtimes, `runtime.rs`).
pub async fn serve_on(
    options: Serve,
    workers: runtime::Workers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let Serve { listener, admin_listener, config, config_file, overrides } = options;
    // A bad certificate or key stops the start, before anything else is set up.
    let tls =
        config.http.tls.as_ref().map(listener::tls::acceptor).transpose().map_err(RunError::Tls)?;
    let (stop_simulator, simulator_stopped) = tokio::sync::watch::channel(false);
    let mut simulator_endpoint = None;
    let mut simulator_task = None;
    if let UpstreamTarget::Simulator { endpoint_url: None, credentials } = &config.upstream.target {
        // It verifies every call's signature, made with the key the gateway signs with.
        let auth = bedrock_sim::Auth::with_access_key(
            &credentials.access_key_id,
            &credentials.secret_access_key,
        );
        let simulator_listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", simulator_listener.local_addr()?);
        let mut stopped = simulator_stopped.clone();
        let stopped = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        simulator_task = Some(tokio::spawn(
            bedrock_sim::Simulator::with_auth(auth).serve(simulator_listener, stopped),
        ));
        simulator_endpoint = Some(endpoint);
    }
    let metrics = Arc::new(Metrics::new(config.telemetry.metrics));
    let pipeline = Pipeline::from_config(&config, simulator_endpoint.as_deref(), metrics.clone())
        .await
        .map_err(RunError::Upstream)?;
    match (&config.upstream.target, &simulator_endpoint) {
        (_, Some(endpoint)) => {
            tracing::info!(message = "upstream: embedded Bedrock simulator", %endpoint)
        }
        (UpstreamTarget::Simulator { endpoint_url: Some(endpoint), .. }, None) => {
            tracing::info!(message = "upstream: Bedrock simulator", %endpoint)
        }
        (UpstreamTarget::Bedrock { endpoint_url, .. }, None) => tracing::info!(
            message = "upstream: Amazon Bedrock",
            endpoint = endpoint_url.as_deref().unwrap_or("(AWS default)")
        ),
        _ => {}
    }
    let (transport, resolved) = pipeline.upstream_transport();
    tracing::info!(
        message = "upstream: transport",
        transport,
        endpoint = resolved.unwrap_or("(per call)")
    );

    for warning in &config.warnings {
        tracing::warn!(message = "config", warning = %warning);
    }
    if config.api_keys.is_empty() {
        tracing::warn!(
            "no API keys configured: the gateway is open to every caller ([[auth.keys]] adds keys)"
        );
    }
    let shutdown_delay = config.shutdown_delay;
    let http = config.http.clone();
    let reload_poll = config.reload_poll;
    let models = config.models.len();
    let (config_path, config_text) = config_file.unzip();
    let gateway = app::Gateway::new(config, pipeline, metrics);
    let ready = gateway.ready().clone();
    let router = app::router(gateway.clone());
    let reloader =
        reload::Reloader::new(gateway.clone(), config_path.clone(), overrides, config_text);
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        message = "bedrock-gateway listening",
        address = %format!("{scheme}://{}", listener.local_addr()?),
        models,
        workers = workers.count(),
    );
    // The admin listener and the reload watch stop once the API listener has drained.
    let (stop_admin, admin_stopped) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stopped = admin_stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let mut admin_task = None;
    if let Some(admin_listener) = admin_listener {
        tracing::info!(
            message = "admin listener (metrics, health, reload)",
            address = %format!("http://{}", admin_listener.local_addr()?),
        );
        let admin = app::admin_router(gateway.clone(), reloader.clone());
        admin_task = Some(tokio::spawn(
            axum::serve(admin_listener, admin).with_graceful_shutdown(stopped()).into_future(),
        ));
    }
    let watch_task =
        config_path.is_some().then(|| tokio::spawn(reloader.watch(reload_poll, stopped())));
    let drain = gateway.drain().clone();
    let api = listener::ApiListener { listener, tls, http, workers };
    let plan = listener::Shutdown { ready, delay: shutdown_delay, drain };
    listener::serve(api, router, plan, shutdown).await?;

    // Only now: streams in flight during the drain still needed the simulator, and a
    // scraper wants the last figures.
    // Together they get a bounded time, so that the shutdown ends whatever callers hold.
    let deadline = tokio::time::Instant::now() + listener::GRACE;
    let _ = stop_admin.send(true);
    if let Some(task) = admin_task {
        match stop_within(task, deadline, "admin listener").await {
            Some(Ok(result)) => result?,
            Some(Err(join_error)) => tracing::warn!(message = "admin listener failed", %join_error),
            None => {}
        }
    }
    if let Some(task) = watch_task {
        let _ = stop_within(task, deadline, "config watch").await;
    }
    let _ = stop_simulator.send(true);
    if let Some(task) = simulator_task {
        match stop_within(task, deadline, "embedded simulator").await {
            Some(Ok(result)) => result?,
            Some(Err(join_error)) => tracing::warn!(message = "simulator task failed", %join_error),
            None => {}
        }
    }
    tracing::info!("shutdown: done");
    Ok(())
}

/// Waits until `deadline` at most for a task told to stop; then aborts it.
async fn stop_within<T>(
    mut task: tokio::task::JoinHandle<T>,
    deadline: tokio::time::Instant,
    what: &'static str,
) -> Option<Result<T, tokio::task::JoinError>> {
    match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(result) => Some(result),
        Err(_) => {
            tracing::warn!(message = "shutdown: did not stop in time; closed", task = what);
            task.abort();
            None
        }
    }
}
