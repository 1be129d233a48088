//! Streamed generation: one `delta` per Bedrock chunk as it arrives, then `done`,
//! or an `error` event when the stream breaks after the 200.

use std::time::Duration;

use bedrock_sim::{Behavior, ErrorKind, Fault};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Harness, joined_text};

#[tokio::test]
async fn both_families_stream_the_same_text_as_the_whole_answer() {
    let h = Harness::start().await;
    for model in ["titan", "claude"] {
        let request = json!({"model": model, "prompt": "Describe the sea"});
        let (_, _, whole) = h.post("/v1/generate", &request).await;

        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        let (status, headers, events) = h.stream(&streamed).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/event-stream");
        assert!(events.len() > 2, "{model}: {events:?}");
        assert!(events[..events.len() - 1].iter().all(|e| e.event == "delta"), "{events:?}");
        assert_eq!(joined_text(&events), whole["text"].as_str().unwrap(), "{model}");

        let done = events.last().unwrap();
        assert_eq!(done.event, "done", "{model}: {events:?}");
        assert_eq!(done.data["model"], model);
        assert_eq!(done.data["stop_reason"], "end_turn");
        assert_eq!(done.data["usage"], whole["usage"], "{model}");
        assert!(done.data["id"].as_str().unwrap().starts_with("gen-"));
    }
}

#[tokio::test]
async fn accept_event_stream_asks_for_a_stream() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/v1/generate"))
        .header("accept", "text/event-stream")
        .json(&json!({"model": "titan", "prompt": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    assert!(text.contains("event: done"), "{text}");
    // `"stream": false` wins over the header.
    let response = h
        .http
        .post(h.url("/v1/generate"))
        .header("accept", "text/event-stream")
        .json(&json!({"model": "titan", "prompt": "Hi", "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn stop_reasons_and_usage_arrive_in_the_done_event() {
    let h = Harness::start().await;
    for model in ["titan", "claude"] {
        let (_, _, events) = h
            .stream(
                &json!({"model": model, "prompt": "Count to ten", "max_tokens": 4, "stream": true}),
            )
            .await;
        let done = events.last().unwrap();
        assert_eq!(done.event, "done", "{events:?}");
        assert_eq!(done.data["stop_reason"], "max_tokens", "{model}");
        assert_eq!(done.data["usage"]["output_tokens"], 4, "{model}");
        assert!(done.data["usage"]["input_tokens"].as_u64().unwrap() > 0, "{model}");
        assert_eq!(events.iter().filter(|e| e.event == "delta").count(), 4);
    }
}

#[tokio::test]
async fn deltas_are_forwarded_as_bedrock_sends_them_not_buffered() {
    // The simulator sleeps 300 ms between chunks. If the gateway buffered the stream,
    // every event would arrive at once; forwarded, the first delta arrives at least
    // (chunks - 1) x 300 ms before the last event. Only lower bounds: noise-proof.
    let h = Harness::start().await;
    h.sim.set_behavior(
        "amazon.titan-text-express-v1",
        Behavior { token_latency: Duration::from_millis(300), ..Behavior::default() },
    );
    let (_, _, events) = h
        .stream(&json!({"model": "titan", "prompt": "Slowly now", "max_tokens": 6, "stream": true}))
        .await;
    let first = events.iter().find(|e| e.event == "delta").unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event, "done");
    let spread = last.at.duration_since(first.at);
    assert!(spread >= Duration::from_millis(1000), "events arrived together: {spread:?}");
}

#[tokio::test]
async fn an_exception_mid_stream_ends_it_with_an_error_event() {
    let expected = [
        (ErrorKind::Throttling, "upstream_throttled"),
        (ErrorKind::Validation, "upstream_rejected"),
        (ErrorKind::ModelTimeout, "upstream_timeout"),
        (ErrorKind::ServiceUnavailable, "upstream_unavailable"),
        (ErrorKind::InternalServer, "upstream_error"),
        (ErrorKind::ModelStreamError, "upstream_error"),
        // No in-stream member in Bedrock's model: the SDK sees an unknown exception.
        (ErrorKind::AccessDenied, "upstream_error"),
    ];
    let h = Harness::start().await;
    for (kind, error_type) in expected {
        h.sim.set_behavior(
            "*",
            Behavior { fault: Some(Fault::ErrorAfterChunks(kind, 2)), ..Behavior::default() },
        );
        for model in ["titan", "claude"] {
            let (status, _, events) =
                h.stream(&json!({"model": model, "prompt": "Go on", "stream": true})).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(events.len(), 3, "{kind:?} {model}: {events:?}");
            assert_eq!(joined_text(&events).split_whitespace().count(), 2);
            let last = events.last().unwrap();
            assert_eq!(last.event, "error", "{kind:?} {model}");
            assert_eq!(last.data["error"]["type"], error_type, "{kind:?} {model}");
            assert!(last.data["error"]["message"].as_str().unwrap().len() > 5);
        }
    }
}

#[tokio::test]
async fn a_broken_stream_is_never_a_silent_truncation() {
    let faults = [
        (Fault::TruncateAfterChunks(2), "malformed_upstream"),
        (Fault::BadChecksumAfterChunks(2), "malformed_upstream"),
        (Fault::AbortAfterChunks(2), "malformed_upstream"),
    ];
    let h = Harness::start().await;
    for (fault, error_type) in faults {
        h.sim.set_behavior("*", Behavior { fault: Some(fault.clone()), ..Behavior::default() });
        let (status, _, events) =
            h.stream(&json!({"model": "titan", "prompt": "Go on", "stream": true})).await;
        assert_eq!(status, StatusCode::OK);
        let last = events.last().unwrap();
        assert_eq!(last.event, "error", "{fault:?}: {events:?}");
        assert_eq!(last.data["error"]["type"], error_type, "{fault:?}");
        assert!(events.iter().all(|e| e.event != "done"));
    }
}
