//! Shared limits in a real `redis-server`: two gateways on one quota, and Redis dying
//! and coming back under each failure mode.

use std::time::Duration;

use bedrock_sim::{Behavior, Quota};
use serde_json::json;

use crate::harness::{Harness, post_concurrently};
#[path = "../../../../crates/server/src/limits/redis/test_server.rs"]
mod test_server;
use test_server::RedisServer;

const TITAN: &str = "amazon.titan-text-express-v1";

/// A route of `tpm` tokens per minute, its counters in `limits` (a `[limits]` table).
fn routes(limits: &str, tpm: u64) -> String {
    format!(
        r#"
{limits}

[targets.titan-q]
model_id = "{TITAN}"
tokens_per_minute = {tpm}
max_queue_wait_ms = 20000

[models.titan]
targets = ["titan-q"]
defaults = {{ max_tokens = 400 }}
"#
    )
}

fn redis_limits(server: &RedisServer, mode: &str) -> String {
    format!(
        "[limits]\nbackend = \"redis\"\nredis_url = \"{}\"\nredis_timeout_ms = 250\n\
         redis_failure_mode = \"{mode}\"\nexpected_replicas = 2\n",
        server.url()
    )
}

/// Sends `n` requests at once, alternating between the gateways; returns the statuses.
async fn burst(gateways: &[&Harness], n: usize) -> Vec<u16> {
    let requests = (0..n).map(|i| {
        let body = json!({"model": "titan", "prompt": format!("request number {i}")});
        (gateways[i % gateways.len()], body)
    });
    post_concurrently("/v1/generate", requests).await
}

/// Two gateways, each configured with the account's whole quota, against one Bedrock
/// (the first one's simulator).
async fn pair(limits: &str) -> (Harness, Harness) {
    let a = Harness::start_with("max_attempts = 1\n", &routes(limits, 3300)).await;
    // The account's quota: 8 reservations of ~410 tokens fit in the minute's burst.
    a.sim.set_quota(TITAN, Quota { tokens_per_minute: Some(3300), ..Quota::default() }).unwrap();
    a.sim.set_behavior(
        TITAN,
        Behavior { first_byte_latency: Duration::from_millis(300), ..Behavior::default() },
    );
    let upstream = format!(
        "[upstream]\nkind = \"simulator\"\nendpoint_url = \"{}\"\nmax_attempts = 1\n",
        a.sim_url
    );
    let b = Harness::gateway_only(&format!("{upstream}{}", routes(limits, 3300))).await;
    (a, b)
}

#[tokio::test]
async fn two_gateways_sharing_redis_stay_within_one_quota() {
    let server = RedisServer::start();
    let (a, b) = pair(&redis_limits(&server, "fail_closed")).await;
    let statuses = burst(&[&a, &b], 16).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let model = &a.sim.stats().models[TITAN];
    assert_eq!(model.throttled, 0, "{model:?}");
    // Both replicas read the shared counters at scrape time: the same limit, and no
    // tokens still reserved once the burst is settled.
    for gateway in [&a, &b] {
        let metrics = gateway.scrape().await;
        let line =
            |prefix: &str| metrics.lines().find(|l| l.starts_with(prefix)).map(str::to_owned);
        let limit = line("gateway_quota_limit_tokens_per_minute{").unwrap_or_default();
        assert!(limit.ends_with(" 3300"), "{metrics}");
        let reserved = line("gateway_quota_reserved_tokens{").unwrap_or_default();
        assert!(reserved.ends_with(" 0"), "{reserved}");
        let commands = line("gateway_redis_command_duration_seconds_count{").unwrap_or_default();
        assert!(!commands.ends_with(" 0") && !commands.is_empty(), "{metrics}");
    }
}

#[tokio::test]
async fn two_gateways_with_local_counters_overrun_the_quota() {
    // The control: the same burst, each gateway counting alone, is throttled by Bedrock.
    let (a, b) = pair("").await;
    burst(&[&a, &b], 16).await;
    assert!(a.sim.stats().models[TITAN].throttled > 0);
}

#[tokio::test]
async fn redis_down_fail_closed_refuses_and_recovers() {
    let mut server = RedisServer::start();
    let (a, _b) = pair(&redis_limits(&server, "fail_closed")).await;
    let request = json!({"model": "titan", "prompt": "hi"});
    assert_eq!(a.post("/v1/generate", &request).await.0, 200);
    server.kill();
    let (status, headers, body) = a.post("/v1/generate", &request).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "limits_unavailable");
    assert!(headers.contains_key("retry-after"));
    server.restart();
    let mut recovered = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if a.post("/v1/generate", &request).await.0 == 200 {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "the gateway uses Redis again once it is back");
}

#[tokio::test]
async fn redis_down_fail_open_admits_with_local_shares() {
    let mut server = RedisServer::start();
    let (a, _b) = pair(&redis_limits(&server, "fail_open")).await;
    server.kill();
    // Fail open: local counters at quota ÷ expected_replicas (1650 tokens: 4 reservations
    // fit at once); the rest queue, and Bedrock is not throttled by this replica alone.
    let statuses = burst(&[&a], 6).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(a.sim.stats().models[TITAN].throttled, 0);
    // The scrape says so: decisions taken locally, and the Redis failures behind them.
    let metrics = a.scrape().await;
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .filter(|line| line.starts_with(series))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(value("gateway_limits_fail_open_total ") >= 6.0, "{metrics}");
    assert!(value("gateway_redis_errors_total{") >= 1.0, "{metrics}");
    assert!(value("gateway_redis_command_duration_seconds_count{") >= 1.0, "{metrics}");
    server.restart();
    let request = json!({"model": "titan", "prompt": "back"});
    let mut recovered = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, _, _) = a.post("/v1/generate", &request).await;
        assert_eq!(status, 200);
        if server_has_keys(&server).await {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "the counters are in Redis again once it is back");
}

/// Whether the gateway's counters are in Redis (`KEYS gw:*`).
async fn server_has_keys(server: &RedisServer) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await else {
        return false;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.write_all(b"KEYS gw:*\r\n").await.is_err() {
        return false;
    }
    let mut answer = [0_u8; 64];
    let n = stream.read(&mut answer).await.unwrap_or(0);
    // An empty list is "*0\r\n".
    n > 0 && !answer[..n].starts_with(b"*0")
}
