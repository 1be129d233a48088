//! Graceful shutdown as Kubernetes needs it: readiness drops first, in-flight streams
//! finish, then `run` returns; and in bounded time whatever the callers hold open.

use std::time::{Duration, Instant};

use bedrock_sim::Behavior;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Harness, TEST_MODELS};

#[tokio::test]
async fn readiness_drops_during_the_shutdown_delay_while_requests_are_still_served() {
    let config = format!(
        "shutdown_delay_ms = 5000\n[upstream]\nkind = \"simulator\"\nmax_attempts = 1\n{TEST_MODELS}"
    );
    let mut h = Harness::gateway_only(&config).await;
    assert_eq!(h.get("/readyz").await.0, StatusCode::OK);
    let (stop, _task) = h.take_shutdown();
    stop.send(()).unwrap();
    let mut status = StatusCode::OK;
    for _ in 0..200 {
        status = h.get("/readyz").await.0;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Still serving during the delay (this config embeds its own simulator).
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_stream_in_flight_finishes_after_the_shutdown_signal() {
    let mut h =
        Harness::start_with_top("shutdown_delay_ms = 0", "max_attempts = 1\n", TEST_MODELS).await;
    h.sim.set_behavior(
        "*",
        Behavior { token_latency: Duration::from_millis(100), ..Behavior::default() },
    );
    let (stop, task) = h.take_shutdown();
    let request =
        json!({"model": "claude", "prompt": "A long answer", "max_tokens": 8, "stream": true});
    let ((status, _, events), ()) = tokio::join!(h.stream(&request), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(()).unwrap();
    });
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
    assert_eq!(events.iter().filter(|e| e.event == "delta").count(), 8);
    // `run` returns once the stream is done.
    tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_ends_in_bounded_time_with_a_half_sent_request_and_a_stalled_stream() {
    let top = "shutdown_delay_ms = 300\ndrain_timeout_ms = 1000\n";
    let mut h = Harness::start_with_top(top, "max_attempts = 1\n", TEST_MODELS).await;
    // The stream's first delta comes at once, the next one a minute later.
    h.sim.set_behavior(
        "anthropic.claude-v2:1",
        Behavior { token_latency: Duration::from_secs(60), ..Behavior::default() },
    );
    let request = json!({"model": "claude", "prompt": "Hi", "max_tokens": 8, "stream": true});
    let mut stream = h.http.post(h.url("/v1/generate")).json(&request).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut received = String::new();
    while !received.contains("event: delta") {
        let chunk = stream.chunk().await.unwrap().expect("the stream ended before its first delta");
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    // A request whose head stops halfway, on a connection of its own.
    let mut half_sent = TcpStream::connect(h.base_url.trim_start_matches("http://")).await.unwrap();
    half_sent.write_all(b"POST /v1/generate HTTP/1.1\r\nhost: a\r\ncontent-le").await.unwrap();

    let (stop, task) = h.take_shutdown();
    let started = Instant::now();
    stop.send(()).unwrap();
    let rest = async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            received.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(30), rest).await.expect("the stream was not ended");
    // The stream ended with an error event, not silently.
    let last = received.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error"), "{received}");
    assert!(last.contains("\"type\":\"shutting_down\""), "{last}");
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the shutdown did not end")
        .unwrap();
    // It waited the delay and the drain for the half-sent request, then closed it.
    assert!(started.elapsed() >= Duration::from_millis(1300), "{:?}", started.elapsed());
    let mut buf = [0_u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), half_sent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "the half-sent request is still open: {closed:?}"
    );
}
