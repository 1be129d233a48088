//! Logs and the per-request record: [`init_logging`] (human or JSON, one line per
//! event), the [`observe`] middleware that gives every request its span, its
//! [`Record`] and, when its answer's last byte is sent (or the caller is gone), its
//! caller-side metrics and its one `info` line.
//!
//! The record is filled on the way: the API key middleware names the caller, the
//! pipeline the alias, target, attempts, queue wait, tokens and Bedrock's request id, a
//! stream its failure. Nothing of the prompt or the answer is in it.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

pub mod format;

use crate::config::{LogFormat, Target, TelemetryConfig};
use crate::metrics::{self, Metrics, OTHER, RequestLabels};

/// The target of the one line per request (`RUST_LOG=bedrock_gateway::request=off`
/// silences it alone).
pub const REQUEST_LOG_TARGET: &str = "bedrock_gateway::request";

/// Dependencies' internals stay at `warn` unless `RUST_LOG` or `log_level` name them.
const QUIET_DEPENDENCIES: &[&str] = &[
    "aws_config=warn",
    "aws_smithy_runtime=warn",
    "aws_smithy_http_client=warn",
    "aws_sdk_bedrockruntime=warn",
    "hyper=warn",
    "hyper_util=warn",
    "h2=warn",
    "tower_http=warn",
    "redis=warn",
];

/// The filter for `level` (the config's `log_level`, or `RUST_LOG` when set): the
/// dependency defaults first, so that the caller's own directives win over them.
pub fn filter(level: &str) -> EnvFilter {
    let directives = QUIET_DEPENDENCIES.iter().copied().chain(level.split(',')).collect::<Vec<_>>();
    EnvFilter::builder().parse_lossy(directives.join(","))
}

/// Installs the process's subscriber: `log_format`, and `RUST_LOG` over `log_level`.
/// Every event is written as exactly one line on standard error, by the log writer
/// thread ([`LogSink`]); [`flush_logs`] before the process exits.
pub fn init_logging(config: &TelemetryConfig, rust_log: Option<String>) {
    let filter = filter(rust_log.as_deref().unwrap_or(&config.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(OneLine);
    let result = match config.log_format {
        LogFormat::Human => {
            builder.event_format(format::HumanLines).fmt_fields(format::HumanFields).try_init()
        }
        LogFormat::Json => {
            builder.event_format(format::JsonLines).fmt_fields(format::JsonFields).try_init()
        }
    };
    // Already installed (tests start several gateways in one process): keep the first.
    let _ = result;
}

/// Writes every line still queued, and stops the log writer thread.
pub fn flush_logs() {
    if let Some(sink) = SINK.get() {
        sink.close();
    }
}

/// The most bytes of log lines queued for the writer; past it, lines are dropped and
/// counted (a log that cannot keep up must not grow without bound, nor block requests).
const MAX_QUEUED_BYTES: usize = 8 << 20;
/// How long the writer waits after a write for more lines to write with the next one:
/// one write a few milliseconds instead of one per line, at any request rate.
const WRITE_INTERVAL: Duration = Duration::from_millis(5);

static SINK: std::sync::OnceLock<Arc<LogSink>> = std::sync::OnceLock::new();

/// Lines on their way to standard error: queued by the threads that log (a lock and a
/// copy), written by one thread in batches.
#[derive(Debug, Default)]
pub struct LogSink {
    queue: Mutex<Queue>,
    wake: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    bytes: Vec<u8>,
    dropped: u64,
    /// The writer sleeps on the condvar (and needs a wake-up).
    idle: bool,
    closed: bool,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl LogSink {
    /// The process's sink, its writer thread started on first use.
    fn get() -> &'static Arc<LogSink> {
        SINK.get_or_init(|| {
            let sink = Arc::new(LogSink::default());
            let writer = sink.clone();
            let spawned = std::thread::Builder::new()
                .name("log-writer".to_owned())
                .spawn(move || writer.run(&mut std::io::stderr()));
            sink.queue.lock().unwrap_or_else(PoisonError::into_inner).writer = spawned.ok();
            sink
        })
    }

    fn push(&self, line: &[u8]) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.closed || queue.writer.is_none() {
            // No writer (shutting down, or it could not start): write here.
            drop(queue);
            let _ = std::io::stderr().lock().write_all(line);
            return;
        }
        if queue.bytes.len() + line.len() > MAX_QUEUED_BYTES {
            queue.dropped += 1;
            return;
        }
        queue.bytes.extend_from_slice(line);
        if queue.idle {
            queue.idle = false;
            self.wake.notify_one();
        }
    }

    /// The writer: waits for lines, writes what is queued at once, pauses to let more
    /// gather; ends once closed and empty.
    fn run(&self, out: &mut impl Write) {
        let mut batch = Vec::new();
        loop {
            let (dropped, closed) = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                while queue.bytes.is_empty() && queue.dropped == 0 && !queue.closed {
                    queue.idle = true;
                    queue = self.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
                }
                std::mem::swap(&mut batch, &mut queue.bytes);
                (std::mem::take(&mut queue.dropped), queue.closed)
            };
            if dropped > 0 {
                let note =
                    format!("log writer: {dropped} lines dropped, the log could not keep up\n");
                let _ = out.write_all(note.as_bytes());
            }
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
            if closed {
                let rest = std::mem::take(
                    &mut self.queue.lock().unwrap_or_else(PoisonError::into_inner).bytes,
                );
                let _ = out.write_all(&rest);
                return;
            }
            std::thread::sleep(WRITE_INTERVAL);
        }
    }

    fn close(&self) {
        let writer = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.closed = true;
            self.wake.notify_one();
            queue.writer.take()
        };
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

/// A writer that buffers one event and hands it to the [`LogSink`] as a single line: a
/// newline inside a field (an error message from Bedrock, say) becomes `\n`, so that log
/// pipelines never see half an event.
#[derive(Debug, Clone, Copy)]
pub struct OneLine;

/// One event being written.
#[derive(Debug, Default)]
pub struct LineBuffer(Vec<u8>);

impl<'a> MakeWriter<'a> for OneLine {
    type Writer = LineBuffer;
    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(Vec::with_capacity(512))
    }
}

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            LogSink::get().push(&one_line(std::mem::take(&mut self.0)));
        }
    }
}

