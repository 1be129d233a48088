//! The end-to-end harness: a Bedrock simulator on port 0, the gateway on port 0 in
//! front of it (reached through the real AWS SDK), and a real HTTP client.
//!
//! Every test starts its own pair, so tests run in parallel without sharing state.

use std::time::Instant;

use bedrock_sim::Simulator;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The shipped configuration file, which tests parse so it cannot rot.
pub const SHIPPED_CONFIG: &str = include_str!("../../../../config/gateway.toml");

/// A running simulator and gateway. Dropping it stops both.
pub struct Harness {
    /// `http://127.0.0.1:<port>` of the gateway.
    pub base_url: String,
    /// `http://127.0.0.1:<port>` of its admin listener (`/metrics`).
    pub admin_url: String,
    /// The simulator behind the gateway: set behaviours, read counters.
    pub sim: Simulator,
    /// `http://127.0.0.1:<port>` of the simulator.
    pub sim_url: String,
    pub http: reqwest::Client,
    stop_gateway: Option<oneshot::Sender<()>>,
    stop_sim: Option<oneshot::Sender<()>>,
    gateway_task: Option<JoinHandle<()>>,
}

/// The model aliases every test configuration has.
pub const TEST_MODELS: &str = r#"
[models.titan]
model_id = "amazon.titan-text-express-v1"

[models.claude]
model_id = "anthropic.claude-v2:1"

[models.claude-profile]
model_id = "us.anthropic.claude-v2:1"

[models.titan-arn]
model_id = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1"

[models.titan-defaults]
model_id = "amazon.titan-text-express-v1"
defaults = { max_tokens = 5, stop = ["never-generated"] }
"#;

/// One Server-Sent Event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
    /// When the event's last byte arrived.
    pub at: Instant,
}

impl Harness {
    /// Simulator plus gateway, with SDK retries off (one attempt per call) so that
    /// tests can count requests.
    pub async fn start() -> Harness {
        Harness::start_with("max_attempts = 1\n", TEST_MODELS).await
    }

    /// Simulator plus gateway; `upstream_extra` is added to the `[upstream]` table.
    pub async fn start_with(upstream_extra: &str, models: &str) -> Harness {
        Harness::start_with_top("", upstream_extra, models).await
    }

    /// [`Harness::start_with`], with `top_level` keys (before any table) in the config.
    pub async fn start_with_top(top_level: &str, upstream_extra: &str, models: &str) -> Harness {
        let sim = Simulator::new();
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
        let (stop_sim, sim_stopped) = oneshot::channel::<()>();
        tokio::spawn(sim.clone().serve(sim_listener, async move {
            let _ = sim_stopped.await;
        }));
        let text = format!(
            "{top_level}\n[upstream]\nkind = \"simulator\"\nendpoint_url = \"{sim_url}\"\n{upstream_extra}\n{models}"
        );
        let mut harness = Harness::gateway_only(&text).await;
        harness.sim = sim;
        harness.sim_url = sim_url;
        harness.stop_sim = Some(stop_sim);
        harness
    }

    /// [`Harness::start_with`], with the gateway built here (as `server::serve` builds it,
    /// served by axum) so that the test holds its drain signal: pulling it
    /// ([`server::drain::Drain::end_streams`]) is what the end of a shutdown's drain does.
    pub async fn start_with_drain(
        upstream_extra: &str,
        models: &str,
    ) -> (Harness, server::drain::Drain) {
        let mut harness = Harness::start_with(upstream_extra, models).await;
        // Only the simulator of that harness is kept; its gateway stops.
        harness.take_shutdown().0.send(()).unwrap();
        let text = format!(
            "[upstream]\nkind = \"simulator\"\nendpoint_url = \"{}\"\n{upstream_extra}\n{models}",
            harness.sim_url
        );
        let config = server::Config::parse(&text, "test").unwrap();
        let metrics = std::sync::Arc::new(server::metrics::Metrics::new(config.telemetry.metrics));
        let pipeline =
            server::pipeline::Pipeline::from_config(&config, None, metrics.clone()).await.unwrap();
        let gateway = server::app::Gateway::new(config, pipeline, metrics);
        let reloader = server::reload::Reloader::new(
            gateway.clone(),
            None,
            server::Overrides::default(),
            None,
        );
        let api = axum::serve(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            server::app::router(gateway.clone()),
        );
        let admin = axum::serve(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            server::app::admin_router(gateway.clone(), reloader),
        );
        harness.base_url = format!("http://{}", api.local_addr().unwrap());
        harness.admin_url = format!("http://{}", admin.local_addr().unwrap());
        let (stop_gateway, gateway_stopped) = oneshot::channel::<()>();
        harness.stop_gateway = Some(stop_gateway);
        // The admin listener lives as long as the test's runtime.
        tokio::spawn(admin.into_future());
        harness.gateway_task = Some(tokio::spawn(async move {
            let api = api.with_graceful_shutdown(async move {
                let _ = gateway_stopped.await;
            });
            api.await.unwrap();
        }));
        (harness, gateway.drain().clone())
    }

