//! `POST /v1/images/edits`: every task of Titan Image Generator V2 and Nova Canvas through
//! the pipeline into the simulator, which checks each body as Bedrock documents it and
//! answers images of the size the task gives (the input's, or the variation's size); a
//! family without edits (Stability) refused with 422; bad requests refused with 400 before
//! Bedrock; the OpenAPI document.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Harness;

const MODELS: &str = r#"
[models.titan-image-v2]
model_id = "amazon.titan-image-generator-v2:0"

[models.nova-canvas]
model_id = "amazon.nova-canvas-v1:0"

[models.sd3-large]
model_id = "stability.sd3-large-v1:0"

[models.sdxl]
model_id = "stability.stable-diffusion-xl-v1"
"#;

const EDIT_ALIASES: [&str; 2] = ["titan-image-v2", "nova-canvas"];

async fn start() -> Harness {
    Harness::start_with("max_attempts = 1\n", MODELS).await
}

/// The base64 of the start of a PNG file of `width` x `height`: its signature and `IHDR`,
/// which is all the simulator reads of an input image.
fn png_header(width: u32, height: u32) -> String {
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 13];
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    base64::engine::general_purpose::STANDARD.encode(png)
}

/// The `(width, height)` of each answered image, checked to be a PNG.
fn image_sizes(body: &Value) -> Vec<(u32, u32)> {
    body["images"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(idx, entry)| {
            assert_eq!(entry["index"], idx);
            let png = base64::engine::general_purpose::STANDARD
                .decode(entry["b64"].as_str().unwrap())
                .unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "image {idx} is not a PNG");
            let side = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
            (side(16), side(20))
        })
        .collect()
}

#[tokio::test]
async fn every_task_answers_images_on_titan_v2_and_nova_canvas() {
    let h = start().await;
    let image = png_header(640, 384);
    for alias in EDIT_ALIASES {
        let cases = [
            (
                json!({"model": alias, "task": "variation",
                    "images": [image, png_header(512, 512)], "prompt": "in watercolour",
                    "negative_prompt": "blurry", "similarity_strength": 0.7, "n": 2,
                    "width": 512, "height": 512, "seed": 42, "cfg_scale": 8.0}),
                vec![(512, 512); 2],
            ),
            (json!({"model": alias, "task": "variation", "images": [image]}), vec![(1024, 1024)]),
            (
                json!({"model": alias, "task": "inpainting", "images": [image],
                    "prompt": "a garden gnome", "mask_prompt": "flowers in pots", "n": 3,
                    "seed": 7, "extra": {"imageGenerationConfig": {"quality": "premium"}}}),
                vec![(640, 384); 3],
            ),
            (
                // No prompt: the masked region is removed.
                json!({"model": alias, "task": "inpainting", "images": [image],
                    "mask_image": png_header(640, 384)}),
                vec![(640, 384)],
            ),
            (
                json!({"model": alias, "task": "outpainting", "images": [image],
                    "prompt": "a sunny beach", "mask_prompt": "the dog",
                    "outpainting_mode": "precise", "cfg_scale": 6.5}),
                vec![(640, 384)],
            ),
            (
                json!({"model": alias, "task": "background_removal", "images": [image]}),
                vec![(640, 384)],
            ),
        ];
        for (body, sizes) in cases {
            let (status, headers, answer) = h.post("/v1/images/edits", &body).await;
            assert_eq!(status, StatusCode::OK, "{body}: {answer}");
            assert_eq!(answer["model"], alias);
            assert_eq!(headers["x-gateway-target"], alias);
            assert_eq!(image_sizes(&answer), sizes, "{body}");
            // The same edit answers the same images.
            let (_, _, again) = h.post("/v1/images/edits", &body).await;
            assert_eq!(again, answer, "{body}");
        }
    }
    assert_eq!(h.sim.request_count(), 2 * 6 * 2);
}

