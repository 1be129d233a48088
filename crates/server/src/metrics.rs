//! Every metric of the gateway, defined once (name, help, labels, buckets) and
//! registered in one [`prometheus::Registry`] per gateway, served as the Prometheus text
//! format on the admin listener's `/metrics`.
//!
//! Names follow the OpenTelemetry GenAI semantic conventions (v1.41) where one exists,
//! in their Prometheus form (`gen_ai.client.operation.duration` in seconds becomes
//! `gen_ai_client_operation_duration_seconds`) and with their recommended bucket
//! boundaries; `gateway_*` and `bedrock_*` otherwise. `docs/metrics.md` lists them all.
//!
//! **Bounded labels.** Every label value comes from a closed set: route templates, the
//! configured aliases, targets, model ids and caller names, family ids, status classes
//! and error types. Callers reach these methods only with values the gateway resolved
//! (an alias it found, a target it called); anything else is [`OTHER`]. No method takes
//! a raw path, a requested model name or a key.
//!
//! Recording goes through the methods below, never through the metric fields from
//! elsewhere, so that `enabled = false` turns every one of them into a no-op (the
//! benchmark's "observability off").

use std::time::Duration;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::config::Target;

/// The label value for anything outside a label's bounded set.
pub const OTHER: &str = "other";
/// `gen_ai.provider.name` for Amazon Bedrock.
pub const PROVIDER: &str = "aws.bedrock";

/// `gen_ai.client.operation.duration`, `gen_ai.server.request.duration`.
const DURATION_BUCKETS: &[f64] =
    &[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
/// `gen_ai.server.time_to_first_token`.
const TTFT_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
/// `gen_ai.server.time_per_output_token`.
const TPOT_BUCKETS: &[f64] =
    &[0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5];
/// `gen_ai.client.token.usage`.
const TOKEN_BUCKETS: &[f64] = &[
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
/// Queue waits: from a millisecond to the longest configurable wait (600 s).
const QUEUE_WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];
/// Redis commands: their deadline is milliseconds (at most 5 s).
const REDIS_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The `gen_ai_operation_name` values the success path keeps handles for.
const OPERATIONS: [&str; 4] = ["chat", "text_completion", "embeddings", "generate_content"];

/// One target's metric handles on the success path, resolved on first use. A labelled
/// metric's `with_label_values` hashes every label value and takes a lock; a request
/// makes several such calls for its target, so they are resolved once per target and
/// gateway (`owner`: the [`Metrics`] they belong to; another gateway's use falls back to
/// the lookups).
#[derive(Debug, Clone, Default)]
pub struct TargetHandles {
    owner: OnceLock<u64>,
    /// `[operation][stream]`.
    operation: [[OnceLock<Histogram>; 2]; 4],
    attempts_success: OnceLock<IntCounter>,
    /// `[operation][token type]`.
    tokens: [[OnceLock<Histogram>; 4]; 4],
    /// `[stream]`.
    invocation: [OnceLock<Histogram>; 2],
    first_byte: OnceLock<Histogram>,
}

/// Every gateway's [`Metrics`] has its own id, for [`TargetHandles::owner`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The caller-side labels of one finished request.
#[derive(Debug, Clone, Copy)]
pub struct RequestLabels<'a> {
    pub operation: &'a str,
    pub api: &'static str,
    pub route: &'static str,
    pub alias: &'a str,
    pub family: &'a str,
    pub stream: bool,
    pub status_class: &'a str,
    pub error_type: &'a str,
}

/// Which admission scope refused, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    TokensPerMinute,
    TokensPerDay,
    RequestsPerMinute,
    Concurrency,
    QueueFull,
    QueueTimeout,
    TooLarge,
}

