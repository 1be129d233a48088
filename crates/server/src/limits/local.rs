//! [`LocalLimits`]: the counters of one process, in memory. Also the reference
//! arithmetic of the buckets ([`ScopeState`]), which the Redis scripts repeat step for
//! step; its tests pin it with a fake clock.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use governor::{Quota, RateLimiter};
use tokio::sync::Notify;

use crate::limits::{
    AI_PER_SEC, Ask, BackendError, CONCURRENCY_RETRY_MS, DAY_MS, Grant, LimitBackend, LimitKind,
    MD_FACTOR, MD_INTERVAL_MS, MIN_RATE, MINUTE_MS, Scope, ScopeLimits, ScopeSnapshot, Verdict,
};

type Governor = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
>;

/// Every scope's counters, in this process.
#[derive(Debug, Clone)]
pub struct LocalLimits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    scopes: Mutex<HashMap<String, LocalScope>>,
}

struct LocalScope {
    state: ScopeState,
    /// Requests per minute, by governor (created with the scope's limit).
    rpm: Option<(u64, Governor)>,
    /// Woken by every settlement, so that a waiter retries at once.
    settled: Arc<Notify>,
}

impl std::fmt::Debug for LocalScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalScope").field("state", &self.state).finish_non_exhaustive()
    }
}

/// The token-bucket state of one scope at a point in time, in milliseconds since an
/// arbitrary origin. Pure: no clock, no I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeState {
    /// The admitted fraction of the configured tokens per minute, in `[MIN_RATE, 1]`.
    rate: f64,
    rate_at_ms: f64,
    last_decrease_ms: Option<f64>,
    minute: Option<Bucket>,
    day: Option<Bucket>,
    live: HashMap<String, Live>,
    next_id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    level: f64,
    at_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Live {
    tokens: u64,
    expires_at_ms: f64,
}

impl LocalLimits {
    pub fn new() -> LocalLimits {
        LocalLimits {
            inner: Arc::new(Inner { started: Instant::now(), scopes: Mutex::new(HashMap::new()) }),
        }
    }

    fn now_ms(&self) -> f64 {
        self.inner.started.elapsed().as_secs_f64() * 1000.0
    }

    fn with_scope<T>(&self, scope: &Scope, f: impl FnOnce(&mut LocalScope, f64) -> T) -> T {
        let now = self.now_ms();
        let mut scopes = self.inner.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = scopes.entry(scope.key.clone()).or_insert_with(|| LocalScope {
            state: ScopeState::new(&scope.limits, now),
            rpm: None,
            settled: Arc::new(Notify::new()),
        });
        f(entry, now)
    }

    /// Resolves at the next settlement in `scope` (a waiter's cue to ask again).
    pub fn settled(&self, scope: &Scope) -> Arc<Notify> {
        self.with_scope(scope, |entry, _| entry.settled.clone())
    }

    /// Reserves synchronously (the local backend never waits on I/O).
    pub fn reserve_now(&self, scope: &Scope, ask: Ask) -> Verdict {
        self.with_scope(scope, |entry, now| {
            let limits = &scope.limits;
            if let Some(verdict) = entry.state.check(limits, now, ask) {
                return verdict;
            }
            if let Some(rpm) = limits.requests_per_minute {
                let stale = entry.rpm.as_ref().is_none_or(|(limit, _)| *limit != rpm);
                if stale {
                    let per_minute = NonZeroU32::new(u32::try_from(rpm).unwrap_or(u32::MAX))
                        .unwrap_or(NonZeroU32::MIN);
                    entry.rpm = Some((rpm, RateLimiter::direct(Quota::per_minute(per_minute))));
                }
                if let Some((_, governor)) = &entry.rpm
                    && let Err(not_until) = governor.check()
                {
                    use governor::clock::Clock;
                    let retry_after =
                        not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                    return Verdict::Wait { retry_after, limit: LimitKind::RequestsPerMinute };
                }
            }
            Verdict::Granted(entry.state.commit(now, ask))
        })
    }

    pub fn settle_now(&self, scope: &Scope, grant: &Grant, used_tokens: u64) {
        let notify = self.with_scope(scope, |entry, now| {
            entry.state.settle(&scope.limits, now, grant, used_tokens);
            entry.settled.clone()
        });
        notify.notify_waiters();
    }

    pub fn throttled_now(&self, scope: &Scope) {
        self.with_scope(scope, |entry, now| entry.state.throttled(&scope.limits, now));
    }

