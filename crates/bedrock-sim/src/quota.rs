//! Token quotas per model, the way Bedrock enforces them: [`Quota`] (tokens per minute and
//! per day, output burndown), the per-model accounts that reserve tokens when a request
//! starts and settle them when it ends ([`Reservation`]), and the [`Stats`] they report.
//!
//! Each account holds two token buckets (minute and day) and a ring of 60 one-second
//! buckets that records what the requests started in each second were charged, for
//! `peak_tokens_per_minute`. The model itself is documented in the crate docs ("Quotas").
//!
//! Time is `tokio::time::Instant`: it is the system clock unless the runtime's clock is
//! paused (tokio's `test-util`), in which case refill follows the paused clock like the
//! simulated latencies do. The bookkeeping types take the current instant as an argument,
//! so the unit tests below drive them with made-up instants.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::BedrockError;
use crate::simulator::{EVERY_MODEL, Simulator};

/// The message of the ThrottlingException a request gets when its reservation does not fit.
pub(crate) const TOO_MANY_TOKENS_MESSAGE: &str =
    "Too many tokens, please wait before trying again.";

/// The refill period of the minute bucket.
const MINUTE: Duration = Duration::from_secs(60);

/// The refill period of the day bucket.
const DAY: Duration = Duration::from_secs(86_400);

/// The number of one-second buckets of the sliding window behind `peak_tokens_per_minute`.
const WINDOW_SECONDS: usize = 60;

/// The token quota of one model: a tokens-per-minute limit, a tokens-per-day limit, or both,
/// and the factor output tokens count with.
///
/// Its JSON form (`PUT /_sim/quota/{model_id}`) has the same field names; every field is
/// optional but at least one limit must be given, and unknown fields are refused.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "QuotaJson", into = "QuotaJson")]
pub struct Quota {
    /// The capacity of the minute bucket, refilled at this many tokens per 60 s; at least 1.
    pub tokens_per_minute: Option<u64>,
    /// The capacity of the day bucket, refilled at this many tokens per 86 400 s; at least 1.
    pub tokens_per_day: Option<u64>,
    /// How many quota tokens one output token counts for, finite and at least 1 (Bedrock
    /// uses 5 for some Claude models); 1 by default.
    pub output_burndown: f64,
}

impl Default for Quota {
    /// No limit at all, burndown 1; set at least one limit before use.
    fn default() -> Quota {
        Quota { tokens_per_minute: None, tokens_per_day: None, output_burndown: 1.0 }
    }
}

impl Quota {
    /// Checks the constraints documented on the fields.
    pub fn validate(&self) -> Result<(), InvalidQuota> {
        if self.tokens_per_minute.is_none() && self.tokens_per_day.is_none() {
            return Err(InvalidQuota::new(
                "a quota needs `tokens_per_minute`, `tokens_per_day` or both",
            ));
        }
        if self.tokens_per_minute == Some(0) || self.tokens_per_day == Some(0) {
            return Err(InvalidQuota::new("token limits must be at least 1"));
        }
        if !self.output_burndown.is_finite() || self.output_burndown < 1.0 {
            return Err(InvalidQuota::new("`output_burndown` must be finite and at least 1"));
        }
        Ok(())
    }
}

/// Why a [`Quota`] was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidQuota {
    message: String,
}

impl InvalidQuota {
    fn new(message: impl Into<String>) -> InvalidQuota {
        InvalidQuota { message: message.into() }
    }
}

impl fmt::Display for InvalidQuota {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for InvalidQuota {}

/// The JSON form of [`Quota`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens_per_day: Option<u64>,
    #[serde(default = "default_output_burndown")]
    output_burndown: f64,
}

fn default_output_burndown() -> f64 {
    1.0
}

impl TryFrom<QuotaJson> for Quota {
    type Error = InvalidQuota;

    fn try_from(json: QuotaJson) -> Result<Quota, InvalidQuota> {
        let quota = Quota {
            tokens_per_minute: json.tokens_per_minute,
            tokens_per_day: json.tokens_per_day,
            output_burndown: json.output_burndown,
        };
        quota.validate()?;
        Ok(quota)
    }
}

impl From<Quota> for QuotaJson {
    fn from(quota: Quota) -> QuotaJson {
        QuotaJson {
            tokens_per_minute: quota.tokens_per_minute,
            tokens_per_day: quota.tokens_per_day,
            output_burndown: quota.output_burndown,
        }
    }
}

