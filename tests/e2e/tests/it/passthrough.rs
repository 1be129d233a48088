//! The Bedrock-native routes (`/model/{modelId}/invoke` and
//! `/invoke-with-response-stream`) through the real AWS SDK pointed at the gateway, the
//! simulator behind it. Most checks compare the gateway with the simulator called
//! directly by the same SDK: through the gateway, a caller must see what it would see
//! from Bedrock (bodies, chunks, headers, every error variant).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents, Token,
};
use aws_sdk_bedrockruntime::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::RequestId;
use aws_sdk_bedrockruntime::operation::invoke_model::{InvokeModelError, InvokeModelOutput};
use aws_sdk_bedrockruntime::operation::invoke_model_with_response_stream::InvokeModelWithResponseStreamError;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::ResponseStream;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use aws_sdk_bedrockruntime::{Client, Config};
use bedrock_sim::{Behavior, ErrorKind, Fault};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Harness;

/// Aliases for the families under test, two of them routed to ARN-shaped model ids.
const MODELS: &str = r#"
[models.titan]
model_id = "amazon.titan-text-express-v1"

[models.titan-arn]
model_id = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1"

[models.claude-v2]
model_id = "anthropic.claude-v2:1"

[models.claude-v2-arn]
model_id = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2:1"

[models.claude-3-haiku]
model_id = "anthropic.claude-3-haiku-20240307-v1:0"

[models.llama3]
model_id = "meta.llama3-8b-instruct-v1:0"

[models.nova-lite]
model_id = "us.amazon.nova-lite-v1:0"

[models.nova-lite-profile]
model_id = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0"

[models.sdxl]
model_id = "stability.stable-diffusion-xl-v1"

[models.titan-embed]
model_id = "amazon.titan-embed-text-v2:0"
"#;

const TITAN: &str = "amazon.titan-text-express-v1";

/// One text family: its alias, model id, an ARN form configured for it (if any) and a
/// valid InvokeModel body of its own.
struct FamilyCase {
    alias: &'static str,
    model_id: &'static str,
    arn: Option<&'static str>,
    body: Value,
}

fn family_cases() -> Vec<FamilyCase> {
    vec![
        FamilyCase {
            alias: "titan",
            model_id: TITAN,
            arn: Some("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1"),
            body: titan_body(12),
        },
        FamilyCase {
            alias: "claude-v2",
            model_id: "anthropic.claude-v2:1",
            arn: Some("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2:1"),
            body: json!({"prompt": "\n\nHuman: Tell me about lighthouses\n\nAssistant:",
                "max_tokens_to_sample": 12}),
        },
        FamilyCase {
            alias: "claude-3-haiku",
            model_id: "anthropic.claude-3-haiku-20240307-v1:0",
            arn: None,
            body: json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 12,
                "messages": [{"role": "user", "content": "Tell me about lighthouses"}]}),
        },
        FamilyCase {
            alias: "llama3",
            model_id: "meta.llama3-8b-instruct-v1:0",
            arn: None,
            body: json!({"prompt": "Tell me about lighthouses", "max_gen_len": 12}),
        },
        FamilyCase {
            alias: "nova-lite",
            model_id: "us.amazon.nova-lite-v1:0",
            arn: Some(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0",
            ),
            body: json!({"schemaVersion": "messages-v1",
                "messages": [{"role": "user", "content": [{"text": "Tell me about lighthouses"}]}],
                "inferenceConfig": {"maxTokens": 12}}),
        },
    ]
}

pub(crate) fn titan_body(max_tokens: u32) -> Value {
    json!({"inputText": "Tell me about lighthouses",
        "textGenerationConfig": {"maxTokenCount": max_tokens}})
}

async fn start() -> Harness {
    Harness::start_with("max_attempts = 1\n", MODELS).await
}

