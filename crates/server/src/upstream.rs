//! The transport to Bedrock: one client per region, their construction from config, and
//! the [`UpstreamError`] of each failure. It knows no alias, quota or metric: only
//! `pipeline/` calls it.
//!
//! Two transports carry the calls, chosen by `upstream.transport`: the thin one
//! (`thin.rs`, the default), a signed HTTP request on a pooled hyper client, made of the
//! SDK's own lower parts (endpoint rules, SigV4, identity cache, event-stream decoder);
//! and the `aws-sdk-bedrockruntime` client with its orchestrator (the reference, and the
//! fallback). Both answer the same calls with the same outcomes (`tests/it/conformance.rs`).
//! Embedded simulator or real Bedrock, every call goes through one of them, so SigV4,
//! HTTP, event-stream framing and error decoding are always exercised.
//!
//! Every call sends a body and the modelled request headers as they are
//! ([`Upstream::invoke_raw`], [`Upstream::invoke_stream_raw`]) and gets Bedrock's answer
//! back with its headers. One SDK call is one attempt: the SDK's retries are off.
//! [`Upstream::count_tokens_raw`] is Bedrock's CountTokens with an InvokeModel body (its
//! `invokeModel` input; the `converse` one is not sent): the count, or the same
//! `UpstreamError`s, through either transport.
//!
//! What enters from Bedrock is bounded: a whole answer's body and each event-stream frame
//! (`bounded.rs`, before the SDK buffers them), and every message of Bedrock's that the
//! gateway keeps ([`MAX_UPSTREAM_MESSAGE_BYTES`], cut in [`classify`]). A failure once
//! Bedrock's answer has begun (a body cut off, a stream broken after its 200) is
//! [`UpstreamError::Malformed`], never [`UpstreamError::Unreachable`]: Bedrock may have
//! billed the call, so the pipeline does not retry it.

mod bounded;
mod endpoint;
mod sign;
mod thin;

/// The pooled HTTP client (TLS with the system's roots), for the image fetcher too.
pub(crate) use thin::{HttpClient, http_client};
mod wire;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_bedrockruntime::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::count_tokens::CountTokensError;
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::operation::invoke_model_with_response_stream::{
    InvokeModelWithResponseStreamError, InvokeModelWithResponseStreamOutput,
};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use aws_sdk_bedrockruntime::types::{
    CountTokensInput, InvokeModelTokensRequest, PerformanceConfigLatency, ResponseStream,
    ServiceTierType, Trace,
};
use bytes::Bytes;
use translator::Usage;

use crate::config::{SimulatorCredentials, Transport, UpstreamConfig, UpstreamTarget};
pub use crate::upstream::bounded::{MAX_BODY_BYTES, MAX_FRAME_BYTES};

/// The most bytes of a message of Bedrock's (an error's message, its extra members, an
/// SDK error's text) that the gateway keeps, in its errors, answers and logs.
pub const MAX_UPSTREAM_MESSAGE_BYTES: usize = 4096;

/// The Bedrock clients shared by every request: the upstream's region, and one per
/// other region that a target names.
#[derive(Clone, Debug)]
pub struct Upstream {
    transport: Clients,
    credentials: Arc<CredentialsCheck>,
}

/// Each region's client, of the configured transport.
#[derive(Clone, Debug)]
enum Clients {
    Thin(Arc<Regional<thin::ThinClient>>),
    Sdk(Arc<Regional<Client>>),
}

/// The upstream's own region's client, and one per other region a target names.
#[derive(Debug)]
struct Regional<T> {
    default: T,
    by_region: BTreeMap<String, T>,
}

impl<T> Regional<T> {
    fn get(&self, region: Option<&str>) -> &T {
        region.and_then(|region| self.by_region.get(region)).unwrap_or(&self.default)
    }
}

/// Whether the gateway has AWS credentials to sign its calls with: asked of the default
/// chain at start-up (real Bedrock only), kept up to date by every call, and asked again
/// by [`Upstream::has_credentials`] while they are missing.
#[derive(Debug, Default)]
struct CredentialsCheck {
    /// The default chain of the upstream's own client; `None` for the simulator's keys.
    provider: Option<SharedCredentialsProvider>,
    missing: AtomicBool,
    /// One probe of the chain at a time.
    probing: tokio::sync::Mutex<()>,
}

/// How long a probe of the credential chain may take (instance metadata can be slow).
const CREDENTIALS_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A streamed answer, chunk by chunk, as Bedrock sends it.
#[derive(Debug)]
pub struct ChunkStream {
    chunks: Chunks,
}

#[derive(Debug)]
enum Chunks {
    Thin(thin::Frames),
    Sdk(Box<InvokeModelWithResponseStreamOutput>),
}

/// A request of either operation: the body and the modelled request headers (wire
/// document §1.4), sent as they are. The Bedrock-native routes fill it from the caller's
/// own request; [`Upstream::invoke`] and [`Upstream::invoke_stream`] from a translated
/// body.
#[derive(Debug, Clone, Default)]
pub struct RawRequest {
    pub body: Bytes,
    /// `Content-Type` of the body; `None` sends `application/json`.
    pub content_type: Option<String>,
    /// `Accept` (InvokeModel) or `X-Amzn-Bedrock-Accept` (the stream); `None` leaves
    /// Bedrock's default, JSON.
    pub accept: Option<String>,
    /// `X-Amzn-Bedrock-Trace`.
    pub trace: Option<String>,
    /// `X-Amzn-Bedrock-GuardrailIdentifier`.
    pub guardrail_identifier: Option<String>,
    /// `X-Amzn-Bedrock-GuardrailVersion`.
    pub guardrail_version: Option<String>,
    /// `X-Amzn-Bedrock-PerformanceConfig-Latency`.
    pub performance_config_latency: Option<String>,
    /// `X-Amzn-Bedrock-Service-Tier`.
    pub service_tier: Option<String>,
    /// `X-Amzn-Bedrock-Request-Metadata`.
    pub request_metadata: Option<String>,
}

