//! Scale-out on one machine (issue 13, part 4): one simulator holding Titan Text Express to
//! a token quota, one real `redis-server`, three gateways sharing that quota through
//! Redis, a steady load round-robin over them; in the middle gateway 1 is killed
//! abruptly and gateway 2's config is reloaded.
//!
//! Decisions:
//! - The gateways run in this process, each on a tokio runtime and thread of its own,
//!   with its own listeners, pipeline and Redis connection (`server::serve`, as the binary
//!   serves one worker). Killing one ends its `serve` future and shuts its runtime down in
//!   the background: every task of it (connections, queued requests, calls to Bedrock)
//!   is dropped without a drain, as a `SIGKILL` would, so requests in flight on it fail.
//!   Aborting a task on the test's runtime would not do: axum serves each connection in
//!   a task of its own, which would go on serving its keep-alive connections.
//! - The reload is `POST /-/reload` on gateway 2's admin listener after rewriting its file
//!   with the same quota and one more alias (a harmless change that shows the reload was
//!   applied). SIGHUP is not used: it would reach every gateway of this process.
//! - The quota is binding during the load: the simulator's bucket starts full (a minute of
//!   burst, as Bedrock's), so a warm-up empties it first (long prompts through the
//!   gateways, sized from what the simulator has charged), then the load offers about
//!   1.5 times the quota's refill rate. The gateways queue the difference (their queue
//!   waits stay a few seconds), so no request fails for the quota.
//! - "Within the quota" is the bucket's bound: what the simulator charged during the load
//!   is at most what its bucket held when the load started plus the refill since
//!   (quota ÷ 60 per second). The figure printed is the rate less that leftover burst.
//! - Failures are counted per gateway: only requests sent to gateway 1 before the kill
//!   may fail (at most those in flight on it at the kill); after the kill the round-robin
//!   goes over the two survivors, whose every request must succeed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bedrock_sim::{Behavior, Quota, Simulator};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;

// redis.rs includes the same file, as a private module of its own.
#[expect(clippy::duplicate_mod, reason = "redis.rs keeps its copy private; this one is ours")]
#[path = "../../../../crates/server/src/limits/redis/test_server.rs"]
mod test_server;
use test_server::RedisServer;

const TITAN: &str = "amazon.titan-text-express-v1";
/// The account's quota, tokens per minute: the simulator's and every gateway's target.
const QUOTA_TPM: u64 = 30_000;
/// `max_tokens` of every request (the simulator's answers are at least 16 tokens long, so
/// each answer is exactly this long).
const MAX_TOKENS: u64 = 16;
/// One request every this long, spread round-robin: 37.5 requests a second of about 20
/// tokens each, 1.5 times the quota's refill (500 tokens a second).
const LOAD_INTERVAL: Duration = Duration::from_millis(27);
/// The load's ticks, and when gateway 1 is killed and gateway 2 reloaded (8 s of load).
const LOAD_TICKS: usize = 300;
const KILL_AT_TICK: usize = 150;
const RELOAD_AT_TICK: usize = 190;

/// A gateway's config: the shared quota in Redis, and `extra` (more aliases).
fn config(sim_url: &str, redis_url: &str, extra: &str) -> String {
    format!(
        r#"shutdown_delay_ms = 0

[upstream]
kind = "simulator"
endpoint_url = "{sim_url}"

[limits]
backend = "redis"
redis_url = "{redis_url}"
redis_timeout_ms = 250
redis_failure_mode = "fail_closed"
expected_replicas = 3

[targets.titan-q]
model_id = "{TITAN}"
tokens_per_minute = {QUOTA_TPM}
max_queue_wait_ms = 20000

[models.titan]
targets = ["titan-q"]
defaults = {{ max_tokens = {MAX_TOKENS} }}
{extra}"#
    )
}

/// The alias gateway 2's reloaded config adds.
const RELOADED_ALIAS: &str = "titan-reloaded";

