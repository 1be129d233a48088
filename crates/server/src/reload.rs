//! Configuration reload: on SIGHUP, on `POST /-/reload` of the admin listener, and (with
//! `reload_poll_ms`) when the file's content changes, which is how a Kubernetes
//! ConfigMap update arrives.
//!
//! A reload reads and validates the whole file first; an invalid file, or one that
//! changes what only a restart can change (`listen`, `admin_listen`, `[upstream]`,
//! `[limits]`, logging, metrics, `shutdown_delay_ms`, `reload_poll_ms`, the API listener's
//! timeouts, caps, body limit, drain, TLS and CORS), is refused and the running config
//! stays as it was. Otherwise the aliases, targets, quotas and API keys are swapped in
//! at once (see `app.rs`): counters, queues and learned estimates carry over. Every
//! attempt counts in `gateway_config_reloads_total{outcome}` and sets
//! `gateway_config_last_reload_successful`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::Mutex;

use crate::Overrides;
use crate::app::Gateway;
use crate::config::Config;

/// Reloads the gateway's config from its file. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reloader(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    gateway: Gateway,
    /// `None`: the config did not come from a file; every reload is refused.
    path: Option<PathBuf>,
    /// The command line's addresses, which win over the file's at every reload.
    overrides: Overrides,
    /// One reload at a time; the text of the file last loaded (for the poll).
    last_text: Mutex<Option<String>>,
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the gateway was not started from a config file")]
    NoFile,
    #[error("{0}")]
    Invalid(String),
    #[error("a restart is needed to change {0}; the running config is unchanged")]
    NeedsRestart(String),
    #[error("the new config could not be applied: {0}")]
    Failed(String),
}

impl Reloader {
    pub fn new(
        gateway: Gateway,
        path: Option<PathBuf>,
        overrides: Overrides,
        text: Option<String>,
    ) -> Reloader {
        Reloader(Arc::new(Inner { gateway, path, overrides, last_text: Mutex::new(text) }))
    }

    /// Reloads now: the admin route's answer (200, or 400/409/500 with the reason).
    pub async fn now(&self) -> Response {
        match self.reload(false).await {
            Ok(_) => Json(json!({"status": "reloaded"})).into_response(),
            Err(error) => {
                let status = match error {
                    ReloadError::NoFile | ReloadError::NeedsRestart(_) => StatusCode::CONFLICT,
                    ReloadError::Invalid(_) => StatusCode::BAD_REQUEST,
                    ReloadError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let body =
                    json!({"error": {"type": "reload_failed", "message": error.to_string()}});
                (status, Json(body)).into_response()
            }
        }
    }

    /// Reads the file and applies it. With `only_if_changed`, a file whose text is the
    /// one last loaded is left alone (and not counted). `Ok(false)`: nothing changed.
    pub async fn reload(&self, only_if_changed: bool) -> Result<bool, ReloadError> {
        let inner = &self.0;
        let Some(path) = &inner.path else {
            return Err(self.refused(ReloadError::NoFile));
        };
        let mut last_text = inner.last_text.lock().await;
        let text = match tokio::fs::read_to_string(path).await {
            Ok(text) => text,
            Err(error) => {
                // A ConfigMap update swaps a symlink: a read between the two steps fails
                // once. The poll tries again; an explicit reload reports it.
                if only_if_changed {
                    return Ok(false);
                }
                return Err(self.refused(ReloadError::Invalid(format!(
                    "cannot read {}: {error}",
                    path.display()
                ))));
            }
        };
        if only_if_changed && last_text.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        *last_text = Some(text.clone());
        let source = path.display().to_string();
        let mut config = Config::parse_with_env(&text, &source, &crate::config::process_env)
            .map_err(|error| self.refused(ReloadError::Invalid(error.to_string())))?;
        inner.overrides.apply(&mut config);
        let running = inner.gateway.config();
        let fixed = restart_only_changes(&running, &config);
        if !fixed.is_empty() {
            return Err(self.refused(ReloadError::NeedsRestart(fixed.join(", "))));
        }
        let pipeline = inner
            .gateway
            .current()
            .pipeline
            .reconfigured(&config)
            .await
            .map_err(|error| self.refused(ReloadError::Failed(error)))?;
        let models = config.models.len();
        inner.gateway.swap(config, pipeline);
        inner.gateway.metrics().config_reload(true);
        tracing::info!(message = "config reloaded", path = %source, models);
        Ok(true)
    }

    fn refused(&self, error: ReloadError) -> ReloadError {
        self.0.gateway.metrics().config_reload(false);
        tracing::warn!(message = "config reload refused", %error);
        error
    }

    /// Reloads on every SIGHUP, and every `poll` when the file's text changed, until
    /// `stop` resolves.
    pub async fn watch(self, poll: Option<Duration>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut ticker = poll.map(|every| {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        loop {
            #[cfg(unix)]
            let signalled = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let signalled = std::future::pending::<Option<()>>();
            let ticked = async {
                match ticker.as_mut() {
                    Some(ticker) => ticker.tick().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut stop => return,
                _ = signalled => {
                    let _ = self.reload(false).await;
                }
                _ = ticked => {
                    let _ = self.reload(true).await;
                }
            }
        }
    }
}

/// What differs between `running` and `new` that only a restart applies.
fn restart_only_changes(running: &Config, new: &Config) -> Vec<String> {
    let mut changed = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            changed.push(format!("`{name}`"));
        }
    };
    check("listen", running.listen == new.listen);
    check("admin_listen", running.admin_listen == new.admin_listen);
    check("upstream", running.upstream == new.upstream);
    check("limits", running.limits == new.limits);
    check("log_format, log_level, log_prompts, metrics", running.telemetry == new.telemetry);
    check("shutdown_delay_ms", running.shutdown_delay == new.shutdown_delay);
    check(
        "header_read_timeout_ms, body_read_timeout_ms, keep_alive_timeout_ms, \
         max_connections, max_in_flight, max_body_bytes, drain_timeout_ms, tls_cert_file, \
         tls_key_file, cors_allowed_origins",
        running.http == new.http,
    );
    check("reload_poll_ms", running.reload_poll == new.reload_poll);
    changed
}
