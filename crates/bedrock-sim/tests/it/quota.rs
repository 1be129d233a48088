//! Token quotas: the reservation at request start (input + max tokens × burndown), the
//! settlement at the real usage, streams that hold their reservation until the last chunk,
//! the day limit, continuous refill, the `/_sim/quota` routes and the per-model stats.
//!
//! Quotas are small (100 tokens per minute refills 1.7 tokens a second), so refill is
//! negligible within a test unless a test wants it (60 000 per minute is 1 token per ms).

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use axum::http::StatusCode;
use axum::response::Response;
use bedrock_sim::{Behavior, ErrorKind, Fault, ModelStats, Quota, Simulator};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{
    StreamEnd, TITAN, TestSim, claude_body, collect_stream, signed_request, start, titan_body,
};

const TITAN_EMBED_V2: &str = "amazon.titan-embed-text-v2:0";

/// The exact message of a request throttled by the token quota.
const TOO_MANY_TOKENS: &str = "Too many tokens, please wait before trying again.";

fn per_minute(tokens_per_minute: u64) -> Quota {
    Quota { tokens_per_minute: Some(tokens_per_minute), ..Quota::default() }
}

/// A Titan body with `maxTokenCount`; its input is the number of words of `prompt`.
fn titan(prompt: &str, max_token_count: u32) -> Value {
    titan_body(prompt, json!({ "maxTokenCount": max_token_count }))
}

/// Input + output tokens of a Titan InvokeModel answer.
fn titan_usage(answer: &Value) -> (u64, u64) {
    let input = answer["inputTextTokenCount"].as_u64().unwrap();
    (input, answer["results"][0]["tokenCount"].as_u64().unwrap())
}

fn stats_of(sim: &TestSim, model_id: &str) -> ModelStats {
    sim.simulator.stats().models[model_id].clone()
}

/// Asserts an InvokeModel call was refused by the quota: 429, ThrottlingException, the
/// token message.
async fn assert_throttled(sim: &TestSim, model_id: &str, body: &Value) {
    let error = sim.invoke(model_id, body).await.unwrap_err();
    let status = error.raw_response().map(|response| response.status().as_u16());
    assert_eq!(status, Some(429));
    let error = error.into_service_error();
    assert!(error.is_throttling_exception(), "{error:?}");
    assert_eq!(error.message(), Some(TOO_MANY_TOKENS));
}

async fn send(simulator: &Simulator, method: &str, uri: &str, body: &str) -> Response {
    simulator.router().oneshot(signed_request(method, uri, body)).await.unwrap()
}

async fn body_json(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn minute_quota_reserves_max_tokens_and_settles_at_the_real_usage() {
    let sim = start().await;
    sim.simulator.set_quota(TITAN, per_minute(100)).unwrap();

    // Each request reserves 1 + 50 = 51 of 100; "hi" answers 44 tokens, so 6 come back.
    let body = titan("hi", 50);
    let (input, output) = titan_usage(&sim.invoke_json(TITAN, &body).await);
    let first_charge = input + output;
    assert!(output < 50 && first_charge > 25, "{input} + {output}");
    // 100 − 45 = 55 left: the second reservation of 51 fits only thanks to the refund.
    let (input, output) = titan_usage(&sim.invoke_json(TITAN, &body).await);
    let second_charge = input + output;
    // 10 left: the third does not fit.
    assert_throttled(&sim, TITAN, &body).await;

    let stats = stats_of(&sim, TITAN);
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.throttled, 1);
    assert_eq!(stats.tokens_charged, first_charge + second_charge);
    // When the second request started, the window held the first's charge and its own
    // reservation; the throttled one added nothing.
    assert_eq!(stats.peak_tokens_per_minute, first_charge + 51);

    // A smaller reservation still fits what is left.
    let small = titan("hi", 5);
    assert_eq!(titan_usage(&sim.invoke_json(TITAN, &small).await), (1, 5));
}

#[tokio::test]
async fn output_burndown_counts_max_tokens_and_output_tokens_over_again() {
    let sim = start().await;
    let quota = r#"{"tokens_per_minute": 100, "output_burndown": 5}"#;
    let response = send(&sim.simulator, "PUT", &format!("/_sim/quota/{TITAN}"), quota).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // 1 + 20 × 5 = 101 never fits a bucket of 100; 1 + 19 × 5 = 96 does.
    assert_throttled(&sim, TITAN, &titan("hello", 20)).await;
    let (input, output) = titan_usage(&sim.invoke_json(TITAN, &titan("hello", 19)).await);
    let stats = stats_of(&sim, TITAN);
    assert_eq!(stats.tokens_charged, input + output * 5);
    assert_eq!(stats.peak_tokens_per_minute, 96);
    assert_eq!((stats.requests, stats.throttled), (2, 1));
}

