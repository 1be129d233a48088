//! Callers that go away, and streams ended by the shutdown's drain. A caller that drops a
//! stream midway (on every API shape), or a whole request while it is queued or while
//! Bedrock is still thinking, leaves nothing behind: the simulator's invocation ends at once
//! (its count of invocations in flight returns to 0 long before the answer would have
//! ended), the gateway's in-flight and active-stream gauges return to 0, the target's
//! reservation and concurrency slot are given back, and the next request is admitted at
//! once. When the drain runs out, every open stream ends at once with an error in its API's
//! encoding, `shutting_down`, and settles.

use std::time::{Duration, Instant};

use bedrock_sim::Behavior;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, TEST_MODELS};
use crate::metrics::Exposition;
use crate::openai::{assert_openai_error, stream_data};
use crate::passthrough::{self, StreamEnd};

/// Waits, up to 10 s (generous: a loaded machine is slow), until nothing is in flight: no
/// invocation in the simulator, no request or stream in the gateway's gauges. Panics
/// otherwise, saying what is left.
pub(crate) async fn wait_until_idle(h: &Harness) {
    let started = Instant::now();
    loop {
        let m = Exposition::parse(&h.scrape().await);
        let left = [
            ("simulator invocations", h.sim.in_flight() as f64),
            ("gateway_requests_in_flight", m.sum("gateway_requests_in_flight", &[])),
            ("gateway_active_streams", m.sum("gateway_active_streams", &[])),
        ];
        if left.iter().all(|(_, n)| *n == 0.0) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still in flight: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One target that serves one call at a time and queues the next for at most 2 s: a
/// request admitted at once after a cancelled one shows its slot was given back.
const ONE_AT_A_TIME: &str = r#"
[targets.one]
model_id = "amazon.titan-text-express-v1"
max_concurrency = 1
max_queue_wait_ms = 2000
tokens_per_minute = 100000

[models.one]
targets = ["one"]
defaults = { max_tokens = 100 }
"#;

const TITAN: &str = "amazon.titan-text-express-v1";

/// Chunks 200 ms apart: a 100-token stream lasts 20 s, twice the wait of
/// [`wait_until_idle`], so only a cancelled invocation ends within it.
fn slow_chunks(h: &Harness) {
    let behavior = Behavior { token_latency: Duration::from_millis(200), ..Behavior::default() };
    h.sim.set_behavior(TITAN, behavior);
}

/// A streamed request of every API shape, as (path, body).
fn streamed_requests() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/v1/generate",
            json!({"model": "one", "prompt": "Tell me", "max_tokens": 100, "stream": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "one", "messages": [{"role": "user", "content": "Tell me"}],
                   "max_tokens": 100, "stream": true}),
        ),
        (
            "/v1/completions",
            json!({"model": "one", "prompt": "Tell me", "max_tokens": 100, "stream": true}),
        ),
        ("/model/one/invoke-with-response-stream", passthrough::titan_body(100)),
    ]
}

/// The target's reservation is back to 0, and the next call is admitted (not queued past
/// the 2 s wait, which a held slot would make a 429).
async fn the_target_is_free_again(h: &Harness) {
    let m = Exposition::parse(&h.scrape().await);
    assert_eq!(m.sum("gateway_quota_reserved_tokens", &[("name", "one")]), 0.0);
    h.sim.clear_behaviors();
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "one", "prompt": "Hi", "max_tokens": 5})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    slow_chunks(h);
}

