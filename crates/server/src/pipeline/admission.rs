//! Admission: caller limits, then the target's quota reservation, waiting in a bounded
//! FIFO queue per target; and the [`Reservation`] guard that settles what was admitted.
//!
//! **Queue policy.** Requests wait for their target in strict arrival order: only the
//! head of the queue asks the backend for its reservation, and nobody overtakes it. A
//! large request therefore cannot starve behind a stream of small ones; small ones
//! behind a large head wait until it fits, which takes at most its size ÷ the refill
//! rate (a reservation larger than the whole quota is refused at once), and never more
//! than their own `max_queue_wait`. A waiter asks again when its reservation would fit
//! by refill, when a settlement in this process gives tokens back, or every 250 ms
//! (settlements of other replicas). A full queue or a wait that runs out is a 429
//! `rate_limited` with `Retry-After` from when the reservation would fit. A caller that
//! disconnects drops its future, and so leaves the queue at once.
//!
//! Caller limits do not queue: a key over its own budget is refused at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;
use translator::Usage;

use crate::config::{ApiKey, FailureMode, LimitsBackend, LimitsConfig, Target};
use crate::error::ApiError;
use crate::limits::local::LocalLimits;
use crate::limits::redis::{RedisLimits, RedisOptions};
use crate::limits::{
    Ask, BackendError, Grant, LimitBackend, LimitKind, Scope, ScopeSnapshot, Verdict,
};
use crate::metrics::{Metrics, Rejection};

/// The longest a queued request sleeps before asking again.
const MAX_POLL: Duration = Duration::from_millis(250);

/// Every admission counter and queue of the gateway.
#[derive(Debug)]
pub struct Admission {
    store: Arc<Store>,
    ttl: Duration,
    metrics: Arc<Metrics>,
    /// Every target with a quota: its scope (built once) and its queue.
    targets: BTreeMap<String, TargetAdmission>,
}

#[derive(Debug)]
struct TargetAdmission {
    scope: Scope,
    queue: Arc<TargetQueue>,
}

/// Where the counters live.
#[derive(Debug)]
enum Store {
    Local(LocalLimits),
    Redis {
        redis: RedisLimits,
        mode: FailureMode,
        /// The fail-open counters: quota ÷ `expected_replicas`.
        fallback: LocalLimits,
        expected_replicas: u32,
        /// Whether the last call failed over (to log transitions once).
        failed_over: AtomicBool,
    },
}

/// Which store granted a hold, so that it is settled where it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeldIn {
    Primary,
    Fallback,
}

/// One target's waiting line.
#[derive(Debug, Default)]
struct TargetQueue {
    /// Held by the head of the queue; tokio's mutex is fair (first come, first served).
    turn: Mutex<()>,
    /// Requests waiting, the head included.
    waiting: AtomicUsize,
    /// Woken by every settlement of the target in this process.
    settled: Notify,
}

/// One granted reservation in one scope.
#[derive(Debug)]
pub struct Hold {
    scope: Scope,
    grant: Grant,
    held_in: HeldIn,
    /// Output tokens count this many times (the target's burndown; 1 for callers).
    output_weight: f64,
    /// The target's queue, woken when this hold is settled.
    queue: Option<Arc<TargetQueue>>,
}

/// What one call holds: its caller's hold and its target's. Settled once with the
/// usage; dropped unsettled (a cancelled call), it keeps everything reserved as used once
/// an attempt was sent, since Bedrock may have counted it, and gives everything back if
/// none was (the caller went away while queued).
#[derive(Debug)]
pub struct Reservation {
    admission: Arc<Admission>,
    holds: Vec<Hold>,
    /// Whether an attempt of the call went to Bedrock.
    sent: bool,
}

