//! A broken or hostile Bedrock, one simulator fault per test: bodies that are not JSON, of
//! another family, of an unknown shape or empty; a proxy's HTML 502; an unknown error type;
//! a 20 MB error message; a reset mid-body; a slow drip; a frame announcing 2 GiB; an
//! endless stream; a stream that stalls. Each gives the caller a clear error (a status, or
//! a closing SSE `error` event once the stream has begun) in bounded time and memory, is
//! never retried once Bedrock's answer has begun (the simulator counts one invocation), and
//! leaves the gateway serving normal requests.

use std::time::{Duration, Instant};

use bedrock_sim::{BadBody, Behavior, ErrorKind, Fault};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cancellation::wait_until_idle;
use crate::harness::{Harness, TEST_MODELS};
use crate::metrics::Exposition;
use crate::openai::{assert_openai_error, stream_data};
use crate::passthrough::{self, StreamEnd};

/// Up to three attempts, retried at once: any retry would show in the simulator's count.
async fn start(upstream_extra: &str) -> Harness {
    let upstream =
        format!("max_attempts = 3\nretry_base_ms = 1\nretry_cap_ms = 2\n{upstream_extra}");
    Harness::start_with(&upstream, TEST_MODELS).await
}

fn inject(h: &Harness, fault: Fault) {
    h.sim.set_behavior("*", Behavior { fault: Some(fault), ..Behavior::default() });
}

fn prompt(model: &str, stream: bool) -> Value {
    json!({"model": model, "prompt": "Tell me about the sea", "max_tokens": 8, "stream": stream})
}

/// A whole answer through `/v1/generate`, or a stream refused before it began.
async fn refused(h: &Harness, stream: bool) -> (StatusCode, Value) {
    let (status, _, body) = h.post("/v1/generate", &prompt("titan", stream)).await;
    (status, body)
}

/// `future`'s output, or a panic after 90 s: a stream the gateway does not end would
/// otherwise hang the test.
async fn within<F: std::future::Future>(future: F) -> F::Output {
    let bound = Duration::from_secs(90);
    tokio::time::timeout(bound, future).await.unwrap_or_else(|_| panic!("no end after {bound:?}"))
}

/// The error type of the `error` event a stream ended with, and the deltas before it;
/// panics on a stream that ended another way.
async fn stream_error(h: &Harness, model: &str) -> (String, usize) {
    let (status, _, events) = within(h.stream(&prompt(model, true))).await;
    assert_eq!(status, StatusCode::OK);
    let last = events.last().unwrap_or_else(|| panic!("an empty stream"));
    assert_eq!(last.event, "error", "{events:?}");
    assert!(events.iter().all(|e| e.event != "done"), "{events:?}");
    assert!(last.data["error"]["message"].as_str().is_some_and(|m| m.len() > 5), "{last:?}");
    let n_deltas = events.iter().filter(|e| e.event == "delta").count();
    (last.data["error"]["type"].as_str().unwrap().to_owned(), n_deltas)
}