/// One gateway on a runtime and thread of its own, serving a config file.
struct Replica {
    base: String,
    admin: String,
    path: std::path::PathBuf,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    fn start(name: &str, text: &str) -> Replica {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let admin_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        admin_listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let admin = format!("http://{}", admin_listener.local_addr().unwrap());
        let path = std::env::temp_dir().join(format!(
            "gateway-scale-out-{}-{}.toml",
            std::process::id(),
            listener.local_addr().unwrap().port()
        ));
        std::fs::write(&path, text).unwrap();
        let config = server::Config::parse(text, name).unwrap();
        let config_file = Some((path.clone(), text.to_owned()));
        let (kill, killed) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    let options = server::Serve {
                        listener: tokio::net::TcpListener::from_std(listener).unwrap(),
                        admin_listener: Some(
                            tokio::net::TcpListener::from_std(admin_listener).unwrap(),
                        ),
                        config,
                        config_file,
                        overrides: server::Overrides::default(),
                    };
                    let served = server::serve(options, std::future::pending());
                    tokio::select! {
                        result = served => result.unwrap(),
                        _ = killed => {}
                    }
                });
                // No drain: every connection, queued request and call to Bedrock of this
                // gateway is dropped where it stands.
                runtime.shutdown_background();
            })
            .unwrap();
        Replica { base, admin, path, kill: Some(kill), thread: Some(thread) }
    }

    /// Stops the gateway abruptly (see the module doc) and waits for its thread.
    fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = http.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "{} is not ready", self.base);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One request of the load on `base` (every other one streamed); `Err` says what failed.