/// A non-streamed answer as Bedrock sent it, for the Bedrock-native routes.
#[derive(Debug)]
pub struct RawInvokeOutput {
    pub body: Bytes,
    pub content_type: String,
    pub headers: ResponseHeaders,
}

/// A streamed answer that Bedrock has started (200), for the Bedrock-native routes.
#[derive(Debug)]
pub struct RawStreamOutput {
    pub chunks: ChunkStream,
    /// Bedrock's `X-Amzn-Bedrock-Content-Type`: the type of each chunk's bytes.
    pub content_type: String,
    pub headers: ResponseHeaders,
}

/// What the client's header interceptor saw of Bedrock's last HTTP answer to a call:
/// its status and the [`FORWARDED_RESPONSE_HEADERS`] it carried, values as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHeaders {
    pub status: Option<u16>,
    /// (lower-case name, value), in the order of [`FORWARDED_RESPONSE_HEADERS`].
    pub values: Vec<(&'static str, String)>,
}

/// The response headers the Bedrock-native routes pass on to their callers: the request
/// id, the usage and latency headers the SDK does not model (wire document §1.5), and the
/// two modelled ones the routes would otherwise lose.
pub const FORWARDED_RESPONSE_HEADERS: [&str; 8] = [
    "x-amzn-requestid",
    "x-amzn-bedrock-input-token-count",
    "x-amzn-bedrock-output-token-count",
    "x-amzn-bedrock-invocation-latency",
    "x-amzn-bedrock-cache-read-input-token-count",
    "x-amzn-bedrock-cache-write-input-token-count",
    "x-amzn-bedrock-performanceconfig-latency",
    "x-amzn-bedrock-service-tier",
];

/// Why a call to Bedrock failed, classed by what the caller should hear.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Bedrock answered with one of its modelled errors.
    #[error("Bedrock {kind:?}: {message}")]
    Bedrock { kind: BedrockErrorKind, message: String, detail: Box<BedrockErrorDetail> },
    /// No answer (or no first byte) within the configured request timeout, or a stream
    /// that outlasted it.
    #[error("Bedrock did not answer in time")]
    Timeout,
    /// A started stream sent no chunk for this long (`upstream.stream_idle_timeout_ms`).
    #[error("Bedrock's stream sent nothing for {} ms", .0.as_millis())]
    Stalled(Duration),
    /// Bedrock could not be reached (connection refused or reset, DNS, TLS).
    #[error("Bedrock is unreachable: {0}")]
    Unreachable(String),
    /// Bedrock's answer could not be read once it had begun: bad framing or checksum,
    /// a body or frame over the gateway's bounds, a body or stream cut off.
    #[error("Bedrock's answer is malformed: {0}")]
    Malformed(String),
    /// The SDK refused to build the request; a gateway problem.
    #[error("the AWS SDK could not send the request: {0}")]
    Sdk(String),
    /// The gateway has no AWS credentials to sign with: the default chain found none (or
    /// failed to load them). The operator's configuration is at fault, not Bedrock.
    #[error("no AWS credentials to call Bedrock with: {0}")]
    Credentials(String),
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

/// What Bedrock said about an error besides its kind and message, kept so that the
/// Bedrock-native routes can answer with the error as it came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BedrockErrorDetail {
    /// The error code as Bedrock sent it (`x-amzn-ErrorType` without its suffix), also
    /// for codes the SDK does not model. `None` for in-stream exceptions: the SDK keeps
    /// no code for those.
    pub code: Option<String>,
    /// The HTTP status of the error answer; `None` inside a stream.
    pub http_status: Option<u16>,
    /// Bedrock's `x-amzn-RequestId` of the error answer; `None` inside a stream.
    pub request_id: Option<String>,
    /// `ModelErrorException`, `ModelStreamErrorException`: the model's own status code.
    pub original_status_code: Option<i32>,
    /// `ModelErrorException`: the model's resource name, an ARN.
    pub resource_name: Option<String>,
    /// `ModelStreamErrorException`: the model's own message.
    pub original_message: Option<String>,
}

impl BedrockErrorKind {
    /// Every modelled kind.
    pub const ALL: [BedrockErrorKind; 11] = [
        BedrockErrorKind::AccessDenied,
        BedrockErrorKind::ResourceNotFound,
        BedrockErrorKind::Throttling,
        BedrockErrorKind::ModelTimeout,
        BedrockErrorKind::InternalServer,
        BedrockErrorKind::ServiceUnavailable,
        BedrockErrorKind::Validation,
        BedrockErrorKind::ServiceQuotaExceeded,
        BedrockErrorKind::ModelNotReady,
        BedrockErrorKind::ModelError,
        BedrockErrorKind::ModelStreamError,
    ];

