//! The Redis backend against a real `redis-server` (one per test, on a free port, killed
//! on drop), in real time: quotas of 60 000 tokens per minute (one per millisecond) so that
//! millisecond timing does not matter, and assertions with tolerances. The scenarios are
//! those of `local/tests.rs`, plus what only Redis has: sharing, scripts, the breaker.

use super::*;
use crate::limits::redis::test_server::{RedisServer, free_port};

const TTL: Duration = Duration::from_secs(600);
/// One token per millisecond.
const TPM: u64 = 60_000;

fn options() -> RedisOptions {
    // Generous deadlines: the tests share two cores with the rest of the test run.
    RedisOptions {
        command_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        ..RedisOptions::default()
    }
}

fn backend(server: &RedisServer) -> RedisLimits {
    RedisLimits::connect(&server.url(), options()).unwrap()
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

fn scope(key: &str, limits: ScopeLimits) -> Scope {
    Scope { key: key.to_owned(), limits }
}

fn tpm_limits(tpm: u64) -> ScopeLimits {
    ScopeLimits { tokens_per_minute: Some(tpm), adaptive: true, ..ScopeLimits::default() }
}

fn ask(tokens: u64) -> Ask {
    Ask { tokens, ttl: TTL }
}

async fn grant(backend: &RedisLimits, scope: &Scope, ask: Ask) -> Grant {
    match backend.reserve(scope, ask).await.unwrap() {
        Verdict::Granted(grant) => grant,
        other => panic!("{ask:?} should fit in {}: {other:?}", scope.key),
    }
}

async fn wait_for(backend: &RedisLimits, scope: &Scope, ask: Ask, limit: LimitKind) -> Duration {
    match backend.reserve(scope, ask).await.unwrap() {
        Verdict::Wait { retry_after, limit: got } if got == limit => retry_after,
        other => panic!("{ask:?} should wait for {limit:?}: {other:?}"),
    }
}

async fn snapshot(backend: &RedisLimits, scope: &Scope) -> ScopeSnapshot {
    backend.snapshot(scope).await.unwrap()
}

async fn minute_level(backend: &RedisLimits, scope: &Scope) -> f64 {
    snapshot(backend, scope).await.minute_level.unwrap()
}

async fn admitted(backend: &RedisLimits, scope: &Scope) -> f64 {
    snapshot(backend, scope).await.admitted_tokens_per_minute.unwrap()
}

#[track_caller]
fn assert_between(value: f64, low: f64, high: f64) {
    assert!((low..=high).contains(&value), "{value} not in [{low}, {high}]");
}

#[tokio::test]
async fn reserve_then_wait_for_refill() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let scope = scope("t:refill", tpm_limits(TPM));
    grant(&backend, &scope, ask(59_000)).await;
    // 1000 left; 1500 needs 500 more at 1 token/ms: 500 ms, less what refilled since.
    let retry_after = wait_for(&backend, &scope, ask(1_500), LimitKind::TokensPerMinute).await;
    assert_between(retry_after.as_secs_f64() * 1000.0, 100.0, 500.0);
    tokio::time::sleep(retry_after + Duration::from_millis(30)).await;
    grant(&backend, &scope, ask(1_500)).await;
}

#[tokio::test]
async fn settlement_refunds_and_charges_overage() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let scope = scope("t:settle", tpm_limits(TPM));
    let g = grant(&backend, &scope, ask(40_000)).await;
    backend.settle(&scope, &g, 10_000).await.unwrap();
    assert_between(minute_level(&backend, &scope).await, 50_000.0, 51_000.0);

    let g = grant(&backend, &scope, ask(50_000)).await;
    backend.settle(&scope, &g, 80_000).await.unwrap();
    // The overage leaves the balance in debt, about -30 000, refilled at 1 token/ms.
    assert_between(minute_level(&backend, &scope).await, -30_000.0, -29_000.0);
    let retry_after = wait_for(&backend, &scope, ask(1), LimitKind::TokensPerMinute).await;
    assert_between(retry_after.as_secs_f64(), 29.0, 30.01);

    // Settling twice, or an unknown grant, changes nothing (but the refill).
    let before = minute_level(&backend, &scope).await;
    backend.settle(&scope, &g, 0).await.unwrap();
    backend.settle(&scope, &Grant { id: "nope".into(), tokens: 9 }, 0).await.unwrap();
    assert_between(minute_level(&backend, &scope).await - before, 0.0, 1_000.0);
    assert_eq!(snapshot(&backend, &scope).await.in_flight, 0);
}

