//! Embedding and image models through the real SDK: vector sizes and normalization, batch
//! limits, PNG bodies (signature and IHDR size), SDXL's raw PNG for `Accept: image/png`,
//! validation errors, faults, and the refusal of streaming and of non-JSON accepts.

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelOutput;
use base64::Engine as _;
use bedrock_sim::{Behavior, ErrorKind, Fault};
use serde_json::{Value, json};

use crate::support::{HeaderCapture, TestSim, invoke_error_variant, start, to_blob};

const TITAN_EMBED_G1: &str = "amazon.titan-embed-text-v1";
const TITAN_EMBED_V2: &str = "amazon.titan-embed-text-v2:0";
const COHERE_ENGLISH: &str = "cohere.embed-english-v3";
const COHERE_MULTILINGUAL: &str = "cohere.embed-multilingual-v3";
const NOVA_EMBED: &str = "amazon.nova-2-multimodal-embeddings-v1:0";
const TITAN_IMAGE_V1: &str = "amazon.titan-image-generator-v1";
const TITAN_IMAGE_V2: &str = "amazon.titan-image-generator-v2:0";
const NOVA_CANVAS: &str = "amazon.nova-canvas-v1:0";
const SDXL: &str = "stability.stable-diffusion-xl-v1";
const STABILITY_IMAGE_MODELS: [&str; 4] = [
    "stability.sd3-large-v1:0",
    "stability.sd3-5-large-v1:0",
    "stability.stable-image-ultra-v1:1",
    "stability.stable-image-core-v1:1",
];

/// A valid body for every embedding and image model.
fn model_bodies() -> Vec<(&'static str, Value)> {
    let mut bodies = vec![
        (TITAN_EMBED_G1, json!({"inputText": "hello"})),
        (TITAN_EMBED_V2, json!({"inputText": "hello"})),
        (COHERE_ENGLISH, cohere_body(&["hello"])),
        (COHERE_MULTILINGUAL, cohere_body(&["hallo"])),
        (NOVA_EMBED, nova_body("hello", json!({}))),
        (TITAN_IMAGE_V1, amazon_image_body("a red fox", json!({}))),
        (TITAN_IMAGE_V2, amazon_image_body("a red fox", json!({}))),
        (NOVA_CANVAS, amazon_image_body("a red fox", json!({}))),
        (SDXL, json!({"text_prompts": [{"text": "a red fox"}]})),
    ];
    bodies.extend(STABILITY_IMAGE_MODELS.map(|model_id| (model_id, json!({"prompt": "a fox"}))));
    bodies
}

fn cohere_body(texts: &[&str]) -> Value {
    json!({"texts": texts, "input_type": "search_document"})
}

fn nova_body(text: &str, extra_params: Value) -> Value {
    let mut params = json!({"embeddingPurpose": "GENERIC_INDEX",
        "text": {"truncationMode": "END", "value": text}});
    if let (Some(params), Some(extra)) = (params.as_object_mut(), extra_params.as_object()) {
        params.extend(extra.clone());
    }
    json!({"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": params})
}

fn amazon_image_body(text: &str, config: Value) -> Value {
    json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": text},
        "imageGenerationConfig": config})
}

/// The components of a JSON vector.
fn floats(vector: &Value) -> Vec<f64> {
    vector.as_array().unwrap().iter().map(|component| component.as_f64().unwrap()).collect()
}

fn length(vector: &[f64]) -> f64 {
    vector.iter().map(|component| component * component).sum::<f64>().sqrt()
}

fn assert_unit_length(vector: &[f64]) {
    assert!((length(vector) - 1.0).abs() < 1e-3, "length {}", length(vector));
}

/// Checks the PNG signature, the IHDR size and the final IEND; returns `(width, height)`.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(png[..8], [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n']);
    assert_eq!(png[8..16], [0, 0, 0, 13, b'I', b'H', b'D', b'R']);
    assert_eq!(png[png.len() - 12..png.len() - 4], [0, 0, 0, 0, b'I', b'E', b'N', b'D']);
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (width, height)
}

fn decode_base64(text: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text.as_str().unwrap()).unwrap()
}

impl TestSim {
    async fn invoke_with_accept(
        &self,
        model_id: &str,
        body: &Value,
        accept: &str,
        capture: &HeaderCapture,
    ) -> InvokeModelOutput {
        self.client
            .invoke_model()
            .model_id(model_id)
            .content_type("application/json")
            .accept(accept)
            .body(to_blob(body))
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .unwrap()
    }

