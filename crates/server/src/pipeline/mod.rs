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
use crate::metrics::Metrics;
use crate::pipeline::admission::{Admission, Reservation};
use crate::pipeline::estimate::InputEstimator;
use crate::pipeline::retry::{Next, RetryBudget};
pub use crate::pipeline::stream::PipelineStream;
use crate::telemetry::Record;
use crate::upstream::{BedrockErrorKind, RawInvokeOutput, RawRequest, Upstream, UpstreamError};

/// The gateway's calls to Bedrock: transport, admission, retry policy, per-target state.
#[derive(Debug)]
pub struct Pipeline {
    upstream: Upstream,
    metrics: Arc<Metrics>,
    admission: Arc<Admission>,
    policy: UpstreamConfig,
    targets: BTreeMap<String, Arc<TargetState>>,
    /// For a reload that adds a region.
    simulator_endpoint: Option<String>,
    regions: BTreeSet<String>,
}

/// What the pipeline keeps per target besides its quota counters.
#[derive(Debug, Default)]
struct TargetState {
    /// What the state was learned on: a reload keeps it only for the same model.
    model_id: String,
    budget: Option<RetryBudget>,
    estimator: Arc<InputEstimator>,
}

/// Every target's state: `kept` where a reload carries it over, else new.
fn target_states(
    config: &Config,
    kept: Option<&BTreeMap<String, Arc<TargetState>>>,
) -> BTreeMap<String, Arc<TargetState>> {
    config
        .targets
        .iter()
        .map(|(name, target)| {
            if let Some(state) = kept.and_then(|kept| kept.get(name)) {
                return (name.clone(), state.clone());
            }
            let budget = RetryBudget::new(
                config.upstream.retry_budget_ratio,
                config.upstream.retry_budget_min_per_sec,
            );
            let state = TargetState {
                model_id: target.model_id.clone(),
                budget: Some(budget),
                estimator: Arc::default(),
            };
            (name.clone(), Arc::new(state))
        })
        .collect()
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
    /// The request's record, for its log line and caller-side metrics.
    pub record: &'a Record,
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
        metrics: Arc<Metrics>,
    ) -> Result<Pipeline, String> {
        let regions: BTreeSet<String> =
            config.targets.values().filter_map(|t| t.region.clone()).collect();
        let upstream =
            Upstream::from_config(&config.upstream, simulator_endpoint, &regions).await?;
        let admission =
            Admission::new(&config.limits, config.targets.values().cloned(), metrics.clone())?;
        Ok(Pipeline {
            upstream,
            metrics,
            admission: Arc::new(admission),
            policy: config.upstream.clone(),
            targets: target_states(config, None),
            simulator_endpoint: simulator_endpoint.map(str::to_owned),
            regions,
        })
    }

    /// The pipeline for a reloaded `config` whose upstream and limits backend are the
    /// same as this one's: the SDK clients, the counters, every target's queue, learned
    /// estimate and retry budget carry over (by target name, when its model id is the
    /// same), so that a reload neither forgets quota in use nor resets a queue.
    pub async fn reconfigured(&self, config: &Config) -> Result<Pipeline, String> {
        let regions: BTreeSet<String> =
            config.targets.values().filter_map(|t| t.region.clone()).collect();
        let upstream = if regions.is_subset(&self.regions) {
            self.upstream.clone()
        } else {
            let endpoint = self.simulator_endpoint.as_deref();
            Upstream::from_config(&config.upstream, endpoint, &regions).await?
        };
        let admission = self.admission.reconfigured(config.targets.values().cloned());
        let kept: BTreeMap<String, Arc<TargetState>> = self
            .targets
            .iter()
            .filter(|(name, state)| {
                config.targets.get(*name).is_some_and(|new| new.model_id == state.model_id)
            })
            .map(|(name, state)| (name.clone(), state.clone()))
            .collect();
        Ok(Pipeline {
            upstream,
            metrics: self.metrics.clone(),
            admission: Arc::new(admission),
            policy: config.upstream.clone(),
            targets: target_states(config, Some(&kept)),
            simulator_endpoint: self.simulator_endpoint.clone(),
            regions: regions.union(&self.regions).cloned().collect(),
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
            .run(call, encode, false, |upstream, target, request, timeout| async move {
                upstream
                    .invoke_raw(target.region.as_deref(), &target.model_id, request, timeout)
                    .await
            })
            .await?;
        let headers = &served.output.headers;
        let usage = headers.usage();
        let known = usage.input_tokens.is_some() || usage.output_tokens.is_some();
        let (cache_read, cache_write) = headers.cache_tokens();
        if let Some(input_tokens) = usage.input_tokens {
            let prompt_tokens = estimate::prompt_tokens(input_tokens, cache_read, cache_write);
            self.state(&served.target).estimator.learn(body_len, prompt_tokens);
        }
        let tokens = [usage.input_tokens, usage.output_tokens, cache_read, cache_write];
        let operation = call.record.operation();
        self.metrics.tokens(operation, &served.target, tokens);
        let latency_ms = headers.number("x-amzn-bedrock-invocation-latency");
        self.metrics.bedrock_latency(&served.target, false, latency_ms, None);
        call.record.update(|fields| {
            fields.family = Some(served.target.family.id());
            fields.input_tokens = usage.input_tokens;
            fields.output_tokens = usage.output_tokens;
            fields.bedrock_request_id = headers.get("x-amzn-requestid").map(str::to_owned);
            fields.service_tier = headers.get("x-amzn-bedrock-service-tier").map(str::to_owned);
        });
        reservation.settle(known.then_some(usage)).await;
        Ok(served)
    }

    /// InvokeModelWithResponseStream through admission, retries and fallbacks. Returns
    /// once the first chunk has arrived: an exception before it is retried like an
    /// error answer; a broken or unreadable stream is not (Bedrock's 200 had come);
    /// after the first chunk, nothing is retried. The stream then ends with a timeout
    /// after `stream_idle_timeout` without a chunk, or `request_timeout` after the
    /// attempt began.
    pub async fn stream(
        &self,
        call: Call<'_>,
        encode: Encoder<'_>,
    ) -> Result<Served<PipelineStream>, ApiError> {
        let idle = self.policy.stream_idle_timeout;
        let longest = self.policy.request_timeout;
        let (mut served, reservation, body_len) = self
            .run(call, encode, true, |upstream, target, request, timeout| async move {
                let started = Instant::now();
                let timeouts = stream::StreamTimeouts { idle, ends_at: started + longest };
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
                Ok(PipelineStream::new(output, first, timeouts))
            })
            .await?;
        let estimator = self.state(&served.target).estimator.clone();
        call.record.update(|fields| {
            fields.family = Some(served.target.family.id());
            let headers = &served.output.headers;
            fields.bedrock_request_id = headers.get("x-amzn-requestid").map(str::to_owned);
            fields.service_tier = headers.get("x-amzn-bedrock-service-tier").map(str::to_owned);
        });
        let observer = stream::StreamObserver {
            metrics: self.metrics.clone(),
            target: served.target.clone(),
            record: call.record.clone(),
        };
        served.output.hold(reservation, body_len, estimator, observer);
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
        self.targets
            .get(&target.name)
            .map_or_else(|| NONE.get_or_init(TargetState::default), |state| state.as_ref())
    }

    /// The attempt loop shared by both operations: for each target in order, admission
    /// and up to `max_attempts` attempts; returns the answer with its reservation (not yet
    /// settled) and the length of the body that was sent.
    async fn run<T, F, Fut>(
        &self,
        call: Call<'_>,
        encode: Encoder<'_>,
        stream: bool,
        attempt: F,
    ) -> Result<(Served<T>, Reservation, usize), ApiError>
    where
        F: Fn(Upstream, Arc<Target>, RawRequest, Duration) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let started = Instant::now();
        let deadline = started + self.policy.deadline;
        let route = call.route;
        let record = call.record;
        record.update(|fields| {
            fields.alias = Some(route.alias.clone());
            fields.family = Some(route.family.id());
            fields.operation = fields.operation.or(Some(operation_of(route.family.kind())));
            fields.stream = stream;
        });
        let operation = record.operation();
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
        let caller_name = call.caller.map(|key| key.name.as_str());
        for (target_idx, target) in route.targets.iter().enumerate() {
            let encoded = encode(target).and_then(|request| {
                request
                    .map(|mut request| {
                        // The alias's Bedrock options, and the caller's where allowed.
                        route.options.apply(&mut request, caller_name)?;
                        Ok(request)
                    })
                    .transpose()
            });
            match encoded {
                Ok(Some(request)) => requests.push((target.clone(), request)),
                Ok(None) => {}
                // The first target's refusal is the caller's answer (400, 422); a
                // fallback target that cannot take the request is only skipped.
                Err(error) if target_idx == 0 => return Err(error),
                Err(error) => {
                    tracing::debug!(message = "fallback target skipped", upstream_target = %target.name, %error);
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
        // The target just left and why, counted once the next one is known.
        let mut fell_back: Option<(Arc<Target>, &'static str)> = None;
        let n_targets = requests.len();
        for (target_idx, (target, request)) in requests.into_iter().enumerate() {
            let has_next = target_idx + 1 < n_targets;
            if let Some((from, reason)) = fell_back.take() {
                self.metrics.fallback(&from, &target, reason);
            }
            record.update(|fields| fields.target = Some(target.clone()));
            let state = self.state(&target);
            if let Some(budget) = &state.budget {
                budget.deposit();
            }
            let body_len = request.body.len();
            let tokens = state.estimator.estimate(body_len)
                + (f64::from(call.max_output_tokens) * target.quota.output_burndown).ceil() as u64;
            let mut n_target_attempts = 0_u32;
            loop {
                let queued = Instant::now();
                let admitted = self.admission.admit_target(&target, tokens, deadline).await;
                record.update(|fields| fields.queue_wait += queued.elapsed());
                let hold = match admitted {
                    Ok(hold) => hold,
                    Err(error @ ApiError::RateLimited { .. }) if has_next => {
                        tracing::info!(message = "fallback: target has no room", upstream_target = %target.name);
                        fell_back = Some((target.clone(), "no_room"));
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
                let attempt_timeout = if stream {
                    self.policy.first_byte_timeout
                } else {
                    self.policy.request_timeout
                };
                let timeout =
                    attempt_timeout.min(deadline.saturating_duration_since(Instant::now()));
                let sent = Instant::now();
                reservation.mark_sent();
                let result =
                    attempt(self.upstream.clone(), target.clone(), request.clone(), timeout).await;
                let retry = n_target_attempts > 1;
                let outcome = match &result {
                    Ok(_) => "success",
                    Err(error) => crate::error::upstream_error_type(error),
                };
                self.metrics.attempt(operation, &target, stream, outcome, sent.elapsed(), retry);
                record.update(|fields| fields.attempts += 1);
                let error = match result {
                    Ok(output) => {
                        let served = Served { target, output };
                        return Ok((served, reservation, body_len));
                    }
                    Err(error) => error,
                };
                self.metrics.upstream_error(&target, bedrock_error_label(&error));
                if let UpstreamError::Bedrock { detail, .. } = &error
                    && let Some(id) = &detail.request_id
                {
                    record.update(|fields| fields.bedrock_request_id = Some(id.clone()));
                }
                if let Some(kind) = retry::throttle_kind(&error) {
                    tracing::info!(message = "upstream throttled", upstream_target = %target.name, kind = kind.as_str());
                    self.metrics.throttle(&target, kind.as_str());
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
                    tracing::info!(message = "fallback", upstream_target = %target.name, error = %error);
                    fell_back = Some((target.clone(), outcome));
                    last_error = Some(ApiError::Upstream(error));
                    break;
                }
                let may_retry = retry::retryable_in_place(&error)
                    && n_target_attempts < self.policy.max_attempts;
                if !may_retry {
                    if has_next {
                        fell_back = Some((target.clone(), outcome));
                        last_error = Some(ApiError::Upstream(error));
                        break;
                    }
                    return Err(self.fail(reservation, error).await);
                }
                let pause = retry::backoff(&self.policy, n_target_attempts);
                let in_budget = state.budget.as_ref().is_none_or(RetryBudget::try_withdraw);
                if !in_budget || Instant::now() + pause >= deadline {
                    if !in_budget {
                        tracing::info!(message = "retry budget spent", upstream_target = %target.name);
                        self.metrics.retry_budget_exhausted(&target);
                    }
                    if has_next {
                        fell_back = Some((target.clone(), outcome));
                        last_error = Some(ApiError::Upstream(error));
                        break;
                    }
                    return Err(self.fail(reservation, error).await);
                }
                tracing::debug!(message = "retrying", upstream_target = %target.name, ?pause, error = %error);
                tokio::time::sleep(pause).await;
            }
        }
        reservation.release_all().await;
        Err(last_error.unwrap_or_else(|| ApiError::Internal("no target was tried".to_owned())))
    }

    /// The transport that carries the calls (`thin` or `sdk`) and the endpoint of the
    /// upstream's own region when it is resolved once, for the start-up line.
    pub fn upstream_transport(&self) -> (&'static str, Option<&str>) {
        self.upstream.describe()
    }

    /// Whether the gateway has AWS credentials to call Bedrock with (for `/readyz`).
    pub async fn has_credentials(&self) -> bool {
        self.upstream.has_credentials().await
    }

    /// Bedrock's CountTokens of an InvokeModel body for `target` (its region; `model_id`,
    /// the id to count with): outside admission, as a count costs no tokens, and not
    /// retried; bounded by the first-byte timeout (a count is one small answer) and the
    /// deadline.
    pub async fn count_tokens(
        &self,
        target: &Target,
        model_id: &str,
        invoke_body: bytes::Bytes,
    ) -> Result<u32, UpstreamError> {
        let timeout = self.policy.first_byte_timeout.min(self.policy.deadline);
        let region = target.region.as_deref();
        self.upstream.count_tokens_raw(region, model_id, invoke_body, timeout).await
    }

    /// Sets the scrape-time quota gauges (targets, and the limited `callers`).
    pub async fn observe_limits(&self, callers: &[Arc<ApiKey>]) {
        self.admission.observe(callers).await;
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

/// `gen_ai.operation.name` of a call to a model of `kind` (the OpenAI completions route
/// sets `text_completion` itself).
fn operation_of(kind: translator::Kind) -> &'static str {
    match kind {
        translator::Kind::Text => "chat",
        translator::Kind::Embedding => "embeddings",
        translator::Kind::Image => "generate_content",
    }
}

/// The `bedrock_error` label of a failed attempt: Bedrock's error shape, or what
/// happened instead of an answer. Codes the SDK does not model are `other`.
pub fn bedrock_error_label(error: &UpstreamError) -> &'static str {
    match error {
        UpstreamError::Bedrock { kind, detail, .. } => kind.shape_name().unwrap_or_else(|| {
            // A modelled shape the operation does not declare (the SDK's `Unknown`) keeps
            // its name when it is one of Bedrock's; any other code is `other`.
            let code = detail.code.as_deref().unwrap_or_default();
            BedrockErrorKind::ALL
                .iter()
                .filter_map(|kind| kind.shape_name())
                .find(|name| *name == code)
                .unwrap_or(crate::metrics::OTHER)
        }),
        UpstreamError::Timeout | UpstreamError::Stalled(_) => "timeout",
        UpstreamError::Unreachable(_) => "unreachable",
        UpstreamError::Malformed(_) => "malformed",
        UpstreamError::Sdk(_) => "sdk",
        UpstreamError::Credentials(_) => "credentials",
    }
}