#[tokio::test]
async fn refunds_never_overfill() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let scope = scope("t:overfill", tpm_limits(TPM));
    let g = grant(&backend, &scope, ask(800)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    backend.settle(&scope, &g, 0).await.unwrap();
    assert!((minute_level(&backend, &scope).await - 60_000.0).abs() < 1e-6);
}

#[tokio::test]
async fn larger_than_the_quota_never_fits() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let mut limits = tpm_limits(1000);
    limits.tokens_per_day = Some(5000);
    let mut scope = scope("t:never", limits);
    assert_eq!(
        backend.reserve(&scope, ask(1001)).await.unwrap(),
        Verdict::Never { limit: LimitKind::TokensPerMinute }
    );
    // The limits come with every call: a changed configuration applies at once.
    scope.limits.tokens_per_minute = None;
    assert_eq!(
        backend.reserve(&scope, ask(5001)).await.unwrap(),
        Verdict::Never { limit: LimitKind::TokensPerDay }
    );
    grant(&backend, &scope, ask(5000)).await;
}

#[tokio::test]
async fn day_budget_waits_longest() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let limits = ScopeLimits {
        tokens_per_minute: Some(TPM),
        tokens_per_day: Some(61_000),
        ..ScopeLimits::default()
    };
    let scope = scope("c:day", limits);
    grant(&backend, &scope, ask(50_000)).await;
    // The minute needs 10 s more for 20 000, the day 9000 tokens at 61 000 a day: 3.5 h.
    let retry_after = wait_for(&backend, &scope, ask(20_000), LimitKind::TokensPerDay).await;
    assert!(retry_after > Duration::from_secs(3 * 3600), "{retry_after:?}");
    let snapshot = snapshot(&backend, &scope).await;
    assert_between(snapshot.day_level.unwrap(), 11_000.0, 11_001.0);
}

#[tokio::test]
async fn concurrency_slots_are_freed_by_settlement_and_by_expiry() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let limits = ScopeLimits { max_concurrency: Some(1), ..ScopeLimits::default() };
    let scope = scope("c:slots", limits);
    let g = grant(&backend, &scope, ask(0)).await;
    let retry_after = wait_for(&backend, &scope, ask(0), LimitKind::Concurrency).await;
    assert_eq!(retry_after, Duration::from_millis(CONCURRENCY_RETRY_MS));
    assert_eq!(snapshot(&backend, &scope).await.in_flight, 1);
    backend.settle(&scope, &g, 0).await.unwrap();

    let short = Ask { tokens: 0, ttl: Duration::from_millis(500) };
    grant(&backend, &scope, short).await;
    wait_for(&backend, &scope, short, LimitKind::Concurrency).await;
    // Never settled: expired after its TTL.
    tokio::time::sleep(Duration::from_millis(550)).await;
    grant(&backend, &scope, short).await;
}

#[tokio::test]
async fn expiry_keeps_the_tokens_spent() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let scope = scope("t:expiry", tpm_limits(TPM));
    let started = Instant::now();
    grant(&backend, &scope, Ask { tokens: 60_000, ttl: Duration::from_millis(300) }).await;
    let snapshot_now = snapshot(&backend, &scope).await;
    assert_eq!((snapshot_now.in_flight, snapshot_now.reserved_tokens), (1, 60_000));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = snapshot(&backend, &scope).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!((later.in_flight, later.reserved_tokens), (0, 0));
    // No refund: only the refill since (1 token/ms) is back.
    assert_between(later.minute_level.unwrap(), 350.0, elapsed_ms + 5.0);
}