    /// The message of the 400 ValidationException that InvokeModel must fail with.
    async fn validation_message(&self, model_id: &str, body: &Value) -> String {
        let error = self.invoke(model_id, body).await.unwrap_err();
        assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(400));
        let error = error.into_service_error();
        assert!(error.is_validation_exception(), "{model_id}: {error:?}");
        error.message().unwrap().to_owned()
    }
}

fn malformed(detail: &str) -> String {
    format!("Malformed input request: {detail}, please reformat your input and try again.")
}

#[tokio::test]
async fn titan_embeddings_sizes_normalization_and_usage() {
    let sim = start().await;
    let capture = HeaderCapture::default();
    let body = json!({"inputText": "the quick brown fox"});
    let output = sim.invoke_with_accept(TITAN_EMBED_G1, &body, "application/json", &capture).await;
    assert_eq!(output.content_type(), "application/json");
    let response: Value = serde_json::from_slice(output.body().as_ref()).unwrap();
    assert_eq!(response["inputTextTokenCount"], 4);
    let g1 = floats(&response["embedding"]);
    assert_eq!(g1.len(), 1536);
    assert!(length(&g1) > 2.0, "G1 vectors are raw");
    assert_eq!(capture.get("x-amzn-bedrock-input-token-count").as_deref(), Some("4"));
    assert_eq!(capture.get("x-amzn-bedrock-output-token-count").as_deref(), Some("0"));
    assert!(capture.get("x-amzn-bedrock-invocation-latency").is_some());

    let response = sim.invoke_json(TITAN_EMBED_V2, &body).await;
    let v2 = floats(&response["embedding"]);
    assert_eq!(v2.len(), 1024);
    assert_unit_length(&v2);
    assert_eq!(response["embeddingsByType"]["float"], response["embedding"]);
    for dimensions in [256, 512] {
        let body = json!({"inputText": "x", "dimensions": dimensions, "normalize": true});
        let response = sim.invoke_json(TITAN_EMBED_V2, &body).await;
        assert_eq!(floats(&response["embedding"]).len(), dimensions);
    }
    let raw = json!({"inputText": "the quick brown fox", "normalize": false,
        "embeddingTypes": ["float", "binary"]});
    let response = sim.invoke_json(TITAN_EMBED_V2, &raw).await;
    assert!((length(&floats(&response["embedding"])) - 1.0).abs() > 0.1);
    let binary = response["embeddingsByType"]["binary"].as_array().unwrap();
    assert_eq!(binary.len(), 1024);
    assert!(binary.iter().all(|bit| bit == 0 || bit == 1));

    // The same text gets the same vector; another text another one.
    let again = sim.invoke_json(TITAN_EMBED_V2, &body).await;
    assert_eq!(floats(&again["embedding"]), v2);
    let other = sim.invoke_json(TITAN_EMBED_V2, &json!({"inputText": "a lazy dog"})).await;
    assert_ne!(floats(&other["embedding"]), v2);
}

