//! Every model family end to end, through the aliases of the shipped configuration:
//! text (whole and streamed, prompt and messages), embeddings and images, and the
//! refusals of what a family cannot honour.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, SHIPPED_CONFIG, joined_text};

/// Text families Bedrock does not stream: a streamed request is refused with 422.
const NOT_STREAMED: &[&str] = &["ai21_jurassic2"];

/// Text families whose answer tells a stop sequence from a natural end. The others
/// (Cohere `COMPLETE`, Mistral, Jamba, DeepSeek, gpt-oss `stop`) say the same for both.
const SAYS_STOP_SEQUENCE: &[&str] = &[
    "titan_text",
    "anthropic_claude_text",
    "anthropic_claude_messages",
    "amazon_nova",
    "ai21_jurassic2",
    // Palmyra's `stop_reason` names the stop sequence that ended the answer.
    "writer_palmyra",
    // Stops emulated by the gateway, which knows.
    "meta_llama2",
    "meta_llama3",
    "meta_llama4",
    "mistral_chat",
];

/// The PNG file signature.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A gateway in front of the simulator with every alias of the shipped config.
async fn shipped() -> Harness {
    let at = SHIPPED_CONFIG.find("[models.").unwrap();
    Harness::start_with("max_attempts = 1\n", &SHIPPED_CONFIG[at..]).await
}

/// The aliases of one kind, with their families.
async fn aliases(h: &Harness, kind: &str) -> Vec<(String, String)> {
    let (_, models) = h.get("/v1/models").await;
    models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == kind)
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m["family"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn every_family_of_the_shipped_config_is_listed_with_its_kind() {
    let h = shipped().await;
    let (_, models) = h.get("/v1/models").await;
    let families: std::collections::BTreeSet<&str> =
        models["data"].as_array().unwrap().iter().map(|m| m["family"].as_str().unwrap()).collect();
    for family in [
        "titan_text",
        "anthropic_claude_text",
        "anthropic_claude_messages",
        "amazon_nova",
        "meta_llama2",
        "meta_llama3",
        "meta_llama4",
        "mistral_text",
        "mistral_chat",
        "cohere_command",
        "cohere_command_r",
        "ai21_jurassic2",
        "ai21_jamba",
        "deepseek_r1",
        "openai_gpt_oss",
        "writer_palmyra",
        "titan_embed_g1",
        "titan_embed_v2",
        "cohere_embed",
        "nova_embed",
        "titan_image",
        "stability_sdxl",
        "stability_image",
    ] {
        assert!(families.contains(family), "no alias for {family}: {families:?}");
    }
}

#[tokio::test]
async fn every_text_family_answers_prompts_and_messages_whole_and_streamed() {
    let h = shipped().await;
    let text_aliases = aliases(&h, "text").await;
    assert!(text_aliases.len() >= 15);
    for (alias, family) in text_aliases {
        for input in [
            json!({"prompt": "Tell me about lighthouses"}),
            json!({"messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi there"},
                {"role": "user", "content": "Tell me about lighthouses"},
            ]}),
        ] {
            let mut request = input.clone();
            request["model"] = json!(alias);
            let (status, _, whole) = h.post("/v1/generate", &request).await;
            assert_eq!(status, StatusCode::OK, "{alias} ({family}): {whole}");
            let text = whole["text"].as_str().unwrap();
            assert!(!text.trim().is_empty(), "{alias}: empty text");
            assert_eq!(whole["stop_reason"], "end_turn", "{alias}: {whole}");
            assert!(whole["usage"]["input_tokens"].as_u64().unwrap() > 0, "{alias}: {whole}");
            assert!(whole["usage"]["output_tokens"].as_u64().unwrap() > 0, "{alias}: {whole}");

            if NOT_STREAMED.contains(&family.as_str()) {
                continue; // See the refusal test.
            }
            request["stream"] = json!(true);
            let (status, _, events) = h.stream(&request).await;
            assert_eq!(status, StatusCode::OK, "{alias}");
            let done = events.last().unwrap();
            assert_eq!(done.event, "done", "{alias}: {events:?}");
            assert_eq!(joined_text(&events), text, "{alias}: streamed text differs");
            assert_eq!(done.data["stop_reason"], "end_turn", "{alias}");
            assert_eq!(done.data["usage"], whole["usage"], "{alias}: usage differs");
        }
    }
}

