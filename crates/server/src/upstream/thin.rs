//! The thin transport: InvokeModel, InvokeModelWithResponseStream and CountTokens (with an
//! InvokeModel body) as one signed HTTP request each, on a pooled hyper client, without the
//! SDK's orchestrator.
//!
//! What it is made of is AWS's own below the orchestrator: the endpoint rules and label
//! encoding of `aws-sdk-bedrockruntime` (`endpoint.rs`), `aws-sigv4` with the identity
//! cache of aws-config's credential chain (`sign.rs`), `aws-smithy-eventstream`'s frame
//! decoder and `aws-smithy-json`'s tokenizer for Bedrock's error contract (`wire.rs`).
//! Around them: the request headers the SDK builder sets from a [`RawRequest`], the
//! bound on what is read of an answer (`bounded.rs`), the connect timeout, and the same
//! [`UpstreamError`] for each outcome as the SDK transport gives
//! (`tests/it/conformance.rs` sends the same calls through both to the simulator).
//!
//! HTTP/1.1 only, HTTPS with rustls (the aws-lc-rs provider, the system's roots),
//! `TCP_NODELAY`: as the SDK's default client, less HTTP/2 and proxies. Unlike it, the pool
//! keeps at most [`MAX_IDLE_CONNECTIONS`] idle connections per endpoint, each for
//! [`IDLE_TIMEOUT`] (the SDK: any number, 90 s): after a burst of long streams, thousands
//! of idle connections would otherwise hold their memory for minutes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_eventstream::smithy::parse_response_headers;
use aws_smithy_types::event_stream::Message;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::upstream::bounded::BoundedBody;
use crate::upstream::endpoint::{Endpoint, Operation};
use crate::upstream::sign::Signer;
use crate::upstream::{
    FORWARDED_RESPONSE_HEADERS, RawInvokeOutput, RawRequest, ResponseHeaders, UpstreamError,
    bounded_message, wire,
};

/// A pooled HTTP client.
pub(crate) type HttpClient =
    Client<TimedConnect<hyper_rustls::HttpsConnector<HttpConnector>>, Full<Bytes>>;

/// The pooled clients every region's [`ThinClient`] shares: one per worker of the process
/// (`runtime.rs`), so that a call goes out on a connection of its own worker, whose answer
/// wakes that worker and no other thread. Each pool keeps its own idle connections (at most
/// [`MAX_IDLE_CONNECTIONS`] per endpoint). Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct HttpClients(Arc<[HttpClient]>);

impl HttpClients {
    /// One client per worker, each with `connect_timeout` and the system's roots.
    pub(crate) fn per_worker(connect_timeout: Duration) -> HttpClients {
        let slots = crate::runtime::worker_slots();
        HttpClients((0..slots).map(|_| http_client(connect_timeout)).collect())
    }

    /// The client of the worker this runs on.
    fn current(&self) -> &HttpClient {
        &self.0[crate::runtime::current_worker() % self.0.len()]
    }
}

impl From<HttpClient> for HttpClients {
    /// One client for every worker.
    fn from(client: HttpClient) -> HttpClients {
        HttpClients(Arc::new([client]))
    }
}

/// One region's client: where its calls go and how they are signed.
#[derive(Debug)]
pub(crate) struct ThinClient {
    http: HttpClients,
    endpoint: Endpoint,
    signer: Signer,
}

/// A streamed answer's frames, as Bedrock sends them.
#[derive(Debug)]
pub(crate) struct Frames {
    body: BoundedBody<Incoming>,
    /// The body's last chunk, decoded where it lies (a frame is usually one chunk): not
    /// copied, and let go of once decoded, so that an idle stream keeps no buffer.
    chunk: Bytes,
    /// The start of a frame that spans chunks, and the chunks after it.
    partial: BytesMut,
    decoder: MessageFrameDecoder,
    /// The decoder has taken a frame's prelude and waits for the rest of it.
    mid_frame: bool,
    /// The body has ended.
    body_ended: bool,
    /// An error or the end was returned: nothing follows.
    done: bool,
}