/// An SDK client for `endpoint` (the gateway's or the simulator's), as in wire document
/// §10.1: the simulator's test key (which the gateway does not check), SDK retries off.
pub(crate) fn client(endpoint: &str) -> Client {
    Client::from_conf(config(endpoint).retry_config(RetryConfig::disabled()).build())
}

fn config(endpoint: &str) -> aws_sdk_bedrockruntime::config::Builder {
    Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            bedrock_sim::TEST_ACCESS_KEY_ID,
            bedrock_sim::TEST_SECRET_ACCESS_KEY,
            None,
            None,
            "static",
        ))
        .endpoint_url(endpoint)
}

pub(crate) async fn invoke(
    client: &Client,
    model_id: &str,
    body: &Value,
) -> Result<InvokeModelOutput, SdkError<InvokeModelError, HttpResponse>> {
    client
        .invoke_model()
        .model_id(model_id)
        .content_type("application/json")
        .accept("application/json")
        .body(Blob::new(serde_json::to_vec(body).unwrap()))
        .send()
        .await
}

/// Everything a stream delivered, when each chunk arrived, and how it ended.
#[derive(Debug)]
pub(crate) struct Streamed {
    content_type: String,
    request_id: Option<String>,
    pub(crate) chunks: Vec<Value>,
    arrivals: Vec<Instant>,
    pub(crate) end: StreamEnd,
}

#[derive(Debug)]
pub(crate) enum StreamEnd {
    Clean,
    Exception(ResponseStreamError),
    /// A framing or connection failure, described for assertion messages.
    Broken(#[expect(dead_code, reason = "read through Debug, in assertion messages")] String),
}

pub(crate) async fn stream(
    client: &Client,
    model_id: &str,
    body: &Value,
) -> Result<Streamed, SdkError<InvokeModelWithResponseStreamError, HttpResponse>> {
    let mut output = client
        .invoke_model_with_response_stream()
        .model_id(model_id)
        .content_type("application/json")
        .accept("application/json")
        .body(Blob::new(serde_json::to_vec(body).unwrap()))
        .send()
        .await?;
    let mut streamed = Streamed {
        content_type: output.content_type().to_owned(),
        request_id: output.request_id().map(str::to_owned),
        chunks: Vec::new(),
        arrivals: Vec::new(),
        end: StreamEnd::Clean,
    };
    streamed.end = loop {
        match output.body.recv().await {
            Ok(Some(ResponseStream::Chunk(part))) => {
                streamed.arrivals.push(Instant::now());
                streamed
                    .chunks
                    .push(serde_json::from_slice(part.bytes().unwrap().as_ref()).unwrap());
            }
            Ok(Some(other)) => panic!("unexpected event {other:?}"),
            Ok(None) => break StreamEnd::Clean,
            Err(SdkError::ServiceError(context)) => break StreamEnd::Exception(context.into_err()),
            Err(error) => break StreamEnd::Broken(format!("{error:?}")),
        }
    };
    Ok(streamed)
}

/// The chunks with the latencies of the final invocation metrics zeroed: they are
/// timings, which differ from call to call.
fn without_latencies(chunks: &[Value]) -> Vec<Value> {
    let mut chunks = chunks.to_vec();
    for chunk in &mut chunks {
        if let Some(metrics) = chunk.get_mut("amazon-bedrock-invocationMetrics") {
            metrics["invocationLatency"] = json!(0);
            metrics["firstByteLatency"] = json!(0);
        }
    }
    chunks
}

fn json_body(output: &InvokeModelOutput) -> Value {
    serde_json::from_slice(output.body().as_ref()).unwrap()
}

/// The variant name of an InvokeModel error; `Unhandled` for codes it does not model.
fn invoke_variant(error: &InvokeModelError) -> &'static str {
    match error {
        InvokeModelError::AccessDeniedException(_) => "AccessDeniedException",
        InvokeModelError::InternalServerException(_) => "InternalServerException",
        InvokeModelError::ModelErrorException(_) => "ModelErrorException",
        InvokeModelError::ModelNotReadyException(_) => "ModelNotReadyException",
        InvokeModelError::ModelTimeoutException(_) => "ModelTimeoutException",
        InvokeModelError::ResourceNotFoundException(_) => "ResourceNotFoundException",
        InvokeModelError::ServiceQuotaExceededException(_) => "ServiceQuotaExceededException",
        InvokeModelError::ServiceUnavailableException(_) => "ServiceUnavailableException",
        InvokeModelError::ThrottlingException(_) => "ThrottlingException",
        InvokeModelError::ValidationException(_) => "ValidationException",
        _ => "Unhandled",
    }
}