/// The gateway is idle again (nothing in flight, here or in the simulator) and answers a
/// normal request.
async fn serves_normally_after(h: &Harness) {
    wait_until_idle(h).await;
    h.sim.clear_behaviors();
    let (status, body) = refused(h, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, events) = h.stream(&prompt("claude", true)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
}

/// The process's peak resident memory, where Linux tells it. nextest runs every test in
/// its own process, so this is the test's (the gateway's and the simulator's) peak.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Far below what buffering a 2 GiB frame would take, far above the test's own needs.
const MEMORY_BOUND: u64 = 1024 * 1024 * 1024;

fn assert_memory_bounded() {
    if let Some(peak) = peak_rss_bytes() {
        assert!(peak < MEMORY_BOUND, "peak resident memory {peak} bytes");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_502_or_a_closing_error_and_is_not_retried() {
    let h = start("").await;
    inject(&h, Fault::BadBodyAfterChunks(BadBody::InvalidJson, 0));
    let (status, body) = refused(&h, false).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("malformed_upstream"))
    );
    assert_eq!(h.sim.request_count(), 1);
    inject(&h, Fault::BadBodyAfterChunks(BadBody::InvalidJson, 2));
    let (error_type, n_deltas) = stream_error(&h, "titan").await;
    assert_eq!((error_type.as_str(), n_deltas), ("malformed_upstream", 2));
    assert_eq!(h.sim.request_count(), 2);
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn another_familys_body_is_malformed_whole_and_streamed() {
    let h = start("").await;
    inject(&h, Fault::BadBodyAfterChunks(BadBody::OtherFamily, 0));
    for model in ["titan", "claude"] {
        let (status, _, body) = h.post("/v1/generate", &prompt(model, false)).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{model}: {body}");
        assert_eq!(body["error"]["type"], "malformed_upstream", "{model}");
    }
    inject(&h, Fault::BadBodyAfterChunks(BadBody::OtherFamily, 2));
    for model in ["titan", "claude"] {
        let (error_type, _) = stream_error(&h, model).await;
        assert_eq!(error_type, "malformed_upstream", "{model}");
    }
    assert_eq!(h.sim.request_count(), 4);
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn chunks_of_an_unknown_shape_are_counted_and_a_stream_without_a_stop_is_an_error() {
    let h = start("").await;
    inject(&h, Fault::BadBodyAfterChunks(BadBody::UnknownShape, 2));
    let (error_type, n_deltas) = stream_error(&h, "titan").await;
    assert_eq!((error_type.as_str(), n_deltas), ("malformed_upstream", 2));
    let m = Exposition::parse(&h.scrape().await);
    assert!(m.sum("gateway_stream_unrecognized_chunks_total", &[]) >= 1.0);
    inject(&h, Fault::BadBodyAfterChunks(BadBody::UnknownShape, 0));
    let (status, body) = refused(&h, false).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("malformed_upstream"))
    );
    assert_eq!(h.sim.request_count(), 2);
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn an_empty_body_is_malformed_and_an_empty_stream_ends_with_an_error() {
    let h = start("").await;
    inject(&h, Fault::BadBodyAfterChunks(BadBody::Empty, 0));
    let (status, body) = refused(&h, false).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("malformed_upstream"))
    );
    // A 200 with no frame at all, and one that stops after two chunks without a stop.
    for n_chunks in [0, 2] {
        inject(&h, Fault::BadBodyAfterChunks(BadBody::Empty, n_chunks));
        let (error_type, n_deltas) = stream_error(&h, "titan").await;
        assert_eq!((error_type.as_str(), n_deltas), ("malformed_upstream", n_chunks as usize));
    }
    assert_eq!(h.sim.request_count(), 3);
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn a_proxys_html_502_is_a_502_without_its_html_and_is_not_retried() {
    let h = start("").await;
    inject(&h, Fault::ProxyError(502));
    for stream in [false, true] {
        let (status, body) = refused(&h, stream).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(body["error"]["type"], "upstream_error", "{body}");
        assert!(!body.to_string().contains("<html>"), "{body}");
    }
    let (status, _, body) = h.post("/v1/chat/completions", &chat(true)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_openai_error(&body, "upstream_error");
    let gateway = passthrough::client(&h.base_url);
    let error = passthrough::invoke(&gateway, "titan", &passthrough::titan_body(5)).await;
    let seen = passthrough::invoke_error_seen(error.unwrap_err());
    assert_eq!(seen.status, Some(502));
    assert!(!seen.message.unwrap_or_default().contains("<html>"));
    assert_eq!(h.sim.request_count(), 4);
    serves_normally_after(&h).await;
}

fn chat(stream: bool) -> Value {
    json!({"model": "claude", "messages": [{"role": "user", "content": "Hi"}], "stream": stream})
}

#[tokio::test]
async fn an_unknown_error_type_is_an_upstream_error_and_the_passthrough_keeps_its_name() {
    let h = start("").await;
    inject(&h, Fault::UnknownError("SomethingNewException".to_owned()));
    for stream in [false, true] {
        let (status, body) = refused(&h, stream).await;
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (StatusCode::BAD_GATEWAY, Some("upstream_error"))
        );
    }
    let gateway = passthrough::client(&h.base_url);
    let error = passthrough::invoke(&gateway, "titan", &passthrough::titan_body(5)).await;
    let seen = passthrough::invoke_error_seen(error.unwrap_err());
    assert_eq!((seen.status, seen.code.as_deref()), (Some(400), Some("SomethingNewException")));
    assert_eq!(h.sim.request_count(), 3);
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn a_twenty_megabyte_error_message_reaches_no_caller_whole() {
    let h = start("").await;
    inject(&h, Fault::LongErrorMessage(ErrorKind::Validation, 20_000_000));
    let (status, body) = refused(&h, false).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("upstream_rejected"))
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.len() < 8192 && message.contains("Malformed input request"),
        "{}",
        message.len()
    );
    let (status, _, body) = h.post("/v1/chat/completions", &chat(false)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_openai_error(&body, "upstream_rejected");
    assert!(body.to_string().len() < 8192);
    let gateway = passthrough::client(&h.base_url);
    let error = passthrough::invoke(&gateway, "titan", &passthrough::titan_body(5)).await;
    let seen = passthrough::invoke_error_seen(error.unwrap_err());
    assert_eq!((seen.status, seen.variant), (Some(400), "ValidationException"));
    assert!(seen.message.unwrap().len() < 8192);
    assert_eq!(h.sim.request_count(), 3);
    assert_memory_bounded();
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn a_reset_after_bedrocks_headers_is_malformed_not_unreachable_and_never_retried() {
    let h = start("").await;
    // A whole answer cut mid-body, and one whose body fails before its first byte.
    for fault in [Fault::ResetMidBodyAfterChunks(0), Fault::AbortAfterChunks(0)] {
        inject(&h, fault.clone());
        let (status, body) = refused(&h, false).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{fault:?}: {body}");
        assert_eq!(body["error"]["type"], "malformed_upstream", "{fault:?}");
    }
    assert_eq!(h.sim.request_count(), 2);
    // A stream broken before its first chunk: Bedrock's 200 had come, so no retry either.
    for fault in [Fault::ResetMidBodyAfterChunks(0), Fault::AbortAfterChunks(0)] {
        inject(&h, fault.clone());
        let (status, body) = refused(&h, true).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{fault:?}: {body}");
        assert_eq!(body["error"]["type"], "malformed_upstream", "{fault:?}");
    }
    assert_eq!(h.sim.request_count(), 4);
    // Mid-stream, mid-frame or between frames.
    for fault in [Fault::ResetMidBodyAfterChunks(2), Fault::AbortAfterChunks(2)] {
        inject(&h, fault.clone());
        let (error_type, n_deltas) = stream_error(&h, "titan").await;
        assert_eq!((error_type.as_str(), n_deltas), ("malformed_upstream", 2), "{fault:?}");
    }
    assert_eq!(h.sim.request_count(), 6);
    let m = Exposition::parse(&h.scrape().await);
    assert_eq!(m.sum("gateway_upstream_attempts_total", &[]), 6.0);
    assert_eq!(m.sum("gateway_upstream_retries_total", &[]), 0.0);
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn a_slow_drip_ends_with_a_timeout() {
    // About 300 bytes a frame, 10 ms a byte: 3 s a chunk, against a 1 s idle timeout (and
    // a first-chunk timeout long enough for the first). A whole answer against a 1 s
    // request timeout.
    let h = start(
        "request_timeout_ms = 1000\nfirst_byte_timeout_ms = 20000\nstream_idle_timeout_ms = 1000\n",
    )
    .await;
    inject(&h, Fault::Drip(Duration::from_millis(10)));
    let started = Instant::now();
    let (status, body) = refused(&h, false).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::GATEWAY_TIMEOUT, Some("upstream_timeout"))
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let (error_type, n_deltas) = stream_error(&h, "titan").await;
    assert_eq!((error_type.as_str(), n_deltas), ("upstream_timeout", 1));
    assert_eq!(h.sim.request_count(), 2);
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn a_frame_announcing_two_gib_is_refused_before_it_is_buffered() {
    let h = start("").await;
    inject(&h, Fault::HugeFrameAfterChunks(2));
    let (error_type, n_deltas) = stream_error(&h, "titan").await;
    assert_eq!((error_type.as_str(), n_deltas), ("malformed_upstream", 2));
    // Announced as the first frame, and as a whole answer's `Content-Length`.
    inject(&h, Fault::HugeFrameAfterChunks(0));
    for stream in [true, false] {
        let (status, body) = refused(&h, stream).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(body["error"]["type"], "malformed_upstream");
    }
    let gateway = passthrough::client(&h.base_url);
    inject(&h, Fault::HugeFrameAfterChunks(2));
    let streamed =
        within(passthrough::stream(&gateway, "titan", &passthrough::titan_body(6))).await;
    let streamed = streamed.unwrap();
    assert_eq!(streamed.chunks.len(), 2);
    let StreamEnd::Exception(error) = &streamed.end else { panic!("{:?}", streamed.end) };
    assert_eq!(passthrough::in_stream_variant(error), "InternalServerException");
    assert_eq!(h.sim.request_count(), 4);
    assert_memory_bounded();
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn an_endless_stream_ends_at_the_request_timeout() {
    let h = start("request_timeout_ms = 1500\n").await;
    h.sim.set_behavior(
        "*",
        Behavior {
            fault: Some(Fault::Endless),
            token_latency: Duration::from_millis(5),
            ..Behavior::default()
        },
    );
    let started = Instant::now();
    let (error_type, n_deltas) = stream_error(&h, "titan").await;
    assert_eq!(error_type, "upstream_timeout");
    assert!(n_deltas > 10, "{n_deltas} deltas");
    assert!(started.elapsed() < Duration::from_secs(30));
    let (status, data) = within(stream_data(&h, "/v1/chat/completions", &chat(true))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!data.contains(&"[DONE]".to_owned()));
    assert_openai_error(&serde_json::from_str(data.last().unwrap()).unwrap(), "upstream_timeout");
    assert_eq!(h.sim.request_count(), 2);
    assert_memory_bounded();
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn an_endless_whole_answer_is_cut_at_the_body_limit() {
    let h = start("").await;
    inject(&h, Fault::Endless);
    let (status, body) = refused(&h, false).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("malformed_upstream"))
    );
    assert_eq!(h.sim.request_count(), 1);
    assert_memory_bounded();
    serves_normally_after(&h).await;
}

#[tokio::test]
async fn a_stream_that_stalls_after_its_first_chunk_ends_on_every_api() {
    // The attacker's case: one chunk, then nothing for a minute.
    let h = start("stream_idle_timeout_ms = 500\n").await;
    h.sim.set_behavior(
        "*",
        Behavior { token_latency: Duration::from_secs(60), ..Behavior::default() },
    );
    let started = Instant::now();
    let (error_type, n_deltas) = stream_error(&h, "titan").await;
    assert_eq!((error_type.as_str(), n_deltas), ("upstream_timeout", 1));
    let (status, data) = within(stream_data(&h, "/v1/chat/completions", &chat(true))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!data.contains(&"[DONE]".to_owned()), "{data:?}");
    assert_openai_error(&serde_json::from_str(data.last().unwrap()).unwrap(), "upstream_timeout");
    let gateway = passthrough::client(&h.base_url);
    let streamed =
        within(passthrough::stream(&gateway, "titan", &passthrough::titan_body(6))).await;
    let streamed = streamed.unwrap();
    assert_eq!(streamed.chunks.len(), 1);
    let StreamEnd::Exception(error) = &streamed.end else { panic!("{:?}", streamed.end) };
    assert_eq!(passthrough::in_stream_variant(error), "ModelTimeoutException");
    assert!(started.elapsed() < Duration::from_secs(50), "the streams waited for Bedrock");
    assert_eq!(h.sim.request_count(), 3);
    let m = Exposition::parse(&h.scrape().await);
    let errors = m.sum("gateway_upstream_errors_total", &[("bedrock_error", "timeout")]);
    assert_eq!(errors, 3.0);
    serves_normally_after(&h).await;
}
