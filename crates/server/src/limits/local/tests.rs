//! The bucket arithmetic with a fake clock: the reference the Redis scripts repeat.

use super::*;

const TTL: Duration = Duration::from_secs(600);

fn limits(tpm: u64) -> ScopeLimits {
    ScopeLimits { tokens_per_minute: Some(tpm), adaptive: true, ..ScopeLimits::default() }
}

fn ask(tokens: u64) -> Ask {
    Ask { tokens, ttl: TTL }
}

fn grant(state: &mut ScopeState, limits: &ScopeLimits, now: f64, tokens: u64) -> Grant {
    assert_eq!(state.check(limits, now, ask(tokens)), None, "{tokens} should fit at {now}");
    state.commit(now, ask(tokens))
}

fn level(state: &mut ScopeState, limits: &ScopeLimits, now: f64) -> f64 {
    state.snapshot(limits, now).minute_level.unwrap()
}

#[test]
fn reserve_then_wait_for_refill() {
    let limits = limits(6000);
    let mut state = ScopeState::new(&limits, 0.0);
    grant(&mut state, &limits, 0.0, 5000);
    // 1000 left; 1500 needs 500 more at 100 tokens/s: 5 s.
    match state.check(&limits, 0.0, ask(1500)) {
        Some(Verdict::Wait { retry_after, limit: LimitKind::TokensPerMinute }) => {
            assert!((retry_after.as_secs_f64() - 5.0).abs() < 0.01, "{retry_after:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state.check(&limits, 5000.0, ask(1500)), None);
}

#[test]
fn settlement_refunds_and_charges_overage() {
    let limits = limits(6000);
    let mut state = ScopeState::new(&limits, 0.0);
    let g = grant(&mut state, &limits, 0.0, 4000);
    state.settle(&limits, 0.0, &g, 1000);
    assert!((level(&mut state, &limits, 0.0) - 5000.0).abs() < 1e-6);
    let g = grant(&mut state, &limits, 0.0, 5000);
    state.settle(&limits, 0.0, &g, 8000);
    // Overage leaves the balance in debt: -3000, refilled at 100/s.
    assert!((level(&mut state, &limits, 0.0) + 3000.0).abs() < 1e-6);
    assert!(matches!(state.check(&limits, 0.0, ask(1)), Some(Verdict::Wait { .. })));
    assert_eq!(state.check(&limits, 30_010.0, ask(1)), None);
    // Settling twice, or an unknown grant, changes nothing.
    state.settle(&limits, 30_010.0, &g, 0);
    let before = level(&mut state, &limits, 30_010.0);
    state.settle(&limits, 30_010.0, &Grant { id: "nope".into(), tokens: 9 }, 0);
    assert_eq!(level(&mut state, &limits, 30_010.0), before);
}

#[test]
fn refunds_never_overfill() {
    let limits = limits(1000);
    let mut state = ScopeState::new(&limits, 0.0);
    let g = grant(&mut state, &limits, 0.0, 800);
    state.settle(&limits, 60_000.0, &g, 0);
    assert!((level(&mut state, &limits, 60_000.0) - 1000.0).abs() < 1e-6);
}

#[test]
fn larger_than_the_quota_never_fits() {
    let mut limits = limits(1000);
    limits.tokens_per_day = Some(5000);
    let mut state = ScopeState::new(&limits, 0.0);
    assert_eq!(
        state.check(&limits, 0.0, ask(1001)),
        Some(Verdict::Never { limit: LimitKind::TokensPerMinute })
    );
    limits.tokens_per_minute = None;
    assert_eq!(
        state.check(&limits, 0.0, ask(5001)),
        Some(Verdict::Never { limit: LimitKind::TokensPerDay })
    );
}

#[test]
fn day_budget_waits_longest() {
    let limits = ScopeLimits {
        tokens_per_minute: Some(1000),
        tokens_per_day: Some(1500),
        ..ScopeLimits::default()
    };
    let mut state = ScopeState::new(&limits, 0.0);
    grant(&mut state, &limits, 0.0, 1000);
    grant(&mut state, &limits, 60_000.0, 500);
    match state.check(&limits, 60_000.0, ask(1000)) {
        Some(Verdict::Wait { limit: LimitKind::TokensPerDay, retry_after }) => {
            // 1000 tokens at 1500 per day: 16 hours.
            assert!(retry_after > Duration::from_secs(15 * 3600), "{retry_after:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn concurrency_slots_are_freed_by_settlement_and_by_expiry() {
    let limits =
        ScopeLimits { max_concurrency: Some(1), adaptive: false, ..ScopeLimits::default() };
    let mut state = ScopeState::new(&limits, 0.0);
    let g = grant(&mut state, &limits, 0.0, 0);
    assert!(matches!(
        state.check(&limits, 1.0, ask(0)),
        Some(Verdict::Wait { limit: LimitKind::Concurrency, .. })
    ));
    state.settle(&limits, 2.0, &g, 0);
    let short = Ask { tokens: 0, ttl: Duration::from_secs(1) };
    assert_eq!(state.check(&limits, 3.0, short), None);
    state.commit(3.0, short);
    assert!(state.check(&limits, 500.0, short).is_some());
    // Never settled: expired after its TTL.
    assert_eq!(state.check(&limits, 1003.0, short), None);
}

#[test]
fn expiry_keeps_the_tokens_spent() {
    let limits = limits(6000);
    let mut state = ScopeState::new(&limits, 0.0);
    state.commit(0.0, Ask { tokens: 6000, ttl: Duration::from_secs(1) });
    let snapshot = state.snapshot(&limits, 500.0);
    assert_eq!((snapshot.in_flight, snapshot.reserved_tokens), (1, 6000));
    let snapshot = state.snapshot(&limits, 2000.0);
    assert_eq!((snapshot.in_flight, snapshot.reserved_tokens), (0, 0));
    // No refund: only 2 s of refill (200 tokens) is back.
    assert!((snapshot.minute_level.unwrap() - 200.0).abs() < 1e-6);
}

#[test]
fn throttles_decrease_multiplicatively_and_recover_additively() {
    let limits = limits(10_000);
    let mut state = ScopeState::new(&limits, 0.0);
    state.throttled(&limits, 0.0);
    let admitted = |state: &mut ScopeState, now| {
        state.snapshot(&limits, now).admitted_tokens_per_minute.unwrap()
    };
    assert!((admitted(&mut state, 0.0) - 7000.0).abs() < 1e-6);
    assert!(level(&mut state, &limits, 0.0) <= 0.0, "a throttle empties the bucket");
    // A second throttle within the interval does not decrease again.
    state.throttled(&limits, 500.0);
    assert!((admitted(&mut state, 500.0) - 7000.0 - 50.0).abs() < 1e-6);
    state.throttled(&limits, 1500.0);
    assert!((admitted(&mut state, 1500.0) - 7150.0 * MD_FACTOR).abs() < 1e-6);
    // It climbs by 1% of the configured rate per second, up to the configured rate.
    let before = admitted(&mut state, 1500.0);
    assert!((admitted(&mut state, 11_500.0) - before - 1000.0).abs() < 1e-6);
    assert!((admitted(&mut state, 1_000_000.0) - 10_000.0).abs() < 1e-6);
    // Never below the floor.
    for i in 0..100 {
        state.throttled(&limits, 2_000_000.0 + 1000.0 * f64::from(i));
    }
    assert!(admitted(&mut state, 2_099_000.0) >= 10_000.0 * MIN_RATE - 1e-6);
}

#[test]
fn callers_do_not_adapt() {
    let limits =
        ScopeLimits { tokens_per_minute: Some(1000), adaptive: false, ..ScopeLimits::default() };
    let mut state = ScopeState::new(&limits, 0.0);
    state.throttled(&limits, 0.0);
    let snapshot = state.snapshot(&limits, 0.0);
    assert_eq!(snapshot.admitted_tokens_per_minute, Some(1000.0));
    assert_eq!(snapshot.minute_level, Some(1000.0));
}

#[test]
fn a_lowered_rate_makes_a_large_ask_wait_not_fail() {
    let limits = limits(1000);
    let mut state = ScopeState::new(&limits, 0.0);
    state.throttled(&limits, 0.0);
    assert!(matches!(
        state.check(&limits, 0.0, ask(900)),
        Some(Verdict::Wait { limit: LimitKind::TokensPerMinute, .. })
    ));
}

#[tokio::test]
async fn local_backend_counts_requests_per_minute_with_governor() {
    let backend = LocalLimits::new();
    let scope = Scope {
        key: "c:test".into(),
        limits: ScopeLimits { requests_per_minute: Some(2), ..ScopeLimits::default() },
    };
    for _ in 0..2 {
        let verdict = backend.reserve(&scope, ask(0)).await.unwrap();
        assert!(matches!(verdict, Verdict::Granted(_)), "{verdict:?}");
    }
    match backend.reserve(&scope, ask(0)).await.unwrap() {
        Verdict::Wait { limit: LimitKind::RequestsPerMinute, retry_after } => {
            assert!(retry_after > Duration::from_secs(20), "{retry_after:?}");
        }
        other => panic!("{other:?}"),
    }
}