#[tokio::test]
async fn cohere_embed_batches_types_and_limits() {
    let sim = start().await;
    for model_id in [COHERE_ENGLISH, COHERE_MULTILINGUAL] {
        let capture = HeaderCapture::default();
        let body = cohere_body(&["one", "two words", "three more words"]);
        let output = sim.invoke_with_accept(model_id, &body, "*/*", &capture).await;
        assert_eq!(output.content_type(), "application/json");
        let response: Value = serde_json::from_slice(output.body().as_ref()).unwrap();
        assert_eq!(response["response_type"], "embeddings_floats");
        assert_eq!(response["texts"], json!(["one", "two words", "three more words"]));
        let vectors = response["embeddings"].as_array().unwrap();
        assert_eq!(vectors.len(), 3);
        for vector in vectors {
            let vector = floats(vector);
            assert_eq!(vector.len(), 1024);
            assert_unit_length(&vector);
        }
        assert_eq!(capture.get("x-amzn-bedrock-input-token-count").as_deref(), Some("6"));
        assert_eq!(capture.get("x-amzn-bedrock-output-token-count").as_deref(), Some("0"));
    }

    let typed = json!({"texts": ["hello"], "input_type": "search_query",
        "embedding_types": ["float", "int8", "ubinary"]});
    let response = sim.invoke_json(COHERE_ENGLISH, &typed).await;
    assert_eq!(response["response_type"], "embeddings_by_type");
    assert_eq!(floats(&response["embeddings"]["float"][0]).len(), 1024);
    assert_eq!(response["embeddings"]["int8"][0].as_array().unwrap().len(), 1024);
    assert_eq!(response["embeddings"]["ubinary"][0].as_array().unwrap().len(), 128);

    let texts: Vec<String> = (0..96).map(|idx| format!("text {idx}")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let response = sim.invoke_json(COHERE_ENGLISH, &cohere_body(&texts)).await;
    assert_eq!(response["embeddings"].as_array().unwrap().len(), 96);
    let too_many: Vec<&str> = texts.iter().copied().chain(["one too many"]).collect();
    assert_eq!(
        sim.validation_message(COHERE_ENGLISH, &cohere_body(&too_many)).await,
        malformed("#/texts: expected maximum item count: 96, found: 97")
    );
    assert_eq!(
        sim.validation_message(COHERE_ENGLISH, &json!({"texts": ["hi"]})).await,
        malformed("#: required key [input_type] not found")
    );
    // A Titan body sent to Cohere: every violation is listed, as real Bedrock does.
    assert_eq!(
        sim.validation_message(COHERE_MULTILINGUAL, &json!({"inputText": "hi"})).await,
        malformed(
            "#: required key [texts] not found#: required key [input_type] not found#: \
             extraneous key [inputText] is not permitted"
        )
    );
    let long_text = vec!["w"; 513].join(" ");
    assert_eq!(
        sim.validation_message(COHERE_ENGLISH, &cohere_body(&[&long_text])).await,
        "Input is too long for requested model."
    );
}

#[tokio::test]
async fn nova_embeddings_dimensions() {
    let sim = start().await;
    let response = sim.invoke_json(NOVA_EMBED, &nova_body("hello nova", json!({}))).await;
    assert_eq!(response["embeddings"][0]["embeddingType"], "TEXT");
    let default_vector = floats(&response["embeddings"][0]["embedding"]);
    assert_eq!(default_vector.len(), 3072);
    assert_unit_length(&default_vector);
    for dimensions in [256, 384, 1024, 3072] {
        let body = nova_body("hello nova", json!({"embeddingDimension": dimensions}));
        let response = sim.invoke_json(NOVA_EMBED, &body).await;
        let vector = floats(&response["embeddings"][0]["embedding"]);
        assert_eq!(vector.len(), dimensions);
        assert_unit_length(&vector);
    }
    let bad = nova_body("x", json!({"embeddingDimension": 512}));
    assert_eq!(
        sim.validation_message(NOVA_EMBED, &bad).await,
        malformed("#/singleEmbeddingParams/embeddingDimension: 512 is not a valid enum value")
    );
}

#[tokio::test]
async fn amazon_image_models_answer_pngs_of_the_requested_size() {
    let sim = start().await;
    let cases = [
        (TITAN_IMAGE_V1, json!({}), (1024, 1024)),
        (TITAN_IMAGE_V1, json!({"width": 1173, "height": 640, "numberOfImages": 3}), (1173, 640)),
        (TITAN_IMAGE_V2, json!({"width": 384, "height": 704, "seed": 42}), (384, 704)),
        (NOVA_CANVAS, json!({"width": 1280, "height": 720, "numberOfImages": 2}), (1280, 720)),
    ];
    for (model_id, config, size) in cases {
        let n_images = config.get("numberOfImages").and_then(Value::as_u64).unwrap_or(1);
        let capture = HeaderCapture::default();
        let body = amazon_image_body("a red fox in the snow", config.clone());
        let output = sim.invoke_with_accept(model_id, &body, "application/json", &capture).await;
        assert_eq!(output.content_type(), "application/json");
        let response: Value = serde_json::from_slice(output.body().as_ref()).unwrap();
        let images = response["images"].as_array().unwrap();
        assert_eq!(images.len() as u64, n_images, "{model_id} {config}");
        let pngs: Vec<Vec<u8>> = images.iter().map(decode_base64).collect();
        for png in &pngs {
            assert_eq!(png_size(png), size, "{model_id} {config}");
        }
        if pngs.len() > 1 {
            assert_ne!(pngs[0], pngs[1], "each image has its own seed");
        }
        // "a red fox in the snow": six words.
        assert_eq!(capture.get("x-amzn-bedrock-input-token-count").as_deref(), Some("6"));
        assert_eq!(capture.get("x-amzn-bedrock-output-token-count").as_deref(), Some("0"));
    }
    let titan = sim.invoke_json(TITAN_IMAGE_V1, &amazon_image_body("x", json!({}))).await;
    assert_eq!(titan["error"], Value::Null);
    // The same request gets the same image.
    let again = sim.invoke_json(TITAN_IMAGE_V1, &amazon_image_body("x", json!({}))).await;
    assert_eq!(again, titan);
}

#[tokio::test]
async fn stability_models_answer_pngs() {
    let sim = start().await;
    let body = json!({"text_prompts": [{"text": "a red fox", "weight": 1.0},
        {"text": "blurry", "weight": -1.0}], "width": 1536, "height": 640, "seed": 77});
    let response = sim.invoke_json(SDXL, &body).await;
    assert_eq!(response["result"], "success");
    let artifact = &response["artifacts"][0];
    assert_eq!(artifact["finishReason"], "SUCCESS");
    assert_eq!(artifact["seed"], 77);
    assert_eq!(png_size(&decode_base64(&artifact["base64"])), (1536, 640));

    for model_id in STABILITY_IMAGE_MODELS {
        let body = json!({"prompt": "a red fox", "aspect_ratio": "16:9", "seed": 5,
            "output_format": "png", "negative_prompt": "blurry"});
        let response = sim.invoke_json(model_id, &body).await;
        assert_eq!(response["seeds"], json!([5]), "{model_id}");
        assert_eq!(response["finish_reasons"], json!([null]), "{model_id}");
        let images = response["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{model_id}");
        assert_eq!(png_size(&decode_base64(&images[0])), (1344, 768), "{model_id}");
    }
}

#[tokio::test]
async fn sdxl_answers_raw_png_for_accept_image_png() {
    let sim = start().await;
    let capture = HeaderCapture::default();
    let body = json!({"text_prompts": [{"text": "a red fox"}], "width": 832, "height": 1216});
    let output = sim.invoke_with_accept(SDXL, &body, "image/png", &capture).await;
    assert_eq!(output.content_type(), "image/png");
    let png = output.body().as_ref();
    assert_eq!(png_size(png), (832, 1216));
    // The raw bytes are the image the JSON answer carries in base64.
    let response = sim.invoke_json(SDXL, &body).await;
    assert_eq!(decode_base64(&response["artifacts"][0]["base64"]), png);
}

#[tokio::test]
async fn accepts_other_than_json_are_refused() {
    let sim = start().await;
    let cases = [
        (TITAN_IMAGE_V1, amazon_image_body("x", json!({})), "image/png"),
        (NOVA_CANVAS, amazon_image_body("x", json!({})), "image/png"),
        (STABILITY_IMAGE_MODELS[0], json!({"prompt": "x"}), "image/png"),
        (SDXL, json!({"text_prompts": [{"text": "x"}]}), "image/jpeg"),
        (COHERE_ENGLISH, cohere_body(&["x"]), "text/plain"),
        (TITAN_EMBED_V2, json!({"inputText": "x"}), "image/png"),
    ];
    for (model_id, body, accept) in cases {
        let error = sim
            .client
            .invoke_model()
            .model_id(model_id)
            .content_type("application/json")
            .accept(accept)
            .body(to_blob(&body))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(400));
        let error = error.into_service_error();
        assert!(error.is_validation_exception(), "{model_id} {accept}: {error:?}");
        assert_eq!(
            error.message(),
            Some("The provided Accept Type is invalid or not supported for this model"),
            "{model_id} {accept}"
        );
    }
}

