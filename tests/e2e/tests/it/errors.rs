//! Every failure gets a status and the one JSON error shape; nothing panics.

use std::time::Duration;

use bedrock_sim::{Behavior, ErrorKind, Fault};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, TEST_MODELS};

/// What the caller sees for each Bedrock error before the answer starts.
fn expected(kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        ErrorKind::Throttling | ErrorKind::ServiceQuotaExceeded => (429, "upstream_throttled"),
        ErrorKind::Validation => (400, "upstream_rejected"),
        ErrorKind::ModelTimeout => (504, "upstream_timeout"),
        ErrorKind::ServiceUnavailable | ErrorKind::ModelNotReady => (503, "upstream_unavailable"),
        ErrorKind::AccessDenied | ErrorKind::ResourceNotFound => (502, "upstream_misconfigured"),
        ErrorKind::InternalServer | ErrorKind::ModelError | ErrorKind::ModelStreamError => {
            (502, "upstream_error")
        }
    }
}

fn assert_error_shape(body: &Value) {
    let error = body["error"].as_object().unwrap_or_else(|| panic!("no error object: {body}"));
    assert_eq!(error.len(), 2, "{body}");
    assert!(error["type"].is_string() && error["message"].is_string(), "{body}");
}

#[tokio::test]
async fn every_bedrock_error_maps_to_its_status_rest_and_sse() {
    let h = Harness::start().await;
    for kind in ErrorKind::ALL {
        h.sim
            .set_behavior("*", Behavior { fault: Some(Fault::Error(kind)), ..Behavior::default() });
        let (status, error_type) = expected(kind);
        for stream in [false, true] {
            for model in ["titan", "claude"] {
                let request = json!({"model": model, "prompt": "Hi", "stream": stream});
                let (got, headers, body) = h.post("/v1/generate", &request).await;
                assert_eq!(got.as_u16(), status, "{kind:?} stream={stream}: {body}");
                assert_error_shape(&body);
                assert_eq!(body["error"]["type"], error_type, "{kind:?} stream={stream}");
                if status == 429 || status == 503 {
                    assert!(headers.contains_key("retry-after"), "{kind:?}");
                }
            }
        }
    }
    // One attempt per call: retries are off in this harness.
    assert_eq!(h.sim.request_count(), 4 * ErrorKind::ALL.len() as u64);
}

#[tokio::test]
async fn bedrock_validation_messages_reach_the_caller() {
    let h = Harness::start().await;
    h.sim.set_behavior(
        "*",
        Behavior { fault: Some(Fault::Error(ErrorKind::Validation)), ..Behavior::default() },
    );
    let (_, _, body) = h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("Bedrock rejected the request: ")
    );
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_when_attempts_allow() {
    let h = Harness::start_with("max_attempts = 3\n", TEST_MODELS).await;
    h.sim.set_behavior(
        "*",
        Behavior {
            fault: Some(Fault::Error(ErrorKind::Throttling)),
            fault_times: Some(1),
            ..Behavior::default()
        },
    );
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(h.sim.request_count(), 2);
}

#[tokio::test]
async fn a_slow_first_byte_is_a_gateway_timeout() {
    let h = Harness::start_with("max_attempts = 1\nrequest_timeout_ms = 200\n", TEST_MODELS).await;
    h.sim.set_behavior(
        "*",
        Behavior { first_byte_latency: Duration::from_secs(3), ..Behavior::default() },
    );
    for stream in [false, true] {
        let (status, _, body) = h
            .post("/v1/generate", &json!({"model": "titan", "prompt": "Hi", "stream": stream}))
            .await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert_eq!(body["error"]["type"], "upstream_timeout");
    }
}

#[tokio::test]
async fn a_stream_waits_for_its_first_chunk_and_a_whole_answer_for_longer() {
    // A long non-streamed answer is not cut off by the streams' first-byte deadline.
    let upstream = "max_attempts = 1\nrequest_timeout_ms = 10000\nfirst_byte_timeout_ms = 200\n";
    let h = Harness::start_with(upstream, TEST_MODELS).await;
    h.sim.set_behavior(
        "*",
        Behavior { first_byte_latency: Duration::from_millis(600), ..Behavior::default() },
    );
    let whole = h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(whole.0, StatusCode::OK, "{}", whole.2);
    let streamed =
        h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi", "stream": true})).await;
    assert_eq!(streamed.0, StatusCode::GATEWAY_TIMEOUT, "{}", streamed.2);
    assert_eq!(streamed.2["error"]["type"], "upstream_timeout");
}