#[tokio::test]
async fn a_stream_holds_its_reservation_until_its_last_chunk() {
    let sim = start().await;
    sim.simulator.set_quota(TITAN, per_minute(100)).unwrap();
    let slow = Behavior { token_latency: Duration::from_millis(10), ..Behavior::default() };
    sim.simulator.set_behavior(TITAN, slow);

    // "hello" answers 16 tokens, 10 ms apart: the stream stays open for 150 ms.
    let body = titan("hello", 50);
    let output = sim.start_stream(TITAN, &body).await.unwrap();
    // The open stream holds 51 of 100: another 51 does not fit.
    assert_throttled(&sim, TITAN, &body).await;
    assert_eq!(stats_of(&sim, TITAN).tokens_charged, 0);

    let stream = collect_stream(output).await;
    assert!(matches!(stream.end, StreamEnd::Clean), "{:?}", stream.end);
    let last = stream.chunks.last().unwrap();
    let metrics = &last["amazon-bedrock-invocationMetrics"];
    let charge = metrics["inputTokenCount"].as_u64().unwrap()
        + metrics["outputTokenCount"].as_u64().unwrap();
    assert_eq!(charge, 1 + 16);
    // Settled at the last chunk, so before the client saw the end of the stream.
    assert_eq!(stats_of(&sim, TITAN).tokens_charged, charge);

    // 100 − 17 left: the same request fits now.
    sim.simulator.clear_behaviors();
    sim.invoke_json(TITAN, &body).await;
    let stats = stats_of(&sim, TITAN);
    assert_eq!((stats.requests, stats.throttled, stats.tokens_charged), (3, 1, 2 * charge));
    assert_eq!(stats.peak_tokens_per_minute, 51 + charge);
}