impl Admission {
    /// The counters for `config`, and a queue for every target.
    pub fn new(
        config: &LimitsConfig,
        targets: impl Iterator<Item = Arc<Target>>,
        metrics: Arc<Metrics>,
    ) -> Result<Admission, String> {
        let store = match &config.backend {
            LimitsBackend::Local => Store::Local(LocalLimits::new()),
            LimitsBackend::Redis(redis) => Store::Redis {
                redis: {
                    let options = RedisOptions {
                        command_timeout: redis.command_timeout,
                        key_prefix: redis.key_prefix.clone(),
                        ..RedisOptions::default()
                    };
                    let limits = RedisLimits::connect(&redis.url, options)
                        .map_err(|e| format!("limits.redis_url: {e}"))?;
                    limits.set_metrics(metrics.clone());
                    limits
                },
                mode: redis.failure_mode,
                fallback: LocalLimits::new(),
                expected_replicas: redis.expected_replicas,
                failed_over: AtomicBool::new(false),
            },
        };
        Ok(Admission {
            store: Arc::new(store),
            ttl: config.reservation_ttl,
            metrics,
            targets: target_admissions(targets, None),
        })
    }

    /// The admission of a reloaded config with the same backend: the same counters, and
    /// the same queue for every target that keeps its name.
    pub fn reconfigured(&self, targets: impl Iterator<Item = Arc<Target>>) -> Admission {
        Admission {
            store: self.store.clone(),
            ttl: self.ttl,
            metrics: self.metrics.clone(),
            targets: target_admissions(targets, Some(&self.targets)),
        }
    }

    /// The caller's own budget, if it has one; refused at once when over it.
    pub async fn admit_caller(
        &self,
        caller: &ApiKey,
        tokens: u64,
    ) -> Result<Option<Hold>, ApiError> {
        if !caller.limits.is_limited() {
            return Ok(None);
        }
        let scope = caller_scope(caller);
        let (verdict, held_in) = self.reserve(&scope, tokens).await?;
        let name = caller.name.as_str();
        match &verdict {
            Verdict::Granted(_) => self.metrics.reserved("caller", name, tokens),
            Verdict::Wait { limit, .. } => self.metrics.rejected("caller", name, (*limit).into()),
            Verdict::Never { .. } => self.metrics.rejected("caller", name, Rejection::TooLarge),
        }
        match verdict {
            Verdict::Granted(grant) => {
                Ok(Some(Hold { scope, grant, held_in, output_weight: 1.0, queue: None }))
            }
            Verdict::Wait { retry_after, limit } => Err(ApiError::RateLimited {
                message: format!(
                    "caller limit: the API key {:?} is over its {}; retry after {} ms",
                    caller.name,
                    limit_text(limit),
                    retry_after.as_millis()
                ),
                retry_after: Some(retry_after),
            }),
            Verdict::Never { limit } => Err(ApiError::RateLimited {
                message: format!(
                    "caller limit: the request needs {tokens} tokens, more than the API key \
                     {:?}'s whole {}; lower `max_tokens`",
                    caller.name,
                    limit_text(limit)
                ),
                retry_after: None,
            }),
        }
    }

    /// The target's quota reservation of `tokens`, waiting in the target's queue until
    /// `give_up_at` (or the target's own `max_queue_wait`, whichever is sooner).
    pub async fn admit_target(
        &self,
        target: &Target,
        tokens: u64,
        give_up_at: Instant,
    ) -> Result<Option<Hold>, ApiError> {
        let Some(TargetAdmission { scope, queue }) = self.targets.get(&target.name) else {
            return Ok(None);
        };
        let started = Instant::now();
        let result = self.queue_for(target, scope, queue, tokens, give_up_at).await;
        let admitted = result.is_ok();
        self.metrics.queue_wait(target, admitted, started.elapsed());
        match &result {
            Ok(_) => self.metrics.reserved("route", &target.name, tokens),
            Err((_, Some(reason))) => self.metrics.rejected("route", &target.name, *reason),
            Err((_, None)) => {}
        }
        result.map(Some).map_err(|(error, _)| error)
    }

