//! The faults of a broken or hostile upstream, as the real SDK (or, where the SDK would
//! buffer gigabytes, a raw HTTP reader) sees them: bad bodies, a proxy's HTML page, an
//! unknown error type, a long message, a reset mid-body, a drip, a 2 GiB frame, no end;
//! and the count of invocations in flight.

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types::ResponseStream;
use bedrock_sim::{BadBody, Behavior, ErrorKind, Fault, Simulator};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{StreamEnd, TITAN, signed_request, start, titan_body};

fn fault(fault: Fault) -> Behavior {
    Behavior { fault: Some(fault), ..Behavior::default() }
}

/// Every chunk's bytes as they came (JSON or not), and whether the stream ended cleanly.
async fn raw_chunks(
    sim: &crate::support::TestSim,
    model_id: &str,
    body: &Value,
) -> (Vec<Vec<u8>>, bool) {
    let mut output = sim.start_stream(model_id, body).await.unwrap();
    let mut chunks = Vec::new();
    loop {
        match output.body.recv().await {
            Ok(Some(ResponseStream::Chunk(part))) => {
                chunks.push(part.bytes().unwrap().as_ref().to_vec());
            }
            Ok(Some(other)) => panic!("unexpected event {other:?}"),
            Ok(None) => return (chunks, true),
            Err(_) => return (chunks, false),
        }
    }
}

#[tokio::test]
async fn bad_invoke_bodies_come_with_a_200() {
    let sim = start().await;
    let body = titan_body("hello", json!({}));
    let answer = |sim: &crate::support::TestSim| {
        let body = body.clone();
        let client = sim.client.clone();
        async move {
            let output = client
                .invoke_model()
                .model_id(TITAN)
                .content_type("application/json")
                .body(crate::support::to_blob(&body))
                .send()
                .await
                .unwrap();
            output.body().as_ref().to_vec()
        }
    };
    sim.simulator.set_behavior(TITAN, fault(Fault::BadBodyAfterChunks(BadBody::InvalidJson, 0)));
    assert!(serde_json::from_slice::<Value>(&answer(&sim).await).is_err());
    sim.simulator.set_behavior(TITAN, fault(Fault::BadBodyAfterChunks(BadBody::OtherFamily, 0)));
    let other: Value = serde_json::from_slice(&answer(&sim).await).unwrap();
    assert_eq!(other["type"], "message", "a Claude Messages answer: {other}");
    sim.simulator.set_behavior(TITAN, fault(Fault::BadBodyAfterChunks(BadBody::UnknownShape, 0)));
    let unknown: Value = serde_json::from_slice(&answer(&sim).await).unwrap();
    assert!(unknown.get("results").is_none() && unknown.is_object(), "{unknown}");
    sim.simulator.set_behavior(TITAN, fault(Fault::BadBodyAfterChunks(BadBody::Empty, 0)));
    assert!(answer(&sim).await.is_empty());
}

#[tokio::test]
async fn bad_stream_bodies_follow_the_good_chunks() {
    let sim = start().await;
    let body = titan_body("hello there", json!({"maxTokenCount": 6}));
    let set = |bad| sim.simulator.set_behavior(TITAN, fault(Fault::BadBodyAfterChunks(bad, 2)));

    set(BadBody::InvalidJson);
    let (chunks, clean) = raw_chunks(&sim, TITAN, &body).await;
    assert_eq!(chunks.len(), 3);
    assert!(serde_json::from_slice::<Value>(&chunks[2]).is_err());
    assert!(clean, "a well-framed chunk of bad JSON, then the end");

    for (bad, key) in [(BadBody::OtherFamily, "type"), (BadBody::UnknownShape, "simUnknownEvent")] {
        set(bad);
        let (chunks, clean) = raw_chunks(&sim, TITAN, &body).await;
        assert!(clean && chunks.len() > 3, "{bad:?}");
        for chunk in &chunks[..2] {
            assert!(serde_json::from_slice::<Value>(chunk).unwrap().get("outputText").is_some());
        }
        for chunk in &chunks[2..] {
            let chunk: Value = serde_json::from_slice(chunk).unwrap();
            assert!(chunk.get(key).is_some() && chunk.get("outputText").is_none(), "{chunk}");
        }
    }

    set(BadBody::Empty);
    let (chunks, clean) = raw_chunks(&sim, TITAN, &body).await;
    assert_eq!((chunks.len(), clean), (2, true), "two chunks, then an end without a stop");
}

#[tokio::test]
async fn error_answers_bedrock_has_no_shape_for() {
    let sim = start().await;
    let body = titan_body("hello", json!({}));
    sim.simulator.set_behavior(TITAN, fault(Fault::ProxyError(502)));
    let error = sim.invoke(TITAN, &body).await.unwrap_err();
    let response = error.raw_response().unwrap();
    assert_eq!(response.status().as_u16(), 502);
    assert!(response.headers().get("content-type").unwrap().starts_with("text/html"));
    assert!(response.headers().get("x-amzn-errortype").is_none());

    sim.simulator.set_behavior(TITAN, fault(Fault::UnknownError("SomethingNewException".into())));
    let error = sim.invoke(TITAN, &body).await.unwrap_err();
    assert_eq!(error.raw_response().unwrap().status().as_u16(), 400);
    let error = error.into_service_error();
    assert_eq!(error.code(), Some("SomethingNewException"));

    let long = Fault::LongErrorMessage(ErrorKind::Validation, 3_000_000);
    sim.simulator.set_behavior(TITAN, fault(long));
    let error = sim.start_stream(TITAN, &body).await.unwrap_err().into_service_error();
    assert!(error.is_validation_exception());
    assert_eq!(error.message().unwrap().len(), 3_000_000);
}