#[tokio::test]
async fn every_text_family_honours_max_tokens_and_stop_sequences() {
    let h = shipped().await;
    for (alias, family) in aliases(&h, "text").await {
        let base = json!({"model": alias, "prompt": "Describe the harbor at dawn"});
        let mut short = base.clone();
        short["max_tokens"] = json!(3);
        let (status, _, answer) = h.post("/v1/generate", &short).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {answer}");
        assert_eq!(answer["stop_reason"], "max_tokens", "{alias}: {answer}");

        let (_, _, full) = h.post("/v1/generate", &base).await;
        let full_text = full["text"].as_str().unwrap();
        let words: Vec<&str> = full_text.split_whitespace().collect();
        let stop_word = words[words.len() / 2];
        let mut stopped = base.clone();
        stopped["stop"] = json!([stop_word]);
        let (status, _, answer) = h.post("/v1/generate", &stopped).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {answer}");
        let expected = if SAYS_STOP_SEQUENCE.contains(&family.as_str()) {
            "stop_sequence"
        } else {
            "end_turn"
        };
        assert_eq!(answer["stop_reason"], expected, "{alias} ({family}): {answer}");
        let cut = answer["text"].as_str().unwrap();
        assert!(!cut.contains(stop_word), "{alias}: {cut:?} contains {stop_word:?}");
        assert!(full_text.starts_with(cut), "{alias}: {cut:?} is not a prefix of {full_text:?}");

        if NOT_STREAMED.contains(&family.as_str()) {
            continue;
        }
        stopped["stream"] = json!(true);
        let (_, _, events) = h.stream(&stopped).await;
        assert_eq!(events.last().unwrap().data["stop_reason"], expected, "{alias}");
        assert_eq!(joined_text(&events), cut, "{alias}: streamed cut differs");
    }
}

/// Titan takes natively only `User:` or a run of `|`, one of them: with those and two
/// words of the answer as stops, the gateway cuts at the earlier word, whole and streamed.
#[tokio::test]
async fn titan_stops_beyond_the_one_it_takes_are_cut_by_the_gateway() {
    let h = shipped().await;
    for alias in ["titan-express", "titan-premier"] {
        let base = json!({"model": alias, "prompt": "Describe the harbor at dawn"});
        let (_, _, full) = h.post("/v1/generate", &base).await;
        let full_text = full["text"].as_str().unwrap();
        let words: Vec<&str> = full_text.split_whitespace().collect();
        let (early, late) = (words[words.len() / 3], words[2 * words.len() / 3]);
        let mut stopped = base.clone();
        stopped["stop"] = json!(["User:", late, "|", early]);
        let (status, _, answer) = h.post("/v1/generate", &stopped).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {answer}");
        assert_eq!(answer["stop_reason"], "stop_sequence", "{alias}: {answer}");
        let cut = answer["text"].as_str().unwrap();
        let at = [early, late].iter().filter_map(|w| full_text.find(w)).min().unwrap();
        assert_eq!(cut, &full_text[..at], "{alias}");

        stopped["stream"] = json!(true);
        let (_, _, events) = h.stream(&stopped).await;
        assert_eq!(events.last().unwrap().data["stop_reason"], "stop_sequence", "{alias}");
        assert_eq!(joined_text(&events), cut, "{alias}: streamed cut differs");
    }
}