/// `event` with every inner line break escaped and one `\n` at its end.
pub fn one_line(mut event: Vec<u8>) -> Vec<u8> {
    if event.last() == Some(&b'\n') {
        event.pop();
    }
    // `contains` on bytes is a word-at-a-time search, not a loop over every byte.
    if !event.contains(&b'\n') && !event.contains(&b'\r') {
        event.push(b'\n');
        return event;
    }
    let mut line = Vec::with_capacity(event.len() + 8);
    for byte in event {
        match byte {
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            _ => line.push(byte),
        }
    }
    line.push(b'\n');
    line
}

/// What is known of one request, filled as it is served. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Record(Arc<Mutex<Fields>>);

/// The fields of a [`Record`]; every value is bounded or configured, never the
/// caller's text.
#[derive(Debug, Default)]
pub struct Fields {
    /// The configured alias the request resolved to.
    pub alias: Option<String>,
    pub family: Option<&'static str>,
    /// `gen_ai.operation.name`: chat, text_completion, embeddings, generate_content.
    pub operation: Option<&'static str>,
    pub stream: bool,
    /// The target that served the call, or the last one tried.
    pub target: Option<Arc<Target>>,
    /// The configured API key name.
    pub caller: Option<String>,
    /// A failure the status does not show: a stream that broke after its 200.
    pub error_type: Option<&'static str>,
    /// Why the API key was refused (`missing`, `unknown`, `sigv4`).
    pub refusal: Option<&'static str>,
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub attempts: u32,
    pub queue_wait: Duration,
    /// Bedrock's `x-amzn-RequestId` of the answer (or of the error).
    pub bedrock_request_id: Option<String>,
    /// The service tier that served the call (`X-Amzn-Bedrock-Service-Tier`).
    pub service_tier: Option<String>,
}

impl Record {
    pub fn update(&self, change: impl FnOnce(&mut Fields)) {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// `gen_ai.operation.name` as far as known.
    pub fn operation(&self) -> &'static str {
        self.read(|fields| fields.operation.unwrap_or(OTHER))
    }