    pub fn snapshot_now(&self, scope: &Scope) -> ScopeSnapshot {
        self.with_scope(scope, |entry, now| entry.state.snapshot(&scope.limits, now))
    }
}

impl Default for LocalLimits {
    fn default() -> LocalLimits {
        LocalLimits::new()
    }
}

impl LimitBackend for LocalLimits {
    fn reserve<'a>(
        &'a self,
        scope: &'a Scope,
        ask: Ask,
    ) -> BoxFuture<'a, Result<Verdict, BackendError>> {
        std::future::ready(Ok(self.reserve_now(scope, ask))).boxed()
    }

    fn settle<'a>(
        &'a self,
        scope: &'a Scope,
        grant: &'a Grant,
        used_tokens: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.settle_now(scope, grant, used_tokens);
        std::future::ready(Ok(())).boxed()
    }

    fn throttled<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<(), BackendError>> {
        self.throttled_now(scope);
        std::future::ready(Ok(())).boxed()
    }

    fn snapshot<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<ScopeSnapshot, BackendError>> {
        std::future::ready(Ok(self.snapshot_now(scope))).boxed()
    }
}

impl ScopeState {
    /// A scope seen for the first time: full buckets, the configured rate.
    pub fn new(limits: &ScopeLimits, now_ms: f64) -> ScopeState {
        let full = |limit: Option<u64>| limit.map(|l| Bucket { level: l as f64, at_ms: now_ms });
        ScopeState {
            rate: 1.0,
            rate_at_ms: now_ms,
            last_decrease_ms: None,
            minute: full(limits.tokens_per_minute),
            day: full(limits.tokens_per_day),
            live: HashMap::new(),
            next_id: 0,
        }
    }

    /// Brings everything to `now_ms`: expired reservations dropped (no refund), the
    /// rate climbed, the buckets refilled (a limit changed since is taken as it is now).
    fn advance(&mut self, limits: &ScopeLimits, now_ms: f64) {
        self.live.retain(|_, live| live.expires_at_ms > now_ms);
        if limits.adaptive {
            let elapsed_s = (now_ms - self.rate_at_ms).max(0.0) / 1000.0;
            self.rate = (self.rate + AI_PER_SEC * elapsed_s).min(1.0);
        } else {
            self.rate = 1.0;
        }
        self.rate_at_ms = now_ms;
        let minute_capacity = self.minute_capacity(limits);
        refill(&mut self.minute, minute_capacity, MINUTE_MS, now_ms);
        let day_capacity = limits.tokens_per_day.map(|l| l as f64);
        refill(&mut self.day, day_capacity, DAY_MS, now_ms);
    }

    fn minute_capacity(&self, limits: &ScopeLimits) -> Option<f64> {
        limits.tokens_per_minute.map(|l| l as f64 * self.rate)
    }

    /// `None` when `ask` fits now; else the verdict that refuses it. Changes only the
    /// time-driven state ([`ScopeState::advance`]).
    pub fn check(&mut self, limits: &ScopeLimits, now_ms: f64, ask: Ask) -> Option<Verdict> {
        self.advance(limits, now_ms);
        let tokens = ask.tokens as f64;
        for (limit, kind) in [
            (limits.tokens_per_minute, LimitKind::TokensPerMinute),
            (limits.tokens_per_day, LimitKind::TokensPerDay),
        ] {
            if limit.is_some_and(|limit| ask.tokens > limit) {
                return Some(Verdict::Never { limit: kind });
            }
        }
        if let Some(max) = limits.max_concurrency
            && self.live.len() >= max as usize
        {
            let retry_after = Duration::from_millis(CONCURRENCY_RETRY_MS);
            return Some(Verdict::Wait { retry_after, limit: LimitKind::Concurrency });
        }
        let mut wait: Option<(f64, LimitKind)> = None;
        let minute_capacity = self.minute_capacity(limits);
        if let (Some(bucket), Some(capacity)) = (&self.minute, minute_capacity) {
            let wait_ms = if tokens > capacity {
                // The admitted rate was lowered below the ask: wait for it to climb back.
                let rate_needed = tokens / limits.tokens_per_minute.unwrap_or(1).max(1) as f64;
                (rate_needed - self.rate) / AI_PER_SEC * 1000.0 + MINUTE_MS * rate_needed
            } else {
                wait_ms(bucket.level, tokens, capacity, MINUTE_MS)
            };
            wait = longest(wait, wait_ms, LimitKind::TokensPerMinute);
        }
        if let (Some(bucket), Some(limit)) = (&self.day, limits.tokens_per_day) {
            let wait_ms = wait_ms(bucket.level, tokens, limit as f64, DAY_MS);
            wait = longest(wait, wait_ms, LimitKind::TokensPerDay);
        }
        wait.map(|(wait_ms, limit)| Verdict::Wait {
            retry_after: Duration::from_secs_f64(wait_ms.max(1.0) / 1000.0),
            limit,
        })
    }

