//! [`RedisLimits`]: the counters in Redis, shared by every replica of the gateway. The
//! arithmetic is [`ScopeState`](super::local::ScopeState)'s, repeated step for step by Lua
//! scripts that run atomically in Redis.
//!
//! # Key layout
//!
//! Every key of a scope carries the scope's key as its hash tag, `{<scope.key>}`, behind a
//! configurable prefix ([`RedisOptions::key_prefix`], default `gw`):
//!
//! - `gw:{t:claude-use1}:state`: a hash. `rate` (the admitted fraction of the configured
//!   tokens per minute), `rate_at`, `last_decrease`, `minute_level`, `minute_at`,
//!   `day_level`, `day_at`, `rpm_level`, `rpm_at` (numbers as `%.17g` strings so that they
//!   read back exactly; times in milliseconds of Redis' clock; a bucket whose limit is not
//!   configured has no fields) and `next_id`, the `HINCRBY` counter of reservation ids.
//! - `gw:{t:claude-use1}:live`: a hash, live reservation id → tokens reserved.
//! - `gw:{t:claude-use1}:expiry`: a sorted set, live reservation id → expiry (ms).
//!
//! Every script sets a `PEXPIRE` of [`RedisOptions::key_ttl`] (default 2 days, and never
//! before the scope's last live reservation expires) on the three keys, so a scope that
//! is no longer used (a target or caller removed from the configuration) disappears.
//!
//! **Redis Cluster**: the hash tag puts all keys of a scope in one slot, so every script
//! touches one slot only, as Cluster requires (the keys are passed as `KEYS`, never built
//! inside a script). Different scopes spread over the slots.
//!
//! # Scripts
//!
//! `scope.lua` is the prelude of every script: it reads the limits from `ARGV` (a limit
//! that is not set is passed as the empty string; the configuration may change between
//! calls, and a changed limit is taken as it is now, as in the local backend), reads the
//! state, takes the time and brings the scope to now (`advance`: expired reservations
//! dropped without refund, the rate climbed, the buckets refilled). Each operation is the
//! prelude followed by one of:
//!
//! - `reserve.lua`: `check` then `commit`, all buckets and the concurrency slot at once,
//!   or nothing.
//! - `settle.lua`: refund or overage, slot freed; an unknown id is a no-op.
//! - `throttled.lua`: multiplicative decrease, minute bucket emptied (adaptive only).
//! - `snapshot.lua`: the counters (it stores the advanced state, as the local one does).
//!
//! Each file opens with a comment on its `KEYS` and `ARGV`. Unlike the local backend
//! (which uses governor), the requests per minute are a third bucket of the scope
//! (capacity = rpm, refilled at rpm per minute, one per reservation, never settled),
//! checked by the same script, so all limits of a scope are taken atomically.
//!
//! **The clock** is Redis' own (`TIME` inside the scripts), so replicas with skewed clocks
//! agree. Redis ≥ 5 replicates a script that reads `TIME` as its effects (the prelude asks
//! for it on 5 and 6; 7 always does).
//!
//! **EVALSHA, then EVAL**: a script is invoked by its SHA-1; on `NOSCRIPT` (a restarted or
//! failed-over Redis, a `SCRIPT FLUSH`) the same call is sent again with `EVAL` and the
//! script text, which also caches the script for the next `EVALSHA`. `SCRIPT LOAD` is never
//! used (some managed Redis refuse `SCRIPT`).
//!
//! # Timeouts and the circuit breaker
//!
//! Every command has a deadline ([`RedisOptions::command_timeout`], default 10 ms),
//! applied with [`tokio::time::timeout`] around it: admission sits on the request path,
//! and a slow Redis must not slow every request. A call that has to open the connection
//! first (the first call, the probe after an open breaker) may also take
//! [`RedisOptions::connect_timeout`].
//!
//! A failure is a timeout, a connection error or a Redis error reply. After
//! [`RedisOptions::breaker_failures`] consecutive failures (default 3) the breaker opens
//! for [`RedisOptions::breaker_open`] (default 1 s): every call fails at once with a
//! [`BackendError`], without touching Redis (the caller falls back, e.g. to local counters
//! with [`ScopeLimits::divided`]). Then one call is let through (half-open) while the
//! others still fail at once; its success closes the breaker, its failure opens it again.
//! Opening the breaker drops the connection, so the probe opens a fresh one: a connection
//! that silently stopped answering is not reused, and after a failover (`READONLY` from a
//! demoted primary) the address is resolved again.
//!
//! [`RedisLimits::connect`] does not need a live Redis: the connection is made on first
//! use (a `redis` [`ConnectionManager`], created lazily), and a Redis that is down at
//! start is just a breaker that opens and, later, closes.