    /// The wait in `queue`; a refusal says why (`None`: not a refusal of the gateway's).
    async fn queue_for(
        &self,
        target: &Target,
        scope: &Scope,
        queue: &Arc<TargetQueue>,
        tokens: u64,
        give_up_at: Instant,
    ) -> Result<Hold, (ApiError, Option<Rejection>)> {
        let give_up_at = give_up_at.min(Instant::now() + target.quota.max_queue_wait);
        let refused = |error, reason| (error, Some(reason));
        if queue.waiting.load(Ordering::Relaxed) >= target.quota.max_queue_len {
            let error = ApiError::RateLimited {
                message: format!(
                    "route limit: the queue of target {:?} is full ({} waiting)",
                    target.name, target.quota.max_queue_len
                ),
                retry_after: Some(Duration::from_secs(1)),
            };
            return Err(refused(error, Rejection::QueueFull));
        }
        let _waiting = Waiting::enter(queue);
        let turn = tokio::time::timeout_at(give_up_at, queue.turn.lock()).await;
        let Ok(_turn) = turn else {
            return Err(refused(queue_timeout(target, None), Rejection::QueueTimeout));
        };
        loop {
            let settled = queue.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let (verdict, held_in) = self.reserve(scope, tokens).await.map_err(|e| (e, None))?;
            let (retry_after, limit) = match verdict {
                Verdict::Granted(grant) => {
                    return Ok(Hold {
                        scope: scope.clone(),
                        grant,
                        held_in,
                        output_weight: target.quota.output_burndown,
                        queue: Some(queue.clone()),
                    });
                }
                Verdict::Never { limit } => {
                    let error = ApiError::RateLimited {
                        message: format!(
                            "route limit: the request needs {tokens} quota tokens, more than \
                             target {:?}'s whole {}; lower `max_tokens`",
                            target.name,
                            limit_text(limit)
                        ),
                        retry_after: None,
                    };
                    return Err(refused(error, Rejection::TooLarge));
                }
                Verdict::Wait { retry_after, limit } => (retry_after, limit),
            };
            let now = Instant::now();
            if now >= give_up_at {
                let error = queue_timeout(target, Some((retry_after, limit)));
                return Err(refused(error, Rejection::QueueTimeout));
            }
            let wake_at = (now + retry_after.min(MAX_POLL)).min(give_up_at);
            tokio::select! {
                () = tokio::time::sleep_until(wake_at) => {}
                () = &mut settled => {}
            }
        }
    }

    /// Bedrock throttled a call to `target`: lower its admitted rate.
    pub async fn throttled(&self, target: &Target) {
        let Some(TargetAdmission { scope, .. }) = self.targets.get(&target.name) else {
            return;
        };
        match self.store.as_ref() {
            Store::Local(local) => local.throttled_now(scope),
            Store::Redis { redis, fallback, expected_replicas, .. } => {
                if redis.throttled(scope).await.is_err() {
                    fallback.throttled_now(&scope.divided(*expected_replicas));
                }
            }
        }
    }

    /// A target's counters now (`None` without a quota or when the backend is down).
    pub async fn snapshot(&self, target: &Target) -> Option<ScopeSnapshot> {
        let TargetAdmission { scope, .. } = self.targets.get(&target.name)?;
        self.scope_snapshot(scope).await
    }

    /// Sets the scrape-time gauges: every target's and every limited caller's counters,
    /// and every queue's length.
    pub async fn observe(&self, callers: &[Arc<ApiKey>]) {
        if !self.metrics.enabled() {
            return;
        }
        self.metrics.reset_scrape_gauges();
        for (name, TargetAdmission { scope, queue }) in &self.targets {
            self.metrics.queue_length(name, queue.waiting.load(Ordering::Relaxed));
            if let Some(snapshot) = self.scope_snapshot(scope).await {
                self.metrics.scope_snapshot("route", name, &snapshot, scope.limits.tokens_per_day);
            }
        }
        for caller in callers.iter().filter(|caller| caller.limits.is_limited()) {
            let scope = caller_scope(caller);
            if let Some(snapshot) = self.scope_snapshot(&scope).await {
                let tpd = scope.limits.tokens_per_day;
                self.metrics.scope_snapshot("caller", &caller.name, &snapshot, tpd);
            }
        }
    }

