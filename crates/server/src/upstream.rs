//! The one place that calls Bedrock: a shared `aws-sdk-bedrockruntime` client, its
//! construction from config, and the mapping of SDK results to [`UpstreamError`].
//!
//! Embedded simulator or real Bedrock, every call goes through the same SDK client,
//! so SigV4, HTTP, event-stream framing and error decoding are always exercised.

use std::cell::Cell;
use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_bedrockruntime::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::operation::invoke_model_with_response_stream::{
    InvokeModelWithResponseStreamError, InvokeModelWithResponseStreamOutput,
};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::ResponseStream;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use bytes::Bytes;
use translator::Usage;

use crate::config::{UpstreamConfig, UpstreamTarget};

/// The Bedrock client shared by every request.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: Client,
    request_timeout: Duration,
}

/// A non-streamed answer: the raw body, its content type, and the usage Bedrock
/// reported in its `X-Amzn-Bedrock-*-Token-Count` headers (the only usage source for
/// some families).
#[derive(Debug)]
pub struct InvokeOutput {
    pub body: Bytes,
    pub content_type: String,
    pub header_usage: Usage,
}

/// A streamed answer, chunk by chunk, as Bedrock sends it.
#[derive(Debug)]
pub struct ChunkStream {
    output: InvokeModelWithResponseStreamOutput,
}

/// Why a call to Bedrock failed, classed by what the caller should hear.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Bedrock answered with one of its modelled errors.
    #[error("Bedrock {kind:?}: {message}")]
    Bedrock { kind: BedrockErrorKind, message: String },
    /// No answer (or no first byte) within the configured request timeout.
    #[error("Bedrock did not answer in time")]
    Timeout,
    /// Bedrock could not be reached (connection refused or reset, DNS, TLS).
    #[error("Bedrock is unreachable: {0}")]
    Unreachable(String),
    /// Bedrock's answer could not be read (bad framing, checksum, truncated stream).
    #[error("Bedrock's answer is malformed: {0}")]
    Malformed(String),
    /// The SDK refused to build the request or resolve credentials; a gateway problem.
    #[error("the AWS SDK could not send the request: {0}")]
    Sdk(String),
}

/// Bedrock's modelled error shapes (`x-amzn-ErrorType`, or `:exception-type` in a stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BedrockErrorKind {
    AccessDenied,
    ResourceNotFound,
    Throttling,
    ModelTimeout,
    InternalServer,
    ServiceUnavailable,
    Validation,
    ServiceQuotaExceeded,
    ModelNotReady,
    ModelError,
    ModelStreamError,
    /// An error code the SDK does not model.
    Unknown,
}

impl Upstream {
    /// Builds the client. `simulator_endpoint` is where the embedded simulator listens,
    /// used when the config asks for it.
    pub async fn from_config(
        config: &UpstreamConfig,
        simulator_endpoint: Option<&str>,
    ) -> Result<Upstream, String> {
        let retry = RetryConfig::standard().with_max_attempts(config.max_attempts);
        let timeouts = TimeoutConfig::builder().connect_timeout(Duration::from_secs(3)).build();
        let sdk_config = match &config.target {
            UpstreamTarget::Simulator { endpoint_url } => {
                let endpoint = endpoint_url
                    .as_deref()
                    .or(simulator_endpoint)
                    .ok_or("the embedded simulator is not running")?;
                // The simulator does not check signatures; any static keys will do.
                aws_sdk_bedrockruntime::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new("us-east-1"))
                    .credentials_provider(Credentials::new(
                        "SIMULATOR",
                        "simulator",
                        None,
                        None,
                        "bedrock-sim",
                    ))
                    .endpoint_url(endpoint)
                    .retry_config(retry)
                    .timeout_config(timeouts)
                    .interceptor(TokenCountHeaders)
                    .build()
            }
            UpstreamTarget::Bedrock { region, endpoint_url } => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(region) = region {
                    loader = loader.region(Region::new(region.clone()));
                }
                let shared = loader.load().await;
                if shared.region().is_none() {
                    return Err("no AWS region: set `upstream.region` in the config or \
                                AWS_REGION in the environment"
                        .to_owned());
                }
                let mut builder = aws_sdk_bedrockruntime::config::Builder::from(&shared)
                    .retry_config(retry)
                    .timeout_config(timeouts)
                    .interceptor(TokenCountHeaders);
                if let Some(url) = endpoint_url {
                    builder = builder.endpoint_url(url);
                }
                builder.build()
            }
        };
        Ok(Upstream {
            client: Client::from_conf(sdk_config),
            request_timeout: config.request_timeout,
        })
    }

    /// InvokeModel with a JSON body, asking for an answer of type `accept`
    /// (`application/json`, or `image/png` for models that return raw images).
    pub async fn invoke(
        &self,
        model_id: &str,
        body: Vec<u8>,
        accept: &str,
    ) -> Result<InvokeOutput, UpstreamError> {
        let call = self
            .client
            .invoke_model()
            .model_id(model_id)
            .content_type("application/json")
            .accept(accept)
            .body(Blob::new(body))
            .send();
        // The client-wide `TokenCountHeaders` interceptor writes this call's counts into
        // a slot local to this task; the orchestrator runs the call inline in this task.
        let (result, header_usage) = CALL_TOKEN_COUNTS
            .scope(Cell::new(Usage::default()), async {
                let result = tokio::time::timeout(self.request_timeout, call).await;
                (result, CALL_TOKEN_COUNTS.with(Cell::get))
            })
            .await;
        let output = result
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|e| classify(e, invoke_error_kind))?;
        Ok(InvokeOutput {
            content_type: output.content_type,
            body: Bytes::from(output.body.into_inner()),
            header_usage,
        })
    }

    /// InvokeModelWithResponseStream with a JSON body; returns once Bedrock has
    /// answered 200 (errors before the stream come back here, not from the stream).
    pub async fn invoke_stream(
        &self,
        model_id: &str,
        body: Vec<u8>,
    ) -> Result<ChunkStream, UpstreamError> {
        let call = self
            .client
            .invoke_model_with_response_stream()
            .model_id(model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body))
            .send();
        let output = tokio::time::timeout(self.request_timeout, call)
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|e| classify(e, stream_open_error_kind))?;
        Ok(ChunkStream { output })
    }
}