/// Every metric of one gateway.
#[derive(Debug)]
pub struct Metrics {
    enabled: bool,
    id: u64,
    registry: Registry,
    /// In flight and active streams, by route template.
    route_gauges: RwLock<HashMap<&'static str, [IntGauge; 2]>>,
    // Caller side.
    request_duration: HistogramVec,
    time_to_first_token: HistogramVec,
    time_per_output_token: HistogramVec,
    requests_in_flight: IntGaugeVec,
    active_streams: IntGaugeVec,
    // Upstream side.
    operation_duration: HistogramVec,
    token_usage: HistogramVec,
    attempts: IntCounterVec,
    retries: IntCounterVec,
    retry_budget_exhausted: IntCounterVec,
    throttles: IntCounterVec,
    upstream_errors: IntCounterVec,
    fallbacks: IntCounterVec,
    unrecognized_chunks: IntCounterVec,
    // What Bedrock reports.
    bedrock_invocation_latency: HistogramVec,
    bedrock_first_byte_latency: HistogramVec,
    // Quota and admission.
    quota_limit_tpm: IntGaugeVec,
    quota_admitted_tpm: IntGaugeVec,
    quota_reserved: IntGaugeVec,
    quota_limit_tpd: IntGaugeVec,
    quota_day_available: IntGaugeVec,
    quota_tokens_reserved: IntCounterVec,
    quota_tokens_settled: IntCounterVec,
    queue_length: IntGaugeVec,
    queue_wait: HistogramVec,
    rejections: IntCounterVec,
    redis_duration: HistogramVec,
    redis_errors: IntCounterVec,
    fail_open: IntCounter,
    // Process.
    config_reloads: IntCounterVec,
    config_last_reload_successful: IntGauge,
}

/// Registers `metric` and hands it back; a name clash is a bug found by every test.
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    if let Err(error) = registry.register(Box::new(metric.clone())) {
        tracing::error!(message = "metric not registered", %error);
    }
    metric
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let metric = HistogramVec::new(opts, labels).unwrap_or_else(|error| invalid(name, error));
    register(registry, metric)
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|error| invalid(name, error));
    register(registry, metric)
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|error| invalid(name, error));
    register(registry, metric)
}

/// The definitions above are constants; an invalid one is a bug that the first test
/// run shows. It is not worth a panic in production: the metric is left unregistered.
#[expect(clippy::panic, reason = "a metric definition is a constant; every test builds them all")]
fn invalid<T>(name: &str, error: prometheus::Error) -> T {
    panic!("invalid metric definition {name}: {error}")
}

const GEN_AI: [&str; 2] = ["gen_ai_operation_name", "gen_ai_provider_name"];
const UPSTREAM: [&str; 4] = ["gen_ai_request_model", "target", "region", "mode"];

fn labels<const N: usize>(parts: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    for (slot, name) in out.iter_mut().zip(parts.iter().flat_map(|part| part.iter())) {
        *slot = name;
    }
    out
}

