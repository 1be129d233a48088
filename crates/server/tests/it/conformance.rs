//! The thin transport against the SDK's: the same calls through both to the simulator,
//! success and every error Bedrock (or a broken upstream) can answer with, whole and
//! streamed, give the same outcome: the same `UpstreamError` (kind, message, code, status
//! and the extra members of the model errors), the same body bytes and headers, the same
//! chunks. And the request each sends for the same call: the same path (the model id's
//! encoding), body, modelled headers and signed headers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bedrock_sim::{BadBody, Behavior, ErrorKind, Fault, Quota, Simulator};
use bytes::Bytes;
use serde_json::{Value, json};
use server::pipeline::bedrock_error_label;
use server::upstream::{BedrockErrorDetail, BedrockErrorKind, RawRequest, Upstream, UpstreamError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Each call's bound: far above any case's time, far below a hung test.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The most chunks read of a stream (an endless one is cut here).
const MAX_CHUNKS: usize = 40;

/// A simulator and the two transports in front of it.
struct Pair {
    sim: Simulator,
    thin: Upstream,
    sdk: Upstream,
}

/// What one call gave, in a form the two transports must agree on: Bedrock's request ids
/// and measured latencies (which differ from call to call) are only present or absent.
#[derive(Debug, PartialEq)]
enum Outcome {
    Answer {
        content_type: String,
        body: Bytes,
        headers: Vec<(&'static str, String)>,
    },
    Stream {
        content_type: String,
        headers: Vec<(&'static str, String)>,
        chunks: Vec<Value>,
        end: End,
    },
    Failed(Failure),
}

#[derive(Debug, PartialEq)]
enum End {
    Clean,
    /// Cut by the test after [`MAX_CHUNKS`] (or the case's own limit).
    Cut,
    Failed(Failure),
}

/// An `UpstreamError` less the free text of the errors that are not Bedrock's (each
/// transport words its own).
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    Bedrock { kind: BedrockErrorKind, message: String, detail: BedrockErrorDetail },
    Timeout,
    Stalled,
    Unreachable,
    Malformed,
    Sdk,
    Credentials,
}

/// One call and what its outcome must be.
struct Case {
    name: &'static str,
    model_id: &'static str,
    body: Value,
    request: RawRequest,
    stream: bool,
    behavior: Option<Behavior>,
    quota: Option<Quota>,
    /// The most chunks to read.
    max_chunks: usize,
    /// `bedrock_error_label` of the error (or of the stream's end), `"ok"` for a success.
    expected: &'static str,
}

impl Pair {
    async fn start() -> Pair {
        let sim = Simulator::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(sim.clone().serve(listener, std::future::pending()));
        let thin = upstream(&url, "thin", "").await;
        let sdk = upstream(&url, "sdk", "").await;
        Pair { sim, thin, sdk }
    }
}

/// A transport to `url` from a config's `[upstream]` table.
async fn upstream(url: &str, transport: &str, extra: &str) -> Upstream {
    let text = format!(
        "[upstream]\nkind = \"simulator\"\nendpoint_url = \"{url}\"\ntransport = \"{transport}\"\n\
         {extra}\n[models.titan]\nmodel_id = \"amazon.titan-text-express-v1\"\n"
    );
    let config = server::Config::parse(&text, "conformance").unwrap();
    Upstream::from_config(&config.upstream, None, &BTreeSet::new()).await.unwrap()
}

fn case(name: &'static str, model_id: &'static str, body: Value, stream: bool) -> Case {
    Case {
        name,
        model_id,
        body,
        request: RawRequest::default(),
        stream,
        behavior: None,
        quota: None,
        max_chunks: MAX_CHUNKS,
        expected: "ok",
    }
}

impl Case {
    fn fault(mut self, fault: Fault, expected: &'static str) -> Case {
        self.behavior = Some(Behavior { fault: Some(fault), ..Behavior::default() });
        self.expected = expected;
        self
    }

    fn expect(mut self, expected: &'static str) -> Case {
        self.expected = expected;
        self
    }
}

async fn call(upstream: &Upstream, case: &Case) -> Outcome {
    let request = RawRequest { body: Bytes::from(case.body.to_string()), ..case.request.clone() };
    if !case.stream {
        return match upstream.invoke_raw(None, case.model_id, request, CALL_TIMEOUT).await {
            Ok(output) => Outcome::Answer {
                content_type: output.content_type,
                body: output.body,
                headers: headers(output.headers.values),
            },
            Err(error) => Outcome::Failed(failure(error)),
        };
    }
    let output = match upstream.invoke_stream_raw(None, case.model_id, request, CALL_TIMEOUT).await
    {
        Ok(output) => output,
        Err(error) => return Outcome::Failed(failure(error)),
    };
    let mut chunks = output.chunks;
    let mut seen = Vec::new();
    let end = loop {
        if seen.len() == case.max_chunks {
            break End::Cut;
        }
        match tokio::time::timeout(CALL_TIMEOUT, chunks.next_chunk()).await {
            Err(_) => break End::Failed(Failure::Timeout),
            Ok(None) => break End::Clean,
            Ok(Some(Ok(chunk))) => seen.push(chunk_value(&chunk)),
            Ok(Some(Err(error))) => break End::Failed(failure(error)),
        }
    };
    Outcome::Stream {
        content_type: output.content_type,
        headers: headers(output.headers.values),
        chunks: seen,
        end,
    }
}

/// Request ids and latencies only as present.
fn headers(values: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    values
        .into_iter()
        .map(|(name, value)| match name {
            "x-amzn-requestid" | "x-amzn-bedrock-invocation-latency" => (name, "…".to_owned()),
            _ => (name, value),
        })
        .collect()
}

/// A chunk's JSON with its invocation metrics' latencies zeroed (measured, so they differ);
/// bytes that are not JSON as a string.
fn chunk_value(chunk: &[u8]) -> Value {
    let Ok(mut value) = serde_json::from_slice::<Value>(chunk) else {
        return Value::String(String::from_utf8_lossy(chunk).into_owned());
    };
    if let Some(metrics) = value.get_mut("amazon-bedrock-invocationMetrics") {
        for name in ["invocationLatency", "firstByteLatency"] {
            if metrics.get(name).is_some() {
                metrics[name] = json!(0);
            }
        }
    }
    value
}

fn failure(error: UpstreamError) -> Failure {
    match error {
        UpstreamError::Bedrock { kind, message, detail } => {
            let mut detail = *detail;
            detail.request_id = detail.request_id.map(|_| "…".to_owned());
            Failure::Bedrock { kind, message, detail }
        }
        UpstreamError::Timeout => Failure::Timeout,
        UpstreamError::Stalled(_) => Failure::Stalled,
        UpstreamError::Unreachable(_) => Failure::Unreachable,
        UpstreamError::Malformed(_) => Failure::Malformed,
        UpstreamError::Sdk(_) => Failure::Sdk,
        UpstreamError::Credentials(_) => Failure::Credentials,
    }
}

/// The `bedrock_error_label` of an outcome's error, `"ok"` for a whole answer or a stream
/// that ended cleanly or was cut.
fn label(outcome: &Outcome) -> String {
    let of = |failure: &Failure| {
        let error = match failure {
            Failure::Bedrock { kind, message, detail } => UpstreamError::Bedrock {
                kind: *kind,
                message: message.clone(),
                detail: Box::new(detail.clone()),
            },
            Failure::Timeout => UpstreamError::Timeout,
            Failure::Stalled => UpstreamError::Stalled(Duration::ZERO),
            Failure::Unreachable => UpstreamError::Unreachable(String::new()),
            Failure::Malformed => UpstreamError::Malformed(String::new()),
            Failure::Sdk => UpstreamError::Sdk(String::new()),
            Failure::Credentials => UpstreamError::Credentials(String::new()),
        };
        bedrock_error_label(&error).to_owned()
    };
    match outcome {
        Outcome::Failed(failure) | Outcome::Stream { end: End::Failed(failure), .. } => of(failure),
        Outcome::Answer { .. } | Outcome::Stream { .. } => "ok".to_owned(),
    }
}

/// Runs each case through both transports and compares.
async fn check(pair: &Pair, cases: Vec<Case>) {
    for case in cases {
        pair.sim.clear_behaviors();
        pair.sim.clear_quotas();
        if let Some(behavior) = &case.behavior {
            pair.sim.set_behavior("*", behavior.clone());
        }
        if let Some(quota) = case.quota {
            pair.sim.set_quota(case.model_id, quota).unwrap();
        }
        let thin = call(&pair.thin, &case).await;
        if let Some(quota) = case.quota {
            // The SDK's call meets the same full quota.
            pair.sim.set_quota(case.model_id, quota).unwrap();
        }
        let sdk = call(&pair.sdk, &case).await;
        assert_eq!(thin, sdk, "{}: thin (left) and SDK (right) differ", case.name);
        assert_eq!(label(&thin), case.expected, "{}: {thin:?}", case.name);
    }
    pair.sim.clear_behaviors();
    pair.sim.clear_quotas();
    // Every call was signed, and the simulator verified each signature.
    assert_eq!(pair.sim.auth_refusals(), 0, "requests refused for their signature");
}

fn titan(prompt: &str, max_tokens: u32) -> Value {
    json!({"inputText": prompt, "textGenerationConfig": {"maxTokenCount": max_tokens}})
}

fn claude() -> Value {
    json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 12,
        "messages": [{"role": "user", "content": "Tell me about the sea"}],
    })
}