    fn read<T>(&self, read: impl FnOnce(&Fields) -> T) -> T {
        read(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The error type of an error response, put in its extensions by whoever renders it
/// (every API shape), for the metrics and the log line.
#[derive(Debug, Clone, Copy)]
pub struct ErrorType(pub &'static str);

/// What the middleware needs: the metrics, shared by every request.
#[derive(Debug, Clone)]
pub struct Observer {
    pub metrics: Arc<Metrics>,
}

/// The API and route template of a request's path, as the router matches it (the layers
/// run before the routing, `app::router`): a route's own path, or the Bedrock catch-all
/// (`/model/` and a model id) split into its two operations; [`OTHER`] for anything else.
/// `tests::the_route_templates_are_the_routers_own` holds it to the router.
fn route_of(path: &str) -> (&'static str, &'static str) {
    ROUTES
        .iter()
        .find(|route| route.matches(path))
        .map_or((OTHER, OTHER), |route| (route.api, route.template))
}

/// Every route template the gateway serves (the bounded `route` label) and its API
/// (the `api` label).
struct RouteTemplate {
    api: &'static str,
    template: &'static str,
    /// The path, or the catch-all's prefix (which a non-empty rest follows).
    prefix: &'static str,
    /// The catch-all's operation; empty: the path is the whole `prefix`, or for a template
    /// ending in a parameter (`/v1/models/{modelId}`), the prefix and one segment.
    suffix: &'static str,
}

impl RouteTemplate {
    fn matches(&self, path: &str) -> bool {
        if self.suffix.is_empty() && self.template == self.prefix {
            return path == self.prefix;
        }
        if self.suffix.is_empty() {
            return path
                .strip_prefix(self.prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        }
        path.len() > self.prefix.len()
            && path.starts_with(self.prefix)
            && path.ends_with(self.suffix)
    }
}

/// A route of the Bedrock-native API: `/model/{modelId}` and one operation.
const fn bedrock(template: &'static str, suffix: &'static str) -> RouteTemplate {
    RouteTemplate { api: "bedrock", template, prefix: "/model/", suffix }
}

const fn route(api: &'static str, template: &'static str) -> RouteTemplate {
    RouteTemplate { api, template, prefix: template, suffix: "" }
}

const ROUTES: &[RouteTemplate] = &[
    route("gateway", "/v1/generate"),
    route("gateway", "/v1/embed"),
    route("gateway", "/v1/images"),
    route("gateway", "/v1/images/edits"),
    route("gateway", "/v1/models"),
    route("openai", "/v1/chat/completions"),
    route("openai", "/v1/completions"),
    route("openai", "/v1/embeddings"),
    route("openai", "/v1/images/generations"),
    route("openai", "/v1/responses"),
    RouteTemplate {
        api: "openai",
        template: "/v1/responses/{response_id}",
        prefix: "/v1/responses/",
        suffix: "",
    },
    RouteTemplate {
        api: "openai",
        template: "/v1/models/{modelId}",
        prefix: "/v1/models/",
        suffix: "",
    },
    route("anthropic", "/v1/messages"),
    route("anthropic", "/v1/messages/count_tokens"),
    route("operations", "/v1/limits"),
    route("operations", "/healthz"),
    route("operations", "/readyz"),
    route("operations", "/openapi.json"),
    bedrock("/model/{modelId}/invoke-with-response-stream", "/invoke-with-response-stream"),
    bedrock("/model/{modelId}/invoke", "/invoke"),
    bedrock("/model/{modelId}/converse-stream", "/converse-stream"),
    bedrock("/model/{modelId}/converse", "/converse"),
    bedrock("/model/{modelId}/count-tokens", "/count-tokens"),
];

/// The longest caller-sent `x-request-id` kept; a longer or non-visible-ASCII one is
/// replaced by a generated id.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id's header, on the request and on its answer.
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's `x-request-id` when it is a sane one, else a new UUID; set on the
/// request so that every layer below sees the same id.
fn request_id(request: &mut Request) -> HeaderValue {
    let given = request.headers().get(&REQUEST_ID_HEADER).filter(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes.iter().all(|b| b.is_ascii_graphic())
    });
    let id = match given {
        Some(value) => value.clone(),
        None => new_request_id(),
    };
    request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
    id
}

/// A new request id: a random (version 4) UUID, hyphenated. Its bits come from the
/// thread's generator (uuid's `fast-rng`: seeded from the system, not a system call per
/// id), its text is written in place, and its one allocation is shared by every clone.
fn new_request_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_maybe_shared(Bytes::from_owner(text))
        .unwrap_or(HeaderValue::from_static("unknown"))
}

/// The middleware around every route of the main listener: request id, span, record;
/// then metrics and the log line when the answer is done.
pub async fn observe(
    State(observer): State<Observer>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id(&mut request);
    let (api, route) = route_of(request.uri().path());
    let method = request.method().clone();
    let record = Record::default();
    request.extensions_mut().insert(record.clone());
    let id_text = id.to_str().unwrap_or_default();
    let span = tracing::info_span!("request", request_id = %id_text, route, caller = tracing::field::Empty);
    observer.metrics.request_started(api, route);
    let metrics = observer.metrics.clone();
    // Recorded as it is unless the answer comes: a caller that goes away while its
    // request waits (in a queue, for Bedrock) drops this future, and the guard.
    let mut pending = Pending(Some(Finish {
        metrics: observer.metrics,
        record,
        request_id: id.clone(),
        method,
        api,
        route,
        status: CLIENT_CLOSED_REQUEST,
        error_type: Some("cancelled"),
        streaming: false,
        started,
        first_event: None,
        ended: None,
    }));
    let mut response = next.run(request).instrument(span.clone()).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, id);
    // Which service tier served the call, on every API shape.
    let tier = pending.0.as_ref().and_then(|finish| {
        finish
            .record
            .read(|f| f.service_tier.as_deref().and_then(|t| HeaderValue::from_str(t).ok()))
    });
    if let Some(value) = tier {
        response.headers_mut().insert(HeaderName::from_static(SERVICE_TIER_HEADER), value);
    }
    let Some(mut finish) = pending.0.take() else {
        return response;
    };
    finish.status = response.status().as_u16();
    finish.error_type = response.extensions().get::<ErrorType>().map(|e| e.0);
    finish.streaming =
        finish.status < 300 && finish.record.read(|f| f.stream) && is_stream(&response);
    if finish.streaming {
        metrics.stream_started(api, route);
    }
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::new(ObservedBody { inner: Some(body), span, finish }))
}

/// The response header that says which Bedrock service tier served the call.
pub const SERVICE_TIER_HEADER: &str = "x-gateway-service-tier";

/// The status a request that its caller abandoned is recorded with (nginx's 499).
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// A request's record until its answer exists.
struct Pending(Option<Finish>);

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut finish) = self.0.take() {
            finish.record();
        }
    }
}