/// What `GET /_sim/stats` answers, and [`Simulator::stats`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests received on the two invoke routes, whatever their outcome.
    pub requests: u64,
    /// Invocations whose answer is not over ([`Simulator::in_flight`]).
    #[serde(default)]
    pub in_flight: u64,
    /// Invoke requests refused for their authentication ([`Simulator::auth_refusals`]).
    #[serde(default)]
    pub auth_refusals: u64,
    /// Keyed by base model id: every model that reached the quota check since the simulator
    /// started or since its quota was last set or cleared, and every model with a quota.
    pub models: BTreeMap<String, ModelStats>,
}

/// The counters of one model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStats {
    /// Requests with a valid body that reached the quota check, throttled ones included.
    pub requests: u64,
    /// Requests refused with ThrottlingException by the quota (not by an injected fault).
    pub throttled: u64,
    /// The sum of the settled charges, input + output × burndown, of the requests that
    /// ended; an injected HTTP error charges nothing.
    pub tokens_charged: u64,
    /// The largest sum of charges of the requests started in any 60 one-second buckets in a
    /// row, a request counting at its reservation until it is settled.
    pub peak_tokens_per_minute: u64,
}

/// The accounts of every model, behind the simulator's quota mutex.
#[derive(Default)]
pub(crate) struct QuotaBook {
    /// Keyed like behaviors: base model id, or the id as given when it embeds none.
    accounts: HashMap<String, Account>,
    /// The id the next account gets; a reservation settles only into the account it was
    /// taken from, not into one that replaced it.
    next_account_id: u64,
}

/// The quota state and counters of one model.
struct Account {
    id: u64,
    limits: Option<Limits>,
    stats: ModelStats,
    window: ChargeWindow,
}

/// The buckets of a model with a quota.
struct Limits {
    output_burndown: f64,
    minute: Option<TokenBucket>,
    day: Option<TokenBucket>,
}

impl Limits {
    fn new(quota: &Quota, now: Instant) -> Limits {
        Limits {
            output_burndown: quota.output_burndown,
            minute: quota.tokens_per_minute.map(|limit| TokenBucket::full(limit, MINUTE, now)),
            day: quota.tokens_per_day.map(|limit| TokenBucket::full(limit, DAY, now)),
        }
    }

    fn buckets(&mut self) -> impl Iterator<Item = &mut TokenBucket> {
        self.minute.iter_mut().chain(self.day.iter_mut())
    }
}

impl QuotaBook {
    fn new_account(&mut self, limits: Option<Limits>, now: Instant) -> Account {
        let id = self.next_account_id;
        self.next_account_id += 1;
        Account { id, limits, stats: ModelStats::default(), window: ChargeWindow::new(now) }
    }

    /// Replaces the account of `key` with a fresh one under `quota`.
    pub(crate) fn set_quota(&mut self, key: String, quota: &Quota, now: Instant) {
        let account = self.new_account(Some(Limits::new(quota, now)), now);
        self.accounts.insert(key, account);
    }

    /// Drops the account of every model with a quota; their counters start again.
    pub(crate) fn clear_quotas(&mut self) {
        self.accounts.retain(|_, account| account.limits.is_none());
    }

    /// The counters of every account.
    pub(crate) fn model_stats(&self) -> BTreeMap<String, ModelStats> {
        let stats = self.accounts.iter().map(|(key, account)| (key.clone(), account.stats.clone()));
        stats.collect()
    }

    /// Counts a request to `key` and reserves `n_input_tokens` + `max_output_tokens` ×
    /// burndown on its buckets; `None` when a bucket holds less than that.
    fn reserve(
        &mut self,
        key: &str,
        n_input_tokens: u32,
        max_output_tokens: u32,
        now: Instant,
    ) -> Option<Booked> {
        if !self.accounts.contains_key(key) {
            let account = self.new_account(None, now);
            self.accounts.insert(key.to_owned(), account);
        }
        let account = self.accounts.get_mut(key)?;
        account.stats.requests += 1;
        let output_burndown = account.limits.as_ref().map_or(1.0, |limits| limits.output_burndown);
        let reserved = charge(n_input_tokens, max_output_tokens, output_burndown);
        if let Some(limits) = &mut account.limits {
            let mut fits = true;
            for bucket in limits.buckets() {
                bucket.refill(now);
                fits &= bucket.holds(reserved);
            }
            if !fits {
                account.stats.throttled += 1;
                return None;
            }
            for bucket in limits.buckets() {
                bucket.take(reserved);
            }
        }
        let start_second = account.window.add(reserved, now);
        account.stats.peak_tokens_per_minute = account.window.peak;
        Some(Booked { account_id: account.id, start_second, reserved, output_burndown })
    }

