//! Admission limits: the token bucket with reservation and settlement, for route
//! quotas (per upstream target) and caller budgets (per API key).
//!
//! A [`Scope`] is one set of counters: a target (`t:<name>`) or a caller (`c:<name>`).
//! Each scope has up to three buckets and a set of concurrency slots:
//!
//! - **tokens per minute** (`tpm`): capacity = the admitted rate (see below), refilled
//!   continuously at capacity / 60 s. A reservation takes `Ask::tokens` at once; the
//!   settlement gives back what was reserved and not used, or takes the overage: the
//!   level is a *signed* balance, so an overage may leave it below zero (in debt) and
//!   the bucket refills out of it.
//! - **tokens per day** (`tpd`): the same over 86 400 s.
//! - **requests per minute** (`rpm`): one per reservation, never settled.
//! - **concurrency**: one slot per granted reservation until it is settled or expires.
//!
//! A reservation fits when every bucket's level is at least what it asks and a slot is
//! free; then all are taken at once (atomically), else nothing is. A reservation that is
//! never settled (a crashed replica) expires after its TTL: its slot is freed and its
//! tokens count as used (no refund), so quota can never be held forever.
//!
//! **Adaptive rate** (targets only): an upstream throttle multiplies the admitted
//! fraction of the configured tokens per minute by [`MD_FACTOR`] (at most once per
//! [`MD_INTERVAL_MS`], never below [`MIN_RATE`]) and empties the minute bucket (Bedrock
//! just said it is empty); the fraction then climbs back by [`AI_PER_SEC`] of the
//! configured rate per second, up to the configured rate (AIMD).
//!
//! `governor` fits per-caller request rates (the local caller `rpm` bucket is a governor
//! GCRA limiter) but cannot refund or settle, so the token buckets are ours. Two
//! backends implement [`LimitBackend`] with the same arithmetic: [`local::LocalLimits`]
//! (one process) and [`redis::RedisLimits`] (shared by replicas, Lua scripts, Redis'
//! clock).

pub mod local;
pub mod redis;

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

/// A minute, in milliseconds: the window of `tpm` and `rpm`.
pub const MINUTE_MS: f64 = 60_000.0;
/// A day, in milliseconds: the window of `tpd`.
pub const DAY_MS: f64 = 86_400_000.0;
/// What an upstream throttle multiplies the admitted rate by.
pub const MD_FACTOR: f64 = 0.7;
/// At most one multiplicative decrease per this many milliseconds, so that a burst of
/// throttles from one overload counts once.
pub const MD_INTERVAL_MS: f64 = 1_000.0;
/// The admitted rate never falls below this fraction of the configured one.
pub const MIN_RATE: f64 = 0.05;
/// The admitted fraction climbs back by this much per second.
pub const AI_PER_SEC: f64 = 0.01;
/// How long a waiter sleeps, at most, before asking again when only a concurrency slot
/// is missing (settlements wake local waiters earlier).
pub const CONCURRENCY_RETRY_MS: u64 = 50;

/// The limits of one scope; every one optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeLimits {
    pub tokens_per_minute: Option<u64>,
    pub tokens_per_day: Option<u64>,
    pub requests_per_minute: Option<u64>,
    pub max_concurrency: Option<u32>,
    /// Whether upstream throttles lower the admitted token rate (targets, not callers).
    pub adaptive: bool,
}

/// One set of counters and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// `t:<target>` or `c:<caller>`: configured names only, so a bounded set. It is the
    /// Redis hash tag of every key of the scope.
    pub key: String,
    pub limits: ScopeLimits,
}

/// What one request asks of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// Tokens to reserve (input estimate + max output × burndown).
    pub tokens: u64,
    /// How long the reservation lives unless settled first.
    pub ttl: Duration,
}

/// Which limit a refusal or a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    TokensPerMinute,
    TokensPerDay,
    RequestsPerMinute,
    Concurrency,
}

