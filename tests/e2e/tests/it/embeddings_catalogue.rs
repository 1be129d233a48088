//! Today's embedding models through the gateway and the simulator: Cohere Embed v4, Titan
//! Multimodal Embeddings G1 and Nova Multimodal Embeddings, with texts on `/v1/embed` and
//! `/v1/embeddings` and images on `/v1/embed`; families that cannot embed images refuse
//! them (422) before any call.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Harness;

const MODELS: &str = r#"
[models.cohere-embed-v4]
model_id = "cohere.embed-v4:0"

[models.titan-embed-image]
model_id = "amazon.titan-embed-image-v1"

[models.nova-embed]
model_id = "amazon.nova-2-multimodal-embeddings-v1:0"

[models.cohere-embed-english]
model_id = "cohere.embed-english-v3"

[models.titan-embed-v2]
model_id = "amazon.titan-embed-text-v2:0"
"#;

/// The first bytes of a PNG, a JPEG and a GIF file, base64: enough for the format.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUg==";
const JPEG: &str = "/9j/4AAQSkZJRgABAQ==";
const GIF: &str = "R0lGODlhAQABAAAAACw=";

async fn start() -> Harness {
    Harness::start_with("max_attempts = 1\n", MODELS).await
}

fn vectors(body: &Value) -> Vec<Vec<f64>> {
    let data = body["data"].as_array().unwrap();
    for (i, entry) in data.iter().enumerate() {
        assert_eq!(entry["index"], i, "{body}");
    }
    data.iter()
        .map(|entry| {
            entry["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
        })
        .collect()
}

#[tokio::test]
async fn text_embeddings_with_dimensions_on_both_routes() {
    let h = start().await;
    for (alias, default_len, dimensions) in [
        ("cohere-embed-v4", 1536, 512),
        ("titan-embed-image", 1024, 384),
        ("nova-embed", 3072, 256),
    ] {
        let (status, _, body) = h
            .post("/v1/embed", &json!({"model": alias, "input": ["a red bicycle", "a cat"]}))
            .await;
        assert_eq!(status, StatusCode::OK, "{alias}: {body}");
        let default = vectors(&body);
        assert_eq!(default.len(), 2, "{alias}");
        assert!(default.iter().all(|v| v.len() == default_len), "{alias}");
        assert_ne!(default[0], default[1], "{alias}");

        let (status, _, body) = h
            .post("/v1/embed", &json!({"model": alias, "input": "a cat", "dimensions": dimensions}))
            .await;
        assert_eq!(status, StatusCode::OK, "{alias}: {body}");
        let sized = vectors(&body);
        assert_eq!(sized[0].len(), dimensions, "{alias}");

        // The OpenAI route: text only, same vectors.
        let (status, _, body) = h
            .post(
                "/v1/embeddings",
                &json!({"model": alias, "input": "a cat", "dimensions": dimensions}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{alias}: {body}");
        let openai: Vec<f64> = body["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(openai.len(), dimensions, "{alias}");
        for (a, b) in openai.iter().zip(&sized[0]) {
            assert!((a - b).abs() < 1e-6, "{alias}");
        }

        // A size the model does not make is refused before Bedrock.
        let before = h.sim.request_count();
        let (status, _, body) =
            h.post("/v1/embed", &json!({"model": alias, "input": "x", "dimensions": 100})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{alias}: {body}");
        assert_eq!(h.sim.request_count(), before, "{alias}");
    }
}

#[tokio::test]
async fn images_are_embedded_after_the_texts_in_order() {
    let h = start().await;
    // Cohere v4 batches up to 96 per call, never texts and images together: two calls.
    // Titan and Nova take one input per call: one call per text and per image.
    for (alias, expected_calls) in
        [("cohere-embed-v4", 2), ("titan-embed-image", 4), ("nova-embed", 4)]
    {
        let before = h.sim.request_count();
        let images = json!([PNG, format!("data:image/jpeg;base64,{JPEG}"), GIF]);
        let (status, _, body) = h
            .post(
                "/v1/embed",
                &json!({"model": alias, "input": "a red bicycle", "images": images,
                    "dimensions": 256}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{alias}: {body}");
        assert_eq!(h.sim.request_count() - before, expected_calls, "{alias}");
        let all = vectors(&body);
        assert_eq!(all.len(), 4, "{alias}");
        assert!(all.iter().all(|v| v.len() == 256), "{alias}");

        // Each vector is that input's own: the same image alone answers the same vector.
        let (status, _, single) =
            h.post("/v1/embed", &json!({"model": alias, "images": [GIF], "dimensions": 256})).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {single}");
        assert_eq!(vectors(&single), [all[3].clone()], "{alias}");
        assert_ne!(all[1], all[2], "{alias}: two images, two vectors");
        assert_ne!(all[0], all[1], "{alias}: a text and an image, two vectors");
    }
}

#[tokio::test]
async fn images_are_refused_where_the_family_cannot_embed_them() {
    let h = start().await;
    let before = h.sim.request_count();
    for alias in ["cohere-embed-english", "titan-embed-v2"] {
        let (status, _, body) =
            h.post("/v1/embed", &json!({"model": alias, "input": "x", "images": [PNG]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{alias}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("`images`"), "{alias}: {body}");
    }
    // Not an image, or not base64: a 400 before Bedrock.
    for image in ["AAAAAAAA", "not base64!", "data:text/plain;base64,AAAA"] {
        let (status, _, body) =
            h.post("/v1/embed", &json!({"model": "nova-embed", "images": [image]})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{image}: {body}");
    }
    // The OpenAI route stays text-only.
    let (status, _, body) = h
        .post("/v1/embeddings", &json!({"model": "nova-embed", "input": "x", "images": [PNG]}))
        .await;
    assert!(status.is_client_error(), "{body}");
    assert_eq!(h.sim.request_count(), before);
    // Neither texts nor images: refused too.
    let (status, _, body) = h.post("/v1/embed", &json!({"model": "nova-embed"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn input_type_reaches_cohere_v4_and_nova_but_not_titan() {
    let h = start().await;
    for alias in ["cohere-embed-v4", "nova-embed"] {
        let (status, _, query) = h
            .post(
                "/v1/embed",
                &json!({"model": alias, "input": "a cat", "input_type": "search_query"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{alias}: {query}");
        let (status, _, image) = h
            .post(
                "/v1/embed",
                &json!({"model": alias, "images": [PNG], "input_type": "search_query"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{alias}: {image}");
    }
    let (status, _, body) = h
        .post(
            "/v1/embed",
            &json!({"model": "titan-embed-image", "input": "a cat", "input_type": "search_query"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Cohere v4's own parameters through `extra`.
    let (status, _, body) = h
        .post(
            "/v1/embed",
            &json!({"model": "cohere-embed-v4", "input": "a cat",
                "extra": {"truncate": "RIGHT", "embedding_types": ["float", "int8"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(vectors(&body)[0].len(), 1536);
}