    /// Settles a reservation at `charged` tokens: the difference goes back to the buckets and
    /// the window, the charge into `tokens_charged`.
    fn settle(&mut self, key: &str, booked: &Booked, charged: u64, now: Instant) {
        let Some(account) = self.accounts.get_mut(key) else {
            return;
        };
        if account.id != booked.account_id {
            return;
        }
        if let Some(limits) = &mut account.limits {
            for bucket in limits.buckets() {
                bucket.refill(now);
                bucket.give_back(booked.reserved, charged);
            }
        }
        account.window.replace(booked.start_second, booked.reserved, charged, now);
        account.stats.peak_tokens_per_minute = account.window.peak;
        account.stats.tokens_charged = account.stats.tokens_charged.saturating_add(charged);
    }
}

/// The quota tokens of `n_input_tokens` and `n_output_tokens` at `output_burndown`; the
/// output part is rounded up to a whole token.
fn charge(n_input_tokens: u32, n_output_tokens: u32, output_burndown: f64) -> u64 {
    // A float-to-integer `as` saturates, which is what an absurd burndown deserves.
    let output = (f64::from(n_output_tokens) * output_burndown).ceil() as u64;
    u64::from(n_input_tokens).saturating_add(output)
}

/// What a successful reservation took.
#[derive(Debug, Clone, PartialEq)]
struct Booked {
    account_id: u64,
    /// The second of the account's window the request started in.
    start_second: u64,
    reserved: u64,
    output_burndown: f64,
}

/// The tokens one admitted request holds until it ends. Dropping it settles at the output
/// tokens recorded so far, so a request whose client went away is settled too.
pub(crate) struct Reservation {
    simulator: Simulator,
    key: String,
    booked: Booked,
    n_input_tokens: u32,
    n_output_tokens: u32,
    settled: bool,
}

impl Reservation {
    /// Records how many output tokens the request has produced so far.
    pub(crate) fn set_output_tokens(&mut self, n_output_tokens: u32) {
        self.n_output_tokens = n_output_tokens;
    }

    /// Settles at input + output tokens recorded × burndown; later calls do nothing.
    pub(crate) fn settle(&mut self) {
        let charged =
            charge(self.n_input_tokens, self.n_output_tokens, self.booked.output_burndown);
        self.settle_at(charged);
    }

    /// Settles at nothing, for a request answered with an injected error instead of the
    /// answer: Bedrock reports no usage for it.
    pub(crate) fn cancel(&mut self) {
        self.settle_at(0);
    }

    fn settle_at(&mut self, charged: u64) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let now = Instant::now();
        self.simulator.lock_quotas().settle(&self.key, &self.booked, charged, now);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.settle();
    }
}

impl Simulator {
    /// Sets the token quota of one model, matched like behaviors (the base model id after
    /// ARN and geography stripping). Setting a quota again replaces it: its buckets start
    /// full and the model's counters in [`Simulator::stats`] start again. `"*"` is refused,
    /// a quota belongs to one model.
    pub fn set_quota(&self, model_id: &str, quota: Quota) -> Result<(), InvalidQuota> {
        quota.validate()?;
        if model_id == EVERY_MODEL {
            return Err(InvalidQuota::new("a quota applies to one model, not to `*`"));
        }
        let key = crate::simulator::behavior_key(model_id);
        self.lock_quotas().set_quota(key, &quota, Instant::now());
        Ok(())
    }

    /// Removes every quota, and the counters of the models that had one.
    pub fn clear_quotas(&self) {
        self.lock_quotas().clear_quotas();
    }

    /// The request count and the counters of every model.
    pub fn stats(&self) -> Stats {
        let models = self.lock_quotas().model_stats();
        Stats {
            requests: self.request_count(),
            in_flight: self.in_flight(),
            auth_refusals: self.auth_refusals(),
            models,
        }
    }

    /// Counts a request to `base_model_id` and reserves its tokens: `n_input_tokens` +
    /// `max_output_tokens` × burndown. A ThrottlingException when the model's quota cannot
    /// hold that now.
    pub(crate) fn reserve_tokens(
        &self,
        base_model_id: &str,
        n_input_tokens: u32,
        max_output_tokens: u32,
    ) -> Result<Reservation, BedrockError> {
        let now = Instant::now();
        let booked =
            self.lock_quotas().reserve(base_model_id, n_input_tokens, max_output_tokens, now);
        let Some(booked) = booked else {
            return Err(BedrockError::throttling(TOO_MANY_TOKENS_MESSAGE));
        };
        Ok(Reservation {
            simulator: self.clone(),
            key: base_model_id.to_owned(),
            booked,
            n_input_tokens,
            n_output_tokens: 0,
            settled: false,
        })
    }
}