    async fn scope_snapshot(&self, scope: &Scope) -> Option<ScopeSnapshot> {
        match self.store.as_ref() {
            Store::Local(local) => Some(local.snapshot_now(scope)),
            Store::Redis { redis, .. } => redis.snapshot(scope).await.ok(),
        }
    }

    async fn reserve(&self, scope: &Scope, tokens: u64) -> Result<(Verdict, HeldIn), ApiError> {
        let ask = Ask { tokens, ttl: self.ttl };
        match self.store.as_ref() {
            Store::Local(local) => Ok((local.reserve_now(scope, ask), HeldIn::Primary)),
            Store::Redis { redis, mode, fallback, expected_replicas, failed_over } => {
                match redis.reserve(scope, ask).await {
                    Ok(verdict) => {
                        if failed_over.swap(false, Ordering::Relaxed) {
                            tracing::warn!(
                                message = "limits: Redis answers again; shared limits apply"
                            );
                        }
                        Ok((verdict, HeldIn::Primary))
                    }
                    Err(error) => {
                        if !failed_over.swap(true, Ordering::Relaxed) {
                            tracing::warn!(message = "limits: Redis is unavailable", %error, mode = ?mode);
                        }
                        match mode {
                            FailureMode::FailClosed => Err(ApiError::LimitsUnavailable),
                            FailureMode::FailOpen => {
                                self.metrics.fail_open();
                                let local_scope = scope.divided(*expected_replicas);
                                Ok((fallback.reserve_now(&local_scope, ask), HeldIn::Fallback))
                            }
                        }
                    }
                }
            }
        }
    }

    async fn settle(&self, hold: &Hold, used_tokens: u64) {
        let result: Result<(), BackendError> = match (self.store.as_ref(), hold.held_in) {
            (Store::Local(local), _) => {
                local.settle_now(&hold.scope, &hold.grant, used_tokens);
                Ok(())
            }
            (Store::Redis { redis, .. }, HeldIn::Primary) => {
                redis.settle(&hold.scope, &hold.grant, used_tokens).await
            }
            (Store::Redis { fallback, expected_replicas, .. }, HeldIn::Fallback) => {
                fallback.settle_now(
                    &hold.scope.divided(*expected_replicas),
                    &hold.grant,
                    used_tokens,
                );
                Ok(())
            }
        };
        let (scope_label, name) = scope_labels(&hold.scope);
        self.metrics.settled(scope_label, name, used_tokens);
        if let Err(error) = result {
            // The reservation expires after its TTL instead, counted as used.
            tracing::debug!(message = "limits: settlement lost", %error, scope = %hold.scope.key);
        }
        if let Some(queue) = &hold.queue {
            queue.settled.notify_waiters();
        }
    }
}

/// A scope and a queue for every target with a quota; a queue of `old` is kept.
fn target_admissions(
    targets: impl Iterator<Item = Arc<Target>>,
    old: Option<&BTreeMap<String, TargetAdmission>>,
) -> BTreeMap<String, TargetAdmission> {
    targets
        .filter(|target| target.scope_limits().is_limited())
        .map(|target| {
            let scope = Scope { key: format!("t:{}", target.name), limits: target.scope_limits() };
            let queue = old
                .and_then(|old| old.get(&target.name))
                .map_or_else(Arc::default, |kept| kept.queue.clone());
            (target.name.clone(), TargetAdmission { scope, queue })
        })
        .collect()
}

/// The scope of an API key's own budget.
fn caller_scope(caller: &ApiKey) -> Scope {
    Scope { key: format!("c:{}", caller.name), limits: caller.limits.clone() }
}

