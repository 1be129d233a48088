//! Config reloads under load: a steady stream of concurrent requests on every API shape
//! (whole answers and streams) while the file is rewritten and reloaded ten times, one of
//! them an invalid file. No request fails, every stream ends with its last event, each
//! valid change (an alias, a default, an API key and its limits, a quota) is served as soon
//! as its reload answers, the invalid file changes nothing, and the quota's counters carry
//! over every reload.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bedrock_sim::{Behavior, Simulator};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};

const TITAN: &str = "amazon.titan-text-express-v1";
const CLAUDE: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const EMBED: &str = "amazon.titan-embed-text-v2:0";
const KEY: &str = "base-secret";
/// The quota target's day budget, never changed by a reload.
const TOKENS_PER_DAY: u64 = 5_000_000;

/// Version `version` of the config: every version has the aliases, key and target the
/// load uses; each changes the `titan` default `max_tokens`, the quota's tokens per minute,
/// adds its own alias and its own key (with its own limits) and drops the previous ones.
fn config(sim_url: &str, version: usize) -> String {
    format!(
        r#"shutdown_delay_ms = 0
[upstream]
kind = "simulator"
endpoint_url = "{sim_url}"
max_attempts = 1

[targets.quota-t]
model_id = "{TITAN}"
tokens_per_minute = {tpm}
tokens_per_day = {TOKENS_PER_DAY}

[models.titan]
targets = ["quota-t"]
defaults = {{ max_tokens = {max_tokens} }}

[models.claude]
model_id = "{CLAUDE}"

[models.embed]
model_id = "{EMBED}"

[models.added-{version}]
model_id = "amazon.titan-text-lite-v1"

[[auth.keys]]
name = "base"
sha256 = "{base}"

[[auth.keys]]
name = "v{version}"
sha256 = "{versioned}"
models = ["titan", "added-{version}"]
requests_per_minute = {rpm}
"#,
        tpm = 10_000_000 + version * 1000,
        max_tokens = 2 + version,
        base = server::auth::hash_key(KEY),
        versioned = server::auth::hash_key(&format!("secret-v{version}")),
        rpm = 1000 + version,
    )
}

/// A file the gateway refuses: a model id that is not a string.
const INVALID: &str = "[models.broken]\nmodel_id = 42\n";

/// The simulator, and the gateway serving the config file with reloads.
struct Running {
    base: String,
    admin: String,
    sim: Simulator,
    sim_url: String,
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start() -> Running {
        let sim = Simulator::new();
        // Latency enough that requests overlap every reload.
        sim.set_behavior(
            bedrock_sim::EVERY_MODEL,
            Behavior {
                first_byte_latency: Duration::from_millis(10),
                token_latency: Duration::from_millis(5),
                ..Behavior::default()
            },
        );
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
        tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));
        let path = std::env::temp_dir().join(format!(
            "gateway-reload-{}-{}.toml",
            std::process::id(),
            sim_url.rsplit(':').next().unwrap()
        ));
        let text = config(&sim_url, 0);
        std::fs::write(&path, &text).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let admin = format!("http://{}", admin_listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let options = server::Serve {
            listener,
            admin_listener: Some(admin_listener),
            config: server::Config::parse(&text, "reload test").unwrap(),
            config_file: Some((path.clone(), text)),
            overrides: server::Overrides::default(),
        };
        let served = tokio::spawn(async move {
            server::serve(options, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Running { base, admin, sim, sim_url, path, stop: Some(stop), served }
    }

    /// Writes `text` to the config file and reloads it; the reload's status.
    async fn reload(&self, http: &reqwest::Client, text: &str) -> StatusCode {
        std::fs::write(&self.path, text).unwrap();
        http.post(format!("{}/-/reload", self.admin)).send().await.unwrap().status()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.served.await.unwrap();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One request of the load; `Err` says what went wrong.
async fn one_request(http: &reqwest::Client, base: &str, idx: usize) -> Result<(), String> {
    let prompt = format!("request {idx} of the reload test");
    let chat = |stream: bool| {
        json!({"model": "claude", "stream": stream, "max_tokens": 8,
               "messages": [{"role": "user", "content": prompt}]})
    };
    let (path, body, stream) = match idx % 8 {
        0 => ("/v1/generate", json!({"model": "titan", "prompt": prompt}), None),
        1 => (
            "/v1/generate",
            json!({"model": "claude", "prompt": prompt, "stream": true, "max_tokens": 8}),
            Some("event: done"),
        ),
        2 => ("/v1/chat/completions", chat(false), None),
        3 => ("/v1/chat/completions", chat(true), Some("data: [DONE]")),
        4 => (
            "/v1/completions",
            json!({"model": "titan", "prompt": prompt, "stream": true}),
            Some("data: [DONE]"),
        ),
        5 => ("/v1/embeddings", json!({"model": "embed", "input": prompt}), None),
        6 => ("/v1/embed", json!({"model": "embed", "input": [prompt, "two"]}), None),
        _ => (
            "/model/claude/invoke-with-response-stream",
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8,
                   "messages": [{"role": "user", "content": prompt}]}),
            Some(":event-type"),
        ),
    };
    let response = http
        .post(format!("{base}{path}"))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{path}: no answer: {e}"))?;
    let status = response.status();
    let mut bytes = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.map_err(|e| format!("{path}: the body broke: {e}"))?);
    }
    let text = String::from_utf8_lossy(&bytes);
    if status != StatusCode::OK {
        return Err(format!("{path}: {status}: {text}"));
    }
    if let Some(last) = stream {
        let failed = text.contains("event: error")
            || text.contains("\"error\"")
            || text.contains("exception");
        if failed || !text.contains(last) {
            return Err(format!("{path}: the stream did not end well: {text}"));
        }
    }
    Ok(())
}