#[tokio::test]
async fn throttles_decrease_multiplicatively_and_recover_additively() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let scope = scope("t:aimd", tpm_limits(TPM));
    // Climbing back: 1% of 60 000 per second, 0.6 tokens per minute per ms.
    let climb_per_ms = AI_PER_SEC * TPM as f64 / 1000.0;

    let started = Instant::now();
    backend.throttled(&scope).await.unwrap();
    let after_first = admitted(&backend, &scope).await;
    assert_between(after_first, 42_000.0, 42_000.0 + 500.0 * climb_per_ms);
    assert!(minute_level(&backend, &scope).await <= 500.0, "a throttle empties the bucket");

    // A second throttle within the interval does not decrease again.
    backend.throttled(&scope).await.unwrap();
    assert_between(admitted(&backend, &scope).await, 42_000.0, 42_000.0 + 900.0 * climb_per_ms);

    // One after the interval does: (42 000 + what it climbed) × 0.7, plus the climb since.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    backend.throttled(&scope).await.unwrap();
    let after_second = admitted(&backend, &scope).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let low = (42_000.0 + 1_100.0 * climb_per_ms) * MD_FACTOR;
    assert_between(after_second, low - 1.0, 42_000.0 * MD_FACTOR + elapsed_ms * climb_per_ms);

    // It climbs by 1% of the configured rate per second.
    let before = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let climbed = admitted(&backend, &scope).await - after_second;
    let elapsed_ms = before.elapsed().as_secs_f64() * 1000.0;
    assert_between(climbed, 450.0 * climb_per_ms, (elapsed_ms + 50.0) * climb_per_ms);
}

#[tokio::test]
async fn callers_do_not_adapt() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let limits =
        ScopeLimits { tokens_per_minute: Some(1000), adaptive: false, ..ScopeLimits::default() };
    let scope = scope("c:steady", limits);
    backend.throttled(&scope).await.unwrap();
    let snapshot = snapshot(&backend, &scope).await;
    assert_eq!(snapshot.admitted_tokens_per_minute, Some(1000.0));
    assert_eq!(snapshot.minute_level, Some(1000.0));
}

#[tokio::test]
async fn a_lowered_rate_makes_a_large_ask_wait_not_fail() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let scope = scope("t:lowered", tpm_limits(TPM));
    backend.throttled(&scope).await.unwrap();
    // 50 000 needs the rate back at 5/6 (13.3 s) and a minute's refill at it (50 s).
    let retry_after = wait_for(&backend, &scope, ask(50_000), LimitKind::TokensPerMinute).await;
    assert_between(retry_after.as_secs_f64(), 62.0, 63.34);
}

#[tokio::test]
async fn requests_per_minute_are_a_bucket_in_the_scope() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let scope =
        scope("c:rpm", ScopeLimits { requests_per_minute: Some(2), ..ScopeLimits::default() });
    let g = grant(&backend, &scope, ask(0)).await;
    grant(&backend, &scope, ask(0)).await;
    let retry_after = wait_for(&backend, &scope, ask(0), LimitKind::RequestsPerMinute).await;
    // One request at 2 per minute: 30 s.
    assert_between(retry_after.as_secs_f64(), 29.0, 30.01);
    // Requests are never given back.
    backend.settle(&scope, &g, 0).await.unwrap();
    wait_for(&backend, &scope, ask(0), LimitKind::RequestsPerMinute).await;

    // 1200 per minute: one every 50 ms.
    let scope = scope_with_rpm("c:rpm-refill", 1200);
    let mut granted = 0;
    let retry_after = loop {
        match backend.reserve(&scope, ask(0)).await.unwrap() {
            Verdict::Granted(_) => granted += 1,
            Verdict::Wait { retry_after, limit: LimitKind::RequestsPerMinute } => {
                break retry_after;
            }
            other => panic!("{other:?}"),
        }
        assert!(granted < 1300, "the rpm bucket never ran out");
    };
    assert!(granted >= 1200, "{granted}");
    assert!(retry_after <= Duration::from_millis(50), "{retry_after:?}");
    tokio::time::sleep(retry_after + Duration::from_millis(20)).await;
    grant(&backend, &scope, ask(0)).await;
}

fn scope_with_rpm(key: &str, rpm: u64) -> Scope {
    scope(key, ScopeLimits { requests_per_minute: Some(rpm), ..ScopeLimits::default() })
}