impl Metrics {
    /// Every metric, registered; `enabled = false` records nothing but config reloads
    /// (the exposition then carries build and process info, the reload figures, and the
    /// unlabelled fail-open counter at zero).
    pub fn new(enabled: bool) -> Metrics {
        let r = Registry::new();
        let caller: [&str; 9] = labels(&[
            &GEN_AI,
            &["api", "route", "alias", "family", "stream", "status_class", "error_type"],
        ]);
        let caller_timing: [&str; 6] = labels(&[&GEN_AI, &["api", "route", "alias", "family"]]);
        let operation: [&str; 8] = labels(&[&GEN_AI, &UPSTREAM, &["stream", "outcome"]]);
        let tokens: [&str; 7] = labels(&[&GEN_AI, &UPSTREAM, &["gen_ai_token_type"]]);
        let scope = ["scope", "name"];
        let metrics = Metrics {
            enabled,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            route_gauges: RwLock::default(),
            request_duration: histogram(
                &r,
                "gen_ai_server_request_duration_seconds",
                "Time from a request's arrival to the last byte of its answer (the end of a stream).",
                DURATION_BUCKETS,
                &caller,
            ),
            time_to_first_token: histogram(
                &r,
                "gen_ai_server_time_to_first_token_seconds",
                "Time from a streamed request's arrival to its first event flushed to the caller.",
                TTFT_BUCKETS,
                &caller_timing,
            ),
            time_per_output_token: histogram(
                &r,
                "gen_ai_server_time_per_output_token_seconds",
                "Streamed answers: (duration - time to first token) / (output tokens - 1).",
                TPOT_BUCKETS,
                &caller_timing,
            ),
            requests_in_flight: gauge(
                &r,
                "gateway_requests_in_flight",
                "Requests being served now, streams included.",
                &["api", "route"],
            ),
            active_streams: gauge(
                &r,
                "gateway_active_streams",
                "Streamed answers being sent now.",
                &["api", "route"],
            ),
            operation_duration: histogram(
                &r,
                "gen_ai_client_operation_duration_seconds",
                "One attempt to Bedrock: until its answer (streams: until the first chunk).",
                DURATION_BUCKETS,
                &operation,
            ),
            token_usage: histogram(
                &r,
                "gen_ai_client_token_usage",
                "Tokens of one served call, as Bedrock counted them.",
                TOKEN_BUCKETS,
                &tokens,
            ),
            attempts: counter(
                &r,
                "gateway_upstream_attempts_total",
                "Attempts to Bedrock, by outcome (success or the gateway's error type).",
                &["target", "outcome"],
            ),
            retries: counter(
                &r,
                "gateway_upstream_retries_total",
                "Attempts that were retries of an earlier attempt on the same target.",
                &["target"],
            ),
            retry_budget_exhausted: counter(
                &r,
                "gateway_upstream_retry_budget_exhausted_total",
                "Retries not made because the target's retry budget was spent.",
                &["target"],
            ),
            throttles: counter(
                &r,
                "gateway_upstream_throttles_total",
                "ThrottlingException answers, by the quota hit (tokens, requests, unknown).",
                &["target", "kind"],
            ),
            upstream_errors: counter(
                &r,
                "gateway_upstream_errors_total",
                "Failed attempts, by Bedrock's error shape (or timeout, unreachable, malformed, sdk).",
                &["target", "bedrock_error"],
            ),
            fallbacks: counter(
                &r,
                "gateway_fallbacks_total",
                "Calls passed from one target to the next, and why.",
                &["from_target", "to_target", "reason"],
            ),
            unrecognized_chunks: counter(
                &r,
                "gateway_stream_unrecognized_chunks_total",
                "Stream chunks of a shape the family does not know (logged once per stream).",
                &["target", "family"],
            ),
            bedrock_invocation_latency: histogram(
                &r,
                "bedrock_invocation_latency_seconds",
                "Bedrock's own invocation latency (X-Amzn-Bedrock-Invocation-Latency, or the stream's invocationLatency).",
                DURATION_BUCKETS,
                &["target", "gen_ai_request_model", "stream"],
            ),
            bedrock_first_byte_latency: histogram(
                &r,
                "bedrock_first_byte_latency_seconds",
                "Bedrock's own first-byte latency of a stream (its invocation metrics' firstByteLatency).",
                DURATION_BUCKETS,
                &["target", "gen_ai_request_model"],
            ),
            quota_limit_tpm: gauge(
                &r,
                "gateway_quota_limit_tokens_per_minute",
                "The configured tokens per minute of a target (route) or an API key (caller).",
                &scope,
            ),
            quota_admitted_tpm: gauge(
                &r,
                "gateway_quota_admitted_tokens_per_minute",
                "The tokens per minute admitted now, after adaptation to Bedrock's throttles.",
                &scope,
            ),
            quota_reserved: gauge(
                &r,
                "gateway_quota_reserved_tokens",
                "Tokens held by live reservations now.",
                &scope,
            ),
            quota_limit_tpd: gauge(
                &r,
                "gateway_quota_limit_tokens_per_day",
                "The configured tokens per day.",
                &scope,
            ),
            quota_day_available: gauge(
                &r,
                "gateway_quota_day_available_tokens",
                "Tokens left in the day bucket now.",
                &scope,
            ),
            quota_tokens_reserved: counter(
                &r,
                "gateway_quota_tokens_reserved_total",
                "Tokens reserved at admission (estimated input + max output x burndown).",
                &scope,
            ),
            quota_tokens_settled: counter(
                &r,
                "gateway_quota_tokens_settled_total",
                "Tokens used as settled (input + output x burndown: what Bedrock's quota counts).",
                &scope,
            ),
            queue_length: gauge(
                &r,
                "gateway_queue_length",
                "Requests waiting in a target's admission queue now, the head included.",
                &["target"],
            ),
            queue_wait: histogram(
                &r,
                "gateway_queue_wait_seconds",
                "Time a request waited for its target's quota.",
                QUEUE_WAIT_BUCKETS,
                &["target", "outcome"],
            ),
            rejections: counter(
                &r,
                "gateway_admission_rejections_total",
                "Requests refused by the gateway's own admission (429 rate_limited).",
                &["scope", "name", "reason"],
            ),
            redis_duration: histogram(
                &r,
                "gateway_redis_command_duration_seconds",
                "Duration of the shared limits' Redis scripts.",
                REDIS_BUCKETS,
                &["script", "outcome"],
            ),
            redis_errors: counter(
                &r,
                "gateway_redis_errors_total",
                "Failed Redis commands of the shared limits.",
                &["script", "kind"],
            ),
            fail_open: register(
                &r,
                IntCounter::new(
                    "gateway_limits_fail_open_total",
                    "Admission decisions taken by the local fallback limits because Redis failed.",
                )
                .unwrap_or_else(|error| invalid("gateway_limits_fail_open_total", error)),
            ),
            config_reloads: counter(
                &r,
                "gateway_config_reloads_total",
                "Configuration reloads, by outcome.",
                &["outcome"],
            ),
            config_last_reload_successful: register(
                &r,
                IntGauge::new(
                    "gateway_config_last_reload_successful",
                    "1 when the last configuration reload (or the start) succeeded, else 0.",
                )
                .unwrap_or_else(|error| invalid("gateway_config_last_reload_successful", error)),
            ),
            registry: r,
        };
        let build_info = gauge(
            &metrics.registry,
            "gateway_build_info",
            "Always 1; the labels say which build runs.",
            &["version", "git_sha"],
        );
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), git_sha()]).set(1);
        metrics.config_last_reload_successful.set(1);
        #[cfg(target_os = "linux")]
        if let Err(error) = metrics
            .registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
        {
            tracing::error!(message = "process metrics not registered", %error);
        }
        metrics
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The exposition, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(message = "metrics could not be encoded", %error);
        }
        String::from_utf8(out).unwrap_or_default()
    }

    // ---- Caller side -------------------------------------------------------------

    /// A request arrived.
    pub fn request_started(&self, api: &'static str, route: &'static str) {
        if self.enabled {
            self.route_gauges(api, route)[0].inc();
        }
    }

    pub fn stream_started(&self, api: &'static str, route: &'static str) {
        if self.enabled {
            self.route_gauges(api, route)[1].inc();
        }
    }

    /// In flight and active streams of `route` (a template: one API each).
    fn route_gauges(&self, api: &'static str, route: &'static str) -> [IntGauge; 2] {
        if let Some(gauges) =
            self.route_gauges.read().unwrap_or_else(PoisonError::into_inner).get(route)
        {
            return gauges.clone();
        }
        let gauges = [
            self.requests_in_flight.with_label_values(&[api, route]),
            self.active_streams.with_label_values(&[api, route]),
        ];
        let mut all = self.route_gauges.write().unwrap_or_else(PoisonError::into_inner);
        all.entry(route).or_insert(gauges).clone()
    }

    /// `target`'s handles, if they are this gateway's.
    fn handles<'a>(&self, target: &'a Target) -> Option<&'a TargetHandles> {
        let owner = *target.handles.owner.get_or_init(|| self.id);
        (owner == self.id).then_some(&target.handles)
    }

    /// A request ended (its last byte sent, or the caller gone).
    pub fn request_finished(
        &self,
        labels: RequestLabels<'_>,
        duration: Duration,
        streamed: Option<(Duration, Option<u32>)>,
    ) {
        if !self.enabled {
            return;
        }
        let l = labels;
        let [in_flight, active] = self.route_gauges(l.api, l.route);
        in_flight.dec();
        let stream = if l.stream { "true" } else { "false" };
        self.request_duration
            .with_label_values(&[
                l.operation,
                PROVIDER,
                l.api,
                l.route,
                l.alias,
                l.family,
                stream,
                l.status_class,
                l.error_type,
            ])
            .observe(duration.as_secs_f64());
        let Some((first, output_tokens)) = streamed else {
            return;
        };
        active.dec();
        let timing = [l.operation, PROVIDER, l.api, l.route, l.alias, l.family];
        self.time_to_first_token.with_label_values(&timing).observe(first.as_secs_f64());
        if l.error_type == "none"
            && let Some(tokens) = output_tokens.filter(|n| *n > 1)
        {
            let per_token = duration.saturating_sub(first).as_secs_f64() / f64::from(tokens - 1);
            self.time_per_output_token.with_label_values(&timing).observe(per_token);
        }
    }

    // ---- Upstream side -----------------------------------------------------------

    /// One attempt to Bedrock ended.
    pub fn attempt(
        &self,
        operation: &str,
        target: &Target,
        stream: bool,
        outcome: &str,
        duration: Duration,
        retry: bool,
    ) {
        if !self.enabled {
            return;
        }
        let op = OPERATIONS.iter().position(|known| *known == operation);
        if outcome == "success"
            && !retry
            && let (Some(handles), Some(op)) = (self.handles(target), op)
        {
            let stream_label = if stream { "true" } else { "false" };
            let [model, name, region, mode] = upstream_labels(target);
            handles.operation[op][usize::from(stream)]
                .get_or_init(|| {
                    let labels =
                        [operation, PROVIDER, model, name, region, mode, stream_label, outcome];
                    self.operation_duration.with_label_values(&labels)
                })
                .observe(duration.as_secs_f64());
            handles
                .attempts_success
                .get_or_init(|| self.attempts.with_label_values(&[&target.name, outcome]))
                .inc();
            return;
        }
        let stream = if stream { "true" } else { "false" };
        let [model, name, region, mode] = upstream_labels(target);
        self.operation_duration
            .with_label_values(&[operation, PROVIDER, model, name, region, mode, stream, outcome])
            .observe(duration.as_secs_f64());
        self.attempts.with_label_values(&[&target.name, outcome]).inc();
        if retry {
            self.retries.with_label_values(&[&target.name]).inc();
        }
    }

    /// The token counts of one served call: input, output, cache read, cache write.
    pub fn tokens(&self, operation: &str, target: &Target, counts: [Option<u32>; 4]) {
        if !self.enabled {
            return;
        }
        let [model, name, region, mode] = upstream_labels(target);
        let kinds = ["input", "output", "cache_read", "cache_write"];
        let op = OPERATIONS.iter().position(|known| *known == operation);
        let handles = self.handles(target).zip(op);
        for (idx, (kind, count)) in kinds.into_iter().zip(counts).enumerate() {
            let Some(count) = count else { continue };
            let resolve = || {
                self.token_usage
                    .with_label_values(&[operation, PROVIDER, model, name, region, mode, kind])
            };
            match handles {
                Some((handles, op)) => {
                    handles.tokens[op][idx].get_or_init(resolve).observe(f64::from(count))
                }
                None => resolve().observe(f64::from(count)),
            }
        }
    }

    pub fn upstream_error(&self, target: &Target, bedrock_error: &str) {
        if self.enabled {
            self.upstream_errors.with_label_values(&[&target.name, bedrock_error]).inc();
        }
    }

    pub fn throttle(&self, target: &Target, kind: &str) {
        if self.enabled {
            self.throttles.with_label_values(&[&target.name, kind]).inc();
        }
    }

    pub fn retry_budget_exhausted(&self, target: &Target) {
        if self.enabled {
            self.retry_budget_exhausted.with_label_values(&[&target.name]).inc();
        }
    }

    pub fn unrecognized_chunk(&self, target: &Target) {
        if self.enabled {
            let family = target.family.id();
            self.unrecognized_chunks.with_label_values(&[&target.name, family]).inc();
        }
    }

    pub fn fallback(&self, from: &Target, to: &Target, reason: &str) {
        if self.enabled {
            self.fallbacks.with_label_values(&[&from.name, &to.name, reason]).inc();
        }
    }

    /// Bedrock's own latency figures of one answer, in milliseconds as it sends them.
    pub fn bedrock_latency(
        &self,
        target: &Target,
        stream: bool,
        invocation_ms: Option<u64>,
        first_byte_ms: Option<u64>,
    ) {
        if !self.enabled {
            return;
        }
        let seconds = |ms: u64| Duration::from_millis(ms).as_secs_f64();
        let handles = self.handles(target);
        if let Some(ms) = invocation_ms {
            let resolve = || {
                let stream = if stream { "true" } else { "false" };
                self.bedrock_invocation_latency.with_label_values(&[
                    &target.name,
                    &target.model_label,
                    stream,
                ])
            };
            match handles {
                Some(handles) => {
                    handles.invocation[usize::from(stream)]
                        .get_or_init(resolve)
                        .observe(seconds(ms));
                }
                None => resolve().observe(seconds(ms)),
            }
        }
        if let Some(ms) = first_byte_ms {
            let resolve = || {
                self.bedrock_first_byte_latency
                    .with_label_values(&[&target.name, &target.model_label])
            };
            match handles {
                Some(handles) => handles.first_byte.get_or_init(resolve).observe(seconds(ms)),
                None => resolve().observe(seconds(ms)),
            }
        }
    }

    // ---- Quota and admission -----------------------------------------------------

    /// Forgets every scrape-time gauge, before they are set again: a target, key or limit
    /// that a reload removed, or a scope whose counters cannot be read now, has no series
    /// rather than a stale one.
    pub fn reset_scrape_gauges(&self) {
        for gauge in [
            &self.quota_limit_tpm,
            &self.quota_admitted_tpm,
            &self.quota_reserved,
            &self.quota_limit_tpd,
            &self.quota_day_available,
            &self.queue_length,
        ] {
            gauge.reset();
        }
    }

    /// The scrape-time figures of one scope (`route` + target name, `caller` + key name).
    pub fn scope_snapshot(
        &self,
        scope: &str,
        name: &str,
        snapshot: &crate::limits::ScopeSnapshot,
        tokens_per_day: Option<u64>,
    ) {
        if !self.enabled {
            return;
        }
        let labels = [scope, name];
        let int = |value: f64| value.round() as i64;
        if let Some(tpm) = snapshot.configured_tokens_per_minute {
            self.quota_limit_tpm.with_label_values(&labels).set(saturating(tpm));
        }
        if let Some(admitted) = snapshot.admitted_tokens_per_minute {
            self.quota_admitted_tpm.with_label_values(&labels).set(int(admitted));
        }
        self.quota_reserved.with_label_values(&labels).set(saturating(snapshot.reserved_tokens));
        if let Some(tpd) = tokens_per_day {
            self.quota_limit_tpd.with_label_values(&labels).set(saturating(tpd));
        }
        if let Some(level) = snapshot.day_level {
            self.quota_day_available.with_label_values(&labels).set(int(level));
        }
    }

    pub fn queue_length(&self, target: &str, waiting: usize) {
        if self.enabled {
            self.queue_length.with_label_values(&[target]).set(saturating(waiting as u64));
        }
    }

    pub fn queue_wait(&self, target: &Target, admitted: bool, wait: Duration) {
        if self.enabled {
            let outcome = if admitted { "admitted" } else { "rejected" };
            self.queue_wait.with_label_values(&[&target.name, outcome]).observe(wait.as_secs_f64());
        }
    }

    pub fn reserved(&self, scope: &str, name: &str, tokens: u64) {
        if self.enabled {
            self.quota_tokens_reserved.with_label_values(&[scope, name]).inc_by(tokens);
        }
    }

    pub fn settled(&self, scope: &str, name: &str, tokens: u64) {
        if self.enabled {
            self.quota_tokens_settled.with_label_values(&[scope, name]).inc_by(tokens);
        }
    }

    pub fn rejected(&self, scope: &str, name: &str, reason: Rejection) {
        if self.enabled {
            self.rejections.with_label_values(&[scope, name, reason.as_str()]).inc();
        }
    }

    pub fn redis_command(&self, script: &str, duration: Duration, error: Option<&str>) {
        if !self.enabled {
            return;
        }
        let outcome = if error.is_some() { "error" } else { "ok" };
        self.redis_duration.with_label_values(&[script, outcome]).observe(duration.as_secs_f64());
        if let Some(kind) = error {
            self.redis_errors.with_label_values(&[script, kind]).inc();
        }
    }

    pub fn fail_open(&self) {
        if self.enabled {
            self.fail_open.inc();
        }
    }

    // ---- Process -----------------------------------------------------------------

    /// A configuration reload ended; recorded even with metrics off (it is rare).
    pub fn config_reload(&self, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.config_reloads.with_label_values(&[outcome]).inc();
        self.config_last_reload_successful.set(i64::from(ok));
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new(true)
    }
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::TokensPerMinute => "tokens_per_minute",
            Rejection::TokensPerDay => "tokens_per_day",
            Rejection::RequestsPerMinute => "requests_per_minute",
            Rejection::Concurrency => "concurrency",
            Rejection::QueueFull => "queue_full",
            Rejection::QueueTimeout => "queue_timeout",
            Rejection::TooLarge => "too_large",
        }
    }
}