fn is_stream(response: &Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.starts_with("text/event-stream") || ct.starts_with("application/vnd.amazon.eventstream")
    })
}

/// A response body that notes when its first data frame and its end go out, and
/// records the request when it is dropped (ended, or the caller gone).
struct ObservedBody {
    inner: Option<Body>,
    /// The request's span, entered while the body is produced (a stream's lines).
    span: tracing::Span,
    finish: Finish,
}

struct Finish {
    metrics: Arc<Metrics>,
    record: Record,
    request_id: HeaderValue,
    method: Method,
    api: &'static str,
    route: &'static str,
    status: u16,
    error_type: Option<&'static str>,
    streaming: bool,
    started: Instant,
    first_event: Option<Instant>,
    ended: Option<Instant>,
}

impl HttpBody for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if this.finish.first_event.is_none()
                    && frame.data_ref().is_some_and(|data| !data.is_empty())
                {
                    this.finish.first_event = Some(Instant::now());
                }
                // A body that says it has ended is not polled again (hyper stops there):
                // its last frame is its end.
                if inner.is_end_stream() {
                    this.finish.ended.get_or_insert_with(Instant::now);
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                this.finish.ended.get_or_insert_with(Instant::now);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map(HttpBody::size_hint).unwrap_or_default()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        // The body first: a stream settles and records its usage as it is dropped.
        let entered = self.span.enter();
        drop(self.inner.take());
        drop(entered);
        self.finish.record();
    }
}