    /// The error shape name Bedrock sends (`ThrottlingException`); `None` for `Unknown`.
    pub fn shape_name(self) -> Option<&'static str> {
        use BedrockErrorKind as K;
        let name = match self {
            K::AccessDenied => "AccessDeniedException",
            K::ResourceNotFound => "ResourceNotFoundException",
            K::Throttling => "ThrottlingException",
            K::ModelTimeout => "ModelTimeoutException",
            K::InternalServer => "InternalServerException",
            K::ServiceUnavailable => "ServiceUnavailableException",
            K::Validation => "ValidationException",
            K::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            K::ModelNotReady => "ModelNotReadyException",
            K::ModelError => "ModelErrorException",
            K::ModelStreamError => "ModelStreamErrorException",
            K::Unknown => return None,
        };
        Some(name)
    }
}

impl ResponseHeaders {
    /// The value of `name` (lower case), if Bedrock sent it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str())
    }

    /// The decimal number of header `name`, if Bedrock sent one.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.get(name).and_then(|v| v.trim().parse::<T>().ok())
    }

    /// The token counts of the `X-Amzn-Bedrock-{Input,Output}-Token-Count` headers.
    pub fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.number("x-amzn-bedrock-input-token-count"),
            output_tokens: self.number("x-amzn-bedrock-output-token-count"),
        }
    }

    /// The prompt-cache read and write counts of the
    /// `X-Amzn-Bedrock-Cache-{Read,Write}-Input-Token-Count` headers.
    pub fn cache_tokens(&self) -> (Option<u32>, Option<u32>) {
        (
            self.number("x-amzn-bedrock-cache-read-input-token-count"),
            self.number("x-amzn-bedrock-cache-write-input-token-count"),
        )
    }
}

/// Sets the body and the request headers of a [`RawRequest`] on the builder of either
/// operation (their setters have the same names; `accept` becomes `Accept` for one and
/// `X-Amzn-Bedrock-Accept` for the other). Enum values the SDK does not know are sent as
/// they are: its enums keep them.
macro_rules! set_raw_request {
    ($builder:expr, $request:ident) => {
        $builder
            .content_type($request.content_type.as_deref().unwrap_or("application/json"))
            .set_accept($request.accept)
            .set_trace($request.trace.as_deref().map(Trace::from))
            .set_guardrail_identifier($request.guardrail_identifier)
            .set_guardrail_version($request.guardrail_version)
            .set_performance_config_latency(
                $request.performance_config_latency.as_deref().map(PerformanceConfigLatency::from),
            )
            .set_service_tier($request.service_tier.as_deref().map(ServiceTierType::from))
            .set_request_metadata($request.request_metadata)
            // The body is shared with the pipeline (kept for a retry): no copy.
            .body(Blob::from_maybe_shared($request.body))
    };
}

impl Upstream {
    /// Builds the clients: one for the upstream's region, and one for each other region a
    /// target names. `simulator_endpoint` is where the embedded simulator listens, used
    /// when the config asks for it. The SDK's own retries are off: the pipeline retries.
    pub async fn from_config(
        config: &UpstreamConfig,
        simulator_endpoint: Option<&str>,
        regions: &BTreeSet<String>,
    ) -> Result<Upstream, String> {
        let mut thin_clients = None;
        if config.transport == Transport::Thin {
            let http = thin::HttpClients::per_worker(config.connect_timeout);
            let (default, provider) =
                build_thin_client(config, simulator_endpoint, None, &http).await?;
            let mut by_region = BTreeMap::new();
            for region in regions {
                let (client, _) =
                    build_thin_client(config, simulator_endpoint, Some(region), &http).await?;
                by_region.insert(region.clone(), client);
            }
            // The SDK's client speaks the environment's proxies; the thin one does not.
            let proxies = hyper_util::client::proxy::matcher::Matcher::from_env();
            let proxied = std::iter::once(&default)
                .chain(by_region.values())
                .find(|client| client.endpoint().is_proxied(&proxies));
            match proxied {
                Some(client) => tracing::warn!(
                    message = "upstream: a proxy is set for Bedrock's endpoint (HTTPS_PROXY, \
                               HTTP_PROXY or ALL_PROXY, and NO_PROXY does not exclude it); the \
                               thin transport does not speak proxies, so the AWS SDK's client \
                               carries the calls",
                    endpoint = client.endpoint().url()
                ),
                None => thin_clients = Some((Regional { default, by_region }, provider)),
            }
        }
        let (transport, provider) = match thin_clients {
            Some((clients, provider)) => (Clients::Thin(Arc::new(clients)), provider),
            None => {
                let (default, provider) = build_client(config, simulator_endpoint, None).await?;
                let mut by_region = BTreeMap::new();
                for region in regions {
                    let (client, _) =
                        build_client(config, simulator_endpoint, Some(region)).await?;
                    by_region.insert(region.clone(), client);
                }
                (Clients::Sdk(Arc::new(Regional { default, by_region })), provider)
            }
        };
        let credentials = Arc::new(CredentialsCheck { provider, ..CredentialsCheck::default() });
        if let Some(Err(reason)) = credentials.probe().await {
            credentials.missing.store(true, Ordering::Relaxed);
            tracing::error!(
                message = "upstream: no AWS credentials found; every request fails with 502 \
                           upstream_misconfigured and /readyz is 503 until the default chain \
                           finds some (environment, AWS_PROFILE, web identity, container or \
                           instance role)",
                %reason
            );
        }
        Ok(Upstream { transport, credentials })
    }