impl From<crate::limits::LimitKind> for Rejection {
    fn from(kind: crate::limits::LimitKind) -> Rejection {
        use crate::limits::LimitKind as K;
        match kind {
            K::TokensPerMinute => Rejection::TokensPerMinute,
            K::TokensPerDay => Rejection::TokensPerDay,
            K::RequestsPerMinute => Rejection::RequestsPerMinute,
            K::Concurrency => Rejection::Concurrency,
        }
    }
}

/// `2xx`, `4xx`, `5xx` (and `1xx`, `3xx`): a bounded label.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// [`UPSTREAM`]'s values for `target`: model id, name, region (`default`: the
/// upstream's), mode.
fn upstream_labels(target: &Target) -> [&str; 4] {
    let region = target.region.as_deref().unwrap_or("default");
    [&target.model_label, &target.name, region, target.mode.as_str()]
}

/// A model id as a label value: an ARN's account id is masked (`*`), since metrics leave
/// the gateway for dashboards that need no account ids.
pub fn model_label(model_id: &str) -> String {
    if !model_id.starts_with("arn:") {
        return model_id.to_owned();
    }
    let mut parts: Vec<&str> = model_id.splitn(6, ':').collect();
    if let Some(account) = parts.get_mut(4)
        && !account.is_empty()
    {
        *account = "*";
    }
    parts.join(":")
}

