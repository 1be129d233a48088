//! The simulator on port 0, an SDK client configured as in the wire document §10.1, request
//! bodies and helpers that run a call and collect what the SDK reports.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_bedrockruntime::error::{BoxError, SdkError};
use aws_sdk_bedrockruntime::operation::invoke_model::{InvokeModelError, InvokeModelOutput};
use aws_sdk_bedrockruntime::operation::invoke_model_with_response_stream::{
    InvokeModelWithResponseStreamError, InvokeModelWithResponseStreamOutput,
};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::ResponseStream;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use aws_sdk_bedrockruntime::{Client, Config};
use axum::body::Body;
use axum::http::Request;
use bedrock_sim::{Signer, Simulator, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use serde_json::{Value, json};

pub const TITAN: &str = "amazon.titan-text-express-v1";
pub const CLAUDE: &str = "anthropic.claude-v2:1";

/// A running simulator and a client pointed at it. The server stops when this is dropped.
pub struct TestSim {
    pub simulator: Simulator,
    pub client: Client,
    /// `http://127.0.0.1:<port>`, for clients of other credentials.
    pub endpoint_url: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub async fn start() -> TestSim {
    start_with(Simulator::new(), TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY).await
}

/// `simulator` on port 0, and a client that signs with this key.
pub async fn start_with(simulator: Simulator, access_key_id: &str, secret: &str) -> TestSim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint_url = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = shutdown_rx.await;
    };
    tokio::spawn(simulator.clone().serve(listener, shutdown));
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key_id, secret, None, None, "static"))
        .endpoint_url(&endpoint_url)
        .retry_config(RetryConfig::disabled())
        .build();
    TestSim { simulator, client: Client::from_conf(config), endpoint_url, _shutdown: shutdown_tx }
}

/// A request for the simulator's router, signed with the test key as the SDK signs (the
/// invoke operations verify every signature; the control API ignores it). `uri` is the
/// path as sent, percent-encoded.
pub fn signed_request(method: &str, uri: &str, body: &str) -> Request<Body> {
    let headers = [("host", "localhost"), ("content-type", "application/json")];
    let signing =
        Signer::test().sign(method, uri, &headers, body.as_bytes(), SystemTime::now()).unwrap();
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    for (name, value) in signing {
        request = request.header(name, value);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

pub fn titan_body(prompt: &str, config: Value) -> Value {
    json!({ "inputText": prompt, "textGenerationConfig": config })
}

pub fn claude_body(question: &str, extra: Value) -> Value {
    let mut body = json!({
        "prompt": format!("\n\nHuman: {question}\n\nAssistant:"),
        "max_tokens_to_sample": 300,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

pub fn to_blob(body: &Value) -> Blob {
    Blob::new(serde_json::to_vec(body).unwrap())
}

impl TestSim {
    pub async fn invoke(
        &self,
        model_id: &str,
        body: &Value,
    ) -> Result<InvokeModelOutput, SdkError<InvokeModelError, HttpResponse>> {
        self.invoke_raw(model_id, to_blob(body)).await
    }

    pub async fn invoke_raw(
        &self,
        model_id: &str,
        body: Blob,
    ) -> Result<InvokeModelOutput, SdkError<InvokeModelError, HttpResponse>> {
        self.client
            .invoke_model()
            .model_id(model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(body)
            .send()
            .await
    }

    /// The parsed JSON body of a successful InvokeModel call.
    pub async fn invoke_json(&self, model_id: &str, body: &Value) -> Value {
        let output = self.invoke(model_id, body).await.unwrap();
        assert_eq!(output.content_type(), "application/json");
        serde_json::from_slice(output.body().as_ref()).unwrap()
    }

    pub async fn start_stream(
        &self,
        model_id: &str,
        body: &Value,
    ) -> Result<
        InvokeModelWithResponseStreamOutput,
        SdkError<InvokeModelWithResponseStreamError, HttpResponse>,
    > {
        self.client
            .invoke_model_with_response_stream()
            .model_id(model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(to_blob(body))
            .send()
            .await
    }

    /// Runs a stream call that must start, and collects it.
    pub async fn stream(&self, model_id: &str, body: &Value) -> StreamResult {
        let output = self.start_stream(model_id, body).await.unwrap();
        assert_eq!(output.content_type(), "application/json");
        collect_stream(output).await
    }
}

/// Everything a stream delivered, and how it ended.
#[derive(Debug)]
pub struct StreamResult {
    /// The decoded model JSON of each chunk.
    pub chunks: Vec<Value>,
    pub end: StreamEnd,
}

#[derive(Debug)]
pub enum StreamEnd {
    /// `recv()` returned `Ok(None)`.
    Clean,
    /// An exception frame.
    ServiceError(ResponseStreamError),
    /// A framing problem: bad CRC, truncated frame.
    ResponseError(String),
    /// Any other failure, such as a dropped connection.
    OtherError(String),
}

pub async fn collect_stream(mut output: InvokeModelWithResponseStreamOutput) -> StreamResult {
    let mut chunks = Vec::new();
    let end = loop {
        match output.body.recv().await {
            Ok(Some(ResponseStream::Chunk(part))) => {
                let bytes = part.bytes().unwrap().as_ref();
                chunks.push(serde_json::from_slice(bytes).unwrap());
            }
            Ok(Some(other)) => panic!("unexpected event {other:?}"),
            Ok(None) => break StreamEnd::Clean,
            Err(SdkError::ServiceError(context)) => {
                break StreamEnd::ServiceError(context.into_err());
            }
            Err(SdkError::ResponseError(error)) => {
                break StreamEnd::ResponseError(format!("{error:?}"));
            }
            Err(error) => break StreamEnd::OtherError(format!("{error:?}")),
        }
    };
    StreamResult { chunks, end }
}

/// The variant name of an InvokeModel error; `Unhandled` for codes the operation does not model.
pub fn invoke_error_variant(error: &InvokeModelError) -> &'static str {
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

/// The variant name of an InvokeModelWithResponseStream error.
pub fn stream_start_error_variant(error: &InvokeModelWithResponseStreamError) -> &'static str {
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

/// The variant name of an in-stream exception.
pub fn in_stream_error_variant(error: &ResponseStreamError) -> &'static str {
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

/// Records the `x-amzn-bedrock-*` response headers of the calls it is attached to (§10.3).
#[derive(Debug, Clone, Default)]
pub struct HeaderCapture(Arc<Mutex<Vec<(String, String)>>>);

impl HeaderCapture {
    pub fn get(&self, name: &str) -> Option<String> {
        let headers = self.0.lock().unwrap();
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    }

    pub fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(key, _)| key.to_ascii_lowercase()).collect()
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