/// A stream Bedrock has started (a 2xx): its frames, content type and headers.
#[derive(Debug)]
pub(crate) struct StartedStream {
    pub frames: Frames,
    pub content_type: String,
    pub headers: ResponseHeaders,
}

/// The `User-Agent` of every request.
const USER_AGENT_VALUE: &str =
    concat!("bedrock-gateway/", env!("CARGO_PKG_VERSION"), " (thin transport)");

/// The request headers of Bedrock's modelled inputs (wire document §1.4).
const TRACE: HeaderName = HeaderName::from_static("x-amzn-bedrock-trace");
const GUARDRAIL_IDENTIFIER: HeaderName =
    HeaderName::from_static("x-amzn-bedrock-guardrailidentifier");
const GUARDRAIL_VERSION: HeaderName = HeaderName::from_static("x-amzn-bedrock-guardrailversion");
const PERFORMANCE_CONFIG_LATENCY: HeaderName =
    HeaderName::from_static("x-amzn-bedrock-performanceconfig-latency");
const SERVICE_TIER: HeaderName = HeaderName::from_static("x-amzn-bedrock-service-tier");
const REQUEST_METADATA: HeaderName = HeaderName::from_static("x-amzn-bedrock-request-metadata");
const STREAM_ACCEPT: HeaderName = HeaderName::from_static("x-amzn-bedrock-accept");

/// The pooled client, with `connect_timeout` on each connection (TCP and TLS), trusting
/// the system's root certificates.
pub(crate) fn http_client(connect_timeout: Duration) -> HttpClient {
    http_client_trusting(connect_timeout, native_roots())
}

/// The pooled client, trusting `roots`.
fn http_client_trusting(
    connect_timeout: Duration,
    roots: Arc<rustls::RootCertStore>,
) -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    // The HTTPS connector below takes `https://` URIs through TLS.
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(roots))
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let mut builder = Client::builder(TokioExecutor::new());
    // The pool's idle timeout needs a timer.
    builder.pool_timer(TokioTimer::new());
    builder.pool_idle_timeout(IDLE_TIMEOUT).pool_max_idle_per_host(MAX_IDLE_CONNECTIONS);
    builder.build(TimedConnect { inner: https, timeout: connect_timeout })
}

/// The idle connections the pool keeps per endpoint (a connection that comes back to a
/// full pool is closed): the requests the gateway lets run at once by default
/// (`max_in_flight`), so that a steady load reuses its connections while the connections
/// of a burst past it go.
pub(crate) const MAX_IDLE_CONNECTIONS: usize = crate::config::DEFAULT_MAX_IN_FLIGHT;

/// How long an idle connection is kept: the pool checks this often, so a connection goes
/// between one and two of these after its last use, well within the minute after which
/// the memory of a burst should be back.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The system's root certificates, loaded once as the SDK's client loads them (a warning,
/// not a failure, when there are none: then every HTTPS connection fails).
fn native_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: std::sync::LazyLock<Arc<rustls::RootCertStore>> =
        std::sync::LazyLock::new(|| {
            let loaded = rustls_native_certs::load_native_certs();
            if !loaded.errors.is_empty() {
                tracing::warn!(
                    message = "upstream: errors loading the system's root certificates",
                    errors = ?loaded.errors
                );
            }
            let mut roots = rustls::RootCertStore::empty();
            let (_, n_invalid) = roots.add_parsable_certificates(loaded.certs);
            if roots.is_empty() {
                tracing::warn!(
                    "upstream: no valid root certificate found; HTTPS to Bedrock will fail"
                );
            } else if n_invalid > 0 {
                tracing::debug!(message = "upstream: root certificates skipped", n_invalid);
            }
            Arc::new(roots)
        });
    ROOTS.clone()
}

/// rustls with the aws-lc-rs provider, trusting `roots`.
fn tls_config(roots: Arc<rustls::RootCertStore>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
        // The aws-lc-rs provider supports the default versions; this cannot happen.
        Err(error) => {
            tracing::error!(message = "upstream: TLS configuration", %error);
            rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()
        }
    }
}

