//! Against live Amazon Bedrock, only when `GATEWAY_LIVE=1` is set (it costs money and
//! needs credentials). Reads `AWS_REGION` (default us-east-1) and
//! `GATEWAY_LIVE_MODEL_ID` (default `amazon.titan-text-express-v1`); credentials come
//! from the default AWS chain. Without `GATEWAY_LIVE=1` the test returns at once.

use serde_json::json;

use crate::harness::{Harness, joined_text};

#[expect(
    clippy::disallowed_methods,
    reason = "the opt-in switch for live tests is the environment"
)]
fn live_settings() -> Option<(String, String)> {
    if std::env::var("GATEWAY_LIVE").ok().as_deref() != Some("1") {
        return None;
    }
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let model_id = std::env::var("GATEWAY_LIVE_MODEL_ID")
        .unwrap_or_else(|_| "amazon.titan-text-express-v1".to_owned());
    Some((region, model_id))
}

#[tokio::test]
async fn live_bedrock_rest_and_sse() {
    let Some((region, model_id)) = live_settings() else {
        eprintln!("live Bedrock test not run: set GATEWAY_LIVE=1 to run it");
        return;
    };
    let config = format!(
        "[upstream]\nkind = \"bedrock\"\nregion = \"{region}\"\n[models.live]\nmodel_id = \"{model_id}\"\n"
    );
    let h = Harness::gateway_only(&config).await;
    let (status, _, body) = h
        .post(
            "/v1/generate",
            &json!({"model": "live", "prompt": "Say hello in five words.", "max_tokens": 40}),
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert!(!body["text"].as_str().unwrap().is_empty());
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let (status, _, events) = h
        .stream(&json!({"model": "live", "prompt": "Count from one to five.", "max_tokens": 40, "stream": true}))
        .await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(events.last().unwrap().event, "done", "{events:?}");
    assert!(!joined_text(&events).is_empty());
}