async fn models(http: &reqwest::Client, base: &str) -> Vec<String> {
    let list: Value = http
        .get(format!("{base}/v1/models"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The quota target's counters (`GET /v1/limits`).
async fn quota(http: &reqwest::Client, base: &str) -> Value {
    let limits: Value = http
        .get(format!("{base}/v1/limits"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    limits["targets"]["quota-t"].clone()
}

async fn scrape(http: &reqwest::Client, admin: &str, series: &str) -> f64 {
    let text = http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

/// The `titan` alias's default `max_tokens` as served: the output tokens of an answer
/// that leaves it out (the simulator's answers are at least 16 tokens long).
async fn served_default(http: &reqwest::Client, base: &str, key: &str) -> (StatusCode, Value) {
    let response = http
        .post(format!("{base}/v1/generate"))
        .header("x-api-key", key)
        .json(&json!({"model": "titan", "prompt": "what is the default"}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn ten_reloads_under_load_fail_no_request_and_each_change_is_served() {
    let running = Running::start().await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let sent = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..6)
        .map(|worker| {
            let (http, base) = (http.clone(), running.base.clone());
            let (stop, failures, sent) = (stop.clone(), failures.clone(), sent.clone());
            tokio::spawn(async move {
                let mut idx = worker;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(failure) = one_request(&http, &base, idx).await {
                        failures.lock().await.push(failure);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    idx += 6;
                }
            })
        })
        .collect();
    // The load runs before the first reload; and long prompts take a good part of the
    // quota's day, so that a reset would show.
    while sent.load(Ordering::Relaxed) < 60 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let long_prompt = "word ".repeat(3_000);
    for _ in 0..8 {
        let response = http
            .post(format!("{}/v1/generate", running.base))
            .header("x-api-key", KEY)
            .json(&json!({"model": "titan", "prompt": long_prompt}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    }

    let mut in_flight_at_reloads = 0;
    let mut version = 0;
    for reload in 1..=10 {
        let before = quota(&http, &running.base).await;
        in_flight_at_reloads += running.sim.in_flight();
        if reload == 5 {
            let status =
                running.reload(&http, &(config(&running.sim_url, version) + INVALID)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "reload {reload}: the invalid file");
            // Nothing changed: the last valid version serves on.
            assert!(models(&http, &running.base).await.contains(&format!("added-{version}")));
        } else {
            version += 1;
            let status = running.reload(&http, &config(&running.sim_url, version)).await;
            assert_eq!(status, StatusCode::OK, "reload {reload} (version {version})");
            // The alias of this version is served, the previous one's is gone.
            let served = models(&http, &running.base).await;
            assert!(served.contains(&format!("added-{version}")), "{served:?}");
            assert!(!served.contains(&format!("added-{}", version - 1)), "{served:?}");
            // So are its default and its key; the previous key is refused.
            let (status, answer) =
                served_default(&http, &running.base, &format!("secret-v{version}")).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer["usage"]["output_tokens"], 2 + version, "{answer}");
            let (status, _) =
                served_default(&http, &running.base, &format!("secret-v{}", version - 1)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        // The quota: the new tokens per minute, and the day's counters carried over.
        let after = quota(&http, &running.base).await;
        assert_eq!(after["configured_tokens_per_minute"], 10_000_000 + version as u64 * 1000);
        let (day_before, day_after) =
            (before["day_level"].as_f64().unwrap(), after["day_level"].as_f64().unwrap());
        assert!(day_before < TOKENS_PER_DAY as f64 - 20_000.0, "too little quota used: {before}");
        // A reset would put the day's bucket back to full, 20,000 tokens up at least; the
        // refill since the first read is 58 tokens a second (6,000: over 100 s).
        assert!(day_after < day_before + 6_000.0, "reset by reload {reload}: {before} -> {after}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let failures = failures.lock().await;
    assert!(
        failures.is_empty(),
        "{} failed requests: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        sent.load(Ordering::Relaxed) > 100,
        "too little load: {}",
        sent.load(Ordering::Relaxed)
    );
    assert!(in_flight_at_reloads > 0, "no reload happened with calls in flight");
    let reloads = "gateway_config_reloads_total{outcome=";
    assert_eq!(scrape(&http, &running.admin, &format!("{reloads}\"success\"}}")).await, 9.0);
    assert_eq!(scrape(&http, &running.admin, &format!("{reloads}\"failure\"}}")).await, 1.0);
    assert_eq!(scrape(&http, &running.admin, "gateway_config_last_reload_successful").await, 1.0);
    running.stop().await;
}