/// A token bucket with a signed level, refilled continuously.
///
/// Amounts are kept in tokens × nanoseconds of the period, so that a refill of `elapsed`
/// adds exactly `elapsed_ns × limit` and no rounding ever creeps in.
#[derive(Debug, Clone, PartialEq)]
struct TokenBucket {
    /// The capacity, in tokens; also the refill per period.
    limit: u64,
    period_ns: i128,
    /// The level, in tokens × `period_ns`.
    level: i128,
    /// When the level was last refilled.
    updated: Instant,
}

impl TokenBucket {
    fn full(limit: u64, period: Duration, now: Instant) -> TokenBucket {
        let period_ns = i128::try_from(period.as_nanos()).unwrap_or(i128::MAX);
        let mut bucket = TokenBucket { limit, period_ns, level: 0, updated: now };
        bucket.level = bucket.capacity();
        bucket
    }

    fn capacity(&self) -> i128 {
        self.scaled(self.limit)
    }

    fn scaled(&self, tokens: u64) -> i128 {
        i128::from(tokens).saturating_mul(self.period_ns)
    }

    /// Adds what flowed in since the last refill, up to the capacity.
    fn refill(&mut self, now: Instant) {
        if now <= self.updated {
            return;
        }
        // A whole period refills a bucket that is not below zero; capping `elapsed` there
        // keeps the product in range.
        let elapsed_ns = i128::try_from(now.duration_since(self.updated).as_nanos())
            .unwrap_or(i128::MAX)
            .min(self.period_ns);
        let inflow = elapsed_ns.saturating_mul(i128::from(self.limit));
        self.level = self.level.saturating_add(inflow).min(self.capacity());
        self.updated = now;
    }

    /// Whether the level is at least `tokens`.
    fn holds(&self, tokens: u64) -> bool {
        self.level >= self.scaled(tokens)
    }

    fn take(&mut self, tokens: u64) {
        self.level = self.level.saturating_sub(self.scaled(tokens));
    }

    /// Adds `reserved` − `charged` back, up to the capacity; the difference may be negative.
    fn give_back(&mut self, reserved: u64, charged: u64) {
        let delta = self.scaled(reserved).saturating_sub(self.scaled(charged));
        self.level = self.level.saturating_add(delta).min(self.capacity());
    }

    /// The level in whole tokens, rounded down.
    #[cfg(test)]
    fn level_tokens(&self) -> i128 {
        self.level.div_euclid(self.period_ns)
    }
}

/// The charges of the requests started in each of the last 60 seconds, in a ring indexed
/// by the second modulo 60, and the largest 60-second sum seen.
#[derive(Debug, Clone, PartialEq)]
struct ChargeWindow {
    /// Second 0 of the window's clock.
    epoch: Instant,
    buckets: [WindowBucket; WINDOW_SECONDS],
    peak: u64,
}

/// One second of a [`ChargeWindow`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct WindowBucket {
    /// The second since the epoch this bucket holds; `None` before its first use.
    second: Option<u64>,
    tokens: u64,
}

