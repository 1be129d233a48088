//! Images named by URL: refused unless the operator allows their origin
//! (`[image_fetch] allow`), and then fetched within the size limit, as images only, with no
//! redirect followed. A small origin server on port 0 serves the images and counts hits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::harness::Harness;

const MODELS: &str = r#"
[models.claude-3-haiku]
model_id = "anthropic.claude-3-haiku-20240307-v1:0"
"#;

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// The origin: its base URL and its hit count.
async fn origin() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = |hits: Arc<AtomicUsize>, answer: fn() -> axum::response::Response| {
        get(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async move { answer() }
        })
    };
    let app = Router::new()
        .route(
            "/images/cat.png",
            counted(hits.clone(), || ([(header::CONTENT_TYPE, "image/png")], PNG).into_response()),
        )
        .route(
            "/images/big.png",
            counted(hits.clone(), || {
                ([(header::CONTENT_TYPE, "image/png")], vec![0_u8; 64 * 1024]).into_response()
            }),
        )
        .route(
            "/images/page",
            counted(hits.clone(), || {
                ([(header::CONTENT_TYPE, "text/html")], "<html></html>").into_response()
            }),
        )
        .route(
            "/images/moved",
            counted(hits.clone(), || {
                (StatusCode::FOUND, [(header::LOCATION, "http://169.254.169.254/")]).into_response()
            }),
        )
        .route(
            "/private/cat.png",
            counted(hits.clone(), || ([(header::CONTENT_TYPE, "image/png")], PNG).into_response()),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

fn chat_with_image(url: &str) -> Value {
    json!({"model": "claude-3-haiku", "max_tokens": 20, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": url}}]}]})
}

#[tokio::test]
async fn allowed_origins_are_fetched_within_bounds_and_the_rest_refused() {
    let (base, hits) = origin().await;
    let top = format!(
        "[image_fetch]\nallow = [\"{base}/images/\"]\nmax_bytes = 16384\ntimeout_ms = 5000\n"
    );
    let h = Harness::start_with_top(&top, "max_attempts = 1\n", MODELS).await;

    let (status, _, body) =
        h.post("/v1/chat/completions", &chat_with_image(&format!("{base}/images/cat.png"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["choices"][0]["message"]["content"].as_str().unwrap().len() > 1);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // The model saw the image's bytes: the same request as a data: URL gets the same answer.
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, PNG)
    );
    let (_, _, inline) = h.post("/v1/chat/completions", &chat_with_image(&data_url)).await;
    assert_eq!(
        inline["choices"][0]["message"]["content"],
        body["choices"][0]["message"]["content"]
    );

    // Outside the allowed prefix: refused without a fetch (422).
    let (status, _, body) =
        h.post("/v1/chat/completions", &chat_with_image(&format!("{base}/private/cat.png"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("image_fetch.allow"), "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Allowed, but too large, not an image, or a redirect: refused (400), nothing followed.
    for (path, says) in [("big.png", "larger than"), ("page", "text/html"), ("moved", "302")] {
        let (status, _, body) = h
            .post("/v1/chat/completions", &chat_with_image(&format!("{base}/images/{path}")))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{path}: {body}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert_eq!(h.sim.request_count(), 2, "only the two good requests reached Bedrock");

    // The Anthropic Messages API's `url` source takes the same path.
    let (status, _, body) = h
        .post(
            "/v1/messages",
            &json!({"model": "claude-3-haiku", "max_tokens": 20, "messages": [{"role": "user",
                "content": [{"type": "image", "source": {"type": "url",
                    "url": format!("{base}/images/cat.png")}}, {"type": "text", "text": "Hi"}]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn by_default_nothing_is_fetched() {
    let (base, hits) = origin().await;
    let h = Harness::start_with("max_attempts = 1\n", MODELS).await;
    let (status, _, body) =
        h.post("/v1/chat/completions", &chat_with_image(&format!("{base}/images/cat.png"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(h.sim.request_count(), 0);
}