const TITAN: &str = "amazon.titan-text-express-v1";
const CLAUDE: &str = "anthropic.claude-3-haiku-20240307-v1:0";

#[tokio::test]
async fn answers_and_streams_are_the_same_through_both_transports() {
    let pair = Pair::start().await;
    let options = RawRequest {
        trace: Some("ENABLED".to_owned()),
        performance_config_latency: Some("optimized".to_owned()),
        service_tier: Some("flex".to_owned()),
        request_metadata: Some(r#"{"team":"search"}"#.to_owned()),
        ..RawRequest::default()
    };
    let guardrail = RawRequest {
        guardrail_identifier: Some("gr-conformance".to_owned()),
        guardrail_version: Some("1".to_owned()),
        trace: Some("ENABLED".to_owned()),
        ..RawRequest::default()
    };
    let arn = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1";
    let mut cases = Vec::new();
    for stream in [false, true] {
        cases.extend([
            case("titan", TITAN, titan("Tell me about the sea", 32), stream),
            case("claude messages", CLAUDE, claude(), stream),
            case("an ARN model id", arn, titan("An ARN", 8), stream),
            Case { request: options.clone(), ..case("options", TITAN, titan("Hi", 4), stream) },
            Case {
                request: guardrail.clone(),
                ..case(
                    "guardrail",
                    TITAN,
                    titan(&format!("say {}", bedrock_sim::GUARDRAIL_TRIGGER), 8),
                    stream,
                )
            },
            Case {
                request: RawRequest {
                    content_type: Some("application/json".to_owned()),
                    accept: Some("application/json".to_owned()),
                    ..RawRequest::default()
                },
                ..case("content type and accept", TITAN, titan("Hi", 4), stream)
            },
        ]);
    }
    // An image answer as raw PNG bytes.
    cases.push(Case {
        request: RawRequest { accept: Some("image/png".to_owned()), ..RawRequest::default() },
        ..case(
            "raw PNG",
            "stability.stable-diffusion-xl-v1",
            json!({"text_prompts": [{"text": "a lighthouse"}], "height": 1024, "width": 1024}),
            false,
        )
    });
    check(&pair, cases).await;
}

#[tokio::test]
async fn every_bedrock_error_is_the_same_error_through_both_transports() {
    let pair = Pair::start().await;
    let mut cases = Vec::new();
    for kind in ErrorKind::ALL {
        for stream in [false, true] {
            cases.push(
                case("error answer", TITAN, titan("Hi", 8), stream)
                    .fault(Fault::Error(kind), kind.shape_name()),
            );
        }
        // In the stream, after two chunks: the kinds `ResponseStream` has no member for
        // are exceptions of no code.
        let in_stream =
            if kind.stream_exception_type().is_some() { kind.shape_name() } else { "other" };
        cases.push(
            case("exception frame", TITAN, titan("Tell me about the sea", 16), true)
                .fault(Fault::ErrorAfterChunks(kind, 2), in_stream),
        );
    }
    for stream in [false, true] {
        cases.extend([
            // Bedrock's own refusals, from the simulator's checks.
            case("invalid body", TITAN, json!({"inputText": 5}), stream)
                .expect("ValidationException"),
            case("unknown model", "amazon.titan-text-nonexistent-v9", titan("Hi", 4), stream)
                .expect("ValidationException"),
            case(
                "needs an inference profile",
                "anthropic.claude-3-5-sonnet-20241022-v2:0",
                claude(),
                stream,
            )
            .expect("ValidationException"),
            Case {
                request: RawRequest {
                    service_tier: Some("gold".to_owned()),
                    ..RawRequest::default()
                },
                ..case("an unknown service tier", TITAN, titan("Hi", 4), stream)
            }
            .expect("ValidationException"),
            Case {
                quota: Some(Quota { tokens_per_minute: Some(1), ..Quota::default() }),
                ..case("over the token quota", TITAN, titan("Hi", 4), stream)
            }
            .expect("ThrottlingException"),
            case("a long message", TITAN, titan("Hi", 4), stream).fault(
                Fault::LongErrorMessage(ErrorKind::Throttling, 200_000),
                "ThrottlingException",
            ),
        ]);
    }
    check(&pair, cases).await;
}

#[tokio::test]
async fn a_broken_or_hostile_upstream_fails_the_same_way_through_both_transports() {
    let pair = Pair::start().await;
    let sea = || titan("Tell me about the sea and the lighthouse keeper", 12);
    let mut cases = Vec::new();
    for stream in [false, true] {
        cases.extend([
            case("proxy error page", TITAN, sea(), stream).fault(Fault::ProxyError(502), "other"),
            case("unknown error type", TITAN, sea(), stream)
                .fault(Fault::UnknownError("SimulatedNewException".to_owned()), "other"),
            case("reset mid-body", TITAN, sea(), stream)
                .fault(Fault::ResetMidBodyAfterChunks(2), "malformed"),
            case("abort", TITAN, sea(), stream).fault(Fault::AbortAfterChunks(2), "malformed"),
            case("huge frame", TITAN, sea(), stream)
                .fault(Fault::HugeFrameAfterChunks(if stream { 2 } else { 0 }), "malformed"),
            Case { max_chunks: 2, ..case("drip", TITAN, sea(), stream) }
                .fault(Fault::Drip(Duration::from_millis(1)), "ok"),
        ]);
        for bad in
            [BadBody::InvalidJson, BadBody::OtherFamily, BadBody::UnknownShape, BadBody::Empty]
        {
            // Bytes the transport passes on: the families judge them.
            cases.push(
                case("bad body", TITAN, sea(), stream)
                    .fault(Fault::BadBodyAfterChunks(bad, 2), "ok"),
            );
        }
    }
    cases.extend([
        case("truncated stream", TITAN, sea(), true)
            .fault(Fault::TruncateAfterChunks(2), "malformed"),
        case("truncated answer", TITAN, sea(), false).fault(Fault::TruncateAfterChunks(2), "ok"),
        case("bad checksum", TITAN, sea(), true)
            .fault(Fault::BadChecksumAfterChunks(2), "malformed"),
        case("endless stream", TITAN, sea(), true).fault(Fault::Endless, "ok"),
        case("endless answer", TITAN, sea(), false).fault(Fault::Endless, "malformed"),
    ]);
    check(&pair, cases).await;
}

#[tokio::test]
async fn unreachable_and_slow_upstreams_fail_the_same_way_through_both_transports() {
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let pair = Pair {
        sim: Simulator::new(),
        thin: upstream(&url, "thin", "").await,
        sdk: upstream(&url, "sdk", "").await,
    };
    for stream in [false, true] {
        let case = case("nothing listens", TITAN, titan("Hi", 4), stream).expect("unreachable");
        assert_eq!(call(&pair.thin, &case).await, call(&pair.sdk, &case).await);
        assert_eq!(label(&call(&pair.thin, &case).await), "unreachable");
    }
    // A Bedrock slower than the call's timeout.
    let pair = Pair::start().await;
    pair.sim.set_behavior(
        "*",
        Behavior { first_byte_latency: Duration::from_secs(30), ..Behavior::default() },
    );
    for stream in [false, true] {
        let request =
            RawRequest { body: Bytes::from(titan("Hi", 4).to_string()), ..RawRequest::default() };
        let short = Duration::from_millis(300);
        for upstream in [&pair.thin, &pair.sdk] {
            let error = if stream {
                upstream.invoke_stream_raw(None, TITAN, request.clone(), short).await.err()
            } else {
                upstream.invoke_raw(None, TITAN, request.clone(), short).await.err()
            };
            assert!(matches!(error, Some(UpstreamError::Timeout)), "{error:?}");
        }
    }
}

/// A request as it arrived: its request line, headers (lower-case names, in order) and
/// body.
#[derive(Debug, Clone)]
struct Captured {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A server that records each request and answers `{}`.
async fn recorder() -> (String, Arc<Mutex<Vec<Captured>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let mut buffer = vec![0_u8; 16 * 1024];
                let captured = loop {
                    let n = socket.read(&mut buffer).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    bytes.extend_from_slice(&buffer[..n]);
                    let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&bytes[..at]).into_owned();
                    let mut lines = head.split("\r\n");
                    let request_line = lines.next().unwrap().to_owned();
                    let headers: Vec<(String, String)> = lines
                        .map(|line| {
                            let (name, value) = line.split_once(':').unwrap();
                            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
                        })
                        .collect();
                    let length: usize = headers
                        .iter()
                        .find(|(name, _)| name == "content-length")
                        .map_or(0, |(_, value)| value.parse().unwrap());
                    if bytes.len() >= at + 4 + length {
                        let body = bytes[at + 4..at + 4 + length].to_vec();
                        break Captured { request_line, headers, body };
                    }
                };
                recorded.lock().unwrap().push(captured);
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                              content-length: 2\r\nconnection: close\r\n\r\n{}";
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, seen)
}

