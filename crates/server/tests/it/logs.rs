//! The binary's logs and reloads as an operator sees them: one JSON line per request
//! with its fields and no prompt, prompts only when asked for and only at `debug`, and
//! config reloads by SIGHUP, by `POST /-/reload` and by polling the file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PROMPT: &str = "SECRET-PROMPT-7f3a9c";
const KEY: &str = "logs-test-api-key-0b8e";

/// A `bedrock-gateway` process on free ports, with its standard error kept line by line.
pub(crate) struct Running {
    child: Child,
    pub(crate) api: String,
    pub(crate) admin: String,
    lines: Arc<Mutex<Vec<String>>>,
    config: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Running {
    pub(crate) fn start(config_text: &str) -> Running {
        Running::start_with(config_text, |_| {})
    }

    /// [`Running::start`], with `configure` applied to the command first (its
    /// environment, say).
    pub(crate) fn start_with(config_text: &str, configure: impl FnOnce(&mut Command)) -> Running {
        let dir = std::env::temp_dir().join(format!("gw-logs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("gateway.toml");
        std::fs::write(&config, config_text).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_bedrock-gateway"));
        command
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        configure(&mut command);
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let mut running = Running {
            child,
            api: String::new(),
            admin: String::new(),
            lines,
            config,
            _dir: TempDir(dir),
        };
        running.api = running.wait_for_address("bedrock-gateway listening");
        running.admin = running.wait_for_address("admin listener");
        running
    }

    fn wait_for_address(&self, marker: &str) -> String {
        let line = self.wait_for_line(|line| line.contains(marker) && line.contains("http://"));
        let at = line.find("http://127.0.0.1:").unwrap();
        line[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c)).collect()
    }

    pub(crate) fn wait_for_line(&self, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| found(l)) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "no such line in:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The JSON request lines (`message == "request"`); every line must be JSON.
    fn request_lines(&self) -> Vec<Value> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .map(|line| {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|_| panic!("not one JSON line: {line}"))
            })
            .filter(|line| line["message"] == "request")
            .collect()
    }

