//! Graceful shutdown as Kubernetes needs it: readiness drops first, in-flight streams
//! finish, then `run` returns.

use std::time::Duration;

use bedrock_sim::Behavior;
use reqwest::StatusCode;
use serde_json::json;

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
    let mut h = Harness::start().await;
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