fn header<'a>(captured: &'a Captured, name: &str) -> Option<&'a str> {
    captured.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The `SignedHeaders` and the credential scope without its date.
fn signature_parts(captured: &Captured) -> (Vec<String>, String) {
    let authorization = header(captured, "authorization").unwrap();
    let field = |key: &str| {
        authorization
            .split([',', ' '])
            .find_map(|part| part.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {authorization}"))
            .to_owned()
    };
    let signed = field("SignedHeaders=").split(';').map(str::to_owned).collect();
    let credential = field("Credential=");
    let mut scope: Vec<&str> = credential.split('/').collect();
    scope.remove(1);
    (signed, scope.join("/"))
}

/// The headers only the SDK's orchestrator sends, its user agent and invocation bookkeeping,
/// which the gateway's SDK transport turns off.
const SDK_ONLY_HEADERS: [&str; 3] =
    ["x-amz-user-agent", "amz-sdk-invocation-id", "amz-sdk-request"];

#[tokio::test]
async fn both_transports_send_the_same_request_for_the_same_call() {
    let (url, seen) = recorder().await;
    let thin = upstream(&url, "thin", "").await;
    let sdk = upstream(&url, "sdk", "").await;
    let model_ids = [
        "amazon.titan-text-express-v1",
        "anthropic.claude-v2:1",
        "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2",
        "arn:aws:sagemaker:us-east-1:767398002385:endpoint/endpoint-quick-start-idr7y",
        "a model id with spaces+plus~tilde",
        "modèle-ünïcode",
    ];
    let request = RawRequest {
        body: Bytes::from_static(br#"{"inputText":"Hi \u00e9"}"#),
        content_type: Some("application/json".to_owned()),
        accept: Some("application/json".to_owned()),
        trace: Some("ENABLED".to_owned()),
        guardrail_identifier: Some(
            "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123".to_owned(),
        ),
        guardrail_version: Some("DRAFT".to_owned()),
        performance_config_latency: Some("optimized".to_owned()),
        service_tier: Some("priority".to_owned()),
        request_metadata: Some(r#"{"k":"v w"}"#.to_owned()),
    };
    let bare = RawRequest { body: Bytes::from_static(b"{}"), ..RawRequest::default() };
    for model_id in model_ids {
        for stream in [false, true] {
            for request in [&request, &bare] {
                let mut sent = Vec::new();
                for upstream in [&thin, &sdk] {
                    seen.lock().unwrap().clear();
                    let timeout = Duration::from_secs(10);
                    // The recorder's `{}` is no event stream: only the request matters here.
                    if stream {
                        let _ = upstream
                            .invoke_stream_raw(None, model_id, request.clone(), timeout)
                            .await;
                    } else {
                        let _ = upstream.invoke_raw(None, model_id, request.clone(), timeout).await;
                    }
                    let captured = seen.lock().unwrap().clone();
                    assert_eq!(captured.len(), 1, "{model_id}: one request each");
                    sent.push(captured[0].clone());
                }
                let [thin_sent, sdk_sent] = [&sent[0], &sent[1]];
                // The SDK transport goes without its orchestrator's bookkeeping headers.
                for name in SDK_ONLY_HEADERS.iter().chain(&["user-agent"]) {
                    assert_eq!(header(sdk_sent, name), None, "{name}");
                }
                let context = format!("{model_id}, stream {stream}");
                assert_eq!(thin_sent.request_line, sdk_sent.request_line, "{context}");
                assert_eq!(thin_sent.body, sdk_sent.body, "{context}");
                // Every header the SDK sends but its own bookkeeping and the user agent,
                // with the same value; none other.
                let comparable = |captured: &Captured| -> Vec<(String, String)> {
                    let mut headers: Vec<(String, String)> = captured
                        .headers
                        .iter()
                        .filter(|(name, _)| {
                            !SDK_ONLY_HEADERS.contains(&name.as_str())
                                && !["user-agent", "authorization", "x-amz-date"]
                                    .contains(&name.as_str())
                        })
                        .cloned()
                        .collect();
                    headers.sort();
                    headers
                };
                assert_eq!(comparable(thin_sent), comparable(sdk_sent), "{context}");
                let (thin_signed, thin_scope) = signature_parts(thin_sent);
                let (sdk_signed, sdk_scope) = signature_parts(sdk_sent);
                let sdk_signed: Vec<String> = sdk_signed
                    .into_iter()
                    .filter(|name| !SDK_ONLY_HEADERS.contains(&name.as_str()))
                    .collect();
                assert_eq!(thin_signed, sdk_signed, "{context}");
                assert_eq!(thin_scope, sdk_scope, "{context}");
                assert!(thin_scope.ends_with("/us-east-1/bedrock/aws4_request"), "{thin_scope}");
                assert!(header(thin_sent, "x-amz-date").is_some_and(|date| date.len() == 16));
            }
        }
    }
}

#[tokio::test]
async fn a_wrong_signing_key_is_refused_alike_through_both_transports() {
    // A secret the simulator does not know: the same refusal through both.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sim = Simulator::new();
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    let wrong = format!(
        "access_key_id = \"{}\"\nsecret_access_key = \"not-the-secret\"",
        bedrock_sim::TEST_ACCESS_KEY_ID
    );
    let pair = Pair {
        sim,
        thin: upstream(&url, "thin", &wrong).await,
        sdk: upstream(&url, "sdk", &wrong).await,
    };
    for stream in [false, true] {
        let case = case("wrong secret", TITAN, titan("Hi", 4), stream);
        let thin = call(&pair.thin, &case).await;
        assert_eq!(thin, call(&pair.sdk, &case).await, "stream {stream}");
        let Outcome::Failed(Failure::Bedrock { detail, .. }) = &thin else { panic!("{thin:?}") };
        assert_eq!(detail.http_status, Some(403), "{thin:?}");
        assert_eq!(detail.code.as_deref(), Some("InvalidSignatureException"), "{thin:?}");
    }
    assert_eq!(pair.sim.auth_refusals(), 4);
}

/// The transport the binary reports using, and whether it answers, with `env` set.
async fn transport_used(transport: &str, env: &[(&str, &str)]) -> (String, u16) {
    let config = format!(
        "log_format = \"json\"\n[upstream]\ntransport = \"{transport}\"\n\
         [models.titan]\nmodel_id = \"{TITAN}\"\n"
    );
    let running = crate::logs::Running::start_with(&config, |command| {
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
            command.env_remove(name).env_remove(name.to_ascii_lowercase());
        }
        for (name, value) in env {
            command.env(name, value);
        }
    });
    let line = running.wait_for_line(|line| line.contains("\"upstream: transport\""));
    let line: Value = serde_json::from_str(&line).unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/generate", running.api))
        .json(&json!({"model": "titan", "prompt": "Hi", "max_tokens": 4}))
        .send()
        .await
        .unwrap();
    (line["transport"].as_str().unwrap().to_owned(), response.status().as_u16())
}

#[tokio::test]
async fn a_proxy_for_bedrocks_endpoint_puts_the_calls_on_the_sdks_client() {
    // The embedded simulator's endpoint is http://127.0.0.1:<port>: a proxy for plain
    // HTTP takes it, unless NO_PROXY excludes it. Nothing listens at the proxy's address.
    let proxy = [("HTTP_PROXY", "http://127.0.0.1:9")];
    assert_eq!(transport_used("thin", &[]).await, ("thin".to_owned(), 200));
    let (used, status) = transport_used("thin", &proxy).await;
    // The SDK's client honours the proxy, which is not there.
    assert_eq!((used.as_str(), status), ("sdk", 503));
    let bypassed = [("HTTP_PROXY", "http://127.0.0.1:9"), ("NO_PROXY", "127.0.0.1")];
    assert_eq!(transport_used("thin", &bypassed).await, ("thin".to_owned(), 200));
    assert_eq!(transport_used("sdk", &[]).await, ("sdk".to_owned(), 200));
}

/// A gateway binary with `kind = "bedrock"` in front of a simulator, its AWS settings from
/// `env` alone (no profile files, no instance metadata): the status of one call.
async fn bedrock_kind_call(transport: &str, upstream: &str, env: &[(&str, String)]) -> u16 {
    let dir = std::env::temp_dir().join(format!("gw-conformance-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (aws_config, aws_credentials) = (dir.join("config"), dir.join("credentials"));
    std::fs::write(&aws_config, "").unwrap();
    std::fs::write(&aws_credentials, "").unwrap();
    let config = format!(
        "log_format = \"json\"\n[upstream]\nkind = \"bedrock\"\nregion = \"us-east-1\"\n\
         transport = \"{transport}\"\n{upstream}\n[models.titan]\nmodel_id = \"{TITAN}\"\n"
    );
    let running = crate::logs::Running::start_with(&config, |command| {
        command
            .env_clear()
            .env("NO_COLOR", "1")
            .env("HOME", &dir)
            .env("AWS_CONFIG_FILE", &aws_config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &aws_credentials)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (name, value) in env {
            command.env(name, value);
        }
    });
    let status = reqwest::Client::new()
        .post(format!("{}/v1/generate", running.api))
        .json(&json!({"model": "titan", "prompt": "Hi", "max_tokens": 4}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let _ = std::fs::remove_dir_all(&dir);
    status
}

#[tokio::test]
async fn the_credential_chain_endpoint_settings_and_api_key_of_the_environment_work_alike() {
    let sim = Simulator::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    let keys = [
        ("AWS_ACCESS_KEY_ID", bedrock_sim::TEST_ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", bedrock_sim::TEST_SECRET_ACCESS_KEY.to_owned()),
    ];
    let endpoint = format!("endpoint_url = \"{url}\"");
    let service_endpoint =
        [keys[0].clone(), keys[1].clone(), ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url.clone())];
    let api_key = [("AWS_BEARER_TOKEN_BEDROCK", bedrock_sim::TEST_BEARER_TOKEN.to_owned())];
    let wrong = [keys[0].clone(), ("AWS_SECRET_ACCESS_KEY", "not-the-secret".to_owned())];
    for transport in ["thin", "sdk"] {
        // Keys from the environment, through the default chain and its identity cache.
        assert_eq!(bedrock_kind_call(transport, &endpoint, &keys).await, 200, "{transport}");
        // The service's endpoint from the environment, as the SDK reads it.
        assert_eq!(bedrock_kind_call(transport, "", &service_endpoint).await, 200, "{transport}");
        // A Bedrock API key instead of a signature.
        assert_eq!(bedrock_kind_call(transport, &endpoint, &api_key).await, 200, "{transport}");
        // Bedrock's refusal of a bad signature is the caller's 502 either way.
        assert_eq!(bedrock_kind_call(transport, &endpoint, &wrong).await, 502, "{transport}");
    }
    assert_eq!(sim.auth_refusals(), 2, "only the wrong secret's calls were refused");
}

/// One CountTokens call through `upstream`: the count, or the failure.
async fn count(
    upstream: &Upstream,
    model_id: &str,
    body: &Value,
    timeout: Duration,
) -> Result<u32, Failure> {
    let body = Bytes::from(body.to_string());
    upstream.count_tokens_raw(None, model_id, body, timeout).await.map_err(failure)
}

#[tokio::test]
async fn count_tokens_gives_the_same_outcome_through_both_transports() {
    let pair = Pair::start().await;
    const HAIKU_35: &str = "anthropic.claude-3-5-haiku-20241022-v1:0";
    let mut bad_role = claude();
    bad_role["messages"][0]["role"] = json!("robot");
    let error = |kind: ErrorKind| Some(Fault::Error(kind));
    let cases: Vec<(&str, &str, Value, Option<Fault>, &str)> = vec![
        ("a counting model", HAIKU_35, claude(), None, "ok"),
        ("a model that does not count", CLAUDE, claude(), None, "ValidationException"),
        (
            "a profile id",
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            claude(),
            None,
            "ValidationException",
        ),
        ("an unknown model", "acme.nothing-v1", claude(), None, "ValidationException"),
        ("a body the family refuses", HAIKU_35, bad_role, None, "ValidationException"),
        ("throttled", HAIKU_35, claude(), error(ErrorKind::Throttling), "ThrottlingException"),
        ("denied", HAIKU_35, claude(), error(ErrorKind::AccessDenied), "AccessDeniedException"),
        (
            "internal",
            HAIKU_35,
            claude(),
            error(ErrorKind::InternalServer),
            "InternalServerException",
        ),
        (
            "unavailable",
            HAIKU_35,
            claude(),
            error(ErrorKind::ServiceUnavailable),
            "ServiceUnavailableException",
        ),
        // Not a shape CountTokens declares: kind `Unknown`, its code kept.
        (
            "a model timeout",
            HAIKU_35,
            claude(),
            error(ErrorKind::ModelTimeout),
            "ModelTimeoutException",
        ),
    ];
    for (name, model_id, body, fault, expected) in cases {
        pair.sim.clear_behaviors();
        if let Some(fault) = &fault {
            let behavior = Behavior { fault: Some(fault.clone()), ..Behavior::default() };
            pair.sim.set_behavior("*", behavior);
        }
        let thin = count(&pair.thin, model_id, &body, CALL_TIMEOUT).await;
        let sdk = count(&pair.sdk, model_id, &body, CALL_TIMEOUT).await;
        assert_eq!(thin, sdk, "{name}: thin (left) and SDK (right) differ");
        let label = match &thin {
            Ok(_) => "ok".to_owned(),
            Err(failure) => label(&Outcome::Failed(failure.clone())),
        };
        assert_eq!(label, expected, "{name}: {thin:?}");
        if let Err(Failure::Bedrock { kind, detail, .. }) = &thin {
            assert!(detail.http_status.is_some() && detail.request_id.is_some(), "{name}");
            if expected == "ModelTimeoutException" {
                assert_eq!(*kind, BedrockErrorKind::Unknown, "{name}");
            }
        }
    }
    // The count is InvokeModel's input tokens for the same body.
    pair.sim.clear_behaviors();
    let counted = count(&pair.thin, HAIKU_35, &claude(), CALL_TIMEOUT).await.unwrap();
    let request = RawRequest { body: Bytes::from(claude().to_string()), ..RawRequest::default() };
    let profile = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
    let invoked = pair.thin.invoke_raw(None, profile, request, CALL_TIMEOUT).await.unwrap();
    assert_eq!(Some(counted), invoked.headers.usage().input_tokens);

    // A count that outlasts its timeout is a timeout through both.
    let slow = Behavior { first_byte_latency: Duration::from_secs(2), ..Behavior::default() };
    pair.sim.set_behavior("*", slow);
    let short = Duration::from_millis(200);
    let thin = count(&pair.thin, HAIKU_35, &claude(), short).await;
    let sdk = count(&pair.sdk, HAIKU_35, &claude(), short).await;
    assert_eq!((thin, sdk), (Err(Failure::Timeout), Err(Failure::Timeout)));
    pair.sim.clear_behaviors();
    assert_eq!(pair.sim.auth_refusals(), 0, "requests refused for their signature");
}