impl ThinClient {
    pub(crate) fn new(
        http: impl Into<HttpClients>,
        endpoint: Endpoint,
        signer: Signer,
    ) -> ThinClient {
        ThinClient { http: http.into(), endpoint, signer }
    }

    /// The endpoint this client calls.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// InvokeModel: the whole answer, or the error it stands for (with Bedrock's status
    /// and request id).
    pub(crate) async fn invoke(
        &self,
        model_id: &str,
        request: RawRequest,
    ) -> Result<RawInvokeOutput, UpstreamError> {
        let response = self.send(model_id, Operation::Invoke, request).await?;
        let (parts, body) = response.into_parts();
        let headers = response_headers(parts.status.as_u16(), &parts.headers);
        let body = read_whole(parts.status.as_u16(), &parts.headers, body).await?;
        if !parts.status.is_success() {
            return Err(error_answer(Operation::Invoke, &parts.headers, &body, &headers));
        }
        let content_type = header_str(&parts.headers, CONTENT_TYPE.as_str()).unwrap_or_default();
        Ok(RawInvokeOutput { body, content_type: content_type.to_owned(), headers })
    }

    /// CountTokens of an InvokeModel body: Bedrock's count, or the error its answer stands
    /// for. The request is the SDK's: `Content-Type: application/json`, no `Accept`.
    pub(crate) async fn count_tokens(
        &self,
        model_id: &str,
        invoke_body: &[u8],
    ) -> Result<u32, UpstreamError> {
        let request =
            RawRequest { body: wire::count_tokens_request(invoke_body), ..RawRequest::default() };
        let response = self.send(model_id, Operation::CountTokens, request).await?;
        let (parts, body) = response.into_parts();
        let headers = response_headers(parts.status.as_u16(), &parts.headers);
        let body = read_whole(parts.status.as_u16(), &parts.headers, body).await?;
        if !parts.status.is_success() {
            return Err(error_answer(Operation::CountTokens, &parts.headers, &body, &headers));
        }
        wire::count_tokens_answer(&body)
    }