#[tokio::test]
async fn streaming_is_refused_for_every_embedding_and_image_model() {
    let sim = start().await;
    for (model_id, body) in model_bodies() {
        assert!(sim.invoke(model_id, &body).await.is_ok(), "{model_id} answers InvokeModel");
        let error = sim.start_stream(model_id, &body).await.unwrap_err();
        assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(400));
        let error = error.into_service_error();
        assert!(error.is_validation_exception(), "{model_id}: {error:?}");
        assert_eq!(error.message(), Some("The model is unsupported for streaming."), "{model_id}");
    }
}

#[tokio::test]
async fn image_request_validation() {
    let sim = start().await;
    let cases = [
        (
            TITAN_IMAGE_V1,
            amazon_image_body("x", json!({"cfgScale": 11})),
            "#/imageGenerationConfig/cfgScale: 11 is not less or equal to 10",
        ),
        (
            TITAN_IMAGE_V2,
            amazon_image_body("x", json!({"numberOfImages": 0})),
            "#/imageGenerationConfig/numberOfImages: 0 is not greater or equal to 1",
        ),
        (
            TITAN_IMAGE_V1,
            amazon_image_body("x", json!({"width": 1000, "height": 1000})),
            "#/imageGenerationConfig: 1000x1000 is not a supported image size",
        ),
        (
            NOVA_CANVAS,
            amazon_image_body("x", json!({"seed": 2_147_483_647})),
            "#/imageGenerationConfig/seed: 2147483647 is not less or equal to 2147483646",
        ),
        (
            NOVA_CANVAS,
            json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "x"}, "extra": 1}),
            "#: extraneous key [extra] is not permitted",
        ),
        (
            SDXL,
            json!({"text_prompts": [{"text": "x"}], "width": 1024, "height": 768}),
            "#: 1024x768 is not a supported image size",
        ),
        (
            SDXL,
            json!({"text_prompts": [{"text": "x"}], "cfg_scale": 40}),
            "#/cfg_scale: 40 is not less or equal to 35",
        ),
        (
            SDXL,
            json!({"prompt": "x"}),
            "#: required key [text_prompts] not found#: extraneous key [prompt] is not permitted",
        ),
        (
            STABILITY_IMAGE_MODELS[1],
            json!({"prompt": "x", "aspect_ratio": "4:3"}),
            "#/aspect_ratio: 4:3 is not a valid enum value",
        ),
        (
            STABILITY_IMAGE_MODELS[3],
            json!({"prompt": "x", "output_format": "gif"}),
            "#/output_format: gif is not a valid enum value",
        ),
    ];
    for (model_id, body, detail) in cases {
        assert_eq!(sim.validation_message(model_id, &body).await, malformed(detail), "{model_id}");
    }
}

