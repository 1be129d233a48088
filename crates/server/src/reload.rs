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
//! `gateway_config_last_reload_successful`; a refusal is one `warn` line naming each key
//! that only a restart changes, or the file's problems.
//!
//! The poll is debounced: a changed text is applied once a second read, [`SETTLE`] later
//! (or one poll later, if that is sooner), finds the same text, so that a file caught while
//! it is being written is not refused half-written; a file still changing waits for the
//! next poll. SIGHUP and `POST /-/reload` apply the file as it is at once.

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

/// How long a changed file must stay the same before the poll applies it.
pub const SETTLE: Duration = Duration::from_millis(500);

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
        self.apply(text, only_if_changed).await
    }

    /// The poll's step: reads the file and feeds it to `settle`; applies it once it has
    /// settled (a refusal is counted and logged by [`Reloader::apply`]).
    async fn poll(&self, settle: &mut Settle) -> Poll {
        let Some(path) = &self.0.path else {
            return Poll::Idle;
        };
        // Unreadable (a ConfigMap's symlink swap in progress): the next poll reads again.
        let Ok(text) = tokio::fs::read_to_string(path).await else {
            return Poll::Idle;
        };
        let step = {
            let last_text = self.0.last_text.lock().await;
            settle.observe(text, last_text.as_deref())
        };
        match step {
            Step::Unchanged => Poll::Idle,
            Step::Wait => {
                tracing::debug!(message = "config file changed; applied once it stays the same");
                Poll::Settling
            }
            Step::Apply(text) => {
                let _ = self.apply(text, true).await;
                Poll::Idle
            }
        }
    }

    /// Applies the file's `text`: parsed, validated, refused whole or swapped in whole.
    /// With `only_if_changed`, the text last loaded is left alone.
    async fn apply(&self, text: String, only_if_changed: bool) -> Result<bool, ReloadError> {
        let inner = &self.0;
        let Some(path) = &inner.path else {
            return Err(self.refused(ReloadError::NoFile));
        };
        let mut last_text = inner.last_text.lock().await;
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

    /// Reloads on every SIGHUP, and every `poll` when the file's text changed (and then
    /// stayed the same for [`SETTLE`] or one `poll`, whichever is sooner), until `stop`
    /// resolves.
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
        let settle_after = poll.map_or(SETTLE, |every| every.min(SETTLE));
        let mut settle = Settle::default();
        // Armed while a changed file settles: the second read.
        let mut recheck: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
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
            let rechecked = async {
                match recheck.as_mut() {
                    Some(sleep) => sleep.await,
                    None => std::future::pending().await,
                }
            };
            let polled = tokio::select! {
                () = &mut stop => return,
                _ = signalled => {
                    let _ = self.reload(false).await;
                    continue;
                }
                _ = ticked => self.poll(&mut settle).await,
                () = rechecked => self.poll(&mut settle).await,
            };
            recheck = match polled {
                Poll::Settling => Some(Box::pin(tokio::time::sleep(settle_after))),
                Poll::Idle => None,
            };
        }
    }
}

/// What the poll does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    /// Nothing until the next poll.
    Idle,
    /// A changed text is settling: read again soon.
    Settling,
}

/// The poll's debounce: the changed text seen last, applied when read again unchanged.
#[derive(Debug, Default)]
struct Settle {
    seen: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// The text is the one loaded.
    Unchanged,
    /// A changed text seen for the first time (or changed again since): not yet.
    Wait,
    /// A changed text read twice the same: apply it.
    Apply(String),
}

impl Settle {
    fn observe(&mut self, text: String, loaded: Option<&str>) -> Step {
        if loaded == Some(text.as_str()) {
            self.seen = None;
            return Step::Unchanged;
        }
        if self.seen.as_deref() == Some(text.as_str()) {
            self.seen = None;
            return Step::Apply(text);
        }
        self.seen = Some(text);
        Step::Wait
    }
}

