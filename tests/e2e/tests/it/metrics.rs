//! `/metrics` on the admin listener: exact counts and label sets after a scripted
//! sequence, bounded series under a flood of unknown names, and `promtool check metrics`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bedrock_sim::{Behavior, ErrorKind, Fault};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Harness;

/// One scrape, parsed: every sample by metric name and label set.
pub(crate) struct Exposition {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    pub(crate) fn parse(text: &str) -> Exposition {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Exposition { samples }
    }

    /// The sum of every sample of `name` whose labels include `labels`.
    pub(crate) fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, value)| value).sum()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a BTreeMap<String, String>, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| {
                n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, l, v)| (l, *v))
    }

    /// The label names of every series of `name`.
    fn label_names(&self, name: &str) -> BTreeSet<BTreeSet<String>> {
        self.matching(name, &[]).map(|(labels, _)| labels.keys().cloned().collect()).collect()
    }

    fn n_series(&self) -> usize {
        self.samples.len()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(name.to_owned(), value);
        rest = after[end..].strip_prefix(',').unwrap_or(&after[end..]);
    }
    labels
}

const KEY_A: &str = "metrics-test-key-a";
const KEY_B: &str = "metrics-test-key-b";

/// A gateway and its simulator for the scripted sequence: one alias per behaviour, so
/// that each count has its own series.
async fn scripted_gateway() -> Harness {
    let rest = format!(
        r#"
[targets.titan-a]
model_id = "amazon.titan-text-express-v1"
[targets.titan-b]
model_id = "amazon.titan-text-lite-v1"
[targets.slow]
model_id = "mistral.mistral-7b-instruct-v0:2"
max_concurrency = 1
tokens_per_minute = 100000

[models.titan]
model_id = "amazon.titan-text-premier-v1:0"
[models.flaky]
model_id = "anthropic.claude-v2:1"
[models.retry]
model_id = "meta.llama3-8b-instruct-v1:0"
[models.fallback]
targets = ["titan-a", "titan-b"]
[models.queued]
targets = ["slow"]
defaults = {{ max_tokens = 20 }}
[models.embed]
model_id = "amazon.titan-embed-text-v2:0"
[models.image]
model_id = "amazon.titan-image-generator-v2:0"

[[auth.keys]]
name = "team-a"
sha256 = "{}"
[[auth.keys]]
name = "team-b"
sha256 = "{}"
requests_per_minute = 1
"#,
        server::auth::hash_key(KEY_A),
        server::auth::hash_key(KEY_B),
    );
    Harness::start_with("max_attempts = 2\nretry_base_ms = 1\nretry_cap_ms = 2\n", &rest).await
}

async fn post_as(h: &Harness, key: &str, path: &str, body: &Value) -> (StatusCode, String) {
    let response = h.http.post(h.url(path)).bearer_auth(key).json(body).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Attempts the pipeline makes for a Bedrock error that persists, with `max_attempts = 2`.
fn attempts_for(kind: ErrorKind) -> u32 {
    match kind {
        ErrorKind::Throttling
        | ErrorKind::ServiceUnavailable
        | ErrorKind::ModelNotReady
        | ErrorKind::InternalServer => 2,
        _ => 1,
    }
}

fn error_type_of(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Throttling | ErrorKind::ServiceQuotaExceeded => "upstream_throttled",
        ErrorKind::Validation => "upstream_rejected",
        ErrorKind::ModelTimeout => "upstream_timeout",
        ErrorKind::ServiceUnavailable | ErrorKind::ModelNotReady => "upstream_unavailable",
        ErrorKind::AccessDenied | ErrorKind::ResourceNotFound => "upstream_misconfigured",
        ErrorKind::InternalServer | ErrorKind::ModelError | ErrorKind::ModelStreamError => {
            "upstream_error"
        }
    }
}