async fn one_request(http: reqwest::Client, base: String, idx: usize) -> Result<(), String> {
    let stream = idx % 2 == 1;
    let body = json!({"model": "titan", "prompt": format!("scale out request {idx}"),
                      "stream": stream});
    let response = http
        .post(format!("{base}/v1/generate"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status();
    let mut bytes = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        bytes.extend_from_slice(&chunk.map_err(|e| format!("the body broke: {e}"))?);
    }
    let text = String::from_utf8_lossy(&bytes);
    if status != 200 {
        return Err(format!("{status}: {text}"));
    }
    if stream && (!text.contains("event: done") || text.contains("event: error")) {
        return Err(format!("the stream did not end well: {text}"));
    }
    Ok(())
}

/// What the simulator's minute bucket holds at most now: the quota, less what it charged,
/// plus the refill since `since` (when the bucket was full).
fn sim_level(sim: &Simulator, since: Instant) -> f64 {
    let charged = sim.stats().models.get(TITAN).map_or(0, |m| m.tokens_charged);
    let refill = QUOTA_TPM as f64 / 60.0 * since.elapsed().as_secs_f64();
    (QUOTA_TPM as f64 + refill - charged as f64).min(QUOTA_TPM as f64)
}

/// Empties the minute's burst through the gateways: long prompts of four-byte words (one
/// simulator token each), sized below what the bucket holds, until less than a second of
/// refill is left. Returns the simulator's bucket bound when it stops.
async fn warm_up(sim: &Simulator, since: Instant, http: &reqwest::Client, bases: &[String]) -> f64 {
    for round in 0..20 {
        let level = sim_level(sim, since);
        if level < QUOTA_TPM as f64 / 60.0 {
            return level;
        }
        // The gateway reserves about 1.1 token per word, plus the answer's 16.
        let words = ((level - 300.0) / 1.2).clamp(10.0, 7_000.0) as usize;
        let prompt = "abc ".repeat(words);
        let base = &bases[round % bases.len()];
        let response = http
            .post(format!("{base}/v1/generate"))
            .json(&json!({"model": "titan", "prompt": prompt}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "warm-up: {}", response.text().await.unwrap());
    }
    panic!("the warm-up did not empty the simulator's bucket");
}

async fn scrape(http: &reqwest::Client, admin: &str, series: &str) -> f64 {
    let text = http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with(series))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What happened to the requests sent to one gateway.
#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    ok: AtomicUsize,
    in_flight: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

#[tokio::test]
async fn three_gateways_share_one_quota_through_a_kill_and_a_reload() {
    let redis = RedisServer::start();
    let sim = Simulator::new();
    sim.set_behavior(
        TITAN,
        Behavior {
            first_byte_latency: Duration::from_millis(20),
            token_latency: Duration::from_millis(2),
            ..Behavior::default()
        },
    );
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
    let (stop_sim, sim_stopped) = oneshot::channel::<()>();
    tokio::spawn(sim.clone().serve(sim_listener, async move {
        let _ = sim_stopped.await;
    }));

    let text = config(&sim_url, &redis.url(), "");
    let mut replicas: Vec<Replica> =
        (1..=3).map(|n| Replica::start(&format!("gateway-{n}"), &text)).collect();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    for replica in &replicas {
        replica.wait_ready(&http).await;
    }
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();

    // The account's quota; its bucket is full from here.
    sim.set_quota(TITAN, Quota { tokens_per_minute: Some(QUOTA_TPM), ..Quota::default() }).unwrap();
    let quota_set = Instant::now();
    let warm_up_started = Instant::now();
    let level_at_load = warm_up(&sim, quota_set, &http, &bases).await;
    let warm_up_took = warm_up_started.elapsed();
    let charged_at_load = sim.stats().models[TITAN].tokens_charged;

    // The load: one request per tick, round-robin over the gateways still alive.
    let tallies: Arc<[Tally; 3]> = Arc::default();
    let mut ticker = tokio::time::interval(LOAD_INTERVAL);
    let mut tasks = Vec::new();
    let mut alive = vec![0_usize, 1, 2];
    let mut in_flight_at_kill = 0;
    let mut reload = None;
    let load_started = Instant::now();
    for tick in 0..LOAD_TICKS {
        ticker.tick().await;
        if tick == KILL_AT_TICK {
            alive.retain(|g| *g != 0);
            in_flight_at_kill = tallies[0].in_flight.load(Ordering::SeqCst);
            replicas[0].kill();
        }
        if tick == RELOAD_AT_TICK {
            let reloaded = config(
                &sim_url,
                &redis.url(),
                &format!("\n[models.{RELOADED_ALIAS}]\nmodel_id = \"amazon.titan-text-lite-v1\"\n"),
            );
            std::fs::write(&replicas[1].path, reloaded).unwrap();
            let url = format!("{}/-/reload", replicas[1].admin);
            let http = http.clone();
            reload = Some(tokio::spawn(async move {
                let response = http.post(url).send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }));
        }
        let gateway = alive[tick % alive.len()];
        let (http, base, tallies) = (http.clone(), bases[gateway].clone(), tallies.clone());
        tallies[gateway].sent.fetch_add(1, Ordering::SeqCst);
        tallies[gateway].in_flight.fetch_add(1, Ordering::SeqCst);
        tasks.push(tokio::spawn(async move {
            let outcome = one_request(http, base, tick).await;
            let tally = &tallies[gateway];
            match outcome {
                Ok(()) => {
                    tally.ok.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => tally.failures.lock().unwrap().push(format!("request {tick}: {e}")),
            }
            tally.in_flight.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    let load_sent = load_started.elapsed();
    for task in tasks {
        task.await.unwrap();
    }
    let window = load_started.elapsed();
    let (reload_status, reload_body) = reload.unwrap().await.unwrap();

    let stats = sim.stats();
    let model = &stats.models[TITAN];
    let admitted = (model.tokens_charged - charged_at_load) as f64;
    let refill = QUOTA_TPM as f64 / 60.0 * window.as_secs_f64();
    let admitted_tpm = (admitted - level_at_load).max(0.0) / window.as_secs_f64() * 60.0;
    let sent: usize = tallies.iter().map(|t| t.sent.load(Ordering::SeqCst)).sum();
    let ok: usize = tallies.iter().map(|t| t.ok.load(Ordering::SeqCst)).sum();
    let killed_failures = tallies[0].failures.lock().unwrap().clone();
    let survivor_failures: Vec<String> =
        tallies[1..].iter().flat_map(|t| t.failures.lock().unwrap().clone()).collect();
    let offered_tpm = admitted / ok.max(1) as f64 * sent as f64 / load_sent.as_secs_f64() * 60.0;
    eprintln!(
        "scale-out: 3 gateways + redis-server, simulator quota {QUOTA_TPM} tokens/min on {TITAN}\n\
         warm-up emptied the burst in {:.2} s (left: {level_at_load:.0} tokens)\n\
         load: {sent} requests over {:.1} s (half streamed), offered ~{offered_tpm:.0} tokens/min \
         = {:.2} x quota; all answered after {:.1} s\n\
         per gateway sent/ok: {}\n\
         gateway 1 killed at {:.1} s with {in_flight_at_kill} requests in flight: {} failed\n\
         gateway 2 reloaded at {:.1} s: {reload_status}\n\
         ok: {ok}, failed on survivors: {}\n\
         upstream calls {} (warm-up included), throttles {} ({:.3}%)\n\
         admitted during the load: {admitted:.0} tokens (bound: {level_at_load:.0} left + \
         {refill:.0} refill); rate less the leftover burst {admitted_tpm:.0} tokens/min = \
         {:.1}% of the quota; simulator peak tokens/min (whole run, burst included) {}",
        warm_up_took.as_secs_f64(),
        load_sent.as_secs_f64(),
        offered_tpm / QUOTA_TPM as f64,
        window.as_secs_f64(),
        tallies
            .iter()
            .map(|t| format!("{}/{}", t.sent.load(Ordering::SeqCst), t.ok.load(Ordering::SeqCst)))
            .collect::<Vec<_>>()
            .join(", "),
        LOAD_INTERVAL.as_secs_f64() * KILL_AT_TICK as f64,
        killed_failures.len(),
        LOAD_INTERVAL.as_secs_f64() * RELOAD_AT_TICK as f64,
        survivor_failures.len(),
        model.requests,
        model.throttled,
        model.throttled as f64 * 100.0 / model.requests.max(1) as f64,
        admitted_tpm * 100.0 / QUOTA_TPM as f64,
        model.peak_tokens_per_minute,
    );

    // The survivors kept serving: not one failure on them, before or after the kill.
    assert!(survivor_failures.is_empty(), "{survivor_failures:#?}");
    // Only requests in flight on the killed one at the kill failed.
    assert!(
        killed_failures.len() <= in_flight_at_kill,
        "{} failed on gateway 1, {in_flight_at_kill} in flight at the kill: {killed_failures:#?}",
        killed_failures.len()
    );
    assert_eq!(ok + killed_failures.len(), sent);
    assert!(tallies[0].sent.load(Ordering::SeqCst) <= KILL_AT_TICK.div_ceil(3));
    // Upstream throttles under 0.1% of upstream calls.
    assert!(model.requests > sent as u64 - killed_failures.len() as u64, "{model:?}");
    assert!(model.throttled * 1000 < model.requests, "{model:?}");
    // The combined admitted rate within the quota: at most the bucket's leftover plus its
    // refill (1% for the clocks' difference).
    assert!(admitted <= (level_at_load + refill) * 1.01, "{admitted} > {level_at_load} + {refill}");
    // And the quota was binding: the load offered more than its refill.
    assert!(offered_tpm > QUOTA_TPM as f64 * 1.2, "offered {offered_tpm:.0} tokens/min");
    // The reload was applied (the new alias is served) and counted.
    assert_eq!(reload_status, 200, "{reload_body}");
    let models: Value =
        http.get(format!("{}/v1/models", bases[1])).send().await.unwrap().json().await.unwrap();
    assert!(models.to_string().contains(RELOADED_ALIAS), "{models}");
    let reloads = "gateway_config_reloads_total{outcome=\"success\"}";
    assert_eq!(scrape(&http, &replicas[1].admin, reloads).await, 1.0);
    drop(replicas);
    let _ = stop_sim.send(());
}