    /// Whether the gateway has AWS credentials to call Bedrock with (always, with the
    /// simulator). While they are missing, each call asks the credential chain again (one
    /// probe at a time), so that credentials that arrive later (a web identity token
    /// mounted late, a role attached) make the gateway ready again.
    pub async fn has_credentials(&self) -> bool {
        let check = &self.credentials;
        if !check.missing.load(Ordering::Relaxed) {
            return true;
        }
        if let Ok(_probing) = check.probing.try_lock()
            && let Some(Ok(())) = check.probe().await
        {
            check.found();
        }
        !check.missing.load(Ordering::Relaxed)
    }

    /// InvokeModel with a body and request headers as they are; the answer comes back as
    /// Bedrock sent it, with its [`ResponseHeaders`]. Errors keep Bedrock's status and
    /// request id in their [`BedrockErrorDetail`]. `timeout` bounds the whole call.
    pub async fn invoke_raw(
        &self,
        region: Option<&str>,
        model_id: &str,
        request: RawRequest,
        timeout: Duration,
    ) -> Result<RawInvokeOutput, UpstreamError> {
        let clients = match &self.transport {
            Clients::Thin(clients) => clients,
            Clients::Sdk(clients) => {
                return self.sdk_invoke(clients.get(region), model_id, request, timeout).await;
            }
        };
        let call = clients.get(region).invoke(model_id, request);
        let output = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|error| self.credentials.seen(error))?;
        self.credentials.found();
        Ok(output)
    }

    async fn sdk_invoke(
        &self,
        client: &Client,
        model_id: &str,
        request: RawRequest,
        timeout: Duration,
    ) -> Result<RawInvokeOutput, UpstreamError> {
        let call = set_raw_request!(client.invoke_model(), request).model_id(model_id).send();
        let (result, headers) = with_response_headers(tokio::time::timeout(timeout, call)).await;
        let output = result.map_err(|_| UpstreamError::Timeout)?.map_err(|e| {
            self.credentials.seen(classify(e, invoke_error_kind).with_response(&headers))
        })?;
        self.credentials.found();
        Ok(RawInvokeOutput {
            body: Bytes::from(output.body.into_inner()),
            content_type: output.content_type,
            headers,
        })
    }

    /// InvokeModelWithResponseStream with a body and request headers as they are; returns
    /// once Bedrock has answered 200 (errors before the stream come back here, not from
    /// the stream). `timeout` bounds the wait for that answer.
    pub async fn invoke_stream_raw(
        &self,
        region: Option<&str>,
        model_id: &str,
        request: RawRequest,
        timeout: Duration,
    ) -> Result<RawStreamOutput, UpstreamError> {
        let clients = match &self.transport {
            Clients::Thin(clients) => clients,
            Clients::Sdk(clients) => {
                return self
                    .sdk_invoke_stream(clients.get(region), model_id, request, timeout)
                    .await;
            }
        };
        let call = clients.get(region).invoke_stream(model_id, request);
        let started = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|error| self.credentials.seen(error))?;
        self.credentials.found();
        let thin::StartedStream { frames, content_type, headers } = started;
        Ok(RawStreamOutput {
            chunks: ChunkStream { chunks: Chunks::Thin(frames) },
            content_type,
            headers,
        })
    }

    async fn sdk_invoke_stream(
        &self,
        client: &Client,
        model_id: &str,
        request: RawRequest,
        timeout: Duration,
    ) -> Result<RawStreamOutput, UpstreamError> {
        let call = set_raw_request!(client.invoke_model_with_response_stream(), request)
            .model_id(model_id)
            .send();
        let (result, headers) = with_response_headers(tokio::time::timeout(timeout, call)).await;
        let mut output = result.map_err(|_| UpstreamError::Timeout)?.map_err(|e| {
            self.credentials.seen(classify(e, stream_open_error_kind).with_response(&headers))
        })?;
        self.credentials.found();
        let content_type = std::mem::take(&mut output.content_type);
        let chunks = ChunkStream { chunks: Chunks::Sdk(Box::new(output)) };
        Ok(RawStreamOutput { chunks, content_type, headers })
    }

    /// CountTokens of an InvokeModel body (`{"input": {"invokeModel": {"body"}}}`):
    /// Bedrock's count of the input tokens that body would use. Bedrock charges nothing for
    /// it and meters no tokens. Errors are Bedrock's, with its status and request id, as
    /// [`Upstream::invoke_raw`] gives them; `timeout` bounds the whole call.
    pub async fn count_tokens_raw(
        &self,
        region: Option<&str>,
        model_id: &str,
        invoke_body: Bytes,
        timeout: Duration,
    ) -> Result<u32, UpstreamError> {
        let clients = match &self.transport {
            Clients::Thin(clients) => clients,
            Clients::Sdk(clients) => {
                return self
                    .sdk_count_tokens(clients.get(region), model_id, invoke_body, timeout)
                    .await;
            }
        };
        let call = clients.get(region).count_tokens(model_id, &invoke_body);
        let n_tokens = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|error| self.credentials.seen(error))?;
        self.credentials.found();
        Ok(n_tokens)
    }

    async fn sdk_count_tokens(
        &self,
        client: &Client,
        model_id: &str,
        invoke_body: Bytes,
        timeout: Duration,
    ) -> Result<u32, UpstreamError> {
        let body = Blob::from_maybe_shared(invoke_body);
        let input = InvokeModelTokensRequest::builder()
            .body(body)
            .build()
            .map_err(|error| UpstreamError::Sdk(bounded_message(&error.to_string())))?;
        let call = client
            .count_tokens()
            .model_id(model_id)
            .input(CountTokensInput::InvokeModel(input))
            .send();
        let (result, headers) = with_response_headers(tokio::time::timeout(timeout, call)).await;
        let output = result.map_err(|_| UpstreamError::Timeout)?.map_err(|e| {
            self.credentials.seen(classify(e, count_tokens_error_kind).with_response(&headers))
        })?;
        self.credentials.found();
        let n_tokens = output.input_tokens;
        u32::try_from(n_tokens).map_err(|_| {
            UpstreamError::Malformed(format!(
                "the CountTokens answer could not be read: inputTokens is {n_tokens}"
            ))
        })
    }

    /// Which transport carries the calls, and the endpoint of the upstream's own region
    /// (`None`: the SDK's, resolved per call), for the start-up log line.
    pub fn describe(&self) -> (&'static str, Option<&str>) {
        match &self.transport {
            Clients::Thin(clients) => ("thin", Some(clients.default.endpoint().url())),
            Clients::Sdk(_) => ("sdk", None),
        }
    }
}

