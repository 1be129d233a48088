//! The one path of a call to Bedrock, under every API shape:
//!
//! ```text
//! resolve targets → admit (caller limits, then the target's quota reservation, queued)
//!   → attempt (retry policy and budget; fall back to the next target) → settle → record
//! ```
//!
//! [`Pipeline::invoke`] and [`Pipeline::stream`] are the only ways to reach Bedrock: no
//! route calls the transport (`upstream.rs`) itself. A route parses its request into a
//! [`Call`] and an [`Encoder`] (the body for a given target: a fallback target of another
//! family gets its own translated body), and renders the [`Served`] answer, or the
//! [`ApiError`], in its own encoding. A streamed answer is a [`PipelineStream`] that
//! settles its reservation when it ends or is dropped.

mod admission;
pub mod estimate;
pub mod retry;
mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{ApiKey, Config, ModelRoute, Target, UpstreamConfig};
use crate::error::ApiError;
use crate::limits::ScopeSnapshot;
use crate::pipeline::admission::{Admission, Reservation};
use crate::pipeline::estimate::InputEstimator;
use crate::pipeline::retry::{Next, RetryBudget};
pub use crate::pipeline::stream::PipelineStream;
use crate::upstream::{RawInvokeOutput, RawRequest, Upstream, UpstreamError};

/// The gateway's calls to Bedrock: transport, admission, retry policy, per-target state.
#[derive(Debug)]
pub struct Pipeline {
    upstream: Upstream,
    admission: Arc<Admission>,
    policy: UpstreamConfig,
    targets: BTreeMap<String, TargetState>,
}

/// What the pipeline keeps per target besides its quota counters.
#[derive(Debug, Default)]
struct TargetState {
    budget: Option<RetryBudget>,
    estimator: Arc<InputEstimator>,
}

/// One call: which alias, for whom, and what the reservation must cover.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub route: &'a ModelRoute,
    /// The API key's configuration; `None` when the gateway is open.
    pub caller: Option<&'a ApiKey>,
    /// The most output tokens the answer may have (the request's or the alias default;
    /// 0 for embeddings and images).
    pub max_output_tokens: u32,
}

/// The request for one target, or `None` when the target cannot take this payload
/// (a passthrough body for another family): then it is skipped.
pub type Encoder<'a> = &'a (dyn Fn(&Target) -> Result<Option<RawRequest>, ApiError> + Sync);

/// An answer, and the target that served it (for `x-gateway-target` and decoding).
#[derive(Debug)]
pub struct Served<T> {
    pub target: Arc<Target>,
    pub output: T,
}

/// The name of the response header that says which target served a call.
pub const TARGET_HEADER: &str = "x-gateway-target";

impl Pipeline {
    /// The transport and the admission counters for `config`.
    pub async fn from_config(
        config: &Config,
        simulator_endpoint: Option<&str>,
    ) -> Result<Pipeline, String> {
        let regions: BTreeSet<String> =
            config.targets.values().filter_map(|t| t.region.clone()).collect();
        let upstream =
            Upstream::from_config(&config.upstream, simulator_endpoint, &regions).await?;
        let admission = Admission::new(&config.limits, config.targets.values().cloned())?;
        let targets = config
            .targets
            .keys()
            .map(|name| {
                let budget = RetryBudget::new(
                    config.upstream.retry_budget_ratio,
                    config.upstream.retry_budget_min_per_sec,
                );
                (name.clone(), TargetState { budget: Some(budget), ..TargetState::default() })
            })
            .collect();
        Ok(Pipeline {
            upstream,
            admission: Arc::new(admission),
            policy: config.upstream.clone(),
            targets,
        })
    }

