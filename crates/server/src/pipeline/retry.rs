//! The one retry policy: which failures are retried or fall back to the next target,
//! full-jitter exponential backoff, and the retry budget.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::UpstreamConfig;
use crate::upstream::{BedrockErrorKind, UpstreamError};

/// The window the retry budget counts requests and retries over.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// What the pipeline does after a failed attempt that produced no model output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Answer the caller with the error.
    Fail,
    /// Retry the same target (after a backoff, within the budget and the deadline).
    Retry,
    /// Try the next target at once if there is one, else retry this one.
    FallBack,
}

/// Which kind of throttle Bedrock reported, from its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleKind {
    /// "Too many tokens, please wait before trying again."
    Tokens,
    /// "Too many requests, please wait before trying again."
    Requests,
    /// Any other text.
    Unknown,
}

/// The policy for one failed attempt before any output. Throttling and unavailability
/// move on to the next target (its own quota); an internal error is retried on the same
/// target first; a timeout before the first byte is not retried (the deadline is mostly
/// spent) but may fall back. Everything else goes back to the caller.
pub fn next_step(error: &UpstreamError) -> Next {
    match error {
        UpstreamError::Bedrock { kind, .. } => match kind {
            BedrockErrorKind::Throttling
            | BedrockErrorKind::ServiceUnavailable
            | BedrockErrorKind::ModelNotReady => Next::FallBack,
            BedrockErrorKind::InternalServer => Next::Retry,
            BedrockErrorKind::AccessDenied
            | BedrockErrorKind::ResourceNotFound
            | BedrockErrorKind::ModelTimeout
            | BedrockErrorKind::Validation
            | BedrockErrorKind::ServiceQuotaExceeded
            | BedrockErrorKind::ModelError
            | BedrockErrorKind::ModelStreamError
            | BedrockErrorKind::Unknown => Next::Fail,
        },
        UpstreamError::Unreachable(_) => Next::FallBack,
        UpstreamError::Timeout => Next::FallBack,
        // After Bedrock's 200: the call may be billed, and its output may have begun.
        UpstreamError::Stalled(_) | UpstreamError::Malformed(_) => Next::Fail,
        // The gateway's own AWS identity: every target shares it.
        UpstreamError::Sdk(_) | UpstreamError::Credentials(_) => Next::Fail,
    }
}

/// Whether a retry on the same target may follow this failure (a timeout may only fall
/// back).
pub fn retryable_in_place(error: &UpstreamError) -> bool {
    !matches!(error, UpstreamError::Timeout) && next_step(error) != Next::Fail
}

/// Whether Bedrock may have counted the call against the quota (it ran the model, or we
/// cannot tell): then its reservation is kept, not given back.
pub fn counted_by_bedrock(error: &UpstreamError) -> bool {
    // Refused at the door: no model ran.
    if crate::error::refused_credentials(error).is_some() {
        return false;
    }
    match error {
        UpstreamError::Bedrock { kind, .. } => matches!(
            kind,
            BedrockErrorKind::ModelTimeout
                | BedrockErrorKind::ModelError
                | BedrockErrorKind::ModelStreamError
                | BedrockErrorKind::Unknown
        ),
        UpstreamError::Timeout | UpstreamError::Stalled(_) | UpstreamError::Malformed(_) => true,
        UpstreamError::Unreachable(_) | UpstreamError::Sdk(_) | UpstreamError::Credentials(_) => {
            false
        }
    }
}

/// The throttle's kind, if `error` is one.
pub fn throttle_kind(error: &UpstreamError) -> Option<ThrottleKind> {
    let UpstreamError::Bedrock { kind: BedrockErrorKind::Throttling, message, .. } = error else {
        return None;
    };
    let lower = message.to_ascii_lowercase();
    Some(if lower.contains("too many tokens") {
        ThrottleKind::Tokens
    } else if lower.contains("too many requests") {
        ThrottleKind::Requests
    } else {
        ThrottleKind::Unknown
    })
}

impl ThrottleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleKind::Tokens => "tokens",
            ThrottleKind::Requests => "requests",
            ThrottleKind::Unknown => "unknown",
        }
    }
}

/// Backoff before retry `retry` (1 for the first): uniform in
/// `[0, min(cap, base × 2^(retry-1))]` ("full jitter").
pub fn backoff(config: &UpstreamConfig, retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(20);
    let ceiling = config.retry_base.saturating_mul(1 << exponent).min(config.retry_cap);
    ceiling.mul_f64(random_fraction())
}

/// A uniform number in `[0, 1)`, from the standard library's randomly keyed hasher.
fn random_fraction() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    (hasher.finish() >> 11) as f64 / (1_u64 << 53) as f64
}

/// Retries allowed as a fraction of recent requests plus a floor per second (Finagle's
/// `RetryBudget`, Envoy's retry budget): a throttling storm cannot multiply the load.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_per_sec: f64,
    events: Mutex<Events>,
}