#[tokio::test]
async fn a_reset_mid_body_cuts_the_answer_and_the_stream() {
    let sim = start().await;
    sim.simulator.set_behavior(TITAN, fault(Fault::ResetMidBodyAfterChunks(2)));
    let error = sim.invoke(TITAN, &titan_body("hello", json!({}))).await.unwrap_err();
    assert!(matches!(error, SdkError::ResponseError(_)), "{error:?}");
    let result = sim.stream(TITAN, &titan_body("hello", json!({"maxTokenCount": 6}))).await;
    assert_eq!(result.chunks.len(), 2);
    assert!(!matches!(result.end, StreamEnd::Clean | StreamEnd::ServiceError(_)), "{result:?}");
}

#[tokio::test]
async fn a_drip_sends_the_same_answer_slowly() {
    let sim = start().await;
    let body = titan_body("hello", json!({"maxTokenCount": 3}));
    let whole = sim.invoke_json(TITAN, &body).await;
    let streamed = sim.stream(TITAN, &body).await.chunks.len();
    sim.simulator.set_behavior(TITAN, fault(Fault::Drip(Duration::from_millis(1))));
    let started = Instant::now();
    let dripped = sim.invoke_json(TITAN, &body).await;
    let n_bytes = serde_json::to_vec(&whole).unwrap().len() as u32;
    // Only a lower bound: one sleep per byte after the first.
    assert!(started.elapsed() >= Duration::from_millis(1) * (n_bytes - 1));
    assert_eq!(dripped["results"], whole["results"]);
    let result = sim.stream(TITAN, &body).await;
    assert!(matches!(result.end, StreamEnd::Clean));
    assert_eq!(result.chunks.len(), streamed);
}

/// The first `n_bytes` of an answer's body, read raw, and its headers.
async fn first_bytes(
    simulator: &Simulator,
    operation: &str,
    n_bytes: usize,
) -> (axum::http::HeaderMap, Vec<u8>) {
    let body = titan_body("hello", json!({"maxTokenCount": 4})).to_string();
    let request = signed_request("POST", &format!("/model/{TITAN}/{operation}"), &body);
    let response = simulator.router().oneshot(request).await.unwrap();
    let headers = response.headers().clone();
    let mut stream = response.into_body().into_data_stream();
    let mut bytes = Vec::new();
    while bytes.len() < n_bytes {
        bytes.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    (headers, bytes)
}

#[tokio::test]
async fn a_huge_frame_announces_two_gib_after_its_chunks() {
    let simulator = Simulator::new();
    simulator.set_behavior(TITAN, fault(Fault::HugeFrameAfterChunks(1)));
    let (headers, bytes) = first_bytes(&simulator, "invoke", 1).await;
    assert_eq!(headers["content-length"], "2147483648");
    assert_eq!(bytes[0], 0);
    let (_, bytes) = first_bytes(&simulator, "invoke-with-response-stream", 1 << 20).await;
    let first_len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    let prelude = &bytes[first_len..first_len + 12];
    assert_eq!(u32::from_be_bytes(prelude[..4].try_into().unwrap()), 1 << 31);
    assert_eq!(crc32fast::hash(&prelude[..8]).to_be_bytes(), prelude[8..12]);
    assert!(bytes[first_len + 12..].iter().all(|byte| *byte == 0));
    // The bodies were dropped unfinished: nothing stays in flight.
    assert_eq!(simulator.in_flight(), 0);
}

#[tokio::test]
async fn an_endless_stream_repeats_a_text_chunk_and_a_dropped_one_leaves_nothing() {
    let sim = start().await;
    sim.simulator.set_behavior(TITAN, fault(Fault::Endless));
    let body = titan_body("hello", json!({"maxTokenCount": 3}));
    let mut output = sim.start_stream(TITAN, &body).await.unwrap();
    let mut texts = Vec::new();
    while texts.len() < 50 {
        let Ok(Some(ResponseStream::Chunk(part))) = output.body.recv().await else {
            panic!("the endless stream ended");
        };
        let chunk: Value = serde_json::from_slice(part.bytes().unwrap().as_ref()).unwrap();
        assert!(chunk.get("amazon-bedrock-invocationMetrics").is_none(), "{chunk}");
        texts.push(chunk["outputText"].as_str().unwrap().to_owned());
    }
    assert!(texts[1..].iter().all(|text| *text == texts[1]), "{texts:?}");
    assert_eq!(sim.simulator.in_flight(), 1);
    drop(output);
    wait_for_no_invocation_in_flight(&sim.simulator).await;
}

#[tokio::test]
async fn invocations_in_flight_are_counted_until_their_answer_is_over() {
    let sim = start().await;
    sim.simulator.set_behavior(
        TITAN,
        Behavior { first_byte_latency: Duration::from_millis(300), ..Behavior::default() },
    );
    let body = titan_body("hello", json!({}));
    let (answer, seen) = tokio::join!(sim.invoke(TITAN, &body), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sim.simulator.stats().in_flight
    });
    answer.unwrap();
    assert_eq!(seen, 1);
    wait_for_no_invocation_in_flight(&sim.simulator).await;
    // A client that gives up while the answer is still coming ends the invocation too.
    let gone = tokio::time::timeout(Duration::from_millis(100), sim.invoke(TITAN, &body)).await;
    assert!(gone.is_err());
    wait_for_no_invocation_in_flight(&sim.simulator).await;
}

/// Waits (up to 10 s: generous, a loaded machine is slow) for the count to be 0.
async fn wait_for_no_invocation_in_flight(simulator: &Simulator) {
    for _ in 0..1000 {
        if simulator.in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} invocations still in flight", simulator.in_flight());
}