impl Finish {
    fn record(&mut self) {
        let ended = self.ended.unwrap_or_else(Instant::now);
        let duration = ended.saturating_duration_since(self.started);
        let completed = self.ended.is_some();
        let fields = self.record.0.lock().unwrap_or_else(PoisonError::into_inner);
        // A stream that ended without its last byte: the caller went away.
        let error_type = self
            .error_type
            .or(fields.error_type)
            .or((!completed && self.streaming).then_some("cancelled"))
            .unwrap_or("none");
        let alias = fields.alias.as_deref().unwrap_or(OTHER);
        let family = fields.family.unwrap_or("none");
        let ttft = self.first_event.map(|at| at.saturating_duration_since(self.started));
        let labels = RequestLabels {
            operation: fields.operation.unwrap_or(OTHER),
            api: self.api,
            route: self.route,
            alias,
            family,
            stream: fields.stream,
            status_class: metrics::status_class(self.status),
            error_type,
        };
        let streamed = self.streaming.then(|| (ttft.unwrap_or(duration), fields.output_tokens));
        self.metrics.request_finished(labels, duration, streamed);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        tracing::info!(
            target: REQUEST_LOG_TARGET,
            message = "request",
            request_id = %self.request_id.to_str().unwrap_or_default(),
            method = %self.method,
            api = self.api,
            route = self.route,
            alias = fields.alias.as_deref(),
            family = fields.family,
            upstream_target = fields.target.as_ref().map(|t| t.name.as_str()),
            caller = fields.caller.as_deref(),
            stream = fields.stream,
            status = self.status,
            error_type,
            refusal = fields.refusal,
            duration_ms = ms(duration),
            ttft_ms = ttft.filter(|_| self.streaming).map(ms),
            input_tokens = fields.input_tokens,
            output_tokens = fields.output_tokens,
            attempts = fields.attempts,
            queue_wait_ms = ms(fields.queue_wait),
            bedrock_request_id = fields.bedrock_request_id.as_deref(),
            service_tier = fields.service_tier.as_deref(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_request_id_is_kept_only_when_short_and_printable() {
        let id_for = |value: &[u8]| {
            let mut request = Request::new(axum::body::Body::empty());
            request.headers_mut().insert("x-request-id", HeaderValue::from_bytes(value).unwrap());
            let id = request_id(&mut request);
            assert_eq!(request.headers()["x-request-id"], id, "the layers below see the same id");
            id
        };
        let longest = "a".repeat(MAX_REQUEST_ID_LEN);
        for kept in ["caller-id-123", "Root=1-5759e988-bd862e3fe1be46a994272793", &longest] {
            assert_eq!(id_for(kept.as_bytes()), kept);
        }
        let too_long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        let replaced: [&[u8]; 4] =
            [too_long.as_bytes(), b"has space", b"tab\there", b"\xc3\xa9t\xc3\xa9"];
        for value in replaced {
            let id = id_for(value);
            assert_ne!(id.as_bytes(), value);
            assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok(), "{id:?}");
        }
        // No header at all: a new id.
        let mut request = Request::new(axum::body::Body::empty());
        assert_eq!(request_id(&mut request).len(), 36);
    }

    #[test]
    fn an_event_is_one_line_whatever_its_fields_hold() {
        let line = |text: &[u8]| one_line(text.to_vec());
        assert_eq!(line(b"a=1 msg=\"x\ny\"\n"), b"a=1 msg=\"x\\ny\"\n");
        assert_eq!(line(b"no newline"), b"no newline\n");
        assert_eq!(line(b"plain\n"), b"plain\n");
        assert_eq!(line(b"cr\r\nlf\n\n"), b"cr\\r\\nlf\\n\n");
    }

    #[test]
    fn the_writer_writes_every_line_in_order_and_bounds_its_queue() {
        let sink = Arc::new(LogSink::default());
        // A writer that is never started: lines queue up to the bound, then are counted.
        sink.queue.lock().unwrap().writer = Some(std::thread::spawn(|| {}));
        let line = vec![b'x'; 1023];
        for _ in 0..(MAX_QUEUED_BYTES / 1024 + 10) {
            sink.push(&one_line(line.clone()));
        }
        let queued = sink.queue.lock().unwrap().bytes.len();
        assert!(queued <= MAX_QUEUED_BYTES, "{queued}");
        assert_eq!(sink.queue.lock().unwrap().dropped, 10);
        sink.queue.lock().unwrap().closed = true;
        let mut out = Vec::new();
        sink.run(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("log writer: 10 lines dropped"), "{}", &text[..80]);
        assert_eq!(text.lines().count(), 1 + MAX_QUEUED_BYTES / 1024);
    }

    #[test]
    fn every_route_template_is_listed_once_under_a_known_api() {
        let apis = ["gateway", "openai", "anthropic", "bedrock", "operations"];
        let mut templates = std::collections::BTreeSet::new();
        for route in ROUTES {
            assert!(apis.contains(&route.api), "{}: {}", route.template, route.api);
            assert!(templates.insert(route.template), "{} twice", route.template);
        }
    }

    #[tokio::test]
    async fn the_route_templates_are_the_routers_own() {
        // Every documented route has its template, and nothing else has one.
        let documented: std::collections::BTreeSet<String> =
            crate::app::openapi().paths.paths.keys().cloned().collect();
        let templates = ROUTES.iter().map(|route| route.template.to_owned()).collect();
        assert_eq!(documented, templates);
        // A path gets the template of the route the router matches it to: a router of the
        // same paths (and `routes::bedrock`'s catch-all) tells which, as `MatchedPath`.
        async fn matched(path: Option<axum::extract::MatchedPath>) -> String {
            path.map(|path| path.as_str().to_owned()).unwrap_or_default()
        }
        let mut router = axum::Router::new().route("/model/{*rest}", axum::routing::any(matched));
        for route in ROUTES.iter().filter(|route| route.suffix.is_empty()) {
            router = router.route(route.template, axum::routing::any(matched));
        }
        let mut paths: Vec<String> = ["/", "/model", "/model/", "/model/m", "/model/invoke"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        for route in ROUTES {
            let path = route.template.replace("{modelId}", "amazon.titan-text-express-v1");
            for variant in ["", "/", "/x", "x"] {
                paths.push(format!("{path}{variant}"));
            }
            paths.push(format!("/{path}"));
            paths.push(path.to_uppercase());
            paths.push(path.replacen('/', "//", 2));
        }
        paths.extend(
            ["/model//invoke", "/model/a%2Fb/invoke", "/model/m/converse", "/model/m/apply"]
                .map(String::from),
        );
        for path in paths {
            let Ok(uri) = axum::http::Uri::builder().path_and_query(path.as_str()).build() else {
                continue;
            };
            let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
            let response = tower::ServiceExt::oneshot(router.clone(), request).await.unwrap();
            let bytes = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
            let matched = String::from_utf8(bytes.to_vec()).unwrap();
            let expected = match matched.as_str() {
                "" => OTHER,
                "/model/{*rest}" if path.ends_with("/invoke-with-response-stream") => {
                    "/model/{modelId}/invoke-with-response-stream"
                }
                "/model/{*rest}" if path.ends_with("/invoke") => "/model/{modelId}/invoke",
                "/model/{*rest}" if path.ends_with("/converse-stream") => {
                    "/model/{modelId}/converse-stream"
                }
                "/model/{*rest}" if path.ends_with("/converse") => "/model/{modelId}/converse",
                "/model/{*rest}" if path.ends_with("/count-tokens") => {
                    "/model/{modelId}/count-tokens"
                }
                "/model/{*rest}" => OTHER,
                template => template,
            };
            assert_eq!(route_of(&path).1, expected, "{path}");
        }
    }

    #[test]
    fn dependencies_stay_at_warn_unless_named() {
        let text = filter("info").to_string();
        assert!(text.contains("hyper=warn") && text.contains("aws_smithy_runtime=warn"), "{text}");
        let text = filter("hyper=debug").to_string();
        assert!(text.contains("hyper=debug"), "{text}");
    }
}