fn stream_start_variant(error: &InvokeModelWithResponseStreamError) -> &'static str {
    use InvokeModelWithResponseStreamError as E;
    match error {
        E::AccessDeniedException(_) => "AccessDeniedException",
        E::InternalServerException(_) => "InternalServerException",
        E::ModelErrorException(_) => "ModelErrorException",
        E::ModelNotReadyException(_) => "ModelNotReadyException",
        E::ModelStreamErrorException(_) => "ModelStreamErrorException",
        E::ModelTimeoutException(_) => "ModelTimeoutException",
        E::ResourceNotFoundException(_) => "ResourceNotFoundException",
        E::ServiceQuotaExceededException(_) => "ServiceQuotaExceededException",
        E::ServiceUnavailableException(_) => "ServiceUnavailableException",
        E::ThrottlingException(_) => "ThrottlingException",
        E::ValidationException(_) => "ValidationException",
        _ => "Unhandled",
    }
}

pub(crate) fn in_stream_variant(error: &ResponseStreamError) -> &'static str {
    match error {
        ResponseStreamError::InternalServerException(_) => "InternalServerException",
        ResponseStreamError::ModelStreamErrorException(_) => "ModelStreamErrorException",
        ResponseStreamError::ValidationException(_) => "ValidationException",
        ResponseStreamError::ThrottlingException(_) => "ThrottlingException",
        ResponseStreamError::ModelTimeoutException(_) => "ModelTimeoutException",
        ResponseStreamError::ServiceUnavailableException(_) => "ServiceUnavailableException",
        _ => "Unhandled",
    }
}

/// What a caller can observe of an error answer.
#[derive(Debug)]
pub(crate) struct Seen<E> {
    pub(crate) status: Option<u16>,
    pub(crate) variant: &'static str,
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    error: E,
}

impl<E> Seen<E> {
    /// Everything but the error value, for comparisons.
    fn summary(&self) -> (Option<u16>, &'static str, Option<&str>, Option<&str>) {
        (self.status, self.variant, self.code.as_deref(), self.message.as_deref())
    }
}

pub(crate) fn invoke_error_seen(
    error: SdkError<InvokeModelError, HttpResponse>,
) -> Seen<InvokeModelError> {
    let status = error.raw_response().map(|response| response.status().as_u16());
    let error = error.into_service_error();
    Seen {
        status,
        variant: invoke_variant(&error),
        code: error.code().map(str::to_owned),
        message: error.message().map(str::to_owned),
        error,
    }
}

pub(crate) fn stream_error_seen(
    error: SdkError<InvokeModelWithResponseStreamError, HttpResponse>,
) -> Seen<InvokeModelWithResponseStreamError> {
    let status = error.raw_response().map(|response| response.status().as_u16());
    let error = error.into_service_error();
    Seen {
        status,
        variant: stream_start_variant(&error),
        code: error.code().map(str::to_owned),
        message: error.message().map(str::to_owned),
        error,
    }
}

/// Records the response headers of the calls it is attached to (wire document §10.3).
#[derive(Debug, Clone, Default)]
struct HeaderCapture(Arc<Mutex<Vec<(String, String)>>>);

