//! Image answers as the model gave them: SDXL is asked for JSON like every image family, and
//! a Stability content filter's refusal is a 400 `content_filter` in each API's own error
//! shape, while the Bedrock passthrough forwards the refusal body untouched.
//!
//! The simulator's content filter refuses a prompt containing `sim-content-filter:prompt`
//! (at the prompt) or `sim-content-filter:image` (at the generated image); see
//! `crates/bedrock-sim/src/images/mod.rs`.

use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::{Client, Config};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, SHIPPED_CONFIG};

/// The simulator's trigger of a refused prompt.
const FILTER_PROMPT: &str = "sim-content-filter:prompt";

/// The simulator's trigger of a refused image.
const FILTER_IMAGE: &str = "sim-content-filter:image";

/// The Stability aliases of the shipped configuration.
const STABILITY_ALIASES: [&str; 3] = ["sdxl", "sd3-large", "stable-image-core"];

/// A gateway in front of the simulator with every alias of the shipped config.
async fn shipped() -> Harness {
    let at = SHIPPED_CONFIG.find("[models.").unwrap();
    Harness::start_with("max_attempts = 1\n", &SHIPPED_CONFIG[at..]).await
}

#[tokio::test]
async fn a_filtered_prompt_is_a_400_content_filter_on_v1_images() {
    let h = shipped().await;
    for alias in STABILITY_ALIASES {
        for trigger in [FILTER_PROMPT, FILTER_IMAGE] {
            let prompt = format!("a red fox {trigger}");
            let (status, _, body) =
                h.post("/v1/images", &json!({"model": alias, "prompt": prompt})).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{alias} {trigger}: {body}");
            assert_eq!(body["error"]["type"], "content_filter", "{alias} {trigger}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("content filter"), "{alias} {trigger}: {message}");
        }
    }
    // Each call reached Bedrock once: the refusal is the model's, not the gateway's.
    assert_eq!(h.sim.request_count(), 6);
    let metrics = h.scrape().await;
    assert!(metrics.contains(r#"error_type="content_filter""#), "{metrics}");
}

#[tokio::test]
async fn a_filtered_prompt_is_a_400_content_filter_on_openai_images_generations() {
    let h = shipped().await;
    for alias in STABILITY_ALIASES {
        let prompt = format!("a red fox {FILTER_PROMPT}");
        let (status, _, body) = h
            .post(
                "/v1/images/generations",
                &json!({"model": alias, "prompt": prompt, "response_format": "b64_json"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{alias}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{alias}: {body}");
        assert_eq!(body["error"]["code"], "content_filter", "{alias}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("content filter"), "{body}");
    }
}

#[tokio::test]
async fn sdxl_is_asked_for_json_even_when_the_caller_accepts_a_png() {
    let h = shipped().await;
    let post_png = |prompt: &str| {
        h.http
            .post(h.url("/v1/images"))
            .header("accept", "image/png")
            .json(&json!({"model": "sdxl", "prompt": prompt}))
            .send()
    };
    // Asked for `image/png`, the simulator would answer the image and no finish reason: the
    // refusal shows that the gateway asked for JSON and read `finishReason`.
    let response = post_png(&format!("a lighthouse {FILTER_PROMPT}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "content_filter", "{body}");

    // Unfiltered, the caller still gets the PNG itself, decoded from the JSON answer.
    let response = post_png("a lighthouse").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.bytes().await.unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[tokio::test]
async fn the_bedrock_passthrough_forwards_the_refusal_body_as_it_is() {
    let h = shipped().await;
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "static"))
        .endpoint_url(&h.base_url)
        .retry_config(RetryConfig::disabled())
        .build();
    let gateway = Client::from_conf(config);
    let cases = [
        (
            "sdxl",
            json!({"text_prompts": [{"text": format!("a red fox {FILTER_PROMPT}")}]}),
            "/artifacts/0/finishReason",
            json!("CONTENT_FILTERED"),
        ),
        (
            "sd3-large",
            json!({"prompt": format!("a red fox {FILTER_PROMPT}")}),
            "/finish_reasons",
            json!(["Filter reason: prompt"]),
        ),
    ];
    for (alias, body, pointer, expected) in cases {
        let output = gateway
            .invoke_model()
            .model_id(alias)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(serde_json::to_vec(&body).unwrap()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{alias}: {e:?}"));
        let answer: Value = serde_json::from_slice(output.body().as_ref()).unwrap();
        assert_eq!(answer.pointer(pointer), Some(&expected), "{alias}: {answer}");
    }
}