/// The metric labels of a scope: `route` and the target, or `caller` and the key name.
fn scope_labels(scope: &Scope) -> (&'static str, &str) {
    match scope.key.split_once(':') {
        Some(("c", name)) => ("caller", name),
        Some((_, name)) => ("route", name),
        None => ("route", scope.key.as_str()),
    }
}

/// Counts a request in a queue while it waits (the head included).
struct Waiting<'a>(&'a TargetQueue);

impl<'a> Waiting<'a> {
    fn enter(queue: &'a TargetQueue) -> Waiting<'a> {
        queue.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(queue)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

fn queue_timeout(target: &Target, last: Option<(Duration, LimitKind)>) -> ApiError {
    let (retry_after, what) = match last {
        Some((retry_after, limit)) => (retry_after, limit_text(limit)),
        None => (Duration::from_secs(1), "queue"),
    };
    ApiError::RateLimited {
        message: format!(
            "route limit: target {:?} had no room in its {what} within the queue wait \
             ({} ms)",
            target.name,
            target.quota.max_queue_wait.as_millis()
        ),
        retry_after: Some(retry_after),
    }
}

fn limit_text(limit: LimitKind) -> &'static str {
    match limit {
        LimitKind::TokensPerMinute => "tokens per minute",
        LimitKind::TokensPerDay => "tokens per day",
        LimitKind::RequestsPerMinute => "requests per minute",
        LimitKind::Concurrency => "concurrency",
    }
}

impl Reservation {
    pub fn new(admission: Arc<Admission>) -> Reservation {
        Reservation { admission, holds: Vec::new(), sent: false }
    }

    /// An attempt is going to Bedrock: from now on a cancelled call keeps its holds.
    pub fn mark_sent(&mut self) {
        self.sent = true;
    }

    pub fn push(&mut self, hold: Option<Hold>) {
        self.holds.extend(hold);
    }

    /// Removes the target's hold (the last pushed after the caller's), for a fallback.
    pub fn pop(&mut self) -> Option<Hold> {
        self.holds.pop()
    }

    /// Gives `hold` back whole: Bedrock did not count the call.
    pub async fn release(&self, hold: Hold) {
        self.admission.settle(&hold, 0).await;
    }

    /// Keeps `hold` as used: Bedrock may have counted the call.
    pub async fn keep(&self, hold: Hold) {
        self.admission.settle(&hold, hold.grant.tokens).await;
    }

    /// Settles every hold with the call's real usage (`None`: unknown, kept as reserved).
    pub async fn settle(mut self, usage: Option<Usage>) {
        for hold in std::mem::take(&mut self.holds) {
            let used = match usage {
                Some(usage) => used_tokens(usage, hold.output_weight),
                None => hold.grant.tokens,
            };
            self.admission.settle(&hold, used).await;
        }
    }

    /// Gives every hold back: the call failed before Bedrock counted it.
    pub async fn release_all(mut self) {
        for hold in std::mem::take(&mut self.holds) {
            self.admission.settle(&hold, 0).await;
        }
    }
}

/// Input tokens plus output tokens × `output_weight`, rounded up.
pub fn used_tokens(usage: Usage, output_weight: f64) -> u64 {
    let input = u64::from(usage.input_tokens.unwrap_or(0));
    let output = f64::from(usage.output_tokens.unwrap_or(0)) * output_weight;
    input + output.ceil() as u64
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let holds = std::mem::take(&mut self.holds);
        if holds.is_empty() {
            return;
        }
        // Cancelled mid-call: keep what was reserved as used (or, if Bedrock was never
        // called, give it back), off the caller's task.
        let admission = self.admission.clone();
        let sent = self.sent;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for hold in holds {
                    let used = if sent { hold.grant.tokens } else { 0 };
                    admission.settle(&hold, used).await;
                }
            });
        }
    }
}