    /// Takes `ask` (after a [`ScopeState::check`] that found it fits).
    pub fn commit(&mut self, now_ms: f64, ask: Ask) -> Grant {
        for bucket in [&mut self.minute, &mut self.day].into_iter().flatten() {
            bucket.level -= ask.tokens as f64;
        }
        self.next_id += 1;
        let id = self.next_id.to_string();
        let expires_at_ms = now_ms + ask.ttl.as_secs_f64() * 1000.0;
        self.live.insert(id.clone(), Live { tokens: ask.tokens, expires_at_ms });
        Grant { id, tokens: ask.tokens }
    }

    /// Gives back `reserved - used` (or takes the overage) and frees the slot; an
    /// unknown or expired grant changes nothing.
    pub fn settle(&mut self, limits: &ScopeLimits, now_ms: f64, grant: &Grant, used_tokens: u64) {
        self.advance(limits, now_ms);
        let Some(live) = self.live.remove(&grant.id) else {
            return;
        };
        let delta = live.tokens as f64 - used_tokens as f64;
        let minute_capacity = self.minute_capacity(limits);
        let day_capacity = limits.tokens_per_day.map(|l| l as f64);
        for (bucket, capacity) in
            [(&mut self.minute, minute_capacity), (&mut self.day, day_capacity)]
        {
            if let (Some(bucket), Some(capacity)) = (bucket, capacity) {
                bucket.level = (bucket.level + delta).min(capacity);
            }
        }
    }

    /// An upstream throttle: multiplicative decrease (at most once per interval) and an
    /// empty minute bucket. Only adaptive scopes adapt.
    pub fn throttled(&mut self, limits: &ScopeLimits, now_ms: f64) {
        if !limits.adaptive {
            return;
        }
        self.advance(limits, now_ms);
        let due = self.last_decrease_ms.is_none_or(|at| now_ms - at >= MD_INTERVAL_MS);
        if due {
            self.rate = (self.rate * MD_FACTOR).max(MIN_RATE);
            self.last_decrease_ms = Some(now_ms);
        }
        if let Some(bucket) = &mut self.minute {
            bucket.level = bucket.level.min(0.0);
        }
    }

    pub fn snapshot(&mut self, limits: &ScopeLimits, now_ms: f64) -> ScopeSnapshot {
        self.advance(limits, now_ms);
        ScopeSnapshot {
            configured_tokens_per_minute: limits.tokens_per_minute,
            admitted_tokens_per_minute: self.minute_capacity(limits),
            minute_level: self.minute.map(|b| b.level),
            day_level: self.day.map(|b| b.level),
            reserved_tokens: self.live.values().map(|live| live.tokens).sum(),
            in_flight: u32::try_from(self.live.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Refills `bucket` to `now_ms` at `capacity` per `window_ms`, never above `capacity`.
/// A bucket whose limit appeared since is created full; one whose limit went is dropped.
fn refill(bucket: &mut Option<Bucket>, capacity: Option<f64>, window_ms: f64, now_ms: f64) {
    match (bucket.as_mut(), capacity) {
        (Some(b), Some(capacity)) => {
            let elapsed = (now_ms - b.at_ms).max(0.0);
            b.level = (b.level + capacity * elapsed / window_ms).min(capacity);
            b.at_ms = now_ms;
        }
        (None, Some(capacity)) => *bucket = Some(Bucket { level: capacity, at_ms: now_ms }),
        (_, None) => *bucket = None,
    }
}

/// Milliseconds until `level` reaches `tokens` at `capacity` per `window_ms`; 0 if it has.
fn wait_ms(level: f64, tokens: f64, capacity: f64, window_ms: f64) -> f64 {
    if level >= tokens || capacity <= 0.0 {
        return 0.0;
    }
    (tokens - level) / (capacity / window_ms)
}

fn longest(
    current: Option<(f64, LimitKind)>,
    wait_ms: f64,
    kind: LimitKind,
) -> Option<(f64, LimitKind)> {
    if wait_ms <= 0.0 {
        return current;
    }
    match current {
        Some((longest_ms, _)) if longest_ms >= wait_ms => current,
        _ => Some((wait_ms, kind)),
    }
}

#[cfg(test)]
mod tests;