#[tokio::test]
async fn a_caller_that_drops_a_stream_midway_leaves_nothing_behind_on_every_api() {
    let h = Harness::start_with("max_attempts = 1\n", ONE_AT_A_TIME).await;
    slow_chunks(&h);
    for (path, body) in streamed_requests() {
        let started = Instant::now();
        let mut response = h.http.post(h.url(path)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let first = response.chunk().await.unwrap();
        assert!(first.is_some_and(|bytes| !bytes.is_empty()), "{path}");
        drop(response);
        wait_until_idle(&h).await;
        assert!(started.elapsed() < Duration::from_secs(15), "{path}: the stream ran out");
        the_target_is_free_again(&h).await;
    }
    assert_eq!(h.sim.request_count(), 2 * streamed_requests().len() as u64);
}

#[tokio::test]
async fn a_caller_that_goes_away_while_bedrock_is_thinking_drops_the_call_at_once() {
    let h = Harness::start_with("max_attempts = 1\n", ONE_AT_A_TIME).await;
    // Thirty seconds to the first byte: only a dropped call ends within the wait.
    let thinking = Behavior { first_byte_latency: Duration::from_secs(30), ..Behavior::default() };
    for stream in [false, true] {
        h.sim.set_behavior(TITAN, thinking.clone());
        let body = json!({"model": "one", "prompt": "Hi", "max_tokens": 5, "stream": stream});
        let impatient = h.http.post(h.url("/v1/generate")).timeout(Duration::from_millis(300));
        assert!(impatient.json(&body).send().await.is_err());
        wait_until_idle(&h).await;
        the_target_is_free_again(&h).await;
    }
    let m = Exposition::parse(&h.scrape().await);
    let cancelled = [("route", "/v1/generate"), ("error_type", "cancelled")];
    assert_eq!(m.sum("gen_ai_server_request_duration_seconds_count", &cancelled), 2.0);
}

/// A caller whose budget holds two reservations of this gateway's requests, not three.
const BUDGET: &str = r#"
[[auth.keys]]
name = "budget"
sha256 = "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"
tokens_per_minute = 130
"#;

#[tokio::test]
async fn a_caller_that_goes_away_while_queued_gets_its_reservation_back() {
    let models = format!("{BUDGET}{ONE_AT_A_TIME}");
    let h = Harness::start_with("max_attempts = 1\n", &models).await;
    let slow = Behavior { first_byte_latency: Duration::from_millis(800), ..Behavior::default() };
    h.sim.set_behavior(TITAN, slow);
    // About 55 tokens reserved each (the body's estimate and 40 output tokens).
    let body = json!({"model": "one", "prompt": "Hi", "max_tokens": 40});
    let send = |timeout: Duration| {
        h.http.post(h.url("/v1/generate")).bearer_auth("foobar").timeout(timeout).json(&body).send()
    };
    // One holds the only slot; one gives up while queued behind it, before Bedrock was
    // called: its reservation goes back whole, not kept as used.
    let (held, gone) = tokio::join!(send(Duration::from_secs(30)), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(Duration::from_millis(200)).await
    });
    assert_eq!(held.unwrap().status(), StatusCode::OK);
    assert!(gone.is_err());
    assert_eq!(h.sim.request_count(), 1, "the queued call never reached Bedrock");
    wait_until_idle(&h).await;
    let m = Exposition::parse(&h.scrape().await);
    assert_eq!(m.sum("gateway_queue_length", &[]), 0.0);
    // The budget holds the used call and one more reservation: kept as used, the gone one
    // would leave no room for it.
    h.sim.clear_behaviors();
    let response = send(Duration::from_secs(30)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
}

/// The error each open stream of the drain test ended with.
#[derive(Debug, PartialEq)]
enum Ended {
    Gateway(String),
    OpenAi(String),
    Passthrough(&'static str, String),
}

#[tokio::test]
async fn the_end_of_the_drain_ends_every_open_stream_in_its_apis_encoding_and_settles_it() {
    let (h, drain) = Harness::start_with_drain("max_attempts = 1\n", TEST_MODELS).await;
    slow_chunks(&h);
    let generate =
        json!({"model": "titan", "prompt": "Tell me", "max_tokens": 100, "stream": true});
    let chat = json!({"model": "titan", "messages": [{"role": "user", "content": "Tell me"}],
                      "max_tokens": 100, "stream": true});
    let gateway = passthrough::client(&h.base_url);
    let native = passthrough::titan_body(100);
    let started = Instant::now();
    let (generated, chatted, passed, ()) = tokio::join!(
        h.stream(&generate),
        stream_data(&h, "/v1/chat/completions", &chat),
        passthrough::stream(&gateway, "titan", &native),
        async {
            // Every stream is open (and Bedrock has sent some chunks) when the drain ends.
            for _ in 0..500 {
                if h.sim.in_flight() == 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(h.sim.in_flight(), 3);
            tokio::time::sleep(Duration::from_millis(300)).await;
            drain.end_streams();
        },
    );
    assert!(started.elapsed() < Duration::from_secs(15), "the streams ran to their end");

    let (status, _, events) = generated;
    assert_eq!(status, StatusCode::OK);
    let last = events.last().unwrap();
    assert!(events.len() > 1 && events.len() < 100, "{events:?}");
    let (status, data) = chatted;
    assert_eq!(status, StatusCode::OK);
    assert!(!data.contains(&"[DONE]".to_owned()), "{data:?}");
    let chat_error: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_openai_error(&chat_error, "shutting_down");
    let passed = passed.unwrap();
    assert!(!passed.chunks.is_empty());
    let StreamEnd::Exception(exception) = &passed.end else { panic!("{:?}", passed.end) };
    let ended = [
        Ended::Gateway(last.data["error"]["type"].as_str().unwrap().to_owned()),
        Ended::OpenAi(chat_error["error"]["message"].as_str().unwrap().to_owned()),
        Ended::Passthrough(
            passthrough::in_stream_variant(exception),
            aws_sdk_bedrockruntime::error::ProvideErrorMetadata::message(exception)
                .unwrap_or_default()
                .to_owned(),
        ),
    ];
    assert_eq!(
        ended,
        [
            Ended::Gateway("shutting_down".to_owned()),
            Ended::OpenAi("the gateway is shutting down".to_owned()),
            Ended::Passthrough(
                "ServiceUnavailableException",
                "the gateway is shutting down".to_owned()
            ),
        ]
    );
    assert_eq!(last.event, "error");
    assert_eq!(last.data["error"]["message"], "the gateway is shutting down");
    // Settled, and the upstream calls dropped.
    wait_until_idle(&h).await;
    let m = Exposition::parse(&h.scrape().await);
    assert_eq!(m.sum("gateway_quota_reserved_tokens", &[]), 0.0);
    let shutting_down = [("error_type", "shutting_down")];
    assert_eq!(m.sum("gen_ai_server_request_duration_seconds_count", &shutting_down), 3.0);
    // A stream asked for after the end of the drain is refused.
    let (status, _, body) = h.post("/v1/generate", &generate).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["type"], "shutting_down");
}

#[tokio::test]
async fn a_stream_still_open_when_the_drain_times_out_ends_with_shutting_down() {
    let mut h =
        Harness::start_with_top("drain_timeout_ms = 300\n", "max_attempts = 1\n", TEST_MODELS)
            .await;
    slow_chunks(&h);
    let (stop, task) = h.take_shutdown();
    let request = json!({"model": "titan", "prompt": "Tell me", "max_tokens": 100, "stream": true});
    let started = Instant::now();
    let ((status, _, events), ()) = tokio::join!(h.stream(&request), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.send(()).unwrap();
    });
    assert_eq!(status, StatusCode::OK);
    let last = events.last().unwrap();
    assert_eq!(
        (last.event.as_str(), &last.data["error"]["type"]),
        ("error", &json!("shutting_down"))
    );
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "the stream ran to its end");
    for _ in 0..500 {
        if h.sim.in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the simulator still streams to a gateway that stopped");
}