impl ChargeWindow {
    fn new(now: Instant) -> ChargeWindow {
        ChargeWindow { epoch: now, buckets: [WindowBucket::default(); WINDOW_SECONDS], peak: 0 }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn slot(second: u64) -> usize {
        // The remainder is below 60, so it always fits.
        usize::try_from(second % WINDOW_SECONDS as u64).unwrap_or_default()
    }

    /// Adds a reservation to the bucket of the current second and returns that second.
    fn add(&mut self, tokens: u64, now: Instant) -> u64 {
        let second = self.second(now);
        let bucket = &mut self.buckets[Self::slot(second)];
        if bucket.second != Some(second) {
            *bucket = WindowBucket { second: Some(second), tokens: 0 };
        }
        bucket.tokens = bucket.tokens.saturating_add(tokens);
        self.peak = self.peak.max(self.sum_ending_at(second));
        second
    }

    /// Replaces a reservation made in `start_second` by its settled charge, unless that
    /// second has left the ring.
    fn replace(&mut self, start_second: u64, reserved: u64, charged: u64, now: Instant) {
        let bucket = &mut self.buckets[Self::slot(start_second)];
        if bucket.second != Some(start_second) {
            return;
        }
        bucket.tokens = bucket.tokens.saturating_sub(reserved).saturating_add(charged);
        if charged > reserved {
            self.peak = self.peak.max(self.sum_ending_at(self.second(now)));
        }
    }

    /// The sum of the buckets of the 60 seconds that end with `last_second`.
    fn sum_ending_at(&self, last_second: u64) -> u64 {
        let first_second = last_second.saturating_sub(WINDOW_SECONDS as u64 - 1);
        let in_window = |bucket: &&WindowBucket| {
            bucket.second.is_some_and(|second| (first_second..=last_second).contains(&second))
        };
        self.buckets.iter().filter(in_window).map(|bucket| bucket.tokens).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bucket_starts_full_and_refills_continuously_up_to_capacity() {
        let start = Instant::now();
        // 60 000 tokens per minute is one token per millisecond.
        let mut bucket = TokenBucket::full(60_000, MINUTE, start);
        assert_eq!(bucket.level_tokens(), 60_000);
        assert!(bucket.holds(60_000));
        assert!(!bucket.holds(60_001));
        bucket.take(59_990);
        assert_eq!(bucket.level_tokens(), 10);
        bucket.refill(start + ms(25));
        assert_eq!(bucket.level_tokens(), 35);
        // Half a millisecond is half a token: kept exactly, not rounded away.
        bucket.refill(start + Duration::from_micros(25_500));
        bucket.refill(start + ms(26));
        assert_eq!(bucket.level_tokens(), 36);
        bucket.refill(start + Duration::from_secs(3600));
        assert_eq!(bucket.level_tokens(), 60_000);
        // An instant before the last refill changes nothing.
        bucket.refill(start);
        assert_eq!(bucket.level_tokens(), 60_000);
    }

    #[test]
    fn bucket_give_back_is_capped_and_may_be_negative() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full(100, MINUTE, start);
        bucket.take(51);
        bucket.give_back(51, 20);
        assert_eq!(bucket.level_tokens(), 80);
        bucket.give_back(10, 30);
        assert_eq!(bucket.level_tokens(), 60);
        bucket.give_back(1_000, 0);
        assert_eq!(bucket.level_tokens(), 100);
        bucket.take(150);
        assert_eq!(bucket.level_tokens(), -50);
        assert!(!bucket.holds(0));
        // 100 tokens per minute: 30 s bring back 50.
        bucket.refill(start + Duration::from_secs(30));
        assert_eq!(bucket.level_tokens(), 0);
        assert!(bucket.holds(0));
    }

    #[test]
    fn day_bucket_refills_over_a_day() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full(86_400, DAY, start);
        bucket.take(86_400);
        bucket.refill(start + Duration::from_secs(10));
        assert_eq!(bucket.level_tokens(), 10);
        bucket.refill(start + Duration::from_secs(10 * 86_400));
        assert_eq!(bucket.level_tokens(), 86_400);
    }

