//! The binary with `upstream.kind = "bedrock"` and no AWS credentials anywhere in the
//! default chain (no variables, empty config and credentials files, no instance
//! metadata): one loud line at start-up, `/readyz` 503, and every request a 502
//! `upstream_misconfigured` in its API's encoding, never a retryable "unreachable".

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::logs::Running;

/// A directory of its own, removed at the end.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn without_aws_credentials_the_gateway_says_so_is_unready_and_answers_502() {
    // A simulator that would answer, to show the calls never leave for want of credentials.
    let simulator = bedrock_sim::Simulator::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.clone().serve(listener, async move {
        let _ = stopped.await;
    }));
    let dir = Dir(std::env::temp_dir().join(format!("gw-creds-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (aws_config, aws_credentials) = (dir.0.join("config"), dir.0.join("credentials"));
    std::fs::write(&aws_config, "").unwrap();
    std::fs::write(&aws_credentials, "").unwrap();
    let config = format!(
        r#"
log_format = "json"

[upstream]
kind = "bedrock"
region = "us-east-1"
endpoint_url = "{sim_url}"
max_attempts = 2

[models.titan]
model_id = "amazon.titan-text-express-v1"
"#
    );
    let running = Running::start_with(&config, |command| {
        command
            .env_clear()
            .env("NO_COLOR", "1")
            .env("HOME", &dir.0)
            .env("AWS_CONFIG_FILE", &aws_config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &aws_credentials)
            .env("AWS_EC2_METADATA_DISABLED", "true");
    });
    let loud = |line: &str| line.contains("no AWS credentials found");
    let line: Value = serde_json::from_str(&running.wait_for_line(loud)).unwrap();
    assert_eq!(line["level"], "ERROR", "{line}");

    let http = reqwest::Client::new();
    for base in [&running.admin, &running.api] {
        let response = http.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.json::<Value>().await.unwrap()["status"], "no_aws_credentials");
    }
    let healthz = http.get(format!("{}/healthz", running.admin)).send().await.unwrap();
    assert_eq!(healthz.status(), 200, "alive, only not ready");

    let generate = json!({"model": "titan", "prompt": "Hi"});
    let chat = json!({"model": "titan", "messages": [{"role": "user", "content": "Hi"}]});
    let streamed = json!({"model": "titan", "prompt": "Hi", "stream": true});
    for (path, body) in
        [("/v1/generate", &generate), ("/v1/generate", &streamed), ("/v1/chat/completions", &chat)]
    {
        let response = http.post(format!("{}{path}", running.api)).json(body).send().await.unwrap();
        assert_eq!(response.status(), 502, "{path}");
        assert!(response.headers().get("retry-after").is_none(), "{path}");
        let error = response.json::<Value>().await.unwrap();
        let error_type =
            if path.contains("chat") { &error["error"]["code"] } else { &error["error"]["type"] };
        assert_eq!(error_type, "upstream_misconfigured", "{path}: {error}");
        assert!(error["error"]["message"].as_str().unwrap().contains("no AWS credentials"));
    }
    // The Bedrock passthrough, in Bedrock's encoding.
    let response = http
        .post(format!("{}/model/titan/invoke", running.api))
        .json(&json!({"inputText": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let shape = response.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
    assert!(shape.starts_with("InternalServerException:"), "{shape}");
    assert_eq!(response.headers()["x-gateway-error-type"], "upstream_misconfigured");
    assert!(response.headers().get("retry-after").is_none());
    let body = response.json::<Value>().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("no AWS credentials"), "{body}");

    // Nothing reached Bedrock, nothing was retried, and the loud line was said once.
    assert_eq!(simulator.request_count(), 0);
    let is_request_line =
        |line: &str| serde_json::from_str::<Value>(line).is_ok_and(|v| v["message"] == "request");
    running.wait_for_line(|line| is_request_line(line) && line.contains("/model/"));
    let text = running.text();
    for line in text.lines().filter(|line| is_request_line(line)) {
        let line: Value = serde_json::from_str(line).unwrap();
        if line["route"] == "/readyz" {
            continue;
        }
        assert_eq!(line["error_type"], "upstream_misconfigured", "{line}");
        assert_eq!(line["attempts"], 1, "not retried: {line}");
    }
    assert_eq!(text.lines().filter(|line| loud(line)).count(), 1, "{text}");
    assert!(!text.contains("upstream_unavailable"), "{text}");
    let _ = stop.send(());
}

/// A stand-in for Bedrock that answers every call with a `ValidationException` whose
/// message echoes 2 MB of the caller's data and an account id, as Bedrock's may.
async fn echoing_bedrock() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // The whole request (its head, then `content-length` bytes), so that no
                // unread byte turns the close into a reset.
                let mut bytes = Vec::new();
                let mut buffer = vec![0_u8; 16 * 1024];
                loop {
                    let n = socket.read(&mut buffer).await.unwrap_or(0);
                    bytes.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
                    let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        body.len() >= length
                    });
                    if n == 0 || complete {
                        break;
                    }
                }
                let message = format!(
                    "Malformed input request: arn:aws:bedrock:us-east-1:123456789012:x {}",
                    "echoed caller data ".repeat(110_000)
                );
                let body = json!({"message": message}).to_string();
                let head = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                     x-amzn-errortype: ValidationException:http://internal.amazon.com/coral/\
                     com.amazon.bedrock/\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test]
async fn a_callers_validation_exception_is_logged_once_at_info_and_bounded() {
    let url = echoing_bedrock().await;
    let config = format!(
        "log_format = \"json\"\n[upstream]\nkind = \"simulator\"\nendpoint_url = \"{url}\"\n\
         [models.titan]\nmodel_id = \"amazon.titan-text-express-v1\"\n"
    );
    let running = Running::start(&config);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/generate", running.api))
        .json(&json!({"model": "titan", "prompt": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.len() < 12 * 1024 && !body.contains("123456789012"), "{} bytes", body.len());
    let failed = |line: &str| line.contains("\"request failed\"");
    let line: Value = serde_json::from_str(&running.wait_for_line(failed)).unwrap();
    assert_eq!(line["level"], "INFO", "the caller's fault, not the gateway's: {line}");
    assert_eq!(line["error_type"], "upstream_rejected");
    let is_request_line =
        |line: &str| serde_json::from_str::<Value>(line).is_ok_and(|v| v["message"] == "request");
    running.wait_for_line(is_request_line);
    let text = running.text();
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 16 * 1024, "a log line of {longest} bytes");
    assert!(!text.lines().any(|line| line.contains("WARN") && line.contains("Malformed")));
}