use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::limits::{
    AI_PER_SEC, Ask, BackendError, CONCURRENCY_RETRY_MS, DAY_MS, Grant, LimitBackend, LimitKind,
    MD_FACTOR, MD_INTERVAL_MS, MIN_RATE, MINUTE_MS, Scope, ScopeLimits, ScopeSnapshot, Verdict,
};
use crate::metrics::Metrics;

/// How [`RedisLimits`] names its keys, waits and gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// The first part of every key (`<prefix>:{<scope>}:state`). Without braces.
    pub key_prefix: String,
    /// The deadline of every command.
    pub command_timeout: Duration,
    /// The deadline of opening a connection (added to the command's when one is opened).
    pub connect_timeout: Duration,
    /// Consecutive failures that open the breaker (at least 1).
    pub breaker_failures: u32,
    /// How long an open breaker fails calls at once before it lets one through.
    pub breaker_open: Duration,
    /// A scope's keys expire after this long without a call.
    pub key_ttl: Duration,
}

impl Default for RedisOptions {
    fn default() -> RedisOptions {
        RedisOptions {
            key_prefix: "gw".to_owned(),
            command_timeout: Duration::from_millis(10),
            connect_timeout: Duration::from_millis(250),
            breaker_failures: 3,
            breaker_open: Duration::from_secs(1),
            key_ttl: Duration::from_secs(2 * 86_400),
        }
    }
}

/// Every scope's counters, in Redis: one client (cheap to clone, all clones share the
/// connection and the breaker).
#[derive(Clone)]
pub struct RedisLimits {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    options: RedisOptions,
    /// Created on first use (it needs the Tokio runtime), dropped when the breaker opens.
    manager: Mutex<Option<ConnectionManager>>,
    breaker: Mutex<Breaker>,
    metrics: std::sync::OnceLock<Arc<Metrics>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Breaker {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One call (the probe) is on its way to Redis.
    HalfOpen,
}

/// A call let through by the breaker; [`Attempt::finish`] records how it went. A probe
/// dropped unfinished (its caller gave up) lets the next call probe instead.
struct Attempt<'a> {
    inner: &'a Inner,
    probe: bool,
    finished: bool,
}

/// One Lua script: the prelude and an operation, with its SHA-1 for `EVALSHA`.
struct Script {
    name: &'static str,
    code: &'static str,
    sha: String,
}

impl Script {
    fn new(name: &'static str, code: &'static str) -> Script {
        Script { name, code, sha: redis::Script::new(code).get_hash().to_owned() }
    }
}

macro_rules! script {
    ($name:literal) => {
        LazyLock::new(|| {
            Script::new(
                $name,
                concat!(include_str!("scope.lua"), include_str!(concat!($name, ".lua"))),
            )
        })
    };
}

static RESERVE: LazyLock<Script> = script!("reserve");
static SETTLE: LazyLock<Script> = script!("settle");
static THROTTLED: LazyLock<Script> = script!("throttled");
static SNAPSHOT: LazyLock<Script> = script!("snapshot");