/// The answer to a reservation.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Granted(Grant),
    /// Does not fit now. `retry_after` is when it would fit by refill alone (a
    /// settlement may make it sooner); zero-or-unknown for a concurrency slot.
    Wait {
        retry_after: Duration,
        limit: LimitKind,
    },
    /// Can never fit: it asks more than the limit's whole capacity.
    Never {
        limit: LimitKind,
    },
}

/// A granted reservation, to be settled once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Unique among the scope's live reservations.
    pub id: String,
    pub tokens: u64,
}

/// What a scope's counters say now, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ScopeSnapshot {
    /// The configured tokens per minute, if any.
    pub configured_tokens_per_minute: Option<u64>,
    /// The admitted tokens per minute after adaptation (= configured without throttles).
    pub admitted_tokens_per_minute: Option<f64>,
    /// Tokens available in the minute bucket now (negative: in debt after overage).
    pub minute_level: Option<f64>,
    /// Tokens available in the day bucket now.
    pub day_level: Option<f64>,
    /// Tokens held by live reservations.
    pub reserved_tokens: u64,
    /// Live reservations (concurrency slots taken).
    pub in_flight: u32,
}

/// Why a backend could not answer (Redis down, slow, or its circuit open).
#[derive(Debug, Clone, thiserror::Error)]
#[error("limits backend unavailable: {0}")]
pub struct BackendError(pub String);

/// The counters' store. Every method is atomic for its scope.
pub trait LimitBackend: Send + Sync + fmt::Debug {
    /// Reserves `ask` in `scope` if everything fits, else nothing.
    fn reserve<'a>(
        &'a self,
        scope: &'a Scope,
        ask: Ask,
    ) -> BoxFuture<'a, Result<Verdict, BackendError>>;

    /// Settles `grant` with what was really used (burndown-weighted tokens): gives back
    /// the difference or takes the overage, and frees the concurrency slot. Settling an
    /// expired or unknown grant changes nothing.
    fn settle<'a>(
        &'a self,
        scope: &'a Scope,
        grant: &'a Grant,
        used_tokens: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Bedrock throttled a call of this scope: multiplicative decrease of the admitted
    /// rate (adaptive scopes only) and an empty minute bucket.
    fn throttled<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The scope's counters now.
    fn snapshot<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<ScopeSnapshot, BackendError>>;
}

impl LimitKind {
    /// A bounded label: `tokens_per_minute`, `tokens_per_day`, `requests_per_minute`,
    /// `concurrency`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::TokensPerMinute => "tokens_per_minute",
            LimitKind::TokensPerDay => "tokens_per_day",
            LimitKind::RequestsPerMinute => "requests_per_minute",
            LimitKind::Concurrency => "concurrency",
        }
    }
}

impl Scope {
    /// The same scope with its limits divided among `replicas` ([`ScopeLimits::divided`]).
    pub fn divided(&self, replicas: u32) -> Scope {
        Scope { key: self.key.clone(), limits: self.limits.divided(replicas) }
    }
}

impl ScopeLimits {
    /// Whether any limit is set (a scope without one needs no backend call).
    pub fn is_limited(&self) -> bool {
        self.tokens_per_minute.is_some()
            || self.tokens_per_day.is_some()
            || self.requests_per_minute.is_some()
            || self.max_concurrency.is_some()
    }

    /// The same limits divided among `replicas` (the fail-open fallback of the Redis
    /// backend): each replica admits its share, at least 1.
    pub fn divided(&self, replicas: u32) -> ScopeLimits {
        let replicas = u64::from(replicas.max(1));
        let share = |limit: u64| (limit / replicas).max(1);
        ScopeLimits {
            tokens_per_minute: self.tokens_per_minute.map(share),
            tokens_per_day: self.tokens_per_day.map(share),
            requests_per_minute: self.requests_per_minute.map(share),
            max_concurrency: self
                .max_concurrency
                .map(|n| u32::try_from(share(u64::from(n))).unwrap_or(u32::MAX)),
            adaptive: self.adaptive,
        }
    }
}