#[derive(Debug, Default)]
struct Events {
    requests: VecDeque<Instant>,
    retries: VecDeque<Instant>,
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_sec: f64) -> RetryBudget {
        RetryBudget { ratio, min_per_sec, events: Mutex::new(Events::default()) }
    }

    /// A first attempt: adds to the budget.
    pub fn deposit(&self) {
        let now = Instant::now();
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.expire(now);
        events.requests.push_back(now);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_withdraw(&self) -> bool {
        let now = Instant::now();
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.expire(now);
        let allowed = self.ratio * events.requests.len() as f64
            + self.min_per_sec * BUDGET_WINDOW.as_secs_f64();
        if (events.retries.len() as f64) < allowed {
            events.retries.push_back(now);
            true
        } else {
            false
        }
    }
}

impl Events {
    fn expire(&mut self, now: Instant) {
        for queue in [&mut self.requests, &mut self.retries] {
            while queue.front().is_some_and(|at| now.duration_since(*at) > BUDGET_WINDOW) {
                queue.pop_front();
            }
        }
        // Bounded whatever the load: beyond this many entries the oldest go first.
        const MAX_EVENTS: usize = 1 << 20;
        while self.requests.len() > MAX_EVENTS {
            self.requests.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(message: &str) -> UpstreamError {
        UpstreamError::Bedrock {
            kind: BedrockErrorKind::Throttling,
            message: message.to_owned(),
            detail: Box::default(),
        }
    }

    #[test]
    fn throttles_are_classified_by_message() {
        let kind = |m| throttle_kind(&throttle(m));
        assert_eq!(
            kind("Too many tokens, please wait before trying again."),
            Some(ThrottleKind::Tokens)
        );
        assert_eq!(
            kind("Too many requests, please wait before trying again."),
            Some(ThrottleKind::Requests)
        );
        assert_eq!(kind("Rate exceeded"), Some(ThrottleKind::Unknown));
        assert_eq!(throttle_kind(&UpstreamError::Timeout), None);
    }

    #[test]
    fn what_is_retried() {
        assert_eq!(next_step(&throttle("x")), Next::FallBack);
        assert_eq!(next_step(&UpstreamError::Unreachable("x".into())), Next::FallBack);
        assert!(!retryable_in_place(&UpstreamError::Timeout));
        assert!(retryable_in_place(&throttle("x")));
        let validation = UpstreamError::Bedrock {
            kind: BedrockErrorKind::Validation,
            message: String::new(),
            detail: Box::default(),
        };
        assert_eq!(next_step(&validation), Next::Fail);
        assert_eq!(next_step(&UpstreamError::Malformed("cut".into())), Next::Fail);
        assert_eq!(next_step(&UpstreamError::Stalled(Duration::from_secs(1))), Next::Fail);
        assert!(counted_by_bedrock(&UpstreamError::Malformed("cut".into())));
        assert!(!counted_by_bedrock(&throttle("x")));
        assert!(counted_by_bedrock(&UpstreamError::Timeout));
    }

    #[test]
    fn a_refused_signature_is_neither_retried_nor_charged() {
        let unknown = |code: &str| UpstreamError::Bedrock {
            kind: BedrockErrorKind::Unknown,
            message: String::new(),
            detail: Box::new(crate::upstream::BedrockErrorDetail {
                code: Some(code.to_owned()),
                ..crate::upstream::BedrockErrorDetail::default()
            }),
        };
        for code in ["InvalidSignatureException", "UnrecognizedClientException"] {
            assert_eq!(next_step(&unknown(code)), Next::Fail, "{code}");
            assert!(!retryable_in_place(&unknown(code)), "{code}");
            assert!(!counted_by_bedrock(&unknown(code)), "{code}");
        }
        // An error Bedrock does not model may have run the model: kept.
        assert!(counted_by_bedrock(&unknown("SomethingNewException")));
    }

    #[test]
    fn the_budget_is_a_fraction_plus_a_floor() {
        let budget = RetryBudget::new(0.5, 0.1);
        // Floor: 0.1/s over 10 s = 1 retry with no requests at all.
        assert!(budget.try_withdraw());
        assert!(!budget.try_withdraw());
        for _ in 0..4 {
            budget.deposit();
        }
        // 0.5 × 4 + 1 = 3 in all.
        assert!(budget.try_withdraw());
        assert!(budget.try_withdraw());
        assert!(!budget.try_withdraw());
    }

    #[test]
    fn backoff_is_jittered_under_the_cap() {
        let config = UpstreamConfig {
            target: crate::config::UpstreamTarget::Simulator {
                endpoint_url: None,
                credentials: crate::config::SimulatorCredentials::default(),
            },
            transport: crate::config::Transport::Thin,
            request_timeout: Duration::from_secs(1),
            first_byte_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            stream_idle_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(2),
            max_attempts: 3,
            retry_base: Duration::from_millis(100),
            retry_cap: Duration::from_millis(250),
            retry_budget_ratio: 0.2,
            retry_budget_min_per_sec: 1.0,
        };
        let samples: Vec<Duration> = (0..200).map(|_| backoff(&config, 1)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(100)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(50)));
        assert!(samples.iter().any(|d| *d < Duration::from_millis(50)));
        assert!((0..200).map(|_| backoff(&config, 10)).all(|d| d <= Duration::from_millis(250)));
    }
}