impl CredentialsCheck {
    /// Asks the credential chain once: `None` without a chain (the simulator) or when it
    /// does not answer within [`CREDENTIALS_PROBE_TIMEOUT`] (nothing is known then).
    async fn probe(&self) -> Option<Result<(), String>> {
        let provider = self.provider.as_ref()?;
        match tokio::time::timeout(CREDENTIALS_PROBE_TIMEOUT, provider.provide_credentials()).await
        {
            Ok(Ok(_)) => Some(Ok(())),
            Ok(Err(error)) => {
                Some(Err(aws_sdk_bedrockruntime::error::DisplayErrorContext(&error).to_string()))
            }
            Err(_) => {
                tracing::warn!(
                    message = "upstream: the AWS credential chain did not answer in time",
                    timeout = ?CREDENTIALS_PROBE_TIMEOUT
                );
                None
            }
        }
    }

    /// Notes a failed call's error: one of missing credentials makes the gateway unready.
    fn seen(&self, error: UpstreamError) -> UpstreamError {
        if matches!(error, UpstreamError::Credentials(_))
            && !self.missing.swap(true, Ordering::Relaxed)
        {
            tracing::error!(message = "upstream: the AWS credentials are gone", %error);
        }
        error
    }

    /// Notes a call that was signed: the credentials are there.
    fn found(&self) {
        if self.missing.load(Ordering::Relaxed) && self.missing.swap(false, Ordering::Relaxed) {
            tracing::info!("upstream: AWS credentials found");
        }
    }
}

/// Whether an SDK error comes from the credential chain (for want of credentials the
/// SDK fails the call as a "dispatch failure", as it would a refused connection).
pub(crate) fn is_credentials_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if error.is::<CredentialsError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// One SDK client, for `region` (`None`: the upstream's own), and its credential chain
/// (`None` with the simulator's static keys).
async fn build_client(
    config: &UpstreamConfig,
    simulator_endpoint: Option<&str>,
    region: Option<&str>,
) -> Result<(Client, Option<SharedCredentialsProvider>), String> {
    // One attempt per SDK call: the pipeline owns the one retry policy.
    let retry = RetryConfig::disabled();
    let timeouts = TimeoutConfig::builder().connect_timeout(config.connect_timeout).build();
    let (sdk_config, provider) = match &config.target {
        UpstreamTarget::Simulator { endpoint_url, credentials } => {
            let endpoint = endpoint_url
                .as_deref()
                .or(simulator_endpoint)
                .ok_or("the embedded simulator is not running")?;
            let config = aws_sdk_bedrockruntime::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(region.unwrap_or(SIMULATOR_REGION).to_owned()))
                .credentials_provider(simulator_credentials(credentials))
                .endpoint_url(endpoint)
                .retry_config(retry)
                .timeout_config(timeouts)
                .interceptor(BedrockHeaders)
                .interceptor(bounded::BoundedResponses);
            (without_unneeded_parts(config).build(), None)
        }
        UpstreamTarget::Bedrock { region: upstream_region, endpoint_url, use_fips } => {
            let shared = load_shared_config(upstream_region.as_deref(), *use_fips, region).await?;
            let mut builder = aws_sdk_bedrockruntime::config::Builder::from(&shared)
                .retry_config(retry)
                .timeout_config(timeouts)
                .interceptor(BedrockHeaders)
                .interceptor(bounded::BoundedResponses);
            builder = without_unneeded_parts(builder);
            // A custom endpoint (a VPC endpoint, say) is for the upstream's own region.
            if let (Some(url), None) = (endpoint_url, region) {
                builder = builder.endpoint_url(url);
            }
            (builder.build(), shared.credentials_provider())
        }
    };
    Ok((Client::from_conf(sdk_config), provider))
}

/// The SDK client without the parts of its orchestrator the gateway has no use for, each
/// of which costs every call: stalled-stream protection (the pipeline's idle and request
/// timeouts bound every wait), clock-skew correction (it corrects retries, and the SDK's
/// retries are off), and the interceptors that add the SDK's user agent, invocation id
/// and attempt count (`amz-sdk-request`) headers. Measured (`gateway-bench --scenario
/// transport`, ARCHITECTURE.md): this is not what makes the thin transport cheaper.
fn without_unneeded_parts(
    builder: aws_sdk_bedrockruntime::config::Builder,
) -> aws_sdk_bedrockruntime::config::Builder {
    builder
        .stalled_stream_protection(
            aws_sdk_bedrockruntime::config::StalledStreamProtectionConfig::disabled(),
        )
        .disable_clock_skew_correction(true)
        .interceptor(DisableUnneededInterceptors)
}

