//! The OpenAPI document: served at `/openapi.json`, OpenAPI 3.1, and in step with the
//! routes the gateway actually serves. (`tests/clients/` also validates it with
//! `openapi-spec-validator`.)

use reqwest::StatusCode;

use crate::harness::Harness;

#[tokio::test]
async fn every_documented_operation_is_served_and_every_route_documented() {
    let h = Harness::start().await;
    let (status, doc) = h.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert_eq!(doc, serde_json::to_value(server::app::openapi()).unwrap());

    let paths = doc["paths"].as_object().unwrap();
    // Every documented operation answers: an empty body may be refused, but the
    // route exists (no 404 for the path, no 405 for the method).
    for (path, operations) in paths {
        let concrete = path.replace("{modelId}", "titan").replace("{response_id}", "resp_none");
        for method in operations.as_object().unwrap().keys() {
            let request = match method.as_str() {
                "get" => h.http.get(h.url(&concrete)),
                "post" => h.http.post(h.url(&concrete)).body("{}"),
                "delete" => h.http.delete(h.url(&concrete)),
                other => panic!("unexpected method {other} for {path}"),
            };
            let response = request.send().await.unwrap();
            if path.contains("{response_id}") {
                // No such stored response: the route's own 404, not the fallback's.
                let status = response.status();
                let body: serde_json::Value = response.json().await.unwrap();
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.starts_with("Response with id"),
                    "{method} {path}: {status} {body}"
                );
                continue;
            }
            assert_ne!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
            assert_ne!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
    }
    // Every route of the gateway is documented (this list is what README.md documents).
    for path in [
        "/v1/generate",
        "/v1/embed",
        "/v1/images",
        "/v1/images/edits",
        "/v1/models",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/images/generations",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/model/{modelId}/invoke",
        "/model/{modelId}/invoke-with-response-stream",
        "/model/{modelId}/converse",
        "/model/{modelId}/converse-stream",
        "/model/{modelId}/count-tokens",
    ] {
        assert!(paths.contains_key(path), "{path} is not in the OpenAPI document");
    }
    // Request bodies come from the code's own types.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in ["GenerateRequest", "GenerateResponse", "ErrorBody", "ChatCompletionRequest"] {
        assert!(schemas.contains_key(schema), "no schema {schema}");
    }
    let generate = &schemas["GenerateRequest"]["properties"];
    for field in ["model", "prompt", "messages", "max_tokens", "stop", "extra", "stream"] {
        assert!(generate.get(field).is_some(), "GenerateRequest lacks {field}");
    }
}
