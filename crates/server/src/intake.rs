//! What a request may hold before its handler answers: a place among the requests in
//! flight (`max_in_flight`; a stream keeps its place until its last event), a body no
//! larger than its route's limit (a `Content-Length` over it is refused before a byte
//! is read; a chunked body is cut the moment it passes the limit), and a deadline for
//! that body (`body_read_timeout_ms`, from the end of the request's head to its body's
//! last byte).
//!
//! [`admit`] is the middleware, inside `telemetry::observe` so that each refusal is one
//! request line like any answer; its refusals are in the encoding of the route's API.
//! Handlers read bodies through [`read_body`], which tells a body over the limit (413) and
//! one too slow (408) from a broken one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::app::Gateway;
use crate::config::{BEDROCK_MAX_BODY_BYTES, HttpConfig};
use crate::error::ApiError;
use crate::routes::bedrock::BedrockApiError;
use crate::routes::openai::{self, OpenAiError};

/// The limits [`admit`] applies, and the places in flight; one per gateway. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Intake(Arc<Limits>);

#[derive(Debug)]
struct Limits {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    max_body_bytes: usize,
    body_read_timeout: Duration,
}

/// Put in the extensions of every request of a connection over `max_connections` by the
/// listener: [`admit`] answers it 503 and the connection closes.
#[derive(Clone, Copy, Debug)]
pub struct OverConnectionCap;

/// Why a body could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error("could not read the request body: {0}")]
    Broken(String),
}

/// The probes: never refused for load, so that a busy replica is not restarted.
const PROBES: &[&str] = &["/healthz", "/readyz"];

impl Intake {
    pub fn new(config: &HttpConfig) -> Intake {
        Intake(Arc::new(Limits {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            max_in_flight: config.max_in_flight,
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.body_read_timeout,
        }))
    }

    /// The body limit of the route at `path`: Bedrock's own for the passthrough.
    pub fn body_limit(&self, path: &str) -> usize {
        if path.starts_with("/model/") { BEDROCK_MAX_BODY_BYTES } else { self.0.max_body_bytes }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.0.max_in_flight - self.0.in_flight.available_permits()
    }
}

impl FromRef<Gateway> for Intake {
    fn from_ref(gateway: &Gateway) -> Intake {
        gateway.intake().clone()
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        match error {
            BodyError::TooLarge(limit) => ApiError::PayloadTooLarge(limit),
            BodyError::TimedOut(timeout) => ApiError::RequestTimeout(timeout.as_millis()),
            BodyError::Broken(_) => ApiError::BadRequest(error.to_string()),
        }
    }
}

/// The middleware: the connection cap's refusals, the in-flight cap, the body limit and
/// deadline.
pub async fn admit(State(intake): State<Intake>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let request_id =
        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if request.extensions().get::<OverConnectionCap>().is_some() {
        let error = ApiError::Overloaded(
            "the gateway has as many connections open as it takes; retry shortly".to_owned(),
        );
        return closing(in_api_encoding(error, path, request_id));
    }
    let permit = if PROBES.contains(&path) {
        None
    } else {
        match intake.0.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                let error = ApiError::Overloaded(format!(
                    "the gateway has {} requests in flight, as many as it takes; retry shortly",
                    intake.0.max_in_flight
                ));
                return in_api_encoding(error, path, request_id);
            }
        }
    };
    let limit = intake.body_limit(path);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        // Refused before a byte of it is read; the connection closes after the answer.
        return closing(in_api_encoding(ApiError::PayloadTooLarge(limit), path, request_id));
    }
    let deadline = Instant::now() + intake.0.body_read_timeout;
    let request = request.map(|body| {
        Body::new(GuardedBody {
            inner: body,
            limit,
            read: 0,
            deadline,
            timeout: intake.0.body_read_timeout,
            sleep: None,
            failed: false,
        })
    });
    let response = next.run(request).await;
    match permit {
        Some(permit) => response.map(|body| Body::new(HoldsGuard::new(body, permit))),
        None => response,
    }
}

/// Reads a whole request body (already limited and timed by [`admit`]) into one buffer,
/// allocated once at the body's exact length when it has one (its `Content-Length`, which
/// [`admit`] held to the limit): each frame is copied into it and freed as it arrives, so
/// that the body is never held twice (as frames, then joined). A body of one frame is
/// that frame, not copied.
pub async fn read_body(mut body: Body) -> Result<Bytes, BodyError> {
    let exact = http_body::Body::size_hint(&body).exact().and_then(|n| usize::try_from(n).ok());
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| match error.into_inner().downcast::<BodyError>() {
            Ok(error) => *error,
            Err(other) => BodyError::Broken(other.to_string()),
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if let Some(buffer) = joined.as_mut() {
            buffer.extend_from_slice(&data);
        } else if let Some(head) = first.take() {
            let at_least = head.len() + data.len();
            let capacity = exact.unwrap_or(0).clamp(at_least, BEDROCK_MAX_BODY_BYTES.max(at_least));
            let mut buffer = BytesMut::with_capacity(capacity);
            buffer.extend_from_slice(&head);
            buffer.extend_from_slice(&data);
            joined = Some(buffer);
        } else {
            first = Some(data);
        }
    }
    Ok(joined.map(BytesMut::freeze).or(first).unwrap_or_default())
}

