//! Unit tests of the stream body: frames decoded and CRC-checked, one test per fault.

use futures_util::StreamExt;
use serde_json::Value;

use super::*;
use crate::behavior::ErrorKind;
use crate::families::family_for;
use crate::generate::{GenerationRequest, generate};
use crate::quota::Quota;
use crate::simulator::Simulator;

/// One decoded frame: its string headers and payload; panics on a bad CRC.
#[derive(Debug)]
struct Frame {
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

fn decode_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let total_len = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let headers_len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let frame = &bytes[..total_len];
        assert_eq!(crc32fast::hash(&frame[..8]).to_be_bytes(), frame[8..12]);
        let message_crc = crc32fast::hash(&frame[..total_len - 4]).to_be_bytes();
        assert_eq!(message_crc, frame[total_len - 4..]);
        let mut header_block = &frame[12..12 + headers_len];
        let mut headers = Vec::new();
        while !header_block.is_empty() {
            let name_len = header_block[0] as usize;
            let name = String::from_utf8(header_block[1..1 + name_len].to_vec()).unwrap();
            assert_eq!(header_block[1 + name_len], 7);
            let value_at = 2 + name_len;
            let value_len =
                u16::from_be_bytes([header_block[value_at], header_block[value_at + 1]]);
            let value_end = value_at + 2 + value_len as usize;
            let value = String::from_utf8(header_block[value_at + 2..value_end].to_vec());
            headers.push((name, value.unwrap()));
            header_block = &header_block[value_end..];
        }
        let payload = frame[12 + headers_len..total_len - 4].to_vec();
        frames.push(Frame { headers, payload });
        bytes = &bytes[total_len..];
    }
    frames
}

/// The decoded model JSON of a chunk frame.
fn model_json(frame: &Frame) -> Value {
    use base64::Engine;
    let payload: Value = serde_json::from_slice(&frame.payload).unwrap();
    let bytes = payload["bytes"].as_str().unwrap();
    let padding = payload["p"].as_str().unwrap();
    assert!(crate::eventstream::PADDING_ALPHABET.starts_with(padding));
    let decoded = base64::engine::general_purpose::STANDARD.decode(bytes).unwrap();
    serde_json::from_slice(&decoded).unwrap()
}

const MODEL: &str = "amazon.titan-text-lite-v1";

/// A 4-token Titan stream of `simulator`, whose reservation allows 10 output tokens.
fn plan(simulator: &Simulator, fault: Option<Fault>) -> StreamPlan {
    let completion = generate(&GenerationRequest {
        prompt: "stream me".to_owned(),
        max_tokens: 4,
        stop_sequences: Vec::new(),
        space_before_first_token: false,
        ..GenerationRequest::default()
    });
    let reservation = simulator.reserve_tokens(MODEL, completion.n_input_tokens, 10).unwrap();
    StreamPlan {
        family: family_for(MODEL).unwrap(),
        completion,
        fault,
        token_latency: Duration::ZERO,
        hold: None,
        started: Instant::now(),
        reservation,
    }
}

async fn run(fault: Option<Fault>) -> (Vec<u8>, Option<std::io::Error>) {
    let items: Vec<_> = event_stream_body(plan(&Simulator::new(), fault)).collect().await;
    let mut bytes = Vec::new();
    for item in items {
        match item {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(error) => return (bytes, Some(error)),
        }
    }
    (bytes, None)
}

#[tokio::test]
async fn clean_stream_has_one_chunk_per_token_and_metrics_last() {
    let (bytes, error) = run(None).await;
    assert!(error.is_none());
    let frames = decode_frames(&bytes);
    assert_eq!(frames.len(), 4);
    for frame in &frames {
        let names: Vec<_> = frame.headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, [":event-type", ":content-type", ":message-type"]);
        assert_eq!(frame.headers[0].1, "chunk");
    }
    let last = model_json(&frames[3]);
    assert_eq!(last["amazon-bedrock-invocationMetrics"]["outputTokenCount"], 4);
    assert_eq!(last["amazon-bedrock-invocationMetrics"]["inputTokenCount"], 2);
    assert!(model_json(&frames[2]).get("amazon-bedrock-invocationMetrics").is_none());
}

#[tokio::test]
async fn error_fault_is_ignored_once_the_stream_runs() {
    let (bytes, _) = run(Some(Fault::Error(ErrorKind::Throttling))).await;
    assert_eq!(decode_frames(&bytes).len(), 4);
}

#[tokio::test]
async fn exception_after_chunks() {
    let (bytes, _) = run(Some(Fault::ErrorAfterChunks(ErrorKind::ModelStreamError, 1))).await;
    let frames = decode_frames(&bytes);
    assert_eq!(frames.len(), 2);
    let headers = &frames[1].headers;
    assert_eq!(headers[0], (":exception-type".to_owned(), "modelStreamErrorException".to_owned()));
    assert_eq!(headers[2], (":message-type".to_owned(), "exception".to_owned()));
    let payload: Value = serde_json::from_slice(&frames[1].payload).unwrap();
    assert_eq!(payload["originalStatusCode"], 500);

    let (bytes, _) = run(Some(Fault::ErrorAfterChunks(ErrorKind::AccessDenied, 0))).await;
    let frames = decode_frames(&bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].headers[0].1, "accessDeniedException");
}