#[tokio::test]
async fn snapshot_reports_the_counters() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let limits = ScopeLimits {
        tokens_per_minute: Some(TPM),
        tokens_per_day: Some(1_000_000),
        max_concurrency: Some(5),
        adaptive: true,
        ..ScopeLimits::default()
    };
    let mut scope = scope("t:snapshot", limits);
    let g = grant(&backend, &scope, ask(1000)).await;
    grant(&backend, &scope, ask(1500)).await;
    let snap = snapshot(&backend, &scope).await;
    assert_eq!(snap.configured_tokens_per_minute, Some(TPM));
    assert_eq!(snap.admitted_tokens_per_minute, Some(60_000.0));
    assert_between(snap.minute_level.unwrap(), 57_500.0, 58_500.0);
    assert_between(snap.day_level.unwrap(), 997_500.0, 997_501.0);
    assert_eq!((snap.reserved_tokens, snap.in_flight), (2500, 2));
    backend.settle(&scope, &g, 1000).await.unwrap();
    let snap = snapshot(&backend, &scope).await;
    assert_eq!((snap.reserved_tokens, snap.in_flight), (1500, 1));

    // A limit that went drops its bucket.
    scope.limits.tokens_per_minute = None;
    let snap = snapshot(&backend, &scope).await;
    assert_eq!(snap.configured_tokens_per_minute, None);
    assert_eq!(snap.admitted_tokens_per_minute, None);
    assert_eq!(snap.minute_level, None);
    assert!(snap.day_level.is_some());

    // A scope never seen: full buckets, nothing in flight.
    let fresh = snapshot(&backend, &self::scope("t:fresh", tpm_limits(TPM))).await;
    assert_eq!(fresh.minute_level, Some(60_000.0));
    assert_eq!((fresh.reserved_tokens, fresh.in_flight), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_grant_more_than_the_capacity_together() {
    let server = RedisServer::start();
    let replicas = [backend(&server), backend(&server)];

    // 1000 tokens a day (no refill to speak of), 10 per ask: 100 grants in all.
    let tokens =
        scope("t:shared", ScopeLimits { tokens_per_day: Some(1000), ..ScopeLimits::default() });
    // 7 slots.
    let slots =
        scope("t:shared-slots", ScopeLimits { max_concurrency: Some(7), ..ScopeLimits::default() });
    for (scope, tokens_each, tasks, capacity) in [(tokens, 10, 300, 100), (slots, 0, 100, 7)] {
        let mut handles = Vec::new();
        for i in 0..tasks {
            let backend = replicas[i % 2].clone();
            let scope = scope.clone();
            handles.push(tokio::spawn(async move {
                matches!(
                    backend.reserve(&scope, ask(tokens_each)).await.unwrap(),
                    Verdict::Granted(_)
                )
            }));
        }
        let mut granted = 0;
        for handle in handles {
            granted += usize::from(handle.await.unwrap());
        }
        assert_eq!(granted, capacity, "{}", scope.key);
    }
}

#[tokio::test]
async fn noscript_falls_back_to_eval() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let scope = scope("t:noscript", tpm_limits(TPM));
    grant(&backend, &scope, ask(1)).await;
    let mut conn = raw(&server).await;
    let exists = || {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("EXISTS").arg(&RESERVE.sha);
        cmd
    };
    let cached: Vec<i64> = exists().query_async(&mut conn).await.unwrap();
    assert_eq!(cached, [1]);
    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
    let cached: Vec<i64> = exists().query_async(&mut conn).await.unwrap();
    assert_eq!(cached, [0]);
    grant(&backend, &scope, ask(1)).await;
    // EVAL cached it again.
    let cached: Vec<i64> = exists().query_async(&mut conn).await.unwrap();
    assert_eq!(cached, [1]);
    assert!(backend.is_available());
}

#[tokio::test]
async fn keys_carry_the_scope_as_hash_tag_and_expire() {
    let server = RedisServer::start();
    let options =
        RedisOptions { key_prefix: "gwtest".into(), key_ttl: Duration::from_secs(60), ..options() };
    let backend = RedisLimits::connect(&server.url(), options).unwrap();
    let scope = scope("t:name", tpm_limits(TPM));
    grant(&backend, &scope, Ask { tokens: 10, ttl: Duration::from_secs(5) }).await;
    let mut conn = raw(&server).await;
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["gwtest:{t:name}:expiry", "gwtest:{t:name}:live", "gwtest:{t:name}:state"]);
    for key in &keys {
        let pttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
        assert!((50_000..=60_000).contains(&pttl), "{key}: {pttl}");
    }
    // A reservation outliving the key TTL keeps the keys until it expires.
    grant(&backend, &scope, Ask { tokens: 10, ttl: Duration::from_secs(600) }).await;
    let pttl: i64 =
        redis::cmd("PTTL").arg("gwtest:{t:name}:state").query_async(&mut conn).await.unwrap();
    assert!(pttl > 600_000, "{pttl}");
    let fields: Vec<String> =
        redis::cmd("HKEYS").arg("gwtest:{t:name}:state").query_async(&mut conn).await.unwrap();
    for field in ["rate", "rate_at", "minute_level", "minute_at", "next_id"] {
        assert!(fields.iter().any(|f| f == field), "{field} not in {fields:?}");
    }
}