impl RedisLimits {
    /// A client of the Redis at `url` (`redis://[user:password@]host[:port][/db]`,
    /// `rediss://` for TLS if the `redis` crate is built with it). Makes no connection:
    /// fails only for a malformed URL or options, never because Redis is down.
    pub fn connect(url: &str, options: RedisOptions) -> Result<RedisLimits, BackendError> {
        if options.key_prefix.contains(['{', '}']) {
            return Err(BackendError(format!(
                "redis key prefix {:?} must not contain braces (they are the scope's hash tag)",
                options.key_prefix
            )));
        }
        let client = redis::Client::open(url)
            .map_err(|e| BackendError(format!("invalid redis url: {:?}", e.kind())))?;
        Ok(RedisLimits {
            inner: Arc::new(Inner {
                client,
                options,
                manager: Mutex::new(None),
                breaker: Mutex::new(Breaker::Closed { failures: 0 }),
                metrics: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Whether a call now would reach Redis: the breaker is closed, or its open period
    /// is over and the next call is the probe (so that a caller that asks this before
    /// every call still lets the probe through). False while it is open or probing.
    pub fn is_available(&self) -> bool {
        match *self.inner.breaker() {
            Breaker::Closed { .. } => true,
            Breaker::Open { until } => Instant::now() >= until,
            Breaker::HalfOpen => false,
        }
    }

    fn keys(&self, scope: &Scope) -> [String; 3] {
        let prefix = &self.inner.options.key_prefix;
        let tag = &scope.key;
        [
            format!("{prefix}:{{{tag}}}:state"),
            format!("{prefix}:{{{tag}}}:live"),
            format!("{prefix}:{{{tag}}}:expiry"),
        ]
    }

    /// `ARGV[1..9]` of every script (see `scope.lua`).
    fn common_args(&self, limits: &ScopeLimits) -> Vec<String> {
        let limit = |value: Option<u64>| value.map_or_else(String::new, |v| v.to_string());
        vec![
            limit(limits.tokens_per_minute),
            limit(limits.tokens_per_day),
            // 0 is taken as 1, as the local governor does.
            limit(limits.requests_per_minute.map(|rpm| rpm.max(1))),
            limit(limits.max_concurrency.map(u64::from)),
            if limits.adaptive { "1" } else { "0" }.to_owned(),
            self.inner.options.key_ttl.as_millis().max(1).to_string(),
            MINUTE_MS.to_string(),
            DAY_MS.to_string(),
            AI_PER_SEC.to_string(),
        ]
    }

    /// Runs `script` for `scope` with the breaker and the deadlines.
    async fn run(
        &self,
        script: &Script,
        scope: &Scope,
        own_args: &[String],
    ) -> Result<Vec<String>, BackendError> {
        let started = std::time::Instant::now();
        let attempt = match self.inner.admit() {
            Ok(attempt) => attempt,
            Err(error) => {
                self.observe(script, started, Some("circuit_open"));
                return Err(error);
            }
        };
        let result = self.run_admitted(script, scope, own_args).await;
        attempt.finish(result.is_ok());
        match result {
            Ok(reply) => {
                self.observe(script, started, None);
                Ok(reply)
            }
            Err((error, kind)) => {
                self.observe(script, started, Some(kind));
                Err(error)
            }
        }
    }

    /// Counts the scripts' durations and failures in the gateway's metrics, once set.
    pub fn set_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.inner.metrics.set(metrics);
    }

    fn observe(&self, script: &Script, started: std::time::Instant, error: Option<&str>) {
        if let Some(metrics) = self.inner.metrics.get() {
            metrics.redis_command(script.name, started.elapsed(), error);
        }
    }

    async fn run_admitted(
        &self,
        script: &Script,
        scope: &Scope,
        own_args: &[String],
    ) -> Result<Vec<String>, (BackendError, &'static str)> {
        let options = &self.inner.options;
        let (mut manager, fresh) = self.inner.manager().map_err(|e| (e, "connection"))?;
        let keys = self.keys(scope);
        let mut args = self.common_args(&scope.limits);
        args.extend_from_slice(own_args);

        let first_deadline = if fresh {
            options.command_timeout + options.connect_timeout
        } else {
            options.command_timeout
        };
        let mut evalsha = redis::cmd("EVALSHA");
        evalsha.arg(&script.sha).arg(keys.len()).arg(&keys).arg(&args);
        match with_deadline(script, first_deadline, evalsha.query_async(&mut manager)).await {
            Err(Failure::Redis(e))
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                tracing::debug!(script = script.name, "redis limits: NOSCRIPT, sending EVAL");
            }
            other => return other.map_err(|failure| failure.into_classified(script)),
        }
        let mut eval = redis::cmd("EVAL");
        eval.arg(script.code).arg(keys.len()).arg(&keys).arg(&args);
        with_deadline(script, options.command_timeout, eval.query_async(&mut manager))
            .await
            .map_err(|failure| failure.into_classified(script))
    }

    async fn reserve_remote(&self, scope: &Scope, ask: Ask) -> Result<Verdict, BackendError> {
        let ttl_ms = ask.ttl.as_secs_f64() * 1000.0;
        let own = [ask.tokens.to_string(), ttl_ms.to_string(), CONCURRENCY_RETRY_MS.to_string()];
        let reply = self.run(&RESERVE, scope, &own).await?;
        parse_verdict(&reply, ask).ok_or_else(|| unexpected(&RESERVE, &reply))
    }

    async fn settle_remote(
        &self,
        scope: &Scope,
        grant: &Grant,
        used_tokens: u64,
    ) -> Result<(), BackendError> {
        let own = [grant.id.clone(), used_tokens.to_string()];
        let reply = self.run(&SETTLE, scope, &own).await?;
        match reply.first().map(String::as_str) {
            Some("settled" | "unknown") => Ok(()),
            _ => Err(unexpected(&SETTLE, &reply)),
        }
    }

    async fn throttled_remote(&self, scope: &Scope) -> Result<(), BackendError> {
        if !scope.limits.adaptive {
            // The script would change nothing either.
            return Ok(());
        }
        let own = [MD_FACTOR.to_string(), MD_INTERVAL_MS.to_string(), MIN_RATE.to_string()];
        let reply = self.run(&THROTTLED, scope, &own).await?;
        match reply.first().map(String::as_str) {
            Some("decreased" | "kept" | "not_adaptive") => Ok(()),
            _ => Err(unexpected(&THROTTLED, &reply)),
        }
    }

    async fn snapshot_remote(&self, scope: &Scope) -> Result<ScopeSnapshot, BackendError> {
        let reply = self.run(&SNAPSHOT, scope, &[]).await?;
        parse_snapshot(&reply, &scope.limits).ok_or_else(|| unexpected(&SNAPSHOT, &reply))
    }
}

impl Inner {
    fn breaker(&self) -> MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a call through, or fails it at once while the breaker is open.
    fn admit(&self) -> Result<Attempt<'_>, BackendError> {
        let mut breaker = self.breaker();
        let probe = match *breaker {
            Breaker::Closed { .. } => false,
            Breaker::Open { until } if Instant::now() >= until => {
                *breaker = Breaker::HalfOpen;
                true
            }
            Breaker::Open { .. } | Breaker::HalfOpen => {
                return Err(BackendError("redis circuit open".to_owned()));
            }
        };
        Ok(Attempt { inner: self, probe, finished: false })
    }

    fn record(&self, probe: bool, ok: bool) {
        let mut breaker = self.breaker();
        if ok {
            if *breaker != (Breaker::Closed { failures: 0 }) {
                if !matches!(*breaker, Breaker::Closed { .. }) {
                    tracing::info!("redis limits: circuit closed, Redis answers again");
                }
                *breaker = Breaker::Closed { failures: 0 };
            }
            return;
        }
        let open = match *breaker {
            Breaker::Closed { failures } => {
                let failures = failures.saturating_add(1);
                *breaker = Breaker::Closed { failures };
                failures >= self.options.breaker_failures.max(1)
            }
            Breaker::HalfOpen => probe,
            // A call from before the breaker opened: it is open already.
            Breaker::Open { .. } => false,
        };
        if open {
            *breaker = Breaker::Open { until: Instant::now() + self.options.breaker_open };
            drop(breaker);
            tracing::warn!(
                open_for = ?self.options.breaker_open,
                "redis limits: circuit open after {} failure(s)",
                if probe { 1 } else { self.options.breaker_failures.max(1) },
            );
            // The probe opens a fresh connection.
            self.manager.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
    }

    /// The connection manager, created if there is none; `true` if it was just created
    /// (its first call opens the connection).
    fn manager(&self) -> Result<(ConnectionManager, bool), BackendError> {
        let mut slot = self.manager.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(manager) = slot.as_ref() {
            return Ok((manager.clone(), false));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(Some(self.options.command_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| BackendError(format!("redis connection: {e}")))?;
        *slot = Some(manager.clone());
        Ok((manager, true))
    }
}

impl Attempt<'_> {
    fn finish(mut self, ok: bool) {
        self.finished = true;
        self.inner.record(self.probe, ok);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.probe && !self.finished {
            let mut breaker = self.inner.breaker();
            if *breaker == Breaker::HalfOpen {
                *breaker = Breaker::Open { until: Instant::now() };
            }
        }
    }
}

enum Failure {
    Timeout(Duration),
    Redis(redis::RedisError),
}

impl Failure {
    /// The error and its metric label: `timeout`, `connection` or `reply`.
    fn into_classified(self, script: &Script) -> (BackendError, &'static str) {
        let kind = match &self {
            Failure::Timeout(_) => "timeout",
            Failure::Redis(e)
                if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() =>
            {
                "connection"
            }
            Failure::Redis(_) => "reply",
        };
        (self.into_error(script), kind)
    }

    fn into_error(self, script: &Script) -> BackendError {
        match self {
            Failure::Timeout(deadline) => {
                BackendError(format!("redis {}: no answer within {deadline:?}", script.name))
            }
            Failure::Redis(e) => BackendError(format!("redis {}: {e}", script.name)),
        }
    }
}

async fn with_deadline<T>(
    script: &Script,
    deadline: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::Redis(e)),
        Err(_) => {
            tracing::debug!(script = script.name, ?deadline, "redis limits: timed out");
            Err(Failure::Timeout(deadline))
        }
    }
}

fn unexpected(script: &Script, reply: &[String]) -> BackendError {
    BackendError(format!("redis {}: unexpected reply {reply:?}", script.name))
}

fn parse_kind(label: &str) -> Option<LimitKind> {
    [
        LimitKind::TokensPerMinute,
        LimitKind::TokensPerDay,
        LimitKind::RequestsPerMinute,
        LimitKind::Concurrency,
    ]
    .into_iter()
    .find(|kind| kind.as_str() == label)
}

fn parse_verdict(reply: &[String], ask: Ask) -> Option<Verdict> {
    match reply {
        [status, id, _tokens] if status == "granted" => {
            Some(Verdict::Granted(Grant { id: id.clone(), tokens: ask.tokens }))
        }
        [status, wait_ms, limit] if status == "wait" => {
            let limit = parse_kind(limit)?;
            let retry_after = if limit == LimitKind::Concurrency {
                Duration::from_millis(CONCURRENCY_RETRY_MS)
            } else {
                let wait_ms: f64 = wait_ms.parse().ok()?;
                Duration::try_from_secs_f64(wait_ms.max(1.0) / 1000.0).unwrap_or(Duration::MAX)
            };
            Some(Verdict::Wait { retry_after, limit })
        }
        [status, limit] if status == "never" => Some(Verdict::Never { limit: parse_kind(limit)? }),
        _ => None,
    }
}

fn parse_snapshot(reply: &[String], limits: &ScopeLimits) -> Option<ScopeSnapshot> {
    let [admitted, minute, day, reserved, in_flight] = reply else {
        return None;
    };
    let optional = |value: &String| -> Option<Option<f64>> {
        if value.is_empty() { Some(None) } else { value.parse().ok().map(Some) }
    };
    let reserved: f64 = reserved.parse().ok()?;
    Some(ScopeSnapshot {
        configured_tokens_per_minute: limits.tokens_per_minute,
        admitted_tokens_per_minute: optional(admitted)?,
        minute_level: optional(minute)?,
        day_level: optional(day)?,
        // Float to integer casts saturate.
        reserved_tokens: reserved.max(0.0) as u64,
        in_flight: in_flight.parse().ok()?,
    })
}

impl fmt::Debug for RedisLimits {
    /// The address and database, never the URL (it may hold a password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.inner.client.get_connection_info();
        f.debug_struct("RedisLimits")
            .field("addr", &info.addr().to_string())
            .field("db", &info.redis_settings().db())
            .field("options", &self.inner.options)
            .field("breaker", &*self.inner.breaker())
            .finish_non_exhaustive()
    }
}

impl LimitBackend for RedisLimits {
    fn reserve<'a>(
        &'a self,
        scope: &'a Scope,
        ask: Ask,
    ) -> BoxFuture<'a, Result<Verdict, BackendError>> {
        self.reserve_remote(scope, ask).boxed()
    }

    fn settle<'a>(
        &'a self,
        scope: &'a Scope,
        grant: &'a Grant,
        used_tokens: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.settle_remote(scope, grant, used_tokens).boxed()
    }

    fn throttled<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<(), BackendError>> {
        self.throttled_remote(scope).boxed()
    }

    fn snapshot<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<ScopeSnapshot, BackendError>> {
        self.snapshot_remote(scope).boxed()
    }
}

#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