/// `error` in the encoding of the API the route at `path` belongs to: Bedrock's for the
/// passthrough, OpenAI's for the OpenAI-compatible routes, the gateway's own elsewhere.
pub fn in_api_encoding(error: ApiError, path: &str, request_id: &str) -> Response {
    if path.starts_with("/model/") {
        return BedrockApiError::from(error).into_response_with(request_id);
    }
    if openai::is_openai_path(path) {
        return OpenAiError::from(error).into_response();
    }
    if crate::routes::anthropic::PATHS.contains(&path) {
        return crate::routes::anthropic::AnthropicError(error).into_response();
    }
    error.into_response()
}

/// Tells the caller (and hyper) that the connection closes after this answer.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body cut at its limit and at its deadline.
struct GuardedBody {
    inner: Body,
    limit: usize,
    read: usize,
    deadline: Instant,
    timeout: Duration,
    /// Made when the body first has to wait, so that a body that came with its head
    /// costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    failed: bool,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read = this.read.saturating_add(data.len());
                    if this.read > this.limit {
                        this.failed = true;
                        return Poll::Ready(Some(Err(BodyError::TooLarge(this.limit))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.failed = true;
                Poll::Ready(Some(Err(BodyError::Broken(error.to_string()))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep =
                    this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.failed = true;
                    return Poll::Ready(Some(Err(BodyError::TimedOut(this.timeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps `guard` alive until the body is done (or dropped): its
/// request's place in flight here, its connection's activity in the listener.
pub(crate) struct HoldsGuard<G> {
    inner: Body,
    _guard: G,
}

impl<G> HoldsGuard<G> {
    pub(crate) fn new(inner: Body, guard: G) -> HoldsGuard<G> {
        HoldsGuard { inner, _guard: guard }
    }
}

impl<G: Unpin> http_body::Body for HoldsGuard<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use bytes::Bytes;
    use futures_util::{StreamExt, stream};

    use super::*;

    fn guarded(body: Body, limit: usize, timeout: Duration) -> Body {
        Body::new(GuardedBody {
            inner: body,
            limit,
            read: 0,
            deadline: Instant::now() + timeout,
            timeout,
            sleep: None,
            failed: false,
        })
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let chunks = stream::iter(["ab", "cd"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c))));
        let body = guarded(Body::from_stream(chunks), 4, Duration::from_secs(5));
        assert_eq!(read_body(body).await.unwrap(), "abcd");
    }

    #[tokio::test]
    async fn a_body_of_one_frame_is_that_frame_and_frames_are_joined_in_order() {
        let frame = Bytes::from(vec![b'x'; 4096]);
        let body = guarded(Body::from(frame.clone()), 8192, Duration::from_secs(5));
        let read = read_body(body).await.unwrap();
        assert_eq!(read.as_ptr(), frame.as_ptr(), "one frame is not copied");
        let chunks = (0..100).map(|idx| Ok::<_, std::io::Error>(Bytes::from(format!("{idx:03}"))));
        let body = guarded(Body::from_stream(stream::iter(chunks)), 300, Duration::from_secs(5));
        let expected: String = (0..100).map(|idx| format!("{idx:03}")).collect();
        assert_eq!(read_body(body).await.unwrap(), expected);
    }

    #[tokio::test]
    async fn a_chunked_body_is_cut_at_the_chunk_that_passes_the_limit() {
        let chunks = stream::iter(
            ["abc", "def", "never read"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        );
        let body = guarded(Body::from_stream(chunks), 5, Duration::from_secs(5));
        assert!(matches!(read_body(body).await, Err(BodyError::TooLarge(5))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_coming_times_out_at_its_deadline() {
        let first = stream::iter([Ok::<_, std::io::Error>(Bytes::from("{\"model\""))]);
        let body = guarded(
            Body::from_stream(first.chain(stream::pending())),
            100,
            Duration::from_secs(30),
        );
        let started = Instant::now();
        assert!(matches!(read_body(body).await, Err(BodyError::TimedOut(_))));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[test]
    fn the_passthrough_takes_bedrocks_limit_and_the_rest_the_configured_one() {
        let config = HttpConfig { max_body_bytes: 2048, ..HttpConfig::default() };
        let intake = Intake::new(&config);
        assert_eq!(intake.body_limit("/model/titan/invoke"), 25_000_000);
        assert_eq!(intake.body_limit("/v1/generate"), 2048);
        assert_eq!(intake.body_limit("/v1/chat/completions"), 2048);
    }
}