#[tokio::test]
async fn an_unreachable_bedrock_is_service_unavailable() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[upstream]\nkind = \"simulator\"\nendpoint_url = \"http://127.0.0.1:{port}\"\nmax_attempts = 1\n{TEST_MODELS}"
    );
    let h = Harness::gateway_only(&config).await;
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["type"], "upstream_unavailable");
    assert!(!body["error"]["message"].as_str().unwrap().contains(&port.to_string()));
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_clear_message() {
    let h = Harness::start().await;
    let cases: &[(&str, u16, &str, &str)] = &[
        (r#"{"model":"nope","prompt":"Hi"}"#, 404, "model_not_found", "nope"),
        (r#"{"model":"titan","prompt":"Hi""#, 400, "invalid_request", "invalid JSON"),
        ("", 400, "invalid_request", "empty"),
        ("[1,2]", 400, "invalid_request", "invalid JSON"),
        (r#"{"model":"titan"}"#, 400, "invalid_request", "prompt"),
        (r#"{"model":"titan","prompt":7}"#, 400, "invalid_request", "invalid type"),
        (
            r#"{"model":"titan","prompt":"Hi","max_tokens":"ten"}"#,
            400,
            "invalid_request",
            "invalid type",
        ),
        (
            r#"{"model":"titan","prompt":"Hi","max_tokens":-1}"#,
            400,
            "invalid_request",
            "invalid value",
        ),
        (r#"{"model":"titan","prompt":"Hi","stop":[1]}"#, 400, "invalid_request", "stop"),
        (
            r#"{"model":"titan","prompt":"Hi","stream":"yes"}"#,
            400,
            "invalid_request",
            "invalid type",
        ),
        (
            r#"{"model":"titan","prompt":"Hi","temprature":0.5}"#,
            400,
            "invalid_request",
            "temprature",
        ),
        (
            r#"{"model":"titan","prompt":"Hi","temperature":1.5}"#,
            400,
            "invalid_request",
            "temperature",
        ),
        (r#"{"model":"claude","prompt":"Hi","top_p":0}"#, 400, "invalid_request", "top_p"),
        (
            r#"{"model":"claude","prompt":"Hi","max_tokens":100000}"#,
            400,
            "invalid_request",
            "max_tokens",
        ),
        (r#"{"model":"titan","prompt":""}"#, 400, "invalid_request", "prompt"),
    ];
    for (body, status, error_type, needle) in cases {
        let (got, _, answer) = h.post_raw("/v1/generate", (*body).to_owned()).await;
        assert_eq!(got.as_u16(), *status, "{body}: {answer}");
        assert_error_shape(&answer);
        assert_eq!(answer["error"]["type"], *error_type, "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message:?} lacks {needle:?}");
    }
    // None of them reached Bedrock.
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn unknown_routes_methods_and_huge_bodies_get_the_error_shape() {
    let h = Harness::start().await;
    let response = h.http.get(h.url("/v1/nothing-here")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_error_shape(&response.json().await.unwrap());

    let response = h.http.get(h.url("/v1/generate")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_error_shape(&response.json().await.unwrap());

    let huge = format!(r#"{{"model":"titan","prompt":"{}"}}"#, "a".repeat(11 * 1024 * 1024));
    let (status, _, body) = h.post_raw("/v1/generate", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["type"], "payload_too_large");
}

#[tokio::test]
async fn bedrock_refuses_a_prompt_over_the_context_window_and_a_blank_one() {
    let models = "[models.haiku]\nmodel_id = \"anthropic.claude-3-haiku-20240307-v1:0\"\n\
                  defaults = { max_tokens = 16 }\n";
    let h = Harness::start_with("max_attempts = 1\n", models).await;
    // Claude 3 Haiku's window is 200k tokens (the simulator counts words).
    let long = "word ".repeat(200_001);
    for stream in [false, true] {
        let request = json!({"model": "haiku", "prompt": long, "stream": stream});
        let (status, _, body) = h.post("/v1/generate", &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["type"], "upstream_rejected");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("Input is too long for requested model."), "{message}");
    }
    let fits = json!({"model": "haiku", "prompt": "word ".repeat(1000)});
    assert_eq!(h.post("/v1/generate", &fits).await.0, StatusCode::OK);
    // A prompt of only whitespace: Anthropic's own refusal, passed on by Bedrock.
    let blank = json!({"model": "haiku", "messages": [{"role": "user", "content": " \n\t "}]});
    let (status, _, body) = h.post("/v1/generate", &blank).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("non-whitespace"), "{body}");
}