/// Turns off, for each call, the SDK's interceptors that [`without_unneeded_parts`] names:
/// the first hook of a call stores their "disabled" marks in its config bag, which every
/// later hook reads.
#[derive(Debug, Clone, Copy)]
struct DisableUnneededInterceptors;

impl Intercept for DisableUnneededInterceptors {
    fn name(&self) -> &'static str {
        "DisableUnneededInterceptors"
    }

    fn read_before_execution(
        &self,
        _context: &aws_sdk_bedrockruntime::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_smithy_runtime_api::client::interceptors::disable_interceptor;
        let why = "the gateway's SDK transport does without it";
        let state = cfg.interceptor_state();
        state.store_put(
            disable_interceptor::<aws_runtime::invocation_id::InvocationIdInterceptor>(why),
        );
        state.store_put(disable_interceptor::<aws_runtime::request_info::RequestInfoInterceptor>(
            why,
        ));
        state.store_put(disable_interceptor::<aws_runtime::user_agent::UserAgentInterceptor>(why));
        state.store_put(disable_interceptor::<
            aws_runtime::service_clock_skew::ServiceClockSkewInterceptor,
        >(why));
        Ok(())
    }
}

/// The keys the gateway signs its calls to the simulator with: the simulator's test key
/// unless the config names another (`upstream.access_key_id`, `secret_access_key`).
fn simulator_credentials(keys: &SimulatorCredentials) -> Credentials {
    Credentials::new(&keys.access_key_id, &keys.secret_access_key, None, None, "bedrock-sim")
}

/// The region calls to the simulator are signed for, unless a target names another.
const SIMULATOR_REGION: &str = "us-east-1";

/// The AWS shared config (region, credential chain and identity cache, FIPS, dual stack,
/// endpoint settings of the environment and profile) for `region` (`None`: the upstream's
/// own, `upstream_region` or the chain's).
async fn load_shared_config(
    upstream_region: Option<&str>,
    use_fips: Option<bool>,
    region: Option<&str>,
) -> Result<aws_types::SdkConfig, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region.or(upstream_region) {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(use_fips) = use_fips {
        loader = loader.use_fips(use_fips);
    }
    let shared = loader.load().await;
    if shared.region().is_none() {
        return Err("no AWS region: set `upstream.region` in the config or \
                    AWS_REGION in the environment"
            .to_owned());
    }
    Ok(shared)
}

/// One thin client, for `region` (`None`: the upstream's own), on the shared pools `http`,
/// and its credential chain (`None` with the simulator's keys). The endpoint, credentials
/// and API key are those the SDK client would use with the same config and environment.
async fn build_thin_client(
    config: &UpstreamConfig,
    simulator_endpoint: Option<&str>,
    region: Option<&str>,
    http: &thin::HttpClients,
) -> Result<(thin::ThinClient, Option<SharedCredentialsProvider>), String> {
    use crate::upstream::endpoint::{Endpoint, EndpointParams};
    use crate::upstream::sign::Signer;
    match &config.target {
        UpstreamTarget::Simulator { endpoint_url, credentials } => {
            let endpoint_url = endpoint_url
                .as_deref()
                .or(simulator_endpoint)
                .ok_or("the embedded simulator is not running")?;
            let region = region.unwrap_or(SIMULATOR_REGION);
            let params = EndpointParams {
                region,
                endpoint_url: Some(endpoint_url),
                ..EndpointParams::default()
            };
            let endpoint = Endpoint::resolve(&params).await?;
            let signer = Signer::static_keys(region, simulator_credentials(credentials))?;
            Ok((thin::ThinClient::new(http.clone(), endpoint, signer), None))
        }
        UpstreamTarget::Bedrock { region: upstream_region, endpoint_url, use_fips } => {
            let shared = load_shared_config(upstream_region.as_deref(), *use_fips, region).await?;
            let signing_region = shared.region().map(|r| r.as_ref().to_owned()).unwrap_or_default();
            // A custom endpoint in the config is for the upstream's own region; else the
            // environment's or profile's (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`,
            // `AWS_ENDPOINT_URL`), as the SDK client reads them.
            let endpoint_url = match (endpoint_url, region) {
                (Some(url), None) => Some(url.clone()),
                _ => shared_endpoint_url(&shared),
            };
            let params = EndpointParams {
                region: &signing_region,
                use_fips: shared.use_fips().unwrap_or(false),
                use_dual_stack: shared.use_dual_stack().unwrap_or(false),
                endpoint_url: endpoint_url.as_deref(),
            };
            let endpoint = Endpoint::resolve(&params).await?;
            let provider = shared.credentials_provider();
            let signer = match (shared_bearer_token(&shared), &provider) {
                (Some(token), _) => Signer::bearer(&token)?,
                (None, Some(provider)) => {
                    Signer::sigv4(&signing_region, provider.clone(), shared.identity_cache())?
                }
                (None, None) => {
                    return Err("no AWS credential provider in the shared config".to_owned());
                }
            };
            Ok((thin::ThinClient::new(http.clone(), endpoint, signer), provider))
        }
    }
}