#[tokio::test]
async fn bodies_of_other_families_are_rejected() {
    let sim = start().await;
    let titan_text = json!({"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 5}});
    assert_eq!(
        sim.validation_message(TITAN_EMBED_G1, &titan_text).await,
        malformed("#: extraneous key [textGenerationConfig] is not permitted")
    );
    assert_eq!(
        sim.validation_message(TITAN_EMBED_V2, &cohere_body(&["hi"])).await,
        malformed("3 schema violations found")
    );
    assert_eq!(
        sim.validation_message(NOVA_CANVAS, &json!({"prompt": "a fox"})).await,
        malformed("2 schema violations found")
    );
    assert_eq!(
        sim.validation_message(STABILITY_IMAGE_MODELS[2], &amazon_image_body("x", json!({}))).await,
        malformed(
            "#: required key [prompt] not found#: extraneous key [imageGenerationConfig] is not \
             permitted#: extraneous key [taskType] is not permitted#: extraneous key \
             [textToImageParams] is not permitted"
        )
    );
}

#[tokio::test]
async fn profile_ids_arns_and_faults() {
    let sim = start().await;
    let body = cohere_body(&["which model am I"]);
    let expected = sim.invoke_json(COHERE_ENGLISH, &body).await;
    for model_id in [
        "us.cohere.embed-english-v3",
        "arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-english-v3",
    ] {
        assert_eq!(sim.invoke_json(model_id, &body).await, expected, "{model_id}");
    }

    let throttled = Behavior {
        fault: Some(Fault::Error(ErrorKind::Throttling)),
        fault_times: Some(1),
        ..Behavior::default()
    };
    sim.simulator.set_behavior(SDXL, throttled);
    let body = json!({"text_prompts": [{"text": "x"}]});
    let error = sim.invoke(SDXL, &body).await.unwrap_err();
    assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(429));
    assert_eq!(invoke_error_variant(&error.into_service_error()), "ThrottlingException");
    assert!(sim.invoke(SDXL, &body).await.is_ok(), "the fault hit once");
}
