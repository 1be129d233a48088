//! The simulator verifies every signature as Bedrock does (`bedrock_sim` crate docs,
//! Authentication), so the gateway's own requests prove its SigV4 right on every path:
//! whole, streamed, embeddings and the passthrough. A gateway whose secret or key is wrong
//! is the operator's problem: a 502 `upstream_misconfigured` (on the passthrough an
//! `InternalServerException` with `x-gateway-error-type`), one call to Bedrock, no retry.

use bedrock_sim::TEST_ACCESS_KEY_ID;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, TEST_MODELS};

const MODELS: &str = r#"
[models.titan]
model_id = "amazon.titan-text-express-v1"

[models.claude]
model_id = "anthropic.claude-v2:1"

[models.titan-arn]
model_id = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1"

[models.titan-embed]
model_id = "amazon.titan-embed-text-v2:0"

[targets.claude-west]
model_id = "anthropic.claude-v2:1"
region = "us-west-2"

[models.claude-west]
targets = ["claude-west"]
"#;

/// The gateway's calls on every path: (what, status, body or SSE text).
async fn every_path(h: &Harness) -> Vec<(&'static str, StatusCode, String)> {
    let mut answers = Vec::new();
    for model in ["titan", "claude", "titan-arn", "claude-west"] {
        let (status, _, body) =
            h.post("/v1/generate", &json!({"model": model, "prompt": "Hi", "max_tokens": 4})).await;
        answers.push(("generate", status, body.to_string()));
        let request = json!({"model": model, "prompt": "Hi", "max_tokens": 4, "stream": true});
        let response = h.http.post(h.url("/v1/generate")).json(&request).send().await.unwrap();
        answers.push(("generate stream", response.status(), response.text().await.unwrap()));
    }
    let (status, _, body) =
        h.post("/v1/embed", &json!({"model": "titan-embed", "input": "a lighthouse"})).await;
    answers.push(("embeddings", status, body.to_string()));
    let titan = json!({"inputText": "Hi", "textGenerationConfig": {"maxTokenCount": 4}});
    for operation in ["invoke", "invoke-with-response-stream"] {
        for model in ["titan", "amazon.titan-text-express-v1"] {
            let path = format!("/model/{model}/{operation}");
            let response = h.http.post(h.url(&path)).json(&titan).send().await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.unwrap();
            let text = match headers.get("x-gateway-error-type") {
                Some(error_type) => format!(
                    "{} {} {}",
                    headers["x-amzn-errortype"].to_str().unwrap(),
                    error_type.to_str().unwrap(),
                    String::from_utf8_lossy(&bytes)
                ),
                None => String::from_utf8_lossy(&bytes).into_owned(),
            };
            answers.push(("passthrough", status, text));
        }
    }
    answers
}

#[tokio::test]
async fn the_gateways_requests_pass_the_simulators_signature_check_on_every_path() {
    // Both transports sign on their own: the thin client with `aws-sigv4`, the SDK client
    // through its orchestrator.
    for transport in ["thin", "sdk"] {
        let upstream = format!("max_attempts = 1\ntransport = \"{transport}\"\n");
        let h = Harness::start_with(&upstream, MODELS).await;
        let answers = every_path(&h).await;
        for (what, status, body) in &answers {
            assert_eq!(*status, StatusCode::OK, "{transport} {what}: {body}");
            assert!(!body.contains("\"error\""), "{transport} {what}: {body}");
        }
        assert_eq!(h.sim.auth_refusals(), 0, "{transport}");
        // Every answer is one call to the simulator.
        assert_eq!(h.sim.request_count(), answers.len() as u64, "{transport}");
    }
}

/// A gateway whose `[upstream]` keys the simulator does not accept, with retries allowed,
/// on each transport in turn.
async fn assert_misconfigured_with(keys: &str, code: &str) {
    for transport in ["thin", "sdk"] {
        let upstream = format!("max_attempts = 3\ntransport = \"{transport}\"\n{keys}");
        let h = Harness::start_with(&upstream, MODELS).await;
        assert_misconfigured(&h, code).await;
    }
}

async fn assert_misconfigured(h: &Harness, code: &str) {
    let answers = every_path(h).await;
    for (what, status, body) in &answers {
        assert_eq!(*status, StatusCode::BAD_GATEWAY, "{what}: {body}");
        assert!(body.contains(code), "{what}: {body}");
        assert!(body.contains("operator must fix"), "{what}: {body}");
        if *what == "passthrough" {
            assert!(
                body.starts_with(
                    "InternalServerException:http://internal.amazon.com/coral/com.amazon.bedrock/ \
                     upstream_misconfigured"
                ),
                "{body}"
            );
        } else {
            let body: Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["error"]["type"], "upstream_misconfigured", "{what}: {body}");
        }
        // Bedrock's own text, which would tell the caller to check *their* secret, stays out.
        assert!(!body.contains("signature you provided"), "{what}: {body}");
    }
    // One call per request: neither retried nor sent to another target.
    assert_eq!(h.sim.request_count(), answers.len() as u64);
    assert_eq!(h.sim.auth_refusals(), h.sim.request_count());
    let metrics = h.scrape().await;
    let attempts = metrics
        .lines()
        .filter(|line| line.starts_with("gateway_upstream_attempts_total{"))
        .collect::<Vec<_>>();
    assert!(attempts.iter().all(|line| line.contains("upstream_misconfigured")), "{attempts:?}");
}

#[tokio::test]
async fn a_wrong_secret_is_a_502_upstream_misconfigured_not_retried() {
    let keys = format!(
        "access_key_id = \"{TEST_ACCESS_KEY_ID}\"\nsecret_access_key = \"not-the-secret\"\n"
    );
    assert_misconfigured_with(&keys, "InvalidSignatureException").await;
}

#[tokio::test]
async fn an_unknown_access_key_is_a_502_upstream_misconfigured_not_retried() {
    let keys = "access_key_id = \"AKIDNOBODYKNOWS00000\"\nsecret_access_key = \"x\"\n";
    assert_misconfigured_with(keys, "UnrecognizedClientException").await;
}

#[tokio::test]
async fn an_embedded_simulator_accepts_the_keys_the_config_names() {
    // No endpoint: the gateway starts its own simulator, which verifies with these keys.
    let text = format!(
        "[upstream]\nkind = \"simulator\"\nmax_attempts = 1\naccess_key_id = \"AKIDOWNKEY0000000000\"\n\
         secret_access_key = \"own-secret\"\n{TEST_MODELS}"
    );
    let h = Harness::gateway_only(&text).await;
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "claude", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