/// gpt-oss and Llama 4 stream through their shipped aliases (Bedrock lifted gpt-oss's launch
/// refusal; Llama 4 streams like every Llama): the streamed text is the whole answer, the
/// gpt-oss reasoning the simulator streams in `<reasoning>` tags left out of both.
#[tokio::test]
async fn gpt_oss_and_llama4_stream_through_the_shipped_aliases() {
    let h = shipped().await;
    for alias in ["gpt-oss-120b", "llama4-scout"] {
        let request = json!({"model": alias, "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "What is the capital of France?"},
        ]});
        let (status, _, whole) = h.post("/v1/generate", &request).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {whole}");
        let text = whole["text"].as_str().unwrap();
        assert!(!text.is_empty() && !text.contains("reasoning"), "{alias}: {text:?}");

        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        let (status, _, events) = h.stream(&streamed).await;
        assert_eq!(status, StatusCode::OK, "{alias}");
        let done = events.last().unwrap();
        assert_eq!(done.event, "done", "{alias}: {events:?}");
        assert_eq!(joined_text(&events), text, "{alias}: streamed text differs");
        assert_eq!(done.data["stop_reason"], "end_turn", "{alias}");
        assert_eq!(done.data["usage"], whole["usage"], "{alias}");

        let mut short = streamed.clone();
        short["max_tokens"] = json!(2);
        let (_, _, events) = h.stream(&short).await;
        assert_eq!(events.last().unwrap().data["stop_reason"], "max_tokens", "{alias}");
        assert_eq!(events.last().unwrap().data["usage"]["output_tokens"], 2, "{alias}");
    }
}