    /// InvokeModelWithResponseStream: once Bedrock has answered 2xx, its frames; an error
    /// answer before the stream is returned here.
    pub(crate) async fn invoke_stream(
        &self,
        model_id: &str,
        request: RawRequest,
    ) -> Result<StartedStream, UpstreamError> {
        let response = self.send(model_id, Operation::InvokeStream, request).await?;
        let (parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        let headers = response_headers(status, &parts.headers);
        if !parts.status.is_success() {
            let body = read_whole(status, &parts.headers, body).await?;
            return Err(error_answer(Operation::InvokeStream, &parts.headers, &body, &headers));
        }
        let content_type = header_str(&parts.headers, "x-amzn-bedrock-content-type")
            .unwrap_or_default()
            .to_owned();
        let body = BoundedBody::answer(
            body,
            status,
            header_str(&parts.headers, CONTENT_TYPE.as_str()),
            header_str(&parts.headers, CONTENT_LENGTH.as_str()),
        );
        let frames = Frames {
            body,
            chunk: Bytes::new(),
            partial: BytesMut::new(),
            decoder: MessageFrameDecoder::new(),
            mid_frame: false,
            body_ended: false,
            done: false,
        };
        Ok(StartedStream { frames, content_type, headers })
    }

    /// Builds, signs and sends one request; returns Bedrock's answer once its head has
    /// arrived.
    async fn send(
        &self,
        model_id: &str,
        operation: Operation,
        request: RawRequest,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let uri = self.endpoint.uri(model_id, operation).map_err(UpstreamError::Sdk)?;
        let mut http_request = build_request(uri, self.endpoint.host(), operation, request)?;
        self.signer.sign(&mut http_request).await?;
        let sent = self.http.current().request(http_request.map(Full::new)).await;
        sent.map_err(|error| request_error(&error))
    }
}

/// The error of a request that got no answer: a connection not made within the connect
/// timeout is a timeout, anything else (refused, reset, DNS, TLS) an unreachable Bedrock.
fn request_error(error: &hyper_util::client::legacy::Error) -> UpstreamError {
    if error_chain(error).any(|source| source.is::<ConnectTimedOut>()) {
        UpstreamError::Timeout
    } else {
        UpstreamError::Unreachable(bounded_message(&chain_text(error)))
    }
}

/// The HTTP request of `operation` with the body and modelled headers of `request`, as the
/// SDK's builder sets them: `Content-Type` (JSON when not given), `Accept` (InvokeModel)
/// or `X-Amzn-Bedrock-Accept` (the stream), the `X-Amzn-Bedrock-*` options given.
fn build_request(
    uri: Uri,
    host: &HeaderValue,
    operation: Operation,
    request: RawRequest,
) -> Result<Request<Bytes>, UpstreamError> {
    let RawRequest {
        body,
        content_type,
        accept,
        trace,
        guardrail_identifier,
        guardrail_version,
        performance_config_latency,
        service_tier,
        request_metadata,
    } = request;
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(HOST, host.clone());
    let content_type = match content_type.as_deref() {
        None | Some("application/json") => HeaderValue::from_static("application/json"),
        Some(other) => header_value("content_type", other)?,
    };
    headers.insert(CONTENT_TYPE, content_type);
    let accept_header = match operation {
        Operation::Invoke | Operation::CountTokens => http::header::ACCEPT,
        Operation::InvokeStream => STREAM_ACCEPT,
    };
    let optional = [
        (accept_header, "accept", accept),
        (TRACE, "trace", trace),
        (GUARDRAIL_IDENTIFIER, "guardrail_identifier", guardrail_identifier),
        (GUARDRAIL_VERSION, "guardrail_version", guardrail_version),
        (PERFORMANCE_CONFIG_LATENCY, "performance_config_latency", performance_config_latency),
        (SERVICE_TIER, "service_tier", service_tier),
        (REQUEST_METADATA, "request_metadata", request_metadata),
    ];
    for (name, field, value) in optional {
        if let Some(value) = value {
            headers.insert(name, header_value(field, &value)?);
        }
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    let mut http_request = Request::new(body);
    *http_request.method_mut() = Method::POST;
    *http_request.uri_mut() = uri;
    *http_request.headers_mut() = headers;
    Ok(http_request)
}

/// `value` as a header value, refused as the SDK refuses it (a gateway problem: the
/// options are checked before they get here). The request metadata is not repeated.
fn header_value(field: &str, value: &str) -> Result<HeaderValue, UpstreamError> {
    HeaderValue::from_str(value).map_err(|error| {
        let shown =
            if field == "request_metadata" { "*** Sensitive Data Redacted ***" } else { value };
        UpstreamError::Sdk(bounded_message(&format!(
            "invalid field `{field}`: `{shown}` cannot be used as a header value: {error}"
        )))
    })
}

/// The status and the forwarded headers of an answer.
fn response_headers(status: u16, headers: &HeaderMap) -> ResponseHeaders {
    ResponseHeaders {
        status: Some(status),
        values: FORWARDED_RESPONSE_HEADERS
            .iter()
            .filter_map(|name| header_str(headers, name).map(|value| (*name, value.to_owned())))
            .collect(),
    }
}

/// The first value of header `name`, if it is text.
fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A whole answer's body, within the bounds of `bounded.rs`: a failure once the head has
/// arrived is an unreadable answer, never an unreachable Bedrock.
async fn read_whole(
    status: u16,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Bytes, UpstreamError> {
    let content_type = header_str(headers, CONTENT_TYPE.as_str());
    let content_length = header_str(headers, CONTENT_LENGTH.as_str());
    let bounded = BoundedBody::answer(body, status, content_type, content_length);
    match bounded.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(UpstreamError::Malformed(bounded_message(&format!(
            "the answer's body could not be read: {}",
            chain_text(&*error)
        )))),
    }
}

/// The error of an error answer, with its status and request id.
fn error_answer(
    operation: Operation,
    headers: &HeaderMap,
    body: &[u8],
    response: &ResponseHeaders,
) -> UpstreamError {
    let error_type = header_str(headers, "x-amzn-errortype");
    wire::error_answer(operation, error_type, body).with_response(response)
}

impl Frames {
    /// The next chunk's decoded bytes (one model-native JSON object), `None` at a clean
    /// end. Frames of an event type Bedrock does not document are skipped, as the SDK
    /// skips them. After an error nothing follows.
    pub(crate) async fn next_chunk(&mut self) -> Option<Result<Bytes, UpstreamError>> {
        if self.done {
            return None;
        }
        let next = self.next().await;
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }

    async fn next(&mut self) -> Option<Result<Bytes, UpstreamError>> {
        loop {
            if let Some(decoded) = self.decode() {
                match decoded {
                    Ok(DecodedFrame::Complete(message)) => {
                        self.mid_frame = false;
                        match unmarshall(&message) {
                            Ok(Some(chunk)) => return Some(Ok(chunk)),
                            Ok(None) => continue,
                            Err(error) => return Some(Err(error)),
                        }
                    }
                    Ok(DecodedFrame::Incomplete) => {}
                    Err(error) => {
                        return Some(Err(UpstreamError::Malformed(bounded_message(&format!(
                            "an event-stream frame could not be read: {error}"
                        )))));
                    }
                }
            }
            if self.body_ended {
                if self.partial.is_empty() && !self.mid_frame {
                    return None;
                }
                return Some(Err(UpstreamError::Malformed(
                    "the stream ended in the middle of a frame (unexpected end of stream)"
                        .to_owned(),
                )));
            }
            match self.body.frame().await {
                None => self.body_ended = true,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if self.partial.is_empty() {
                            self.chunk = data;
                        } else {
                            self.partial.extend_from_slice(&data);
                        }
                    }
                }
                Some(Err(error)) => {
                    return Some(Err(UpstreamError::Malformed(bounded_message(&format!(
                        "the stream broke off after it started: {}",
                        chain_text(&*error)
                    )))));
                }
            }
        }
    }