#[tokio::test]
async fn one_scrape_after_a_scripted_sequence_shows_the_exact_counts() {
    let h = scripted_gateway().await;
    let ok = StatusCode::OK;

    // Successes on every API shape, streamed and not.
    let calls: Vec<(&str, Value)> = vec![
        ("/v1/generate", json!({"model": "titan", "prompt": "Hi"})),
        ("/v1/generate", json!({"model": "titan", "prompt": "Hi", "stream": true})),
        (
            "/v1/chat/completions",
            json!({"model": "titan", "messages": [{"role": "user", "content": "Hi"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "titan", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
        ),
        ("/v1/completions", json!({"model": "titan", "prompt": "Hi"})),
        ("/model/titan/invoke", json!({"inputText": "Hi"})),
        ("/model/titan/invoke-with-response-stream", json!({"inputText": "Hi"})),
        ("/v1/embed", json!({"model": "embed", "input": "Hi"})),
        ("/v1/embeddings", json!({"model": "embed", "input": "Hi"})),
        ("/v1/images", json!({"model": "image", "prompt": "a fox"})),
        ("/v1/images/generations", json!({"model": "image", "prompt": "a fox"})),
    ];
    for (path, body) in &calls {
        let (status, text) = post_as(&h, KEY_A, path, body).await;
        assert_eq!(status, ok, "{path}: {text}");
    }

    // Every Bedrock error type, on its own alias.
    for kind in ErrorKind::ALL {
        let fault = Behavior { fault: Some(Fault::Error(kind)), ..Behavior::default() };
        h.sim.set_behavior("anthropic.claude-v2:1", fault);
        let (status, text) =
            post_as(&h, KEY_A, "/v1/generate", &json!({"model": "flaky", "prompt": "Hi"})).await;
        assert!(!status.is_success(), "{kind:?}: {text}");
    }
    h.sim.clear_behaviors();

    // A throttle, retried on the same target.
    let once = Behavior {
        fault: Some(Fault::Error(ErrorKind::Throttling)),
        fault_times: Some(1),
        ..Behavior::default()
    };
    h.sim.set_behavior("meta.llama3-8b-instruct-v1:0", once);
    let (status, text) =
        post_as(&h, KEY_A, "/v1/generate", &json!({"model": "retry", "prompt": "Hi"})).await;
    assert_eq!(status, ok, "{text}");

    // A fallback: the first target is unavailable.
    let down = Behavior {
        fault: Some(Fault::Error(ErrorKind::ServiceUnavailable)),
        ..Behavior::default()
    };
    h.sim.set_behavior("amazon.titan-text-express-v1", down);
    let (status, text) =
        post_as(&h, KEY_A, "/v1/generate", &json!({"model": "fallback", "prompt": "Hi"})).await;
    assert_eq!(status, ok, "{text}");

    // Two requests at once on a target of concurrency 1: the second waits in the queue.
    let slow = Behavior { first_byte_latency: Duration::from_millis(300), ..Behavior::default() };
    h.sim.set_behavior("mistral.mistral-7b-instruct-v0:2", slow);
    let body = json!({"model": "queued", "prompt": "Hi"});
    let (first, second) = tokio::join!(
        post_as(&h, KEY_A, "/v1/generate", &body),
        post_as(&h, KEY_A, "/v1/generate", &body)
    );
    assert_eq!((first.0, second.0), (ok, ok), "{} {}", first.1, second.1);

    // A caller over its own budget (one request a minute), and one with no key.
    let (status, _) =
        post_as(&h, KEY_B, "/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(status, ok);
    let (status, _) =
        post_as(&h, KEY_B, "/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _) = h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Streams and their bodies are recorded when their last byte is gone: a beat.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = Exposition::parse(&h.scrape().await);
    let duration = "gen_ai_server_request_duration_seconds_count";

    // Caller side: one series per API shape, route, alias, stream, status and error.
    let count = |labels: &[(&str, &str)]| m.sum(duration, labels);
    let routes = [
        ("gateway", "/v1/generate", "titan", "false", 2.0), // team-a and team-b
        ("gateway", "/v1/generate", "titan", "true", 1.0),
        ("openai", "/v1/chat/completions", "titan", "false", 1.0),
        ("openai", "/v1/chat/completions", "titan", "true", 1.0),
        ("openai", "/v1/completions", "titan", "false", 1.0),
        ("bedrock", "/model/{modelId}/invoke", "titan", "false", 1.0),
        ("bedrock", "/model/{modelId}/invoke-with-response-stream", "titan", "true", 1.0),
        ("gateway", "/v1/embed", "embed", "false", 1.0),
        ("openai", "/v1/embeddings", "embed", "false", 1.0),
        ("gateway", "/v1/images", "image", "false", 1.0),
        ("openai", "/v1/images/generations", "image", "false", 1.0),
    ];
    for (api, route, alias, stream, n) in routes {
        let labels = [
            ("api", api),
            ("route", route),
            ("alias", alias),
            ("stream", stream),
            ("status_class", "2xx"),
            ("error_type", "none"),
        ];
        assert_eq!(count(&labels), n, "{labels:?}");
    }
    assert_eq!(
        m.label_names(duration),
        BTreeSet::from([[
            "alias",
            "api",
            "error_type",
            "family",
            "gen_ai_operation_name",
            "gen_ai_provider_name",
            "route",
            "status_class",
            "stream"
        ]
        .map(str::to_owned)
        .into_iter()
        .collect()])
    );
    assert_eq!(
        count(&[
            ("route", "/v1/chat/completions"),
            ("gen_ai_operation_name", "chat"),
            ("family", "titan_text")
        ]),
        2.0
    );
    assert_eq!(
        count(&[("route", "/v1/completions"), ("gen_ai_operation_name", "text_completion")]),
        1.0
    );
    assert_eq!(count(&[("alias", "embed"), ("gen_ai_operation_name", "embeddings")]), 2.0);
    assert_eq!(count(&[("alias", "image"), ("gen_ai_operation_name", "generate_content")]), 2.0);
    // The refusals: the caller over budget, the missing key (no alias resolved).
    assert_eq!(
        count(&[("alias", "titan"), ("status_class", "4xx"), ("error_type", "rate_limited")]),
        1.0
    );
    assert_eq!(
        count(&[("alias", "other"), ("status_class", "4xx"), ("error_type", "unauthenticated")]),
        1.0
    );
    // Errors, by the gateway's error type, one request each kind.
    for kind in ErrorKind::ALL {
        let n_kinds =
            ErrorKind::ALL.iter().filter(|k| error_type_of(**k) == error_type_of(kind)).count();
        assert_eq!(
            count(&[("alias", "flaky"), ("error_type", error_type_of(kind))]),
            n_kinds as f64,
            "{kind:?}"
        );
    }
    // Time to first token: the three streams.
    let ttft = "gen_ai_server_time_to_first_token_seconds_count";
    assert_eq!(m.sum(ttft, &[("alias", "titan")]), 3.0);
    assert_eq!(m.sum(ttft, &[]), 3.0);
    assert_eq!(m.sum("gateway_active_streams", &[]), 0.0);
    // In flight: only the scrape's own ... none on the main listener.
    assert_eq!(m.sum("gateway_requests_in_flight", &[]), 0.0);

    // Upstream side: attempts and errors by target and Bedrock's error shape.
    for kind in ErrorKind::ALL {
        let shape = kind.shape_name();
        let errors = m
            .sum("gateway_upstream_errors_total", &[("target", "flaky"), ("bedrock_error", shape)]);
        assert_eq!(errors, f64::from(attempts_for(kind)), "{shape}");
    }
    let flaky_attempts: u32 = ErrorKind::ALL.iter().map(|k| attempts_for(*k)).sum();
    assert_eq!(
        m.sum("gateway_upstream_attempts_total", &[("target", "flaky")]),
        f64::from(flaky_attempts)
    );
    assert_eq!(m.sum("gateway_upstream_retries_total", &[("target", "flaky")]), 4.0);
    assert_eq!(m.sum("gateway_upstream_throttles_total", &[("target", "flaky")]), 2.0);
    // The retried throttle: a throttled attempt, then a success.
    let retry = |outcome| {
        m.sum("gateway_upstream_attempts_total", &[("target", "retry"), ("outcome", outcome)])
    };
    assert_eq!((retry("upstream_throttled"), retry("success")), (1.0, 1.0));
    assert_eq!(m.sum("gateway_upstream_retries_total", &[("target", "retry")]), 1.0);
    assert_eq!(m.sum("gateway_upstream_throttles_total", &[("target", "retry")]), 1.0);
    // The fallback.
    let fallback =
        [("from_target", "titan-a"), ("to_target", "titan-b"), ("reason", "upstream_unavailable")];
    assert_eq!(m.sum("gateway_fallbacks_total", &fallback), 1.0);
    assert_eq!(m.sum("gateway_fallbacks_total", &[]), 1.0);
    let operation = "gen_ai_client_operation_duration_seconds_count";
    assert_eq!(
        m.sum(operation, &[("target", "titan-a"), ("outcome", "upstream_unavailable")]),
        1.0
    );
    assert_eq!(m.sum(operation, &[("target", "titan-b"), ("outcome", "success")]), 1.0);
    assert_eq!(
        m.sum(
            operation,
            &[
                ("target", "titan"),
                ("gen_ai_request_model", "amazon.titan-text-premier-v1:0"),
                ("mode", "on_demand"),
                ("region", "default"),
                ("stream", "true")
            ]
        ),
        3.0
    );
    // Tokens of every served text call on `titan` (input and output), as Bedrock counted.
    let tokens = "gen_ai_client_token_usage_count";
    assert_eq!(m.sum(tokens, &[("target", "titan"), ("gen_ai_token_type", "input")]), 8.0);
    assert_eq!(m.sum(tokens, &[("target", "titan"), ("gen_ai_token_type", "output")]), 8.0);
    // Bedrock's own latency, beside ours: headers for whole answers, invocation metrics
    // for streams.
    let invocation = "bedrock_invocation_latency_seconds_count";
    assert_eq!(m.sum(invocation, &[("target", "titan"), ("stream", "false")]), 5.0);
    assert_eq!(m.sum(invocation, &[("target", "titan"), ("stream", "true")]), 3.0);
    assert_eq!(m.sum("bedrock_first_byte_latency_seconds_count", &[("target", "titan")]), 3.0);

    // Quota and admission: the queued pair, the caller refused.
    let wait = [("target", "slow"), ("outcome", "admitted")];
    assert_eq!(m.sum("gateway_queue_wait_seconds_count", &wait), 2.0);
    assert!(
        m.sum("gateway_queue_wait_seconds_sum", &wait) >= 0.2,
        "the second waited for the first"
    );
    let refused = [("scope", "caller"), ("name", "team-b"), ("reason", "requests_per_minute")];
    assert_eq!(m.sum("gateway_admission_rejections_total", &refused), 1.0);
    assert_eq!(m.sum("gateway_admission_rejections_total", &[]), 1.0);
    let slow = [("scope", "route"), ("name", "slow")];
    assert_eq!(m.sum("gateway_quota_limit_tokens_per_minute", &slow), 100_000.0);
    assert_eq!(m.sum("gateway_quota_admitted_tokens_per_minute", &slow), 100_000.0);
    assert_eq!(m.sum("gateway_quota_reserved_tokens", &slow), 0.0);
    assert!(m.sum("gateway_quota_tokens_reserved_total", &slow) > 40.0, "two reservations");
    assert!(m.sum("gateway_quota_tokens_settled_total", &slow) > 0.0);
    assert_eq!(m.sum("gateway_queue_length", &[("target", "slow")]), 0.0);
    assert_eq!(m.sum("gateway_limits_fail_open_total", &[]), 0.0);

    // Process.
    let build = m.matching("gateway_build_info", &[]).collect::<Vec<_>>();
    assert_eq!(build.len(), 1);
    assert_eq!(build[0].0["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build[0].1, 1.0);
    assert_eq!(m.sum("gateway_config_last_reload_successful", &[]), 1.0);
    assert!(m.sum("process_resident_memory_bytes", &[]) > 0.0);
}

#[tokio::test]
async fn unknown_models_and_paths_create_no_series() {
    let h = Harness::start().await;
    let flood = async |from: usize, to: usize| {
        for i in from..to {
            let model = format!("no-such-model-{i}");
            let (status, _, _) =
                h.post("/v1/generate", &json!({"model": model, "prompt": "Hi"})).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let (status, _) = h.get(&format!("/no/such/path/{i}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let path = format!("/model/{model}/invoke");
            let (status, _, _) = h.post(&path, &json!({"inputText": "Hi"})).await;
            assert!(status.is_client_error(), "{status}");
            let chat = json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]});
            let (status, _, _) = h.post("/v1/chat/completions", &chat).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
    };
    // Every kind of refusal once, so that its series exist; then a thousand more.
    flood(0, 2).await;
    let before = Exposition::parse(&h.scrape().await);
    flood(2, 1002).await;
    let after = Exposition::parse(&h.scrape().await);
    let series = |m: &Exposition| {
        m.samples
            .iter()
            .filter(|(name, _, _)| !name.starts_with("process_"))
            .map(|(name, labels, _)| (name.clone(), labels.clone()))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(series(&before), series(&after));
    assert!(before.n_series() > 0);
    let unmatched = after.sum(
        "gen_ai_server_request_duration_seconds_count",
        &[("route", "other"), ("alias", "other")],
    );
    assert_eq!(unmatched, 1002.0, "unknown paths are counted under route=\"other\"");
    let no_alias =
        [("route", "/v1/generate"), ("alias", "other"), ("error_type", "model_not_found")];
    assert_eq!(after.sum("gen_ai_server_request_duration_seconds_count", &no_alias), 1002.0);
}

/// `promtool`: `$PROMTOOL`, else `target/tools/promtool` (what `deploy/install-promtool`
/// puts there), else the one on `PATH`.
fn promtool() -> std::path::PathBuf {
    #[expect(clippy::disallowed_methods, reason = "a test's own tool location")]
    if let Ok(path) = std::env::var("PROMTOOL") {
        return path.into();
    }
    let local = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tools/promtool");
    if std::path::Path::new(local).exists() {
        return local.into();
    }
    "promtool".into()
}

#[tokio::test]
async fn the_exposition_passes_promtool_check_metrics() {
    let h = Harness::start().await;
    let (status, _, _) = h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::OK);
    let events = h.stream(&json!({"model": "claude", "prompt": "Hi", "stream": true})).await;
    assert_eq!(events.0, StatusCode::OK);
    let (status, _, _) = h.post("/v1/generate", &json!({"model": "nope", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let text = h.scrape().await;
    let mut child = std::process::Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (bash deploy/install-promtool installs it)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool check metrics: {said}\n{text}");
    assert!(said.trim().is_empty(), "promtool has remarks: {said}");
}

#[tokio::test]
async fn admin_listener_serves_health_and_refuses_a_reload_without_a_file() {
    let h = Harness::start().await;
    for path in ["/healthz", "/readyz"] {
        let response = h.http.get(format!("{}{path}", h.admin_url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let response = h.http.post(format!("{}/-/reload", h.admin_url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let m = Exposition::parse(&h.scrape().await);
    assert_eq!(m.sum("gateway_config_reloads_total", &[("outcome", "failure")]), 1.0);
    assert_eq!(m.sum("gateway_config_last_reload_successful", &[]), 0.0);
    // `/metrics` is not on the API listener.
    let (status, _) = h.get("/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_caller_that_goes_away_is_recorded_and_leaves_nothing_in_flight() {
    let models = r#"
[targets.slow]
model_id = "mistral.mistral-7b-instruct-v0:2"
max_concurrency = 1
[models.queued]
targets = ["slow"]
"#;
    let h = Harness::start_with("max_attempts = 1\n", models).await;
    let slow = Behavior { first_byte_latency: Duration::from_millis(400), ..Behavior::default() };
    h.sim.set_behavior("mistral.mistral-7b-instruct-v0:2", slow);
    let body = json!({"model": "queued", "prompt": "Hi"});
    let impatient = |wait_ms: u64| {
        h.http
            .post(h.url("/v1/generate"))
            .timeout(Duration::from_millis(wait_ms))
            .json(&body)
            .send()
    };
    // One holds the only slot; one gives up while it waits in the queue behind it.
    let (held, gone) = tokio::join!(h.post("/v1/generate", &body), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        impatient(150).await
    });
    assert_eq!(held.0, StatusCode::OK);
    assert!(gone.is_err());
    // One gives up while Bedrock is answering.
    assert!(impatient(100).await.is_err());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let m = Exposition::parse(&h.scrape().await);
    let cancelled =
        [("route", "/v1/generate"), ("status_class", "4xx"), ("error_type", "cancelled")];
    assert_eq!(m.sum("gen_ai_server_request_duration_seconds_count", &cancelled), 2.0);
    assert_eq!(m.sum("gateway_requests_in_flight", &[]), 0.0);
    assert_eq!(m.sum("gateway_quota_reserved_tokens", &[("name", "slow")]), 0.0);
}
