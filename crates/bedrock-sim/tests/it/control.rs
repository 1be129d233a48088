//! The `/_sim` control API and unknown operations, as plain HTTP requests through the router.

use axum::http::StatusCode;
use axum::response::Response;
use bedrock_sim::{Behavior, ErrorKind, Fault, Simulator};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{TITAN, signed_request, start, titan_body};

async fn send(simulator: &Simulator, method: &str, uri: &str, body: &str) -> Response {
    simulator.router().oneshot(signed_request(method, uri, body)).await.unwrap()
}

async fn body_json(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn put_behavior_steers_the_running_server() {
    let sim = start().await;
    let behavior = r#"{"fault":{"error":"ThrottlingException"},"fault_times":1}"#;
    let uri = format!("/_sim/behavior/{TITAN}");
    let response = send(&sim.simulator, "PUT", &uri, behavior).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let body = titan_body("hi", json!({}));
    let error = sim.invoke(TITAN, &body).await.unwrap_err().into_service_error();
    assert!(error.is_throttling_exception());
    assert!(sim.invoke(TITAN, &body).await.is_ok());

    let response = send(&sim.simulator, "GET", "/_sim/stats", "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let stats = body_json(response).await;
    assert_eq!(stats["requests"], 2);
    // Both reached the quota check; the faulted one charged nothing.
    assert_eq!(stats["models"][TITAN]["requests"], 2);
    assert_eq!(stats["models"][TITAN]["throttled"], 0);
}

#[tokio::test]
async fn put_behavior_for_every_model_and_for_an_encoded_arn() {
    let simulator = Simulator::new();
    let behavior = r#"{"fault":{"error":"AccessDeniedException"}}"#;
    let response = send(&simulator, "PUT", "/_sim/behavior/*", behavior).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // The ARN's own entry wins over "*" for claude-v2.
    let arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fanthropic.claude-v2";
    let behavior = r#"{"fault":{"error":"ModelErrorException","after_chunks":1}}"#;
    let response = send(&simulator, "PUT", &format!("/_sim/behavior/{arn}"), behavior).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let titan = r#"{"inputText":"hi"}"#;
    let claude = r#"{"prompt":"\n\nHuman: hi\n\nAssistant:","max_tokens_to_sample":5}"#;
    let cases = [
        (TITAN, titan, StatusCode::FORBIDDEN, "AccessDeniedException"),
        ("us.anthropic.claude-v2", claude, StatusCode::FAILED_DEPENDENCY, "ModelErrorException"),
        ("anthropic.claude-v2:1", claude, StatusCode::FORBIDDEN, "AccessDeniedException"),
    ];
    for (model_id, body, status, shape) in cases {
        let response = send(&simulator, "POST", &format!("/model/{model_id}/invoke"), body).await;
        assert_eq!(response.status(), status, "{model_id}");
        let error_type = response.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
        assert_eq!(
            error_type,
            format!("{shape}:http://internal.amazon.com/coral/com.amazon.bedrock/")
        );
    }

    let response = send(&simulator, "DELETE", "/_sim/behavior", "").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = send(&simulator, "POST", &format!("/model/{TITAN}/invoke"), titan).await;
    assert_eq!(response.status(), StatusCode::OK);

    // The HTTP API and the Rust API share one state.
    let behavior =
        Behavior { fault: Some(Fault::Error(ErrorKind::Validation)), ..Behavior::default() };
    simulator.set_behavior("*", behavior);
    let response = send(&simulator, "POST", &format!("/model/{TITAN}/invoke"), titan).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = send(&simulator, "GET", "/_sim/stats", "").await;
    let stats = body_json(response).await;
    assert_eq!(stats["requests"], 5);
    let models: Vec<_> = stats["models"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(models, [TITAN, "anthropic.claude-v2", "anthropic.claude-v2:1"]);
}

#[tokio::test]
async fn post_release_lets_the_held_streams_go_on() {
    let sim = start().await;
    let uri = format!("/_sim/behavior/{TITAN}");
    let response = send(&sim.simulator, "PUT", &uri, r#"{"hold_after_chunks":1}"#).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let body = titan_body("hold me", json!({"maxTokenCount": 4}));
    let mut output = sim.start_stream(TITAN, &body).await.unwrap();
    assert!(output.body.recv().await.unwrap().is_some(), "the first chunk");
    // The stream holds after its first chunk, its connection open.
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while sim.simulator.held() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    });
    waited.await.expect("the stream never held");
    let response = send(&sim.simulator, "POST", "/_sim/release", "").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let rest = crate::support::collect_stream(output).await;
    assert!(matches!(rest.end, crate::support::StreamEnd::Clean), "{:?}", rest.end);
    assert_eq!(rest.chunks.len(), 3);
    assert_eq!(rest.chunks[2]["completionReason"], "LENGTH");
    assert_eq!(sim.simulator.held(), 0);
}

#[tokio::test]
async fn bad_behavior_json_is_a_validation_error() {
    let simulator = Simulator::new();
    for behavior in ["not json", r#"{"latency":5}"#, r#"{"fault":{"error":"NoSuchException"}}"#] {
        let response = send(&simulator, "PUT", "/_sim/behavior/*", behavior).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{behavior}");
        assert!(
            response.headers()["x-amzn-errortype"]
                .to_str()
                .unwrap()
                .starts_with("ValidationException:"),
            "{behavior}"
        );
        let message = body_json(response).await["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with("Invalid behavior: "), "{message}");
    }
}

#[tokio::test]
async fn unknown_operations_are_404_in_the_bedrock_encoding() {
    let simulator = Simulator::new();
    for (method, uri) in [
        ("POST", "/model/amazon.titan-text-express-v1/converse"),
        ("GET", "/model/amazon.titan-text-express-v1/invoke"),
        ("POST", "/"),
        ("GET", "/health"),
    ] {
        let response = send(&simulator, method, uri, "{}").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "UnknownOperationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        );
        assert!(response.headers().contains_key("x-amzn-requestid"));
        let message = body_json(response).await["message"].as_str().unwrap().to_owned();
        assert_eq!(message, "The requested operation is not recognized by the service.");
    }
    assert_eq!(simulator.request_count(), 0);
}

#[tokio::test]
async fn raw_arn_path_is_decoded_after_splitting() {
    let simulator = Simulator::new();
    let arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.amazon.titan-text-express-v1";
    let body = r#"{"inputText":"hi"}"#;
    let response = send(&simulator, "POST", &format!("/model/{arn}/invoke"), body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("x-amzn-bedrock-invocation-latency"));
    let answer = body_json(response).await;
    assert_eq!(answer["results"][0]["completionReason"], "FINISH");
}