    /// InvokeModel through admission, retries and fallbacks; settled with Bedrock's
    /// token-count headers before it returns.
    pub async fn invoke(
        &self,
        call: Call<'_>,
        encode: Encoder<'_>,
    ) -> Result<Served<RawInvokeOutput>, ApiError> {
        let (served, reservation, body_len) = self
            .run(call, encode, |upstream, target, request, timeout| async move {
                upstream
                    .invoke_raw(target.region.as_deref(), &target.model_id, request, timeout)
                    .await
            })
            .await?;
        let usage = served.output.headers.usage();
        let known = usage.input_tokens.is_some() || usage.output_tokens.is_some();
        if let Some(input_tokens) = usage.input_tokens {
            self.state(&served.target).estimator.learn(body_len, input_tokens);
        }
        reservation.settle(known.then_some(usage)).await;
        Ok(served)
    }

    /// InvokeModelWithResponseStream through admission, retries and fallbacks. Returns
    /// once the first chunk has arrived: an exception before it is retried like an
    /// error answer; after it, nothing is retried.
    pub async fn stream(
        &self,
        call: Call<'_>,
        encode: Encoder<'_>,
    ) -> Result<Served<PipelineStream>, ApiError> {
        let (mut served, reservation, body_len) = self
            .run(call, encode, |upstream, target, request, timeout| async move {
                let started = Instant::now();
                let mut output = upstream
                    .invoke_stream_raw(target.region.as_deref(), &target.model_id, request, timeout)
                    .await?;
                // The first chunk within what is left of the attempt's timeout.
                let left = timeout.saturating_sub(started.elapsed());
                let first = match tokio::time::timeout(left, output.chunks.next_chunk()).await {
                    Err(_) => return Err(UpstreamError::Timeout),
                    Ok(Some(Err(error))) => return Err(error),
                    Ok(Some(Ok(chunk))) => Some(chunk),
                    Ok(None) => None,
                };
                Ok(PipelineStream::new(output, first))
            })
            .await?;
        let estimator = self.state(&served.target).estimator.clone();
        served.output.hold(reservation, body_len, estimator);
        Ok(served)
    }

    /// A target's counters now, for `/v1/limits`.
    pub async fn limits_snapshot(&self, target: &Target) -> Option<ScopeSnapshot> {
        self.admission.snapshot(target).await
    }

    /// The learned input tokens per body byte of a target.
    pub fn tokens_per_byte(&self, target: &Target) -> f64 {
        self.state(target).estimator.tokens_per_byte()
    }

    fn state(&self, target: &Target) -> &TargetState {
        static NONE: std::sync::OnceLock<TargetState> = std::sync::OnceLock::new();
        self.targets.get(&target.name).unwrap_or_else(|| NONE.get_or_init(TargetState::default))
    }