/// The endpoint URL the SDK client takes from the shared config: the service's own
/// setting (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, a profile's `services` section), else the
/// global one (`AWS_ENDPOINT_URL`, `endpoint_url`).
fn shared_endpoint_url(shared: &aws_types::SdkConfig) -> Option<String> {
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("Bedrock Runtime")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    shared
        .service_config()
        .and_then(|service| service.load_config(key))
        .or_else(|| shared.endpoint_url().map(str::to_owned))
}

/// A Bedrock API key from the shared config (`AWS_BEARER_TOKEN_BEDROCK`), which the SDK
/// client sends instead of a signature.
fn shared_bearer_token(shared: &aws_types::SdkConfig) -> Option<String> {
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("bedrock")
        .env("AWS_BEARER_TOKEN")
        .profile("")
        .build()
        .ok()?;
    shared.service_config().and_then(|service| service.load_config(key))
}

/// Runs one SDK call with a fresh slot for the [`BedrockHeaders`] interceptor, and
/// returns what it recorded. The orchestrator runs the call inline in this task, so the
/// task-local slot belongs to this call alone.
async fn with_response_headers<F: Future>(call: F) -> (F::Output, ResponseHeaders) {
    CALL_RESPONSE_HEADERS
        .scope(Cell::new(ResponseHeaders::default()), async {
            let output = call.await;
            (output, CALL_RESPONSE_HEADERS.with(Cell::take))
        })
        .await
}

impl UpstreamError {
    /// Adds the status and request id of Bedrock's error answer to a Bedrock error.
    fn with_response(mut self, headers: &ResponseHeaders) -> UpstreamError {
        if let UpstreamError::Bedrock { detail, .. } = &mut self {
            detail.http_status = headers.status;
            detail.request_id = headers.get("x-amzn-requestid").map(str::to_owned);
        }
        self
    }
}

impl ChunkStream {
    /// The next chunk's decoded bytes (one model-native JSON object), `None` at a clean end.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, UpstreamError>> {
        let output = match &mut self.chunks {
            Chunks::Thin(frames) => return frames.next_chunk().await,
            Chunks::Sdk(output) => output,
        };
        loop {
            match output.body.recv().await {
                Ok(Some(ResponseStream::Chunk(part))) => {
                    let bytes = part.bytes.map(Blob::into_inner).unwrap_or_default();
                    return Some(Ok(Bytes::from(bytes)));
                }
                // An event type this SDK version does not know: not an error, skip it.
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(e) => {
                    // The stream's body failed after Bedrock's 200 (the SDK says "dispatch
                    // failure"): an answer cut off, not an unreachable Bedrock.
                    let error = match classify(e, stream_event_error_kind) {
                        UpstreamError::Unreachable(text) => UpstreamError::Malformed(format!(
                            "the stream broke off after it started: {text}"
                        )),
                        other => other,
                    };
                    return Some(Err(error));
                }
            }
        }
    }
}

/// Maps any SDK error to an [`UpstreamError`], using `kind_of` for service errors: their
/// kind and the extra members of the model error shapes.
fn classify<E, R>(
    error: SdkError<E, R>,
    kind_of: fn(&E) -> (BedrockErrorKind, BedrockErrorDetail),
) -> UpstreamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let SdkError::ServiceError(context) = &error {
        let err = context.err();
        let (kind, mut detail) = kind_of(err);
        detail.code = err.code().map(bounded_message);
        for member in [&mut detail.resource_name, &mut detail.original_message] {
            *member = member.as_deref().map(bounded_message);
        }
        return UpstreamError::Bedrock {
            kind,
            message: bounded_message(err.message().unwrap_or_default()),
            detail: Box::new(detail),
        };
    }
    let text = aws_sdk_bedrockruntime::error::DisplayErrorContext(&error).to_string();
    let text = bounded_message(&text);
    if is_credentials_error(&error) {
        return UpstreamError::Credentials(text);
    }
    match error {
        SdkError::TimeoutError(_) => UpstreamError::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => UpstreamError::Timeout,
        SdkError::DispatchFailure(failure) if !failure.is_user() => {
            UpstreamError::Unreachable(text)
        }
        SdkError::ResponseError(_) => UpstreamError::Malformed(text),
        _ => UpstreamError::Sdk(text),
    }
}

/// `text` cut to [`MAX_UPSTREAM_MESSAGE_BYTES`] (at a character boundary), saying how
/// much was cut: where Bedrock's messages enter the gateway, so that no error, answer or
/// log line carries an unbounded one.
pub fn bounded_message(text: &str) -> String {
    if text.len() <= MAX_UPSTREAM_MESSAGE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_UPSTREAM_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes cut by the gateway)", &text[..end], text.len() - end)
}

fn invoke_error_kind(error: &InvokeModelError) -> (BedrockErrorKind, BedrockErrorDetail) {
    use BedrockErrorKind as K;
    let mut detail = BedrockErrorDetail::default();
    let kind = match error {
        InvokeModelError::AccessDeniedException(_) => K::AccessDenied,
        InvokeModelError::InternalServerException(_) => K::InternalServer,
        InvokeModelError::ModelErrorException(e) => {
            detail.original_status_code = e.original_status_code;
            detail.resource_name.clone_from(&e.resource_name);
            K::ModelError
        }
        InvokeModelError::ModelNotReadyException(_) => K::ModelNotReady,
        InvokeModelError::ModelTimeoutException(_) => K::ModelTimeout,
        InvokeModelError::ResourceNotFoundException(_) => K::ResourceNotFound,
        InvokeModelError::ServiceQuotaExceededException(_) => K::ServiceQuotaExceeded,
        InvokeModelError::ServiceUnavailableException(_) => K::ServiceUnavailable,
        InvokeModelError::ThrottlingException(_) => K::Throttling,
        InvokeModelError::ValidationException(_) => K::Validation,
        _ => K::Unknown,
    };
    (kind, detail)
}

