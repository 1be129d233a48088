//! API keys: required on every route but the probes and the API description when the
//! config lists any, refused in the error shape of the API the route belongs to.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Harness, TEST_MODELS};

async fn with_keys() -> Harness {
    let keys = format!(
        "[[auth.keys]]\nname = \"team-a\"\nsha256 = \"{}\"\n",
        server::auth::hash_key("team-a-secret")
    );
    Harness::start_with("max_attempts = 1\n", &format!("{keys}{TEST_MODELS}")).await
}

#[tokio::test]
async fn a_key_is_required_and_checked() {
    let h = with_keys().await;
    let request = json!({"model": "titan", "prompt": "Hi"});
    let (status, _, body) = h.post("/v1/generate", &request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["type"], "unauthenticated");

    for (header, value) in
        [("authorization", "Bearer team-a-secret"), ("x-api-key", "team-a-secret")]
    {
        let response = h
            .http
            .post(h.url("/v1/generate"))
            .header(header, value)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{header}");
    }
    let response = h
        .http
        .post(h.url("/v1/generate"))
        .header("authorization", "Bearer wrong")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Nothing reached Bedrock without a valid key.
    assert_eq!(h.sim.request_count(), 2);
}

#[tokio::test]
async fn probes_and_the_api_description_stay_open() {
    let h = with_keys().await;
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(h.get(path).await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn refusals_speak_the_api_of_the_route() {
    let h = with_keys().await;
    let (status, _, body) = h
        .post(
            "/v1/chat/completions",
            &json!({"model": "titan", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");

    // The Bedrock passthrough answers like Bedrock: AccessDeniedException, which the
    // AWS SDKs surface as such. A SigV4 signature is not a key, and the message says so.
    let response = h
        .http
        .post(h.url("/model/titan/invoke"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/bedrock/aws4_request",
        )
        .body(r#"{"inputText":"Hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .starts_with("AccessDeniedException:")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("AWS_BEARER_TOKEN_BEDROCK"), "{body}");
}