    /// Decodes from what was received, if anything was: a frame's start that a chunk
    /// leaves over goes to `partial`, where the chunks after it are added.
    fn decode(&mut self) -> Option<Result<DecodedFrame, aws_smithy_eventstream::error::Error>> {
        if !self.partial.is_empty() {
            let before = self.partial.len();
            let decoded = self.decoder.decode_frame(&mut self.partial);
            self.mid_frame |= self.partial.len() < before;
            if self.partial.is_empty() {
                self.partial = BytesMut::new();
            }
            return Some(decoded);
        }
        if self.chunk.is_empty() {
            return None;
        }
        let before = self.chunk.len();
        let decoded = self.decoder.decode_frame(&mut self.chunk);
        self.mid_frame |= self.chunk.len() < before;
        if matches!(decoded, Ok(DecodedFrame::Incomplete)) {
            self.partial.extend_from_slice(&self.chunk);
            self.chunk.clear();
        }
        if self.chunk.is_empty() {
            // Let go of the chunk this was a slice of.
            self.chunk = Bytes::new();
        }
        Some(decoded)
    }
}

/// One decoded frame: a chunk's bytes, `None` for an event of another type, or the error
/// of an exception frame (or of a frame that cannot be read).
fn unmarshall(message: &Message) -> Result<Option<Bytes>, UpstreamError> {
    let malformed = |error: &dyn std::fmt::Display| {
        UpstreamError::Malformed(bounded_message(&format!("an event-stream frame: {error}")))
    };
    let headers = parse_response_headers(message).map_err(|error| malformed(&error))?;
    match headers.message_type.as_str() {
        "event" if headers.smithy_type.as_str() == "chunk" => wire::chunk_bytes(message.payload())
            .map(Some)
            .map_err(|error| malformed(&format!("failed to unmarshall Chunk: {error}"))),
        "event" => Ok(None),
        // `parse_response_headers` refuses any other message type.
        _ => Err(wire::stream_exception(headers.smithy_type.as_str(), message.payload())),
    }
}