fn count_tokens_error_kind(error: &CountTokensError) -> (BedrockErrorKind, BedrockErrorDetail) {
    use BedrockErrorKind as K;
    let kind = match error {
        CountTokensError::AccessDeniedException(_) => K::AccessDenied,
        CountTokensError::InternalServerException(_) => K::InternalServer,
        CountTokensError::ResourceNotFoundException(_) => K::ResourceNotFound,
        CountTokensError::ServiceUnavailableException(_) => K::ServiceUnavailable,
        CountTokensError::ThrottlingException(_) => K::Throttling,
        CountTokensError::ValidationException(_) => K::Validation,
        _ => K::Unknown,
    };
    (kind, BedrockErrorDetail::default())
}

fn stream_open_error_kind(
    error: &InvokeModelWithResponseStreamError,
) -> (BedrockErrorKind, BedrockErrorDetail) {
    use BedrockErrorKind as K;
    use InvokeModelWithResponseStreamError as E;
    let mut detail = BedrockErrorDetail::default();
    let kind = match error {
        E::AccessDeniedException(_) => K::AccessDenied,
        E::InternalServerException(_) => K::InternalServer,
        E::ModelErrorException(e) => {
            detail.original_status_code = e.original_status_code;
            detail.resource_name.clone_from(&e.resource_name);
            K::ModelError
        }
        E::ModelNotReadyException(_) => K::ModelNotReady,
        E::ModelStreamErrorException(e) => {
            detail.original_status_code = e.original_status_code;
            detail.original_message.clone_from(&e.original_message);
            K::ModelStreamError
        }
        E::ModelTimeoutException(_) => K::ModelTimeout,
        E::ResourceNotFoundException(_) => K::ResourceNotFound,
        E::ServiceQuotaExceededException(_) => K::ServiceQuotaExceeded,
        E::ServiceUnavailableException(_) => K::ServiceUnavailable,
        E::ThrottlingException(_) => K::Throttling,
        E::ValidationException(_) => K::Validation,
        _ => K::Unknown,
    };
    (kind, detail)
}

fn stream_event_error_kind(error: &ResponseStreamError) -> (BedrockErrorKind, BedrockErrorDetail) {
    use BedrockErrorKind as K;
    let mut detail = BedrockErrorDetail::default();
    let kind = match error {
        ResponseStreamError::InternalServerException(_) => K::InternalServer,
        ResponseStreamError::ModelStreamErrorException(e) => {
            detail.original_status_code = e.original_status_code;
            detail.original_message.clone_from(&e.original_message);
            K::ModelStreamError
        }
        ResponseStreamError::ModelTimeoutException(_) => K::ModelTimeout,
        ResponseStreamError::ServiceUnavailableException(_) => K::ServiceUnavailable,
        ResponseStreamError::ThrottlingException(_) => K::Throttling,
        ResponseStreamError::ValidationException(_) => K::Validation,
        _ => K::Unknown,
    };
    (kind, detail)
}

tokio::task_local! {
    /// The response headers of the SDK call running in this task.
    static CALL_RESPONSE_HEADERS: Cell<ResponseHeaders>;
}

/// Captures the status and the [`FORWARDED_RESPONSE_HEADERS`] of each HTTP answer into
/// [`CALL_RESPONSE_HEADERS`]: the token-count and latency headers, which the SDK does not
/// model, and the request id. Registered once on the client: a per-call interceptor
/// (`customize()`) rebuilds the runtime components of every call and cost a third of
/// the gateway's throughput in `gateway-bench`. With retries, the last attempt wins.
#[derive(Debug, Clone, Copy, Default)]
struct BedrockHeaders;

impl Intercept for BedrockHeaders {
    fn name(&self) -> &'static str {
        "BedrockHeaders"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        let headers = response.headers();
        let recorded = ResponseHeaders {
            status: Some(response.status().as_u16()),
            values: FORWARDED_RESPONSE_HEADERS
                .iter()
                .filter_map(|name| headers.get(*name).map(|value| (*name, value.to_owned())))
                .collect(),
        };
        // Outside a scope (no call of `Upstream`) there is nothing to record.
        let _ = CALL_RESPONSE_HEADERS.try_with(|slot| slot.set(recorded));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        assert_eq!(bounded_message("short"), "short");
        let exact = "x".repeat(MAX_UPSTREAM_MESSAGE_BYTES);
        assert_eq!(bounded_message(&exact), exact);
        // 'é' is two bytes: the cut falls inside one and moves back before it.
        let long = format!("x{}", "é".repeat(20_000_000 / 2));
        let cut = bounded_message(&long);
        assert!(cut.len() < MAX_UPSTREAM_MESSAGE_BYTES + 64, "{}", cut.len());
        assert!(cut.starts_with("xéé"));
        assert!(cut.ends_with(&format!("({} more bytes cut by the gateway)", long.len() - 4095)));
    }
}