/// What differs between `running` and `new` that only a restart applies, each key named.
fn restart_only_changes(running: &Config, new: &Config) -> Vec<String> {
    let mut changed = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            changed.push(format!("`{name}`"));
        }
    };
    check("listen", running.listen == new.listen);
    check("admin_listen", running.admin_listen == new.admin_listen);
    check("[upstream]", running.upstream == new.upstream);
    check("[limits]", running.limits == new.limits);
    let (old, now) = (&running.telemetry, &new.telemetry);
    check("log_format", old.log_format == now.log_format);
    check("log_level", old.log_level == now.log_level);
    check("log_prompts", old.log_prompts == now.log_prompts);
    check("metrics", old.metrics == now.metrics);
    check("shutdown_delay_ms", running.shutdown_delay == new.shutdown_delay);
    let (old, now) = (&running.http, &new.http);
    check("header_read_timeout_ms", old.header_read_timeout == now.header_read_timeout);
    check("body_read_timeout_ms", old.body_read_timeout == now.body_read_timeout);
    check("keep_alive_timeout_ms", old.keep_alive_timeout == now.keep_alive_timeout);
    check("max_connections", old.max_connections == now.max_connections);
    check("max_in_flight", old.max_in_flight == now.max_in_flight);
    check("max_body_bytes", old.max_body_bytes == now.max_body_bytes);
    check("drain_timeout_ms", old.drain_timeout == now.drain_timeout);
    check("tls_cert_file, tls_key_file", old.tls == now.tls);
    check("cors_allowed_origins", old.cors_allowed_origins == now.cors_allowed_origins);
    check("workers", old.workers == now.workers);
    check("reload_poll_ms", running.reload_poll == new.reload_poll);
    // Caught by the exhaustive comparison should a listener key be added without a check
    // of its own above.
    if changed.is_empty() && running.http != new.http {
        changed.push("the API listener's keys".to_owned());
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_text_is_applied_once_read_twice_the_same() {
        let mut settle = Settle::default();
        assert_eq!(settle.observe("a".to_owned(), Some("a")), Step::Unchanged);
        // Half-written, then whole: each new text waits for a second read.
        assert_eq!(settle.observe("[models.x]\nmodel_".to_owned(), Some("a")), Step::Wait);
        assert_eq!(settle.observe("[models.x]\nmodel_id = 1".to_owned(), Some("a")), Step::Wait);
        assert_eq!(
            settle.observe("[models.x]\nmodel_id = 1".to_owned(), Some("a")),
            Step::Apply("[models.x]\nmodel_id = 1".to_owned())
        );
        // Changed back before it settled: nothing to apply.
        assert_eq!(settle.observe("b".to_owned(), Some("a")), Step::Wait);
        assert_eq!(settle.observe("a".to_owned(), Some("a")), Step::Unchanged);
        assert_eq!(settle.observe("b".to_owned(), Some("a")), Step::Wait);
    }

    #[test]
    fn each_restart_only_key_is_named() {
        let text = "[upstream]\nkind = \"simulator\"\nendpoint_url = \"http://127.0.0.1:1\"\n\
                    [models.t]\nmodel_id = \"amazon.titan-text-express-v1\"\n";
        let running = Config::parse(text, "test").unwrap();
        let changed = Config::parse(
            &format!("max_connections = 7\nlog_level = \"debug\"\n{text}\n[models.u]\nmodel_id = \"amazon.titan-text-lite-v1\"\n"),
            "test",
        )
        .unwrap();
        assert_eq!(restart_only_changes(&running, &changed), ["`log_level`", "`max_connections`"]);
        let aliases_only = Config::parse(
            &format!("{text}\n[models.u]\nmodel_id = \"amazon.titan-text-lite-v1\"\n"),
            "test",
        )
        .unwrap();
        assert!(restart_only_changes(&running, &aliases_only).is_empty());
    }
}