#[tokio::test]
async fn unsupported_parameters_are_refused_naming_field_and_family() {
    let h = shipped().await;
    let cases = [
        (json!({"model": "titan-express", "prompt": "Hi", "top_k": 5}), "top_k", "titan_text"),
        (json!({"model": "claude-v2", "prompt": "Hi", "seed": 7}), "seed", "anthropic_claude_text"),
        (json!({"model": "llama3-8b", "prompt": "Hi", "top_k": 5}), "top_k", "meta_llama3"),
        (
            json!({"model": "j2-ultra", "prompt": "Hi", "stream": true}),
            "streaming",
            "ai21_jurassic2",
        ),
    ];
    for (request, field, family) in cases {
        let (status, _, body) = h.post("/v1/generate", &request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{request}: {body}");
        assert_eq!(body["error"]["type"], "unsupported_parameter");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field) && message.contains(family), "{message}");
    }
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn extra_reaches_the_model_body_and_cannot_override_mapped_fields() {
    let h = shipped().await;
    // The simulator, like Bedrock, refuses keys Titan does not know: proof the key was sent.
    let (status, _, body) = h
        .post(
            "/v1/generate",
            &json!({"model": "titan-express", "prompt": "Hi", "extra": {"foo": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["type"], "upstream_rejected");
    assert!(body["error"]["message"].as_str().unwrap().contains("foo"), "{body}");

    // A model-specific parameter the unified request has no field for.
    let (status, _, body) = h
        .post(
            "/v1/generate",
            &json!({"model": "cohere-command", "prompt": "Hi", "extra": {"return_likelihoods": "NONE"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _, body) = h
        .post(
            "/v1/generate",
            &json!({"model": "titan-express", "prompt": "Hi", "extra": {"textGenerationConfig": {"maxTokenCount": 5}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("maxTokenCount"), "{body}");
}

#[tokio::test]
async fn aliases_are_used_only_on_the_endpoint_of_their_kind() {
    let h = shipped().await;
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "titan-embed-v2", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("/v1/embed"), "{body}");
    let (status, _, body) =
        h.post("/v1/embed", &json!({"model": "titan-express", "input": "Hi"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("/v1/generate"), "{body}");
}

#[tokio::test]
async fn every_embedding_family_embeds_batches_in_order() {
    let h = shipped().await;
    let embed_aliases = aliases(&h, "embedding").await;
    assert!(embed_aliases.len() >= 4);
    for (alias, _) in embed_aliases {
        let texts = ["first text", "second text", "first text"];
        let (status, _, body) = h.post("/v1/embed", &json!({"model": alias, "input": texts})).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {body}");
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 3, "{alias}");
        for (i, entry) in data.iter().enumerate() {
            assert_eq!(entry["index"], i);
        }
        let vector = |i: usize| data[i]["embedding"].as_array().unwrap().clone();
        assert!(vector(0).len() >= 256, "{alias}: {} dimensions", vector(0).len());
        assert_eq!(vector(0), vector(2), "{alias}: same text, same vector");
        assert_ne!(vector(0), vector(1), "{alias}: order lost");
        assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0, "{alias}: {body}");

        // One text alone gets the same vector as in the batch.
        let (_, _, single) =
            h.post("/v1/embed", &json!({"model": alias, "input": "second text"})).await;
        assert_eq!(single["data"][0]["embedding"], data[1]["embedding"], "{alias}");
    }
}

#[tokio::test]
async fn embedding_parameters_and_batch_splitting() {
    let h = shipped().await;
    let (status, _, body) = h
        .post("/v1/embed", &json!({"model": "titan-embed-v2", "input": "hello", "dimensions": 256, "normalize": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let vector: Vec<f64> = body["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(vector.len(), 256);
    let norm = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");

    // Titan G1 takes no dimensions: refused before Bedrock.
    let (status, _, body) = h
        .post("/v1/embed", &json!({"model": "titan-embed-g1", "input": "hello", "dimensions": 256}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Cohere takes 96 texts per call: 100 texts are two calls, answered in order.
    let before = h.sim.request_count();
    let texts: Vec<String> = (0..100).map(|i| format!("text number {i}")).collect();
    let (status, _, body) = h
        .post(
            "/v1/embed",
            &json!({"model": "cohere-embed-english", "input": texts, "input_type": "search_query"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 100);
    assert_eq!(h.sim.request_count() - before, 2);
    let (_, _, last) = h
        .post("/v1/embed", &json!({"model": "cohere-embed-english", "input": "text number 99", "input_type": "search_query"}))
        .await;
    assert_eq!(last["data"][0]["embedding"], body["data"][99]["embedding"]);

    // Titan takes one text per call: a batch fans out, one call per text.
    let before = h.sim.request_count();
    let (status, _, _) = h
        .post("/v1/embed", &json!({"model": "titan-embed-v2", "input": ["a", "b", "c", "d"]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.sim.request_count() - before, 4);
}

fn decode_png(b64: &Value) -> Vec<u8> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
    assert!(bytes.starts_with(PNG_SIGNATURE), "not a PNG");
    bytes
}

#[tokio::test]
async fn every_image_family_returns_base64_pngs() {
    let h = shipped().await;
    let image_aliases = aliases(&h, "image").await;
    assert!(image_aliases.len() >= 3);
    for (alias, _) in image_aliases {
        let (status, _, body) = h
            .post(
                "/v1/images",
                &json!({"model": alias, "prompt": "a red fox in the snow", "seed": 42}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{alias}: {body}");
        let images = body["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{alias}");
        decode_png(&images[0]["b64"]);
    }
    let (status, _, body) = h
        .post("/v1/images", &json!({"model": "titan-image-v2", "prompt": "a fox", "n": 2, "width": 512, "height": 512}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["images"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn accept_image_png_returns_the_image_bytes() {
    let h = shipped().await;
    // Both are asked for JSON; the gateway decodes the base64 image into the PNG.
    for alias in ["sdxl", "nova-canvas"] {
        let response = h
            .http
            .post(h.url("/v1/images"))
            .header("accept", "image/png")
            .json(&json!({"model": alias, "prompt": "a lighthouse"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{alias}");
        assert_eq!(response.headers()["content-type"], "image/png");
        let bytes = response.bytes().await.unwrap();
        assert!(bytes.starts_with(PNG_SIGNATURE), "{alias}: not a PNG");
    }
    let response = h
        .http
        .post(h.url("/v1/images"))
        .header("accept", "image/png")
        .json(&json!({"model": "nova-canvas", "prompt": "a lighthouse", "n": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn image_parameters_a_family_cannot_honour_are_refused() {
    let h = shipped().await;
    let (status, _, body) = h
        .post(
            "/v1/images",
            &json!({"model": "sdxl", "prompt": "a fox", "width": 100, "height": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request");
    assert_eq!(h.sim.request_count(), 0);
}