    #[test]
    fn huge_limits_do_not_overflow() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full(u64::MAX, DAY, start);
        bucket.take(u64::MAX);
        bucket.refill(start + Duration::from_secs(10 * 86_400));
        assert!(bucket.holds(u64::MAX));
        assert_eq!(charge(u32::MAX, u32::MAX, 1e300), u64::MAX);
    }

    #[test]
    fn charges_round_the_output_part_up() {
        assert_eq!(charge(3, 10, 1.0), 13);
        assert_eq!(charge(3, 10, 5.0), 53);
        assert_eq!(charge(3, 3, 1.5), 8);
        assert_eq!(charge(0, 0, 5.0), 0);
    }

    #[test]
    fn window_peak_sums_sixty_seconds_of_charges() {
        let start = Instant::now();
        let mut window = ChargeWindow::new(start);
        let first = window.add(50, start);
        assert_eq!((first, window.peak), (0, 50));
        // Settled below the reservation: the bucket shrinks, the peak stays.
        window.replace(first, 50, 20, start + ms(10));
        assert_eq!(window.sum_ending_at(0), 20);
        assert_eq!(window.peak, 50);
        let second = window.add(40, start + Duration::from_secs(30));
        assert_eq!((second, window.peak), (30, 60));
        // Second 60 is the first in which second 0 is out of the window.
        window.add(5, start + Duration::from_millis(59_999));
        assert_eq!(window.peak, 65);
        window.add(5, start + Duration::from_secs(60));
        assert_eq!(window.sum_ending_at(60), 50);
        assert_eq!(window.peak, 65);
        // Second 0 shares its slot with second 60: a late settlement of second 0 is dropped.
        window.replace(0, 20, 0, start + Duration::from_secs(61));
        assert_eq!(window.sum_ending_at(61), 50);
    }

    #[test]
    fn window_memory_is_bounded_and_old_seconds_are_reused() {
        let start = Instant::now();
        let mut window = ChargeWindow::new(start);
        for second in 0..1_000 {
            window.add(1, start + Duration::from_secs(second));
        }
        assert_eq!(window.peak, 60);
        assert_eq!(window.sum_ending_at(999), 60);
        // A long pause empties the window.
        window.add(7, start + Duration::from_secs(5_000));
        assert_eq!(window.sum_ending_at(5_000), 7);
    }

    #[test]
    fn reservations_settle_into_their_own_account_only() {
        let start = Instant::now();
        let mut book = QuotaBook::default();
        let quota = Quota { tokens_per_minute: Some(100), ..Quota::default() };
        book.set_quota("m".to_owned(), &quota, start);
        let booked = book.reserve("m", 1, 50, start).unwrap();
        assert_eq!(booked.reserved, 51);
        assert!(book.reserve("m", 1, 50, start).is_none());
        book.settle("m", &booked, 21, start);
        let stats = &book.model_stats()["m"];
        assert_eq!(
            (stats.requests, stats.throttled, stats.tokens_charged, stats.peak_tokens_per_minute),
            (2, 1, 21, 51)
        );
        // A reservation taken before the quota was set again does not refund the new one.
        let before = book.reserve("m", 1, 50, start).unwrap();
        book.set_quota("m".to_owned(), &quota, start);
        let fresh = book.reserve("m", 1, 98, start).unwrap();
        book.settle("m", &before, 0, start);
        assert!(book.reserve("m", 1, 0, start).is_some());
        assert!(book.reserve("m", 1, 0, start).is_none());
        book.settle("m", &fresh, 99, start);
        assert_eq!(book.model_stats()["m"].tokens_charged, 99);
    }

    #[test]
    fn models_without_a_quota_are_counted_and_never_throttled() {
        let start = Instant::now();
        let mut book = QuotaBook::default();
        let booked = book.reserve("free", 3, 100, start).unwrap();
        book.settle("free", &booked, 10, start);
        // The peak saw the reservation; the next request adds to the settled charge.
        assert_eq!(book.model_stats()["free"].peak_tokens_per_minute, 103);
        let booked = book.reserve("free", 3, 200, start + ms(500)).unwrap();
        book.settle("free", &booked, 5, start + ms(600));
        assert_eq!(book.model_stats()["free"].peak_tokens_per_minute, 213);
        assert!(book.reserve("free", u32::MAX, u32::MAX, start).is_some());
        let quota = Quota { tokens_per_day: Some(5), ..Quota::default() };
        book.set_quota("limited".to_owned(), &quota, start);
        book.clear_quotas();
        let models = book.model_stats();
        assert_eq!(models.keys().collect::<Vec<_>>(), ["free"]);
        assert_eq!((models["free"].requests, models["free"].tokens_charged), (3, 15));
    }

    #[test]
    fn quota_json_is_checked() {
        let quota: Quota = serde_json::from_str(r#"{"tokens_per_minute": 100}"#).unwrap();
        assert_eq!(quota, Quota { tokens_per_minute: Some(100), ..Quota::default() });
        let text = r#"{"tokens_per_minute":10,"tokens_per_day":20,"output_burndown":5.0}"#;
        let quota: Quota = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&quota).unwrap(), text);
        for bad in [
            "{}",
            r#"{"output_burndown": 2}"#,
            r#"{"tokens_per_minute": 0}"#,
            r#"{"tokens_per_day": 0, "tokens_per_minute": 5}"#,
            r#"{"tokens_per_minute": 10, "output_burndown": 0.5}"#,
            r#"{"tokens_per_minute": -1}"#,
            r#"{"tokens_per_minute": 10, "requests_per_minute": 1}"#,
        ] {
            assert!(serde_json::from_str::<Quota>(bad).is_err(), "{bad}");
        }
        let infinite = Quota { output_burndown: f64::INFINITY, ..quota };
        assert!(infinite.validate().is_err());
        let nan = Quota { output_burndown: f64::NAN, ..quota };
        assert!(nan.validate().is_err());
    }
}