#[tokio::test]
async fn truncation_leaves_half_a_frame() {
    let (clean, _) = run(None).await;
    let (bytes, error) = run(Some(Fault::TruncateAfterChunks(2))).await;
    assert!(error.is_none());
    let first_two_len: usize =
        decode_frames(&clean)[..2].iter().map(|frame| 16 + 75 + frame.payload.len()).sum();
    assert!(bytes.len() > first_two_len);
    assert_eq!(decode_frames(&bytes[..first_two_len]).len(), 2);
    assert_eq!(bytes[..first_two_len], clean[..first_two_len]);
}

#[tokio::test]
async fn bad_checksum_and_abort() {
    // Four good frames (the whole 4-token stream), then one whose message CRC is wrong.
    // Compared frame by frame, not with a clean run's bytes: the invocation latency in
    // the last chunk depends on the clock.
    let (bytes, _) = run(Some(Fault::BadChecksumAfterChunks(4))).await;
    let mut rest = &bytes[..];
    let mut n_good = 0;
    loop {
        let total_len = u32::from_be_bytes(rest[0..4].try_into().unwrap()) as usize;
        let frame = &rest[..total_len];
        if crc32fast::hash(&frame[..total_len - 4]).to_be_bytes() != frame[total_len - 4..] {
            assert_eq!(total_len, rest.len(), "the spoiled frame is the last one");
            break;
        }
        n_good += 1;
        rest = &rest[total_len..];
    }
    assert_eq!(n_good, 4);

    let (bytes, error) = run(Some(Fault::AbortAfterChunks(3))).await;
    assert!(error.is_some());
    assert_eq!(decode_frames(&bytes).len(), 3);
}

#[tokio::test]
async fn reservation_settles_at_the_last_chunk_or_at_the_chunks_sent_intact() {
    let simulator = Simulator::new();
    let quota = Quota { tokens_per_day: Some(1_000), output_burndown: 2.0, ..Quota::default() };
    simulator.set_quota(MODEL, quota).unwrap();
    let charged = || simulator.stats().models[MODEL].tokens_charged;

    // Two input tokens plus 4 output tokens at burndown 2, settled before the stream ends.
    let mut body = Box::pin(event_stream_body(plan(&simulator, None)));
    for _ in 0..3 {
        body.next().await.unwrap().unwrap();
    }
    assert_eq!(charged(), 0);
    body.next().await.unwrap().unwrap();
    assert_eq!(charged(), 2 + 4 * 2);
    assert!(body.next().await.is_none());
    assert_eq!(charged(), 10);

    // The spoiled third frame counts not.
    for fault in [
        Fault::ErrorAfterChunks(ErrorKind::Throttling, 2),
        Fault::TruncateAfterChunks(2),
        Fault::BadChecksumAfterChunks(2),
        Fault::AbortAfterChunks(2),
    ] {
        let before = charged();
        let _ = event_stream_body(plan(&simulator, Some(fault.clone()))).collect::<Vec<_>>().await;
        assert_eq!(charged() - before, 2 + 2 * 2, "{fault:?}");
    }

    // A client that goes away after one chunk: dropping the body settles.
    let before = charged();
    let mut body = Box::pin(event_stream_body(plan(&simulator, None)));
    body.next().await.unwrap().unwrap();
    drop(body);
    assert_eq!(charged() - before, 2 + 2);
    let stats = &simulator.stats().models[MODEL];
    assert_eq!((stats.requests, stats.throttled), (6, 0));
}

#[tokio::test]
async fn a_held_stream_waits_for_its_release_after_its_chunks() {
    use futures_util::FutureExt;

    let simulator = Simulator::new();
    let held_plan = |after_chunks| StreamPlan {
        hold: simulator.hold(Some(after_chunks)),
        ..plan(&simulator, None)
    };
    let mut body = Box::pin(event_stream_body(held_plan(1)));
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(decode_frames(&first).len(), 1);
    let mut next = body.next();
    assert!((&mut next).now_or_never().is_none(), "a held stream sent its second chunk");
    assert_eq!(simulator.held(), 1);
    // A stream started before the release and not yet at its hold goes on through it.
    let mut later = Box::pin(event_stream_body(held_plan(0)));
    simulator.release_held();
    assert!(next.await.unwrap().is_ok());
    let rest: Vec<_> = body.collect().await;
    assert_eq!(rest.len(), 2, "the third and the last chunk");
    assert!(later.next().await.unwrap().is_ok());
    assert_eq!(simulator.held(), 0);

    // A stream of fewer chunks holds after its last one, before its end; one that goes
    // away while held is no longer counted.
    let mut body = Box::pin(event_stream_body(held_plan(10)));
    for _ in 0..4 {
        body.next().await.unwrap().unwrap();
    }
    assert!(body.next().now_or_never().is_none(), "a held stream ended");
    assert_eq!(simulator.held(), 1);
    drop(body);
    assert_eq!(simulator.held(), 0);
}