#[tokio::test]
async fn accept_image_png_answers_the_one_image() {
    let h = start().await;
    let response = h
        .http
        .post(h.url("/v1/images/edits"))
        .header("accept", "image/png")
        .json(&json!({"model": "nova-canvas", "task": "background_removal",
            "images": [png_header(512, 768)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["x-gateway-target"], "nova-canvas");
    let png = response.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(&png[16..24], [0, 0, 2, 0, 0, 0, 3, 0]);
}

#[tokio::test]
async fn a_stability_alias_refuses_edits_with_422() {
    let h = start().await;
    for (alias, family) in [("sd3-large", "stability_image"), ("sdxl", "stability_sdxl")] {
        let body = json!({"model": alias, "task": "inpainting", "images": [png_header(512, 512)],
            "mask_prompt": "the sky"});
        let (status, _, answer) = h.post("/v1/images/edits", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{alias}: {answer}");
        assert_eq!(answer["error"]["type"], "unsupported_parameter");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(family) && message.contains("`inpainting`"), "{message}");
    }
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn bad_requests_are_400s_naming_the_field_before_bedrock() {
    let h = start().await;
    let image = png_header(512, 512);
    let cases = [
        (json!({"task": "variation", "images": []}), "`images`"),
        (json!({"task": "variation", "images": vec![image.clone(); 6]}), "1 to 5 images"),
        (
            json!({"task": "inpainting", "images": [image, image], "mask_prompt": "x"}),
            "exactly one",
        ),
        (json!({"task": "inpainting", "images": [image]}), "`mask_prompt` or `mask_image`"),
        (
            json!({"task": "inpainting", "images": [image], "mask_prompt": "x", "mask_image": image}),
            "exclusive",
        ),
        (json!({"task": "outpainting", "images": [image], "mask_prompt": "x"}), "`prompt`"),
        (
            json!({"task": "inpainting", "images": [image], "mask_prompt": "x", "width": 512,
                "height": 512}),
            "`width`",
        ),
        (
            json!({"task": "variation", "images": [image], "outpainting_mode": "default"}),
            "`outpainting_mode`",
        ),
        (
            json!({"task": "variation", "images": [image], "similarity_strength": 0.1}),
            "`similarity_strength`",
        ),
        (json!({"task": "background_removal", "images": [image], "prompt": "x"}), "`prompt`"),
        (json!({"task": "background_removal", "images": [image], "n": 2}), "`n`"),
        (json!({"task": "variation", "images": [image], "seed": 2_147_483_647_u64}), "`seed`"),
        (json!({"task": "upscale", "images": [image]}), "unknown variant `upscale`"),
        (json!({"task": "variation", "images": [image], "style": "x"}), "style"),
    ];
    for (mut body, field) in cases {
        body["model"] = json!("titan-image-v2");
        let (status, _, answer) = h.post("/v1/images/edits", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_request", "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    // A text-to-image alias is not the only check: an unknown alias is a 404.
    let (status, _, _) = h
        .post("/v1/images/edits", &json!({"model": "nope", "task": "variation", "images": [image]}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(h.sim.request_count(), 0);
}

/// The limits only the model checks, as AWS documents them for each model, reach the caller
/// from Bedrock (400 `upstream_rejected` with Bedrock's message) or pass
/// (`crates/translator/tests/fixtures/titan_image/README.md` has the sources).
#[tokio::test]
async fn each_model_s_documented_input_limits_come_from_bedrock() {
    let h = start().await;
    let accepted = [
        // Nova Canvas input sides need not be multiples of 16 (an output's must).
        (
            json!({"model": "nova-canvas", "task": "background_removal",
                "images": [png_header(1000, 750)]}),
            vec![(1000, 750)],
        ),
        // Nova Canvas takes seeds up to 2,147,483,646, not 858,993,459.
        (
            json!({"model": "nova-canvas", "task": "inpainting", "images": [png_header(640, 384)],
                "mask_prompt": "the sky", "seed": 2_147_483_646_u64}),
            vec![(640, 384)],
        ),
        // Titan takes `returnMask`, and a longer side of 1,408.
        (
            json!({"model": "titan-image-v2", "task": "outpainting",
                "images": [png_header(1408, 704)], "prompt": "a beach", "mask_prompt": "the dog",
                "extra": {"outPaintingParams": {"returnMask": true}}}),
            vec![(1408, 704)],
        ),
    ];
    for (body, sizes) in accepted {
        let (status, _, answer) = h.post("/v1/images/edits", &body).await;
        assert_eq!(status, StatusCode::OK, "{body}: {answer}");
        assert_eq!(image_sizes(&answer), sizes, "{body}");
    }
    let refused = [
        (
            json!({"model": "titan-image-v2", "task": "inpainting",
                "images": [png_header(2048, 1024)], "mask_prompt": "the sky"}),
            "inPaintingParams.image: 2048x1024 is not a supported input image size.",
        ),
        (
            json!({"model": "titan-image-v2", "task": "variation",
                "images": [png_header(512, 512), png_header(704, 1409)]}),
            "imageVariationParams.images[1]: 704x1409 is not a supported input image size.",
        ),
        (
            json!({"model": "nova-canvas", "task": "inpainting", "images": [png_header(640, 384)],
                "mask_prompt": "the sky", "extra": {"inPaintingParams": {"returnMask": true}}}),
            "#/inPaintingParams: extraneous key [returnMask] is not permitted",
        ),
    ];
    for (body, message) in refused {
        let (status, _, answer) = h.post("/v1/images/edits", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["type"], "upstream_rejected", "{body}: {answer}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{body}: {text}");
    }
    assert_eq!(h.sim.request_count(), 6);
}

#[tokio::test]
async fn a_body_over_the_gateway_limit_is_a_413() {
    let h = start().await;
    let huge = "A".repeat(11 * 1024 * 1024);
    let body = json!({"model": "titan-image-v2", "task": "variation", "images": [huge]});
    let (status, _, answer) = h.post("/v1/images/edits", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", answer["error"]);
    assert_eq!(answer["error"]["type"], "payload_too_large");
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn the_route_is_documented() {
    let h = start().await;
    let (status, doc) = h.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let operation = &doc["paths"]["/v1/images/edits"]["post"];
    assert_eq!(operation["tags"], json!(["gateway"]), "{operation}");
    let schemas = &doc["components"]["schemas"];
    let properties = schemas["ImageEditsBody"]["properties"].as_object().unwrap();
    for field in [
        "model",
        "task",
        "images",
        "prompt",
        "mask_prompt",
        "mask_image",
        "outpainting_mode",
        "similarity_strength",
        "negative_prompt",
        "n",
        "width",
        "height",
        "seed",
        "cfg_scale",
        "extra",
    ] {
        assert!(properties.contains_key(field), "ImageEditsBody lacks {field}");
    }
    assert_eq!(
        schemas["EditTask"]["enum"],
        json!(["variation", "inpainting", "outpainting", "background_removal"]),
        "{}",
        schemas["EditTask"]
    );
}