    /// A gateway from a whole configuration text (its `listen` is replaced by port 0).
    /// `sim` is a detached simulator handle unless [`Harness::start_with`] set it.
    pub async fn gateway_only(config_text: &str) -> Harness {
        let config = server::Config::parse(config_text, "test").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_url = format!("http://{}", admin_listener.local_addr().unwrap());
        let (stop_gateway, gateway_stopped) = oneshot::channel::<()>();
        let options = server::Serve {
            listener,
            admin_listener: Some(admin_listener),
            config,
            config_file: None,
            overrides: server::Overrides::default(),
        };
        let gateway_task = tokio::spawn(async move {
            server::serve(options, async move {
                let _ = gateway_stopped.await;
            })
            .await
            .unwrap();
        });
        Harness {
            base_url,
            admin_url,
            sim: Simulator::new(),
            sim_url: String::new(),
            http: reqwest::Client::new(),
            stop_gateway: Some(stop_gateway),
            stop_sim: None,
            gateway_task: Some(gateway_task),
        }
    }

    /// The trigger of the gateway's graceful shutdown (send `()` to pull it), and its task,
    /// which ends when `server::run` returns.
    pub fn take_shutdown(&mut self) -> (oneshot::Sender<()>, JoinHandle<()>) {
        (self.stop_gateway.take().unwrap(), self.gateway_task.take().unwrap())
    }

    /// The admin listener's `/metrics` text.
    pub async fn scrape(&self) -> String {
        let response = self.http.get(format!("{}/metrics", self.admin_url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// POSTs a JSON body; returns the status, headers and JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, HeaderMap, Value) {
        self.post_raw(path, body.to_string()).await
    }

    /// POSTs raw bytes as `application/json`.
    pub async fn post_raw(&self, path: &str, body: String) -> (StatusCode, HeaderMap, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {text:?} (status {status})"));
        (status, headers, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// POSTs to `/v1/generate` expecting Server-Sent Events; reads the stream to its
    /// end, noting when each event arrived.
    pub async fn stream(&self, body: &Value) -> (StatusCode, HeaderMap, Vec<SseEvent>) {
        let mut response =
            self.http.post(self.url("/v1/generate")).json(body).send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let mut events = Vec::new();
        let mut buffer = String::new();
        while let Some(bytes) = response.chunk().await.unwrap() {
            buffer.push_str(std::str::from_utf8(&bytes).unwrap());
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if let Some(event) = parse_sse_block(&block) {
                    events.push(event);
                }
            }
        }
        assert!(buffer.trim().is_empty(), "stream ended inside an event: {buffer:?}");
        (status, headers, events)
    }
}

/// POSTs every `(gateway, body)` to `path` at once, each in its own task; returns the
/// statuses in order.
pub async fn post_concurrently<'a>(
    path: &str,
    requests: impl IntoIterator<Item = (&'a Harness, Value)>,
) -> Vec<u16> {
    let tasks = requests.into_iter().map(|(gateway, body)| {
        let (http, url) = (gateway.http.clone(), gateway.url(path));
        tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status() })
    });
    let statuses = futures_util::future::join_all(tasks).await;
    statuses.into_iter().map(|status| status.unwrap().as_u16()).collect()
}

/// Parses one `event:`/`data:` block; comments (keep-alives) give `None`.
fn parse_sse_block(block: &str) -> Option<SseEvent> {
    let mut event = String::from("message");
    let mut data = String::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            event = value.trim().to_owned();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim_start());
        }
    }
    if data.is_empty() {
        return None;
    }
    let data = serde_json::from_str(&data).unwrap_or_else(|e| panic!("bad data {data:?}: {e}"));
    Some(SseEvent { event, data, at: Instant::now() })
}

/// The text of all `delta` events, joined.
pub fn joined_text(events: &[SseEvent]) -> String {
    events.iter().filter(|e| e.event == "delta").map(|e| e.data["text"].as_str().unwrap()).collect()
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_gateway.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.stop_sim.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.gateway_task.take() {
            task.abort();
        }
    }
}