#[tokio::test]
async fn a_stream_cut_short_settles_at_the_tokens_sent() {
    let sim = start().await;
    let quota = Quota { tokens_per_day: Some(10_000), ..Quota::default() };
    sim.simulator.set_quota(TITAN, quota).unwrap();

    // Three intact chunks of one token each, then half a frame.
    let truncate = Behavior {
        fault: Some(Fault::TruncateAfterChunks(3)),
        fault_times: Some(1),
        ..Behavior::default()
    };
    sim.simulator.set_behavior(TITAN, truncate);
    let stream = sim.stream(TITAN, &titan("hello", 50)).await;
    assert!(matches!(stream.end, StreamEnd::ResponseError(_)), "{:?}", stream.end);
    assert_eq!(stream.chunks.len(), 3);
    assert_eq!(stats_of(&sim, TITAN).tokens_charged, 1 + 3);

    // An injected HTTP error charges nothing.
    let error = Behavior {
        fault: Some(Fault::Error(ErrorKind::ModelTimeout)),
        fault_times: Some(1),
        ..Behavior::default()
    };
    sim.simulator.set_behavior(TITAN, error);
    assert!(sim.start_stream(TITAN, &titan("hello", 50)).await.is_err());
    assert_eq!(stats_of(&sim, TITAN).tokens_charged, 1 + 3);

    // A client that goes away after two chunks of a 47-token stream: the server notices at
    // its next writes and settles at what it produced by then.
    let slow = Behavior { token_latency: Duration::from_millis(5), ..Behavior::default() };
    sim.simulator.set_behavior(TITAN, slow);
    let mut output = sim.start_stream(TITAN, &titan("two", 50)).await.unwrap();
    for _ in 0..2 {
        assert!(output.body.recv().await.unwrap().is_some());
    }
    drop(output);
    let deadline = Instant::now() + Duration::from_secs(5);
    let charged = loop {
        let charged = stats_of(&sim, TITAN).tokens_charged - 4;
        if charged > 0 || Instant::now() > deadline {
            break charged;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!((1 + 2..1 + 47).contains(&charged), "{charged}");
}

#[tokio::test]
async fn day_quota_and_both_limits() {
    let sim = start().await;
    let quota = Quota { tokens_per_day: Some(60), ..Quota::default() };
    sim.simulator.set_quota(TITAN, quota).unwrap();

    // 51 of 60 reserved, 45 charged: 15 left for the day.
    let (input, output) = titan_usage(&sim.invoke_json(TITAN, &titan("hi", 50)).await);
    assert_eq!(input + output, 45);
    assert_throttled(&sim, TITAN, &titan("hi", 50)).await;
    assert_eq!(titan_usage(&sim.invoke_json(TITAN, &titan("hi", 10)).await), (1, 10));
    let stats = stats_of(&sim, TITAN);
    assert_eq!((stats.requests, stats.throttled, stats.tokens_charged), (3, 1, 45 + 11));

    // Setting the quota again refills it and restarts the model's counters.
    let both = Quota { tokens_per_minute: Some(30), tokens_per_day: Some(1_000), ..quota };
    sim.simulator.set_quota(TITAN, both).unwrap();
    assert_eq!(stats_of(&sim, TITAN), ModelStats::default());
    // The day has room, the minute has not.
    assert_throttled(&sim, TITAN, &titan("hi", 50)).await;
    sim.invoke_json(TITAN, &titan("hi", 20)).await;
    let both = Quota { tokens_per_minute: Some(1_000), tokens_per_day: Some(30), ..both };
    sim.simulator.set_quota(TITAN, both).unwrap();
    // Now the minute has room and the day has not.
    assert_throttled(&sim, TITAN, &titan("hi", 50)).await;
    sim.invoke_json(TITAN, &titan("hi", 20)).await;
    assert_eq!((stats_of(&sim, TITAN).requests, stats_of(&sim, TITAN).throttled), (2, 1));
}

#[tokio::test]
async fn the_minute_bucket_refills_continuously() {
    let sim = start().await;
    // One token per millisecond; output counts 3 000 times.
    let quota =
        Quota { tokens_per_minute: Some(60_000), output_burndown: 3_000.0, ..Quota::default() };
    sim.simulator.set_quota(TITAN, quota).unwrap();

    // Every answer has at least 16 tokens, so max 16 is used up: 1 + 16 × 3 000 = 48 001
    // reserved and charged, 11 999 left.
    assert_eq!(titan_usage(&sim.invoke_json(TITAN, &titan("hello", 16)).await), (1, 16));
    // 200 + 4 × 3 000 = 12 200 needs 201 more tokens, 201 ms of refill.
    let words = vec!["word"; 200].join(" ");
    assert_throttled(&sim, TITAN, &titan(&words, 4)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(titan_usage(&sim.invoke_json(TITAN, &titan(&words, 4)).await), (200, 4));
}

#[tokio::test]
async fn a_throttled_request_uses_no_fault_times() {
    let sim = start().await;
    sim.simulator.set_quota(TITAN, per_minute(100)).unwrap();
    let fault = Behavior {
        fault: Some(Fault::Error(ErrorKind::InternalServer)),
        fault_times: Some(1),
        ..Behavior::default()
    };
    sim.simulator.set_behavior(TITAN, fault);

    assert_throttled(&sim, TITAN, &titan("hi", 200)).await;
    let error = sim.invoke(TITAN, &titan("hi", 10)).await.unwrap_err().into_service_error();
    assert!(error.is_internal_server_exception(), "{error:?}");
    assert_eq!(titan_usage(&sim.invoke_json(TITAN, &titan("hi", 10)).await), (1, 10));
    let stats = stats_of(&sim, TITAN);
    assert_eq!((stats.requests, stats.throttled, stats.tokens_charged), (3, 1, 11));
}

#[tokio::test]
async fn embedding_requests_reserve_their_input_tokens() {
    let sim = start().await;
    // Matched on the base model id, like behaviors.
    let profile = format!("us.{TITAN_EMBED_V2}");
    sim.simulator.set_quota(&profile, per_minute(10)).unwrap();
    let body = json!({"inputText": "the quick brown fox"});
    sim.invoke_json(TITAN_EMBED_V2, &body).await;
    sim.invoke_json(TITAN_EMBED_V2, &body).await;
    assert_throttled(&sim, TITAN_EMBED_V2, &body).await;
    let stats = stats_of(&sim, TITAN_EMBED_V2);
    assert_eq!((stats.requests, stats.throttled, stats.tokens_charged), (3, 1, 8));
    assert_eq!(stats.peak_tokens_per_minute, 8);
}

#[tokio::test]
async fn quota_routes_and_stats_over_http() {
    let sim = start().await;
    // An encoded ARN names claude-v2:1, which a cross-region profile id reaches too.
    let arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fanthropic.claude-v2%3A1";
    let uri = format!("/_sim/quota/{arn}");
    let response = send(&sim.simulator, "PUT", &uri, r#"{"tokens_per_minute": 100}"#).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // The prompt "\n\nHuman: hi\n\nAssistant:" is 3 input tokens; 3 + 300 does not fit.
    let claude = "us.anthropic.claude-v2:1";
    assert_throttled(&sim, claude, &claude_body("hi", json!({}))).await;
    sim.invoke_json(claude, &claude_body("hi", json!({"max_tokens_to_sample": 5}))).await;

    let response = send(&sim.simulator, "GET", "/_sim/stats", "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let expected = json!({
        "requests": 2,
        "in_flight": 0,
        "auth_refusals": 0,
        "models": {"anthropic.claude-v2:1": {
            "requests": 2, "throttled": 1, "tokens_charged": 8, "peak_tokens_per_minute": 8,
        }},
    });
    assert_eq!(body_json(response).await, expected);

    // DELETE clears the quota and its counters; models are counted without a quota too.
    let response = send(&sim.simulator, "DELETE", "/_sim/quota", "").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.simulator.stats().models.len(), 0);
    sim.invoke_json(claude, &claude_body("hi", json!({}))).await;
    sim.invoke_json(TITAN, &titan("hi", 50)).await;
    let stats = sim.simulator.stats();
    assert_eq!(stats.requests, 4);
    let keys: Vec<_> = stats.models.keys().map(String::as_str).collect();
    assert_eq!(keys, ["amazon.titan-text-express-v1", "anthropic.claude-v2:1"]);
    let claude_stats = &stats.models["anthropic.claude-v2:1"];
    assert_eq!((claude_stats.requests, claude_stats.throttled), (1, 0));
    // Without a quota the peak still counts the reservation of 3 + 300.
    assert_eq!(claude_stats.peak_tokens_per_minute, 303);
    assert_eq!(stats.models[TITAN].tokens_charged, 45);
}

#[tokio::test]
async fn bad_quotas_are_validation_errors() {
    let simulator = Simulator::new();
    let uri = format!("/_sim/quota/{TITAN}");
    for (uri, quota) in [
        (uri.as_str(), "not json"),
        (uri.as_str(), "{}"),
        (uri.as_str(), r#"{"output_burndown": 2}"#),
        (uri.as_str(), r#"{"tokens_per_minute": 0}"#),
        (uri.as_str(), r#"{"tokens_per_minute": 10, "tokens_per_day": 0}"#),
        (uri.as_str(), r#"{"tokens_per_minute": -5}"#),
        (uri.as_str(), r#"{"tokens_per_minute": 1.5}"#),
        (uri.as_str(), r#"{"tokens_per_minute": 10, "output_burndown": 0.5}"#),
        (uri.as_str(), r#"{"tokens_per_minute": 10, "output_burndown": "5"}"#),
        (uri.as_str(), r#"{"tokens_per_minute": 10, "requests_per_minute": 5}"#),
        ("/_sim/quota/*", r#"{"tokens_per_minute": 10}"#),
    ] {
        let response = send(&simulator, "PUT", uri, quota).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{quota}");
        let error_type = response.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
        assert!(error_type.starts_with("ValidationException:"), "{quota}");
        let message = body_json(response).await["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with("Invalid quota: "), "{message}");
    }
    assert!(simulator.stats().models.is_empty());

    // The Rust API checks the same.
    assert!(simulator.set_quota(TITAN, Quota::default()).is_err());
    let nan = Quota { output_burndown: f64::NAN, ..per_minute(10) };
    assert!(simulator.set_quota(TITAN, nan).is_err());
    assert!(simulator.set_quota("*", per_minute(10)).is_err());
    assert!(simulator.set_quota(TITAN, per_minute(10)).is_ok());
}

/// The error of a stream start refused by the quota is the same ThrottlingException.
#[tokio::test]
async fn a_stream_start_is_throttled_like_an_invoke() {
    let sim = start().await;
    sim.simulator.set_quota(TITAN, per_minute(10)).unwrap();
    let error = sim.start_stream(TITAN, &titan("hi", 50)).await.unwrap_err();
    let SdkError::ServiceError(context) = error else {
        panic!("not a service error: {error:?}");
    };
    assert_eq!(context.raw().status().as_u16(), 429);
    let error = context.into_err();
    assert!(error.is_throttling_exception(), "{error:?}");
    assert_eq!(error.message(), Some(TOO_MANY_TOKENS));
}