fn saturating(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The commit the binary was built from, as `build.rs` found it (`unknown` outside git).
pub fn git_sha() -> &'static str {
    option_env!("GATEWAY_GIT_SHA").filter(|sha| !sha.is_empty()).unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::limits::ScopeSnapshot;

    fn target() -> std::sync::Arc<Target> {
        let config = crate::Config::parse(
            "[models.titan]\nmodel_id = \"amazon.titan-text-express-v1\"\n",
            "test",
        )
        .unwrap();
        config.targets["titan"].clone()
    }

    /// Every recording method once: then every metric has a series.
    fn record_everything(metrics: &Metrics) {
        let target = target();
        let second = Duration::from_secs(1);
        metrics.request_started("gateway", "/v1/generate");
        metrics.stream_started("gateway", "/v1/generate");
        let labels = RequestLabels {
            operation: "chat",
            api: "gateway",
            route: "/v1/generate",
            alias: "titan",
            family: "titan_text",
            stream: true,
            status_class: "2xx",
            error_type: "none",
        };
        metrics.request_finished(labels, second * 3, Some((second, Some(21))));
        metrics.attempt("chat", &target, true, "success", second, true);
        metrics.tokens("chat", &target, [Some(1), Some(2), Some(3), Some(4)]);
        metrics.upstream_error(&target, "ThrottlingException");
        metrics.throttle(&target, "tokens");
        metrics.retry_budget_exhausted(&target);
        metrics.fallback(&target, &target, "no_room");
        metrics.unrecognized_chunk(&target);
        metrics.bedrock_latency(&target, true, Some(900), Some(100));
        let snapshot = ScopeSnapshot {
            configured_tokens_per_minute: Some(1000),
            admitted_tokens_per_minute: Some(700.4),
            minute_level: Some(10.0),
            day_level: Some(5000.0),
            reserved_tokens: 20,
            in_flight: 1,
        };
        metrics.scope_snapshot("route", "titan", &snapshot, Some(100_000));
        metrics.queue_length("titan", 2);
        metrics.queue_wait(&target, true, second);
        metrics.reserved("route", "titan", 30);
        metrics.settled("route", "titan", 25);
        metrics.rejected("caller", "team", Rejection::QueueTimeout);
        metrics.redis_command("reserve", second / 1000, Some("timeout"));
        metrics.fail_open();
        metrics.config_reload(true);
    }

    fn names(metrics: &Metrics) -> BTreeSet<String> {
        metrics.registry.gather().iter().map(|family| family.name().to_owned()).collect()
    }

    #[test]
    fn the_documented_names_are_the_registered_ones() {
        let metrics = Metrics::new(true);
        record_everything(&metrics);
        let listed = include_str!("../../../deploy/grafana/metric-names.txt");
        let listed: BTreeSet<String> = listed.lines().map(str::to_owned).collect();
        assert_eq!(names(&metrics), listed, "deploy/grafana/metric-names.txt and docs/metrics.md");
    }

    #[test]
    fn figures_land_where_they_belong() {
        let metrics = Metrics::new(true);
        record_everything(&metrics);
        let text = metrics.encode();
        for line in [
            // 20 s over 20 tokens after the first.
            "gen_ai_server_time_per_output_token_seconds_sum{alias=\"titan\",api=\"gateway\",family=\"titan_text\",gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"aws.bedrock\",route=\"/v1/generate\"} 0.1",
            "gateway_active_streams{api=\"gateway\",route=\"/v1/generate\"} 0",
            "gateway_requests_in_flight{api=\"gateway\",route=\"/v1/generate\"} 0",
            "gateway_quota_admitted_tokens_per_minute{name=\"titan\",scope=\"route\"} 700",
            "bedrock_first_byte_latency_seconds_sum{gen_ai_request_model=\"amazon.titan-text-express-v1\",target=\"titan\"} 0.1",
            "gateway_upstream_retries_total{target=\"titan\"} 1",
            "gateway_redis_errors_total{kind=\"timeout\",script=\"reserve\"} 1",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn off_records_nothing_but_build_and_process_info() {
        let metrics = Metrics::new(false);
        record_everything(&metrics);
        let recorded = names(&metrics);
        let gateway: Vec<_> = recorded.iter().filter(|n| !n.starts_with("process_")).collect();
        assert_eq!(
            gateway,
            [
                "gateway_build_info",
                "gateway_config_last_reload_successful",
                "gateway_config_reloads_total",
                "gateway_limits_fail_open_total",
            ]
        );
        // An unlabelled counter is always exposed; off, it stays at zero.
        assert!(metrics.encode().contains("\ngateway_limits_fail_open_total 0\n"));
    }

    #[test]
    fn account_ids_stay_out_of_model_labels() {
        let arn = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc";
        assert_eq!(model_label(arn), "arn:aws:bedrock:us-east-1:*:provisioned-model/abc");
        let foundation = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1";
        assert_eq!(model_label(foundation), foundation);
        assert_eq!(model_label("us.anthropic.claude-v2:1"), "us.anthropic.claude-v2:1");
    }

    #[test]
    fn status_classes_are_bounded() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(999), "5xx");
    }
}