impl ChunkStream {
    /// The next chunk's decoded bytes (one model-native JSON object), `None` at a clean end.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, UpstreamError>> {
        loop {
            match self.output.body.recv().await {
                Ok(Some(ResponseStream::Chunk(part))) => {
                    let bytes = part.bytes.map(Blob::into_inner).unwrap_or_default();
                    return Some(Ok(Bytes::from(bytes)));
                }
                // An event type this SDK version does not know: not an error, skip it.
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(e) => return Some(Err(classify(e, stream_event_error_kind))),
            }
        }
    }
}

/// Maps any SDK error to an [`UpstreamError`], using `kind_of` for service errors.
fn classify<E, R>(error: SdkError<E, R>, kind_of: fn(&E) -> BedrockErrorKind) -> UpstreamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = aws_sdk_bedrockruntime::error::DisplayErrorContext(&error).to_string();
    match error {
        SdkError::ServiceError(context) => {
            let err = context.err();
            UpstreamError::Bedrock {
                kind: kind_of(err),
                message: err.message().unwrap_or_default().to_owned(),
            }
        }
        SdkError::TimeoutError(_) => UpstreamError::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => UpstreamError::Timeout,
        SdkError::DispatchFailure(failure) if !failure.is_user() => {
            UpstreamError::Unreachable(text)
        }
        SdkError::ResponseError(_) => UpstreamError::Malformed(text),
        _ => UpstreamError::Sdk(text),
    }
}

fn invoke_error_kind(error: &InvokeModelError) -> BedrockErrorKind {
    use BedrockErrorKind as K;
    match error {
        InvokeModelError::AccessDeniedException(_) => K::AccessDenied,
        InvokeModelError::InternalServerException(_) => K::InternalServer,
        InvokeModelError::ModelErrorException(_) => K::ModelError,
        InvokeModelError::ModelNotReadyException(_) => K::ModelNotReady,
        InvokeModelError::ModelTimeoutException(_) => K::ModelTimeout,
        InvokeModelError::ResourceNotFoundException(_) => K::ResourceNotFound,
        InvokeModelError::ServiceQuotaExceededException(_) => K::ServiceQuotaExceeded,
        InvokeModelError::ServiceUnavailableException(_) => K::ServiceUnavailable,
        InvokeModelError::ThrottlingException(_) => K::Throttling,
        InvokeModelError::ValidationException(_) => K::Validation,
        _ => K::Unknown,
    }
}

fn stream_open_error_kind(error: &InvokeModelWithResponseStreamError) -> BedrockErrorKind {
    use BedrockErrorKind as K;
    use InvokeModelWithResponseStreamError as E;
    match error {
        E::AccessDeniedException(_) => K::AccessDenied,
        E::InternalServerException(_) => K::InternalServer,
        E::ModelErrorException(_) => K::ModelError,
        E::ModelNotReadyException(_) => K::ModelNotReady,
        E::ModelStreamErrorException(_) => K::ModelStreamError,
        E::ModelTimeoutException(_) => K::ModelTimeout,
        E::ResourceNotFoundException(_) => K::ResourceNotFound,
        E::ServiceQuotaExceededException(_) => K::ServiceQuotaExceeded,
        E::ServiceUnavailableException(_) => K::ServiceUnavailable,
        E::ThrottlingException(_) => K::Throttling,
        E::ValidationException(_) => K::Validation,
        _ => K::Unknown,
    }
}

fn stream_event_error_kind(error: &ResponseStreamError) -> BedrockErrorKind {
    use BedrockErrorKind as K;
    match error {
        ResponseStreamError::InternalServerException(_) => K::InternalServer,
        ResponseStreamError::ModelStreamErrorException(_) => K::ModelStreamError,
        ResponseStreamError::ModelTimeoutException(_) => K::ModelTimeout,
        ResponseStreamError::ServiceUnavailableException(_) => K::ServiceUnavailable,
        ResponseStreamError::ThrottlingException(_) => K::Throttling,
        ResponseStreamError::ValidationException(_) => K::Validation,
        _ => K::Unknown,
    }
}

tokio::task_local! {
    /// The token-count headers of the InvokeModel call running in this task.
    static CALL_TOKEN_COUNTS: Cell<Usage>;
}

/// Captures the `X-Amzn-Bedrock-{Input,Output}-Token-Count` headers, which the SDK does
/// not model, into [`CALL_TOKEN_COUNTS`]. Registered once on the client: a per-call
/// interceptor (`customize()`) rebuilds the runtime components of every call and cost
/// a third of the gateway's throughput in `gateway-bench`.
#[derive(Debug, Clone, Copy, Default)]
struct TokenCountHeaders;

impl Intercept for TokenCountHeaders {
    fn name(&self) -> &'static str {
        "TokenCountHeaders"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.response().headers();
        let count = |name: &str| headers.get(name).and_then(|v| v.trim().parse::<u32>().ok());
        let usage = Usage {
            input_tokens: count("x-amzn-bedrock-input-token-count"),
            output_tokens: count("x-amzn-bedrock-output-token-count"),
        };
        // Outside a scope (a streaming call) there is nothing to record.
        let _ = CALL_TOKEN_COUNTS.try_with(|slot| slot.set(usage));
        Ok(())
    }
}