    fn hangup(&self) {
        let status =
            Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(extra: &str) -> String {
    format!(
        r#"{extra}
[upstream]
kind = "simulator"

[models.titan]
model_id = "amazon.titan-text-express-v1"

[[auth.keys]]
name = "team-logs"
sha256 = "{}"
"#,
        server::auth::hash_key(KEY)
    )
}

/// Waits until the gateway has written the request lines of `n` requests.
fn wait_for_requests(running: &Running, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = running.request_lines();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "{} request lines:\n{}", lines.len(), running.text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn every_request_leaves_one_json_line_with_its_fields_and_no_prompt() {
    let running = Running::start(&config("log_format = \"json\""));
    let http = reqwest::Client::new();
    let generate = format!("{}/v1/generate", running.api);
    let response = http
        .post(&generate)
        .bearer_auth(KEY)
        .header("x-request-id", "caller-id-123")
        .json(&json!({"model": "titan", "prompt": PROMPT}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "caller-id-123");
    let response = http
        .post(&generate)
        .bearer_auth(KEY)
        .json(&json!({"model": "titan", "prompt": PROMPT, "stream": true}))
        .send()
        .await
        .unwrap();
    let generated_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated_id.len(), 36, "a UUID: {generated_id}");
    assert!(response.text().await.unwrap().contains("event: done"));
    // A refused key, and an id that is no id (too long): replaced.
    let response = http
        .post(&generate)
        .bearer_auth("not-the-key")
        .header("x-request-id", "x".repeat(300))
        .json(&json!({"model": "titan", "prompt": PROMPT}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-request-id"].len(), 36);

    let lines = wait_for_requests(&running, 3);
    assert_eq!(lines.len(), 3, "{}", running.text());
    let whole = &lines[0];
    assert_eq!(whole["level"], "INFO");
    assert_eq!(whole["request_id"], "caller-id-123");
    for (field, value) in [
        ("api", json!("gateway")),
        ("route", json!("/v1/generate")),
        ("alias", json!("titan")),
        ("family", json!("titan_text")),
        ("upstream_target", json!("titan")),
        ("caller", json!("team-logs")),
        ("stream", json!(false)),
        ("status", json!(200)),
        ("error_type", json!("none")),
        ("attempts", json!(1)),
    ] {
        assert_eq!(whole[field], value, "{field}: {whole}");
    }
    for field in ["duration_ms", "input_tokens", "output_tokens", "queue_wait_ms"] {
        assert!(whole[field].is_number(), "{field}: {whole}");
    }
    assert!(whole["bedrock_request_id"].is_string(), "{whole}");
    assert!(whole.get("ttft_ms").is_none(), "only streams have a time to first token: {whole}");
    let stream = &lines[1];
    assert_eq!(
        (stream["request_id"].as_str(), &stream["stream"]),
        (Some(generated_id.as_str()), &json!(true))
    );
    assert!(
        stream["ttft_ms"].as_f64().unwrap() <= stream["duration_ms"].as_f64().unwrap(),
        "{stream}"
    );
    assert!(stream["output_tokens"].is_number(), "{stream}");
    let refused = &lines[2];
    assert_eq!(
        (refused["status"].as_u64(), refused["error_type"].as_str()),
        (Some(401), Some("unauthenticated"))
    );
    assert_eq!(refused["refusal"], "unknown");
    assert_eq!(refused["level"], "INFO");
    let text = running.text();
    assert!(!text.contains(PROMPT), "the prompt is in the log:\n{text}");
    assert!(!text.contains(KEY) && !text.contains("not-the-key"), "a key is in the log");
}

#[tokio::test]
async fn prompts_are_logged_only_when_asked_and_only_at_debug() {
    let ask = |running: Running| async move {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/generate", running.api))
            .bearer_auth(KEY)
            .json(&json!({"model": "titan", "prompt": PROMPT}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        wait_for_requests(&running, 1);
        running
    };
    // At debug without `log_prompts`: no prompt.
    let quiet = ask(Running::start(&config("log_format = \"json\"\nlog_level = \"debug\""))).await;
    assert!(!quiet.text().contains(PROMPT));
    // With `log_prompts` at info: still none.
    let info = ask(Running::start(&config("log_format = \"json\"\nlog_prompts = true"))).await;
    assert!(!info.text().contains(PROMPT));
    // With both: the prompt, at debug.
    let verbose = "log_format = \"json\"\nlog_prompts = true\nlog_level = \"info,bedrock_gateway::prompts=debug\"";
    let loud = ask(Running::start(&config(verbose))).await;
    let line = loud.wait_for_line(|line| line.contains(PROMPT));
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!((line["level"].as_str(), line["message"].as_str()), (Some("DEBUG"), Some("prompt")));
    loud.wait_for_line(|line| line.contains("\"message\":\"answer\""));
}

async fn models(running: &Running) -> Vec<String> {
    let body: Value = reqwest::Client::new()
        .get(format!("{}/v1/models", running.api))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

async fn scrape(running: &Running, series: &str) -> f64 {
    let text =
        reqwest::get(format!("{}/metrics", running.admin)).await.unwrap().text().await.unwrap();
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().unwrap())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

const ADDED: &str = "\n[models.added]\nmodel_id = \"amazon.titan-text-lite-v1\"\n";

async fn wait_for_model(running: &Running, model: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !models(running).await.iter().any(|m| m == model) {
        assert!(Instant::now() < deadline, "{model} never appeared:\n{}", running.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sighup_and_the_admin_route_reload_and_a_bad_file_changes_nothing() {
    let running = Running::start(&config(""));
    assert_eq!(models(&running).await, ["titan"]);
    // SIGHUP with a new alias.
    write(&running.config, &(config("") + ADDED));
    running.hangup();
    wait_for_model(&running, "added").await;
    assert_eq!(scrape(&running, "gateway_config_reloads_total{outcome=\"success\"}").await, 1.0);
    // An invalid file: refused with the reason, the running config stays.
    write(&running.config, &(config("") + "\n[models.broken]\nmodel_id = 42\n"));
    let reload = format!("{}/-/reload", running.admin);
    let response = reqwest::Client::new().post(&reload).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("model_id"));
    assert_eq!(models(&running).await, ["added", "titan"]);
    assert_eq!(scrape(&running, "gateway_config_last_reload_successful").await, 0.0);
    // What only a restart changes is refused, whole.
    write(
        &running.config,
        &(config("shutdown_delay_ms = 5")
            + ADDED
            + "\n[models.third]\nmodel_id = \"amazon.titan-text-lite-v1\"\n"),
    );
    let response = reqwest::Client::new().post(&reload).send().await.unwrap();
    assert_eq!(response.status(), 409);
    assert!(response.text().await.unwrap().contains("`shutdown_delay_ms`"));
    assert_eq!(models(&running).await, ["added", "titan"]);
    // A good file again.
    write(&running.config, &config(""));
    let response = reqwest::Client::new().post(&reload).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(models(&running).await, ["titan"]);
    assert_eq!(scrape(&running, "gateway_config_reloads_total{outcome=\"success\"}").await, 2.0);
    assert_eq!(scrape(&running, "gateway_config_reloads_total{outcome=\"failure\"}").await, 2.0);
    assert_eq!(scrape(&running, "gateway_config_last_reload_successful").await, 1.0);
}

#[tokio::test]
async fn a_changed_file_is_picked_up_by_the_poll() {
    let running = Running::start(&config("reload_poll_ms = 100"));
    write(&running.config, &(config("reload_poll_ms = 100") + ADDED));
    wait_for_model(&running, "added").await;
    // An unchanged file is not reloaded again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(scrape(&running, "gateway_config_reloads_total{outcome=\"success\"}").await, 1.0);
}