impl HeaderCapture {
    fn get(&self, name: &str) -> Option<String> {
        let headers = self.0.lock().unwrap();
        headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
}

impl Intercept for HeaderCapture {
    fn name(&self) -> &'static str {
        "HeaderCapture"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut headers = self.0.lock().unwrap();
        for (key, value) in context.response().headers().iter() {
            headers.push((key.to_owned(), value.to_owned()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn every_family_answers_as_bedrock_by_alias_plain_id_and_arn() {
    let h = start().await;
    let (gateway, direct) = (client(&h.base_url), client(&h.sim_url));
    for case in family_cases() {
        let expected = invoke(&direct, case.model_id, &case.body).await.unwrap();
        let expected_stream = stream(&direct, case.model_id, &case.body).await.unwrap();
        assert!(matches!(expected_stream.end, StreamEnd::Clean), "{}", case.alias);
        assert!(expected_stream.chunks.len() > 1, "{}", case.alias);

        for id in [Some(case.alias), Some(case.model_id), case.arn].into_iter().flatten() {
            let output = invoke(&gateway, id, &case.body).await.unwrap();
            assert_eq!(output.content_type(), "application/json", "{id}");
            assert_eq!(json_body(&output), json_body(&expected), "{id}");

            let streamed = stream(&gateway, id, &case.body).await.unwrap();
            assert!(matches!(streamed.end, StreamEnd::Clean), "{id}: {:?}", streamed.end);
            assert_eq!(streamed.content_type, "application/json", "{id}");
            assert_eq!(
                without_latencies(&streamed.chunks),
                without_latencies(&expected_stream.chunks),
                "{id}"
            );
        }
    }
}

#[tokio::test]
async fn usage_latency_and_request_id_headers_arrive() {
    let h = start().await;
    let (gateway, direct) = (client(&h.base_url), client(&h.sim_url));
    let body = titan_body(7);
    let direct_headers = HeaderCapture::default();
    direct
        .invoke_model()
        .model_id(TITAN)
        .content_type("application/json")
        .body(Blob::new(serde_json::to_vec(&body).unwrap()))
        .customize()
        .interceptor(direct_headers.clone())
        .send()
        .await
        .unwrap();
    let headers = HeaderCapture::default();
    let output = gateway
        .invoke_model()
        .model_id("titan")
        .content_type("application/json")
        .body(Blob::new(serde_json::to_vec(&body).unwrap()))
        .customize()
        .interceptor(headers.clone())
        .send()
        .await
        .unwrap();

    for name in ["x-amzn-bedrock-input-token-count", "x-amzn-bedrock-output-token-count"] {
        assert!(headers.get(name).is_some(), "{name} missing");
        assert_eq!(headers.get(name), direct_headers.get(name), "{name}");
    }
    assert_eq!(headers.get("x-amzn-bedrock-output-token-count").as_deref(), Some("7"));
    let latency = headers.get("x-amzn-bedrock-invocation-latency").unwrap();
    assert!(latency.parse::<u64>().is_ok(), "{latency}");
    let request_id = output.request_id().unwrap();
    assert!(!request_id.is_empty());
    assert_eq!(headers.get("x-amzn-requestid").as_deref(), Some(request_id));

    let streamed = stream(&gateway, "titan", &body).await.unwrap();
    assert!(streamed.request_id.is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn the_wire_format_is_bedrocks() {
    let h = start().await;
    let path = "/model/titan/invoke-with-response-stream";
    let response = h.http.post(h.url(path)).json(&titan_body(4)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/vnd.amazon.eventstream");
    assert_eq!(headers["x-amzn-bedrock-content-type"], "application/json");
    // Bedrock's request id, not the gateway's own (`x-request-id`).
    assert_ne!(headers["x-amzn-requestid"], headers["x-request-id"]);
    let body = response.bytes().await.unwrap();
    // Four chunk frames, each a whole frame whose length prefix matches.
    let mut n_frames = 0;
    let mut rest = &body[..];
    while !rest.is_empty() {
        let total = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let headers_len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let payload = &rest[12 + headers_len..total - 4];
        let payload: Value = serde_json::from_slice(payload).unwrap();
        assert!(payload["bytes"].is_string(), "{payload}");
        assert_eq!((total - headers_len - 16) % 32, 0, "payloads are padded");
        rest = &rest[total..];
        n_frames += 1;
    }
    assert_eq!(n_frames, 4);

    // Bedrock's error encoding, for the gateway's own refusals too.
    let response = h.http.post(h.url("/model/nope/invoke")).body("{}").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.bedrock/"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"message": "model \"nope\" is not configured on this gateway"}));
}

#[tokio::test]
async fn other_operations_methods_and_bad_escapes_are_refused_bedrock_style() {
    let h = start().await;
    let cases = [
        ("POST", "/model/titan/apply-guardrail", 404, "UnknownOperationException"),
        // Converse is served (`converse.rs`): an empty body is Converse's own refusal.
        ("POST", "/model/titan/converse", 400, "ValidationException"),
        ("GET", "/model/titan/invoke", 404, "UnknownOperationException"),
        ("POST", "/model/ti%ZZtan/invoke", 400, "ValidationException"),
        ("POST", "/model/%FF/invoke-with-response-stream", 400, "ValidationException"),
    ];
    for (method, path, status, shape) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = h.http.request(method, h.url(path)).body("{}").send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let error_type = response.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
        assert!(error_type.starts_with(&format!("{shape}:")), "{path}: {error_type}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().len() > 10, "{path}: {body}");
    }
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn media_models_get_their_accept_and_binary_answers() {
    let h = start().await;
    let gateway = client(&h.base_url);
    let png = gateway
        .invoke_model()
        .model_id("sdxl")
        .content_type("application/json")
        .accept("image/png")
        .body(Blob::new(
            serde_json::to_vec(&json!({"text_prompts": [{"text": "a red fox"}]})).unwrap(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(png.content_type(), "image/png");
    assert!(png.body().as_ref().starts_with(b"\x89PNG\r\n\x1a\n"));

    let embedding = invoke(&gateway, "titan-embed", &json!({"inputText": "hello there"})).await;
    let embedding = json_body(&embedding.unwrap());
    assert_eq!(embedding["embedding"].as_array().unwrap().len(), 1024);

    // No content type set: the SDK sends `application/octet-stream`; Bedrock gets JSON.
    let output = gateway
        .invoke_model()
        .model_id("titan")
        .body(Blob::new(serde_json::to_vec(&titan_body(3)).unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(&output)["results"][0]["tokenCount"], 3);
}

#[tokio::test]
async fn an_unconfigured_model_id_is_refused_without_calling_bedrock() {
    let h = start().await;
    let gateway = client(&h.base_url);
    for id in [
        "amazon.titan-text-lite-v1",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1",
        // The base model of a configured inference profile is another model id.
        "amazon.nova-lite-v1:0",
    ] {
        let expected_message = format!("model \"{id}\" is not configured on this gateway");
        let expected = (
            Some(404),
            "ResourceNotFoundException",
            Some("ResourceNotFoundException"),
            Some(expected_message.as_str()),
        );
        let seen = invoke_error_seen(invoke(&gateway, id, &titan_body(3)).await.unwrap_err());
        assert_eq!(seen.summary(), expected, "{id}");
        let seen = stream_error_seen(stream(&gateway, id, &titan_body(3)).await.unwrap_err());
        assert_eq!(seen.summary(), expected, "{id}");
    }
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn every_bedrock_error_before_the_answer_is_the_same_sdk_error() {
    let h = start().await;
    let (gateway, direct) = (client(&h.base_url), client(&h.sim_url));
    let body = titan_body(5);
    for kind in ErrorKind::ALL {
        h.sim
            .set_behavior("*", Behavior { fault: Some(Fault::Error(kind)), ..Behavior::default() });

        let expected = invoke_error_seen(invoke(&direct, TITAN, &body).await.unwrap_err());
        let got = invoke_error_seen(invoke(&gateway, "titan", &body).await.unwrap_err());
        assert_eq!(got.summary(), expected.summary(), "{kind:?}");
        if let (
            InvokeModelError::ModelErrorException(got),
            InvokeModelError::ModelErrorException(expected),
        ) = (&got.error, &expected.error)
        {
            assert_eq!(got.original_status_code(), expected.original_status_code());
            assert!(expected.resource_name().unwrap().starts_with("arn:"));
            // A foundation model's ARN has no account id to mask: it passes on as it came
            // (`hardening.rs` checks that an account id would be masked).
            assert_eq!(got.resource_name(), expected.resource_name());
        }

        let expected = stream_error_seen(stream(&direct, TITAN, &body).await.unwrap_err());
        let got = stream_error_seen(stream(&gateway, "titan", &body).await.unwrap_err());
        assert_eq!(got.summary(), expected.summary(), "{kind:?} (stream)");
        if let (
            InvokeModelWithResponseStreamError::ModelStreamErrorException(got),
            InvokeModelWithResponseStreamError::ModelStreamErrorException(expected),
        ) = (&got.error, &expected.error)
        {
            assert_eq!(got.original_status_code(), expected.original_status_code());
            assert_eq!(got.original_message(), expected.original_message());
        }
    }
    // One attempt per call, both directly and through the gateway (its retries are off).
    assert_eq!(h.sim.request_count(), 4 * ErrorKind::ALL.len() as u64);
}

#[tokio::test]
async fn every_bedrock_exception_inside_a_stream_is_the_same_sdk_error() {
    let h = start().await;
    let (gateway, direct) = (client(&h.base_url), client(&h.sim_url));
    let body = titan_body(6);
    for kind in ErrorKind::ALL {
        let fault = Fault::ErrorAfterChunks(kind, 2);
        h.sim.set_behavior("*", Behavior { fault: Some(fault), ..Behavior::default() });
        let expected = stream(&direct, TITAN, &body).await.unwrap();
        let got = stream(&gateway, "titan", &body).await.unwrap();
        assert_eq!(got.chunks, expected.chunks, "{kind:?}");
        assert_eq!(got.chunks.len(), 2, "{kind:?}");
        let (StreamEnd::Exception(got), StreamEnd::Exception(expected)) = (&got.end, &expected.end)
        else {
            panic!("{kind:?}: {:?} / {:?}", got.end, expected.end);
        };
        assert_eq!(in_stream_variant(got), in_stream_variant(expected), "{kind:?}");
        assert_eq!(got.message(), expected.message(), "{kind:?}");
        if let (
            ResponseStreamError::ModelStreamErrorException(got),
            ResponseStreamError::ModelStreamErrorException(expected),
        ) = (got, expected)
        {
            assert_eq!(got.original_status_code(), expected.original_status_code());
            assert_eq!(got.original_message(), expected.original_message());
        }
    }
}

#[tokio::test]
async fn a_broken_upstream_stream_ends_with_an_internal_server_exception() {
    let h = start().await;
    let gateway = client(&h.base_url);
    for fault in [
        Fault::TruncateAfterChunks(2),
        Fault::BadChecksumAfterChunks(2),
        Fault::AbortAfterChunks(2),
    ] {
        h.sim.set_behavior("*", Behavior { fault: Some(fault.clone()), ..Behavior::default() });
        let streamed = stream(&gateway, "titan", &titan_body(6)).await.unwrap();
        assert_eq!(streamed.chunks.len(), 2, "{fault:?}");
        let StreamEnd::Exception(error) = &streamed.end else {
            panic!("{fault:?}: {:?}", streamed.end);
        };
        assert_eq!(in_stream_variant(error), "InternalServerException", "{fault:?}");
        let message = error.message().unwrap();
        assert!(!message.contains("127.0.0.1") && !message.contains(&h.sim_url), "{message}");
    }
}

#[tokio::test]
async fn chunks_are_forwarded_as_they_arrive_not_buffered() {
    // The simulator sleeps 300 ms between chunks. Buffered, every chunk would reach the
    // caller at once; forwarded, the first arrives at least (chunks - 1) x 300 ms before
    // the last. Only lower bounds: noise-proof.
    let h = start().await;
    h.sim.set_behavior(
        TITAN,
        Behavior { token_latency: Duration::from_millis(300), ..Behavior::default() },
    );
    let streamed = stream(&client(&h.base_url), "titan", &titan_body(6)).await.unwrap();
    assert!(matches!(streamed.end, StreamEnd::Clean), "{:?}", streamed.end);
    assert_eq!(streamed.chunks.len(), 6);
    let spread = streamed.arrivals[5].duration_since(streamed.arrivals[0]);
    assert!(spread >= Duration::from_millis(1000), "chunks arrived together: {spread:?}");
}

#[tokio::test]
async fn throttling_reaches_the_caller_whose_sdk_retries_it() {
    let h = start().await;
    // The caller's own SDK retries, as it would against Bedrock; the gateway's are off.
    let retrying =
        Client::from_conf(config(&h.base_url).retry_config(RetryConfig::standard()).build());
    let throttled_once = Behavior {
        fault: Some(Fault::Error(ErrorKind::Throttling)),
        fault_times: Some(1),
        ..Behavior::default()
    };
    h.sim.set_behavior("*", throttled_once.clone());
    invoke(&retrying, "titan", &titan_body(3)).await.unwrap();
    assert_eq!(h.sim.request_count(), 2);

    h.sim.set_behavior("*", throttled_once);
    let streamed = stream(&retrying, "titan", &titan_body(3)).await.unwrap();
    assert!(matches!(streamed.end, StreamEnd::Clean));
    assert_eq!(h.sim.request_count(), 4);
}

#[tokio::test]
async fn a_slow_bedrock_is_a_model_timeout() {
    let h = Harness::start_with("max_attempts = 1\nrequest_timeout_ms = 200\n", MODELS).await;
    h.sim.set_behavior(
        "*",
        Behavior { first_byte_latency: Duration::from_secs(3), ..Behavior::default() },
    );
    let gateway = client(&h.base_url);
    let seen = invoke_error_seen(invoke(&gateway, "titan", &titan_body(3)).await.unwrap_err());
    assert_eq!((seen.status, seen.variant), (Some(408), "ModelTimeoutException"));
    let seen = stream_error_seen(stream(&gateway, "titan", &titan_body(3)).await.unwrap_err());
    assert_eq!((seen.status, seen.variant), (Some(408), "ModelTimeoutException"));
}

#[tokio::test]
async fn an_unreachable_bedrock_is_service_unavailable() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[upstream]\nkind = \"simulator\"\nendpoint_url = \"http://127.0.0.1:{port}\"\nmax_attempts = 1\n{MODELS}"
    );
    let h = Harness::gateway_only(&config).await;
    let gateway = client(&h.base_url);
    let seen = invoke_error_seen(invoke(&gateway, "titan", &titan_body(3)).await.unwrap_err());
    assert_eq!((seen.status, seen.variant), (Some(503), "ServiceUnavailableException"));
    assert!(!seen.message.unwrap().contains(&port.to_string()));
    let seen = stream_error_seen(stream(&gateway, "titan", &titan_body(3)).await.unwrap_err());
    assert_eq!((seen.status, seen.variant), (Some(503), "ServiceUnavailableException"));
}

#[tokio::test]
async fn bearer_token_callers_are_served_like_sigv4_callers() {
    // The caller's `Authorization` is not checked here, nor forwarded: the gateway signs
    // its own calls to Bedrock.
    let h = start().await;
    let bearer = Client::from_conf(
        Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .bearer_token(Token::new("bedrock-api-key-example", None))
            .endpoint_url(&h.base_url)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let output = invoke(&bearer, "titan", &titan_body(3)).await.unwrap();
    assert_eq!(json_body(&output)["results"][0]["tokenCount"], 3);
}