#[tokio::test]
async fn the_breaker_fails_fast_and_recovers() {
    let mut server = RedisServer::start();
    let command_timeout = Duration::from_millis(300);
    let breaker_open = Duration::from_millis(500);
    let options = RedisOptions {
        command_timeout,
        connect_timeout: Duration::from_millis(300),
        breaker_failures: 3,
        breaker_open,
        ..RedisOptions::default()
    };
    let backend = RedisLimits::connect(&server.url(), options).unwrap();
    let scope = scope("t:breaker", tpm_limits(TPM));
    grant(&backend, &scope, ask(1)).await;
    assert!(backend.is_available());

    server.kill();
    for i in 0..3 {
        assert!(backend.is_available(), "open after {i} failures");
        assert!(backend.reserve(&scope, ask(1)).await.is_err());
    }
    let opened = Instant::now();
    assert!(!backend.is_available());
    // Open: calls fail at once, without touching Redis.
    for _ in 0..10 {
        let started = Instant::now();
        let error = backend.reserve(&scope, ask(1)).await.unwrap_err();
        assert!(started.elapsed() < command_timeout / 10, "{:?}", started.elapsed());
        assert!(error.0.contains("circuit open"), "{error}");
    }
    assert!(backend.snapshot(&scope).await.is_err());

    // After the open period one call probes; Redis is still down, so it opens again.
    tokio::time::sleep(breaker_open.saturating_sub(opened.elapsed()) + Duration::from_millis(50))
        .await;
    assert!(backend.is_available(), "ready to probe");
    let probe = backend.reserve(&scope, ask(1)).await.unwrap_err();
    assert!(!probe.0.contains("circuit open"), "the probe went to Redis: {probe}");
    assert!(!backend.is_available());
    let reopened = Instant::now();
    let started = Instant::now();
    assert!(backend.reserve(&scope, ask(1)).await.is_err());
    assert!(started.elapsed() < command_timeout / 10, "{:?}", started.elapsed());

    // Redis back on the same port: the backend recovers by itself after the open period.
    server.restart();
    tokio::time::sleep(breaker_open.saturating_sub(reopened.elapsed()) + Duration::from_millis(50))
        .await;
    grant(&backend, &scope, ask(1)).await;
    assert!(backend.is_available());
    grant(&backend, &scope, ask(1)).await;
}

#[tokio::test]
async fn connect_needs_no_live_redis() {
    let port = free_port();
    let options = RedisOptions { breaker_open: Duration::from_millis(300), ..options() };
    let backend = RedisLimits::connect(&format!("redis://127.0.0.1:{port}/"), options).unwrap();
    let scope = scope("t:late", tpm_limits(TPM));
    for _ in 0..3 {
        assert!(backend.reserve(&scope, ask(1)).await.is_err());
    }
    assert!(!backend.is_available());
    let _server = RedisServer::start_on(port);
    tokio::time::sleep(Duration::from_millis(350)).await;
    grant(&backend, &scope, ask(1)).await;
    assert!(backend.is_available());
}

#[test]
fn debug_hides_the_password() {
    let backend =
        RedisLimits::connect("redis://user:s3cret@127.0.0.1:6390/2", RedisOptions::default())
            .unwrap();
    let debug = format!("{backend:?}");
    assert!(debug.contains("127.0.0.1:6390"), "{debug}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn connect_refuses_a_prefix_with_braces_or_a_bad_url() {
    let options = RedisOptions { key_prefix: "g{w}".into(), ..RedisOptions::default() };
    assert!(RedisLimits::connect("redis://127.0.0.1/", options).is_err());
    assert!(RedisLimits::connect("http://nope", RedisOptions::default()).is_err());
}

#[test]
fn every_script_opens_with_its_keys_and_argv() {
    for script in [&*RESERVE, &*SETTLE, &*THROTTLED, &*SNAPSHOT] {
        assert!(script.code.starts_with("-- scope.lua"), "{}", script.name);
        assert!(script.code.contains(&format!("-- {}.lua", script.name)), "{}", script.name);
        assert_eq!(script.sha.len(), 40);
    }
}
