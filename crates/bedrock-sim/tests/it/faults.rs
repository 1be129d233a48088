//! Injected faults and latency: every error kind before the response and inside the stream,
//! truncation, bad checksums, dropped connections, `fault_times` and first-byte latency.

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use bedrock_sim::{Behavior, ErrorKind, Fault};
use serde_json::{Value, json};

use crate::support::{
    CLAUDE, StreamEnd, TITAN, claude_body, in_stream_error_variant, invoke_error_variant, start,
    stream_start_error_variant, titan_body,
};

fn fault(fault: Fault) -> Behavior {
    Behavior { fault: Some(fault), ..Behavior::default() }
}

/// The InvokeModel variant of each kind: every kind is modelled except ModelStreamError.
fn expected_invoke_variant(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ModelStreamError => "Unhandled",
        other => other.shape_name(),
    }
}

#[tokio::test]
async fn every_error_kind_before_an_invoke_response() {
    let sim = start().await;
    let body = titan_body("hello", json!({}));
    for kind in ErrorKind::ALL {
        sim.simulator.set_behavior(TITAN, fault(Fault::Error(kind)));
        let error = sim.invoke(TITAN, &body).await.unwrap_err();
        let status = error.raw_response().map(|response| response.status().as_u16());
        assert_eq!(status, Some(kind.http_status()), "{kind:?}");
        let error = error.into_service_error();
        assert_eq!(invoke_error_variant(&error), expected_invoke_variant(kind), "{kind:?}");
        assert_eq!(error.code(), Some(kind.shape_name()));
        assert_eq!(error.message(), Some(kind.default_message()));
        if let InvokeModelError::ModelErrorException(model_error) = &error {
            assert_eq!(model_error.original_status_code(), Some(500));
            assert_eq!(
                model_error.resource_name(),
                Some("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1")
            );
        }
    }
    assert_eq!(sim.simulator.request_count(), ErrorKind::ALL.len() as u64);
}

#[tokio::test]
async fn every_error_kind_before_a_stream_starts() {
    let sim = start().await;
    let body = claude_body("hello", json!({}));
    for kind in ErrorKind::ALL {
        sim.simulator.set_behavior("*", fault(Fault::Error(kind)));
        let error = sim.start_stream(CLAUDE, &body).await.unwrap_err();
        let status = error.raw_response().map(|response| response.status().as_u16());
        assert_eq!(status, Some(kind.http_status()), "{kind:?}");
        let error = error.into_service_error();
        assert_eq!(stream_start_error_variant(&error), kind.shape_name(), "{kind:?}");
        assert_eq!(error.message(), Some(kind.default_message()));
    }
}

#[tokio::test]
async fn error_after_chunks_is_an_error_on_invoke() {
    let sim = start().await;
    sim.simulator.set_behavior(TITAN, fault(Fault::ErrorAfterChunks(ErrorKind::Throttling, 3)));
    let error = sim.invoke(TITAN, &titan_body("hello", json!({}))).await.unwrap_err();
    assert!(error.into_service_error().is_throttling_exception());
}

#[tokio::test]
async fn every_error_kind_inside_a_stream() {
    let sim = start().await;
    let body = titan_body("hello", json!({}));
    for kind in ErrorKind::ALL {
        sim.simulator.set_behavior(TITAN, fault(Fault::ErrorAfterChunks(kind, 2)));
        let result = sim.stream(TITAN, &body).await;
        assert_eq!(result.chunks.len(), 2, "{kind:?}");
        let StreamEnd::ServiceError(error) = result.end else {
            panic!("{kind:?}: expected an exception, got {:?}", result.end);
        };
        let expected =
            if kind.stream_exception_type().is_some() { kind.shape_name() } else { "Unhandled" };
        assert_eq!(in_stream_error_variant(&error), expected, "{kind:?}");
        assert_eq!(error.message(), Some(kind.default_message()), "{kind:?}");
        if let ResponseStreamError::ModelStreamErrorException(stream_error) = &error {
            assert_eq!(stream_error.original_status_code(), Some(500));
            assert!(stream_error.original_message().is_some());
        }
    }
}

#[tokio::test]
async fn error_after_more_chunks_than_the_stream_has_comes_last() {
    let sim = start().await;
    sim.simulator
        .set_behavior(CLAUDE, fault(Fault::ErrorAfterChunks(ErrorKind::ModelStreamError, 1000)));
    let body = claude_body("hello", json!({"max_tokens_to_sample": 3}));
    let result = sim.stream(CLAUDE, &body).await;
    assert_eq!(result.chunks.len(), 4);
    assert!(result.chunks[3].get("amazon-bedrock-invocationMetrics").is_some());
    let StreamEnd::ServiceError(error) = result.end else { panic!("{:?}", result.end) };
    assert!(error.is_model_stream_error_exception());
}

#[tokio::test]
async fn truncated_stream_is_a_response_error() {
    let sim = start().await;
    sim.simulator.set_behavior(TITAN, fault(Fault::TruncateAfterChunks(3)));
    let result = sim.stream(TITAN, &titan_body("hello", json!({}))).await;
    assert_eq!(result.chunks.len(), 3);
    assert!(matches!(result.end, StreamEnd::ResponseError(_)), "{:?}", result.end);
}