/// A connector that gives up on a connection (TCP and TLS) after `timeout`.
#[derive(Debug, Clone)]
pub(crate) struct TimedConnect<C> {
    inner: C,
    timeout: Duration,
}

/// The connect timeout's error.
#[derive(Debug, thiserror::Error)]
#[error("no connection within the connect timeout of {} ms", .0.as_millis())]
struct ConnectTimedOut(Duration);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C> tower::Service<Uri> for TimedConnect<C>
where
    C: tower::Service<Uri>,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(ConnectTimedOut(timeout).into()),
            }
        })
    }
}

/// `error` and its sources.
fn error_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |error| error.source())
}

/// `error` and its sources, `: `-separated.
fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    for (idx, source) in error_chain(error).enumerate() {
        if idx > 0 {
            text.push_str(": ");
        }
        text.push_str(&source.to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    type TcpIo = hyper_util::rt::TokioIo<tokio::net::TcpStream>;

    #[tokio::test]
    async fn a_connection_not_made_in_time_is_a_timeout_and_a_refused_one_unreachable() {
        let hangs = tower::service_fn(|_: Uri| std::future::pending::<std::io::Result<TcpIo>>());
        let timeout = Duration::from_millis(50);
        let client: Client<_, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(TimedConnect { inner: hangs, timeout });
        let request = Request::post("http://192.0.2.1/model/m/invoke").body(Full::default());
        let error = client.request(request.unwrap()).await.unwrap_err();
        assert!(matches!(request_error(&error), UpstreamError::Timeout), "{error:?}");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/model/m/invoke", closed.local_addr().unwrap());
        drop(closed);
        let client = http_client(Duration::from_secs(5));
        let request = Request::post(url).body(Full::default()).unwrap();
        let error = client.request(request).await.unwrap_err();
        assert!(matches!(request_error(&error), UpstreamError::Unreachable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn calls_go_over_https_to_an_endpoint_whose_certificate_is_trusted() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_der = cert.der().clone();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key_der)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = br#"{"results":[{"outputText":"over TLS"}]}"#;
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(socket).await.unwrap();
            let mut head = Vec::new();
            let mut buffer = [0_u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buffer).await.unwrap();
                assert!(n > 0, "the request ended early");
                head.extend_from_slice(&buffer[..n]);
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                 x-amzn-requestid: r-1\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            tls.write_all(answer.as_bytes()).await.unwrap();
            tls.write_all(body).await.unwrap();
            tls.flush().await.unwrap();
            String::from_utf8_lossy(&head).to_ascii_lowercase()
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert_der).unwrap();
        let http = http_client_trusting(Duration::from_secs(5), Arc::new(roots));
        let endpoint = Endpoint::parse(&format!("https://localhost:{port}")).unwrap();
        let keys = aws_credential_types::Credentials::new("AKID", "secret", None, None, "test");
        let signer = Signer::static_keys("us-east-1", keys).unwrap();
        let client = ThinClient::new(http, endpoint, signer);
        let request = RawRequest { body: Bytes::from_static(b"{}"), ..RawRequest::default() };
        let output = client.invoke("amazon.titan-text-express-v1", request).await.unwrap();
        assert_eq!(output.body, &body[..]);
        assert_eq!(output.headers.get("x-amzn-requestid"), Some("r-1"));
        let head = server.await.unwrap();
        let request_line = "post /model/amazon.titan-text-express-v1/invoke http/1.1\r\n";
        assert!(head.starts_with(request_line), "{head}");
        assert!(head.contains(&format!("\r\nhost: localhost:{port}\r\n")), "{head}");
        assert!(head.contains("\r\nauthorization: aws4-hmac-sha256 credential=akid/"), "{head}");
        // Untrusted: the same endpoint with the system's roots fails as unreachable.
        let untrusted = http_client(Duration::from_secs(5));
        let uri = format!("https://localhost:{port}/model/m/invoke");
        let error = untrusted.request(Request::post(uri).body(Full::default()).unwrap()).await;
        assert!(matches!(request_error(&error.unwrap_err()), UpstreamError::Unreachable(_)));
    }
}