    /// The attempt loop shared by both operations: for each target in order, admission
    /// and up to `max_attempts` attempts; returns the answer with its reservation (not yet
    /// settled) and the length of the body that was sent.
    async fn run<T, F, Fut>(
        &self,
        call: Call<'_>,
        encode: Encoder<'_>,
        attempt: F,
    ) -> Result<(Served<T>, Reservation, usize), ApiError>
    where
        F: Fn(Upstream, Arc<Target>, RawRequest, Duration) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let started = Instant::now();
        let deadline = started + self.policy.deadline;
        let route = call.route;
        if let Some(caller) = call.caller
            && !caller.allows(&route.alias)
        {
            return Err(ApiError::Forbidden(format!(
                "the API key {:?} may not use model {:?}",
                caller.name, route.alias
            )));
        }
        let mut reservation = Reservation::new(self.admission.clone());
        let mut requests = Vec::with_capacity(route.targets.len());
        for (target_idx, target) in route.targets.iter().enumerate() {
            match encode(target) {
                Ok(Some(request)) => requests.push((target.clone(), request)),
                Ok(None) => {}
                // The first target's refusal is the caller's answer (400, 422); a
                // fallback target that cannot take the request is only skipped.
                Err(error) if target_idx == 0 => return Err(error),
                Err(error) => {
                    tracing::debug!(message = "fallback target skipped", target = %target.name, %error);
                }
            }
        }
        let Some((_, first_request)) = requests.first() else {
            return Err(ApiError::Internal(format!(
                "no target of {:?} can take this request",
                route.alias
            )));
        };
        if let Some(caller) = call.caller {
            // Callers' budgets count plain tokens: the estimate plus the most output.
            let estimate = self.state(&requests[0].0).estimator.estimate(first_request.body.len());
            let tokens = estimate + u64::from(call.max_output_tokens);
            reservation.push(self.admission.admit_caller(caller, tokens).await?);
        }
        let mut last_error: Option<ApiError> = None;
        let n_targets = requests.len();
        for (target_idx, (target, request)) in requests.into_iter().enumerate() {
            let has_next = target_idx + 1 < n_targets;
            let state = self.state(&target);
            if let Some(budget) = &state.budget {
                budget.deposit();
            }
            let body_len = request.body.len();
            let tokens = state.estimator.estimate(body_len)
                + (f64::from(call.max_output_tokens) * target.quota.output_burndown).ceil() as u64;
            let mut n_target_attempts = 0_u32;
            loop {
                let hold = match self.admission.admit_target(&target, tokens, deadline).await {
                    Ok(hold) => hold,
                    Err(error @ ApiError::RateLimited { .. }) if has_next => {
                        tracing::info!(message = "fallback: target has no room", target = %target.name);
                        last_error = Some(error);
                        break;
                    }
                    Err(error) => {
                        reservation.release_all().await;
                        return Err(error);
                    }
                };
                let has_hold = hold.is_some();
                reservation.push(hold);
                n_target_attempts += 1;
                let timeout = self
                    .policy
                    .request_timeout
                    .min(deadline.saturating_duration_since(Instant::now()));
                let result =
                    attempt(self.upstream.clone(), target.clone(), request.clone(), timeout).await;
                let error = match result {
                    Ok(output) => {
                        let served = Served { target, output };
                        return Ok((served, reservation, body_len));
                    }
                    Err(error) => error,
                };
                if let Some(kind) = retry::throttle_kind(&error) {
                    tracing::info!(message = "upstream throttled", target = %target.name, kind = kind.as_str());
                    self.admission.throttled(&target).await;
                }
                // The target's hold goes back unless Bedrock may have counted the call.
                if has_hold && let Some(hold) = reservation.pop() {
                    if retry::counted_by_bedrock(&error) {
                        reservation.keep(hold).await;
                    } else {
                        reservation.release(hold).await;
                    }
                }
                let step = retry::next_step(&error);
                if step == Next::Fail {
                    return Err(self.fail(reservation, error).await);
                }
                if step == Next::FallBack && has_next {
                    tracing::info!(message = "fallback", target = %target.name, error = %error);
                    last_error = Some(ApiError::Upstream(error));
                    break;
                }
                let may_retry = retry::retryable_in_place(&error)
                    && n_target_attempts < self.policy.max_attempts;
                if !may_retry {
                    if has_next {
                        last_error = Some(ApiError::Upstream(error));
                        break;
                    }
                    return Err(self.fail(reservation, error).await);
                }
                let pause = retry::backoff(&self.policy, n_target_attempts);
                let in_budget = state.budget.as_ref().is_none_or(RetryBudget::try_withdraw);
                if !in_budget || Instant::now() + pause >= deadline {
                    if !in_budget {
                        tracing::info!(message = "retry budget spent", target = %target.name);
                    }
                    if has_next {
                        last_error = Some(ApiError::Upstream(error));
                        break;
                    }
                    return Err(self.fail(reservation, error).await);
                }
                tracing::debug!(message = "retrying", target = %target.name, ?pause, error = %error);
                tokio::time::sleep(pause).await;
            }
        }
        reservation.release_all().await;
        Err(last_error.unwrap_or_else(|| ApiError::Internal("no target was tried".to_owned())))
    }

    /// The caller's hold after a final failure: given back unless Bedrock may have
    /// counted the call.
    async fn fail(&self, reservation: Reservation, error: UpstreamError) -> ApiError {
        if retry::counted_by_bedrock(&error) {
            reservation.settle(None).await;
        } else {
            reservation.release_all().await;
        }
        ApiError::Upstream(error)
    }
}