#[tokio::test]
async fn truncated_invoke_body_is_not_json() {
    let sim = start().await;
    sim.simulator.set_behavior(TITAN, fault(Fault::TruncateAfterChunks(0)));
    let output = sim.invoke(TITAN, &titan_body("hello", json!({}))).await.unwrap();
    let body = output.body().as_ref();
    assert!(!body.is_empty());
    assert!(serde_json::from_slice::<Value>(body).is_err());
    assert!(body.starts_with(br#"{"inputTextTokenCount""#));
}

#[tokio::test]
async fn bad_checksum_is_a_response_error() {
    let sim = start().await;
    sim.simulator.set_behavior(CLAUDE, fault(Fault::BadChecksumAfterChunks(2)));
    let result = sim.stream(CLAUDE, &claude_body("hello", json!({}))).await;
    assert_eq!(result.chunks.len(), 2);
    let StreamEnd::ResponseError(error) = &result.end else { panic!("{:?}", result.end) };
    assert!(error.contains("Checksum"), "{error}");

    // InvokeModel has no frames to spoil.
    sim.simulator.set_behavior(TITAN, fault(Fault::BadChecksumAfterChunks(0)));
    assert!(sim.invoke(TITAN, &titan_body("hello", json!({}))).await.is_ok());
}

#[tokio::test]
async fn aborted_stream_fails() {
    let sim = start().await;
    sim.simulator.set_behavior(TITAN, fault(Fault::AbortAfterChunks(2)));
    let result = sim.stream(TITAN, &titan_body("hello", json!({}))).await;
    assert_eq!(result.chunks.len(), 2);
    match &result.end {
        StreamEnd::ResponseError(error) | StreamEnd::OtherError(error) => {
            assert!(!error.is_empty())
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn aborted_invoke_fails_without_a_service_error() {
    // The SDK reports the dropped connection as a dispatch failure.
    let sim = start().await;
    sim.simulator.set_behavior(TITAN, fault(Fault::AbortAfterChunks(0)));
    let error = sim.invoke(TITAN, &titan_body("hello", json!({}))).await.unwrap_err();
    assert!(!matches!(error, SdkError::ServiceError(_)), "{error:?}");
}

#[tokio::test]
async fn fault_times_fails_once_then_succeeds() {
    let sim = start().await;
    let behavior = Behavior {
        fault: Some(Fault::Error(ErrorKind::ServiceUnavailable)),
        fault_times: Some(1),
        ..Behavior::default()
    };
    // Set on the profile id: it applies to the base model.
    sim.simulator.set_behavior("us.anthropic.claude-v2:1", behavior);
    let body = claude_body("hello", json!({}));
    let error =
        sim.invoke("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2:1", &body);
    assert!(error.await.unwrap_err().into_service_error().is_service_unavailable_exception());
    assert!(sim.invoke(CLAUDE, &body).await.is_ok());
    assert!(sim.stream(CLAUDE, &body).await.chunks.len() > 1);
    assert_eq!(sim.simulator.request_count(), 3);

    // Other models were never affected, and clearing removes the behavior.
    sim.simulator.set_behavior(CLAUDE, fault(Fault::Error(ErrorKind::Throttling)));
    assert!(sim.invoke("anthropic.claude-v2", &body).await.is_ok());
    sim.simulator.clear_behaviors();
    assert!(sim.invoke(CLAUDE, &body).await.is_ok());
}

#[tokio::test]
async fn first_byte_latency_delays_the_first_chunk() {
    let sim = start().await;
    let latency = Duration::from_millis(300);
    let behavior = Behavior { first_byte_latency: latency, ..Behavior::default() };
    sim.simulator.set_behavior(TITAN, behavior);
    let body = titan_body("slow", json!({"maxTokenCount": 3}));

    let started = Instant::now();
    let mut output = sim.start_stream(TITAN, &body).await.unwrap();
    let first = output.body.recv().await.unwrap();
    assert!(first.is_some());
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

    let started = Instant::now();
    sim.invoke(TITAN, &body).await.unwrap();
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
}

#[tokio::test]
async fn token_latency_spaces_the_chunks_and_shows_in_the_metrics() {
    let sim = start().await;
    let behavior = Behavior { token_latency: Duration::from_millis(20), ..Behavior::default() };
    sim.simulator.set_behavior("*", behavior);
    let body = titan_body("paced", json!({"maxTokenCount": 5}));
    let started = Instant::now();
    let result = sim.stream(TITAN, &body).await;
    assert!(started.elapsed() >= Duration::from_millis(80), "{:?}", started.elapsed());
    let metrics = &result.chunks[4]["amazon-bedrock-invocationMetrics"];
    let invocation_latency = metrics["invocationLatency"].as_u64().unwrap();
    let first_byte_latency = metrics["firstByteLatency"].as_u64().unwrap();
    assert!(invocation_latency >= first_byte_latency + 80, "{metrics}");

    let started = Instant::now();
    sim.invoke(TITAN, &body).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100), "{:?}", started.elapsed());
}
