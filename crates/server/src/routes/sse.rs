//! The body of every streamed answer: the SSE of `/v1/generate` and the OpenAI routes, the
//! event stream of the Bedrock passthrough. Each route encodes its events into bytes
//! ([`sse_event`], [`sse_data`]); [`StreamBody`] sends them.
//!
//! The first event leaves as soon as it is there (with the response head, when it is ready
//! by then): the time to first token never waits for a batch. After it, events that are
//! already available leave together, in one body frame and so one write: when the next
//! event is not ready, the body first yields to the runtime, which lets the
//! task reading Bedrock's connection (hyper's client hands its body over one chunk at a
//! time, each handover a wake-up of that task) decode the chunks it has already received;
//! it goes on yielding while that brings more, and sends what it has once [`YIELDS`] polls
//! in a row bring nothing (hyper polls a body that went pending once more at once, in the
//! same pass: one of them does not let any other task run). A lone event therefore waits a
//! pass or two of the runtime's queue, never for a timer or for more events, and at most
//! [`MAX_BATCH_BYTES`] wait in a batch. An idle SSE stream sends a comment every
//! [`KEEP_ALIVE_INTERVAL`], as axum's `KeepAlive` does, from one timer re-armed only when it
//! fires.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use http_body::Frame;
use serde::Serialize;
use tokio::time::{Instant, Sleep};

/// How long an SSE stream may go without a byte before it sends a keep-alive comment.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// The SSE keep-alive: an empty comment.
const KEEP_ALIVE_COMMENT: &[u8] = b":\n\n";

/// The most bytes of events a batch holds before it is sent without waiting for more.
pub const MAX_BATCH_BYTES: usize = 16 * 1024;

/// The polls in a row that find no new event before a batch is sent.
pub const YIELDS: u8 = 2;

/// The events of one streamed answer, each already encoded (in a buffer from
/// [`event_buffer`]); `None` after the last.
pub type Events = Pin<Box<dyn Stream<Item = Vec<u8>> + Send>>;

/// A buffer for an event or two: most events (a delta of a few words and its SSE framing)
/// fit without growing it.
pub fn event_buffer() -> Vec<u8> {
    Vec::with_capacity(EVENT_CAPACITY)
}

/// What [`event_buffer`] holds before it grows.
const EVENT_CAPACITY: usize = 128;

/// What a batch of several events holds before it grows.
const BATCH_CAPACITY: usize = 2048;

/// What polling a [`StreamBody`] gives.
type Polled = Poll<Option<Result<Frame<Bytes>, Infallible>>>;

/// A streamed answer's body (see the module docs).
pub struct StreamBody {
    events: Events,
    /// Events not yet sent, back to back.
    batch: Vec<u8>,
    /// Polls in a row that found the next event not ready, since the last one added.
    idle_polls: u8,
    /// Whether a frame has been sent: until then an event is not held for a batch.
    sent_any: bool,
    ended: bool,
    keep_alive: Option<KeepAlive>,
}

/// The keep-alive of an SSE stream: one timer, and when the stream last sent anything.
struct KeepAlive {
    timer: Pin<Box<Sleep>>,
    last_sent: Instant,
}

/// An SSE response (`text/event-stream`, `Cache-Control: no-cache`, as axum's `Sse`, and
/// `X-Accel-Buffering: no` so that reverse proxies such as nginx do not buffer it) of
/// `events`, with keep-alive comments.
pub fn sse_response(events: Events) -> Response {
    let mut response = Response::new(Body::new(StreamBody::new(events, true)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Appends an SSE event named `name` whose data is `data` as JSON (one line: JSON text
/// holds no raw line break). A value that cannot be serialized becomes an `error` event of
/// the one error shape.
pub fn sse_event(out: &mut Vec<u8>, name: &str, data: &impl Serialize) {
    let start = out.len();
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut *out, data).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"event: error\ndata: ");
        out.extend_from_slice(INTERNAL_ERROR_JSON.as_bytes());
    }
    out.extend_from_slice(b"\n\n");
}

/// Appends an unnamed SSE event (`data: …`) whose data is `data` as JSON, or an unnamed
/// event of the one error shape if it cannot be serialized.
pub fn sse_data(out: &mut Vec<u8>, data: &impl Serialize) {
    let start = out.len();
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, data).is_err() {
        out.truncate(start + b"data: ".len());
        out.extend_from_slice(INTERNAL_ERROR_JSON.as_bytes());
    }
    out.extend_from_slice(b"\n\n");
}

/// Appends an unnamed SSE event whose data is `text`, which must be one line.
pub fn sse_data_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// What an event whose data cannot be serialized carries instead.
const INTERNAL_ERROR_JSON: &str =
    r#"{"error":{"type":"internal","message":"internal error in the gateway"}}"#;

impl StreamBody {
    /// The body of `events`; with `keep_alive`, an SSE comment after each
    /// [`KEEP_ALIVE_INTERVAL`] without a byte.
    pub fn new(events: Events, keep_alive: bool) -> StreamBody {
        let keep_alive = keep_alive.then(|| {
            let last_sent = Instant::now();
            let timer = Box::pin(tokio::time::sleep_until(last_sent + KEEP_ALIVE_INTERVAL));
            KeepAlive { timer, last_sent }
        });
        StreamBody {
            events,
            batch: Vec::new(),
            idle_polls: 0,
            sent_any: false,
            ended: false,
            keep_alive,
        }
    }

    /// The batch as one frame; the stream's memory of it is let go.
    fn send_batch(&mut self) -> Polled {
        self.idle_polls = 0;
        self.sent_any = true;
        if let Some(keep_alive) = &mut self.keep_alive {
            keep_alive.last_sent = Instant::now();
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(std::mem::take(&mut self.batch))))))
    }

    /// The keep-alive comment when it is due; else the timer is re-armed for when it will
    /// be, and the task woken then.
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> Polled {
        let Some(keep_alive) = &mut self.keep_alive else {
            return Poll::Pending;
        };
        loop {
            if keep_alive.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = keep_alive.last_sent + KEEP_ALIVE_INTERVAL;
            let now = Instant::now();
            if now >= due {
                keep_alive.last_sent = now;
                keep_alive.timer.as_mut().reset(now + KEEP_ALIVE_INTERVAL);
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE_COMMENT)))));
            }
            // Something was sent since the timer was set: wait until the interval is up.
            keep_alive.timer.as_mut().reset(due);
        }
    }
}

impl http_body::Body for StreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let this = self.get_mut();
        while !this.ended {
            match this.events.as_mut().poll_next(cx) {
                Poll::Ready(Some(event)) => {
                    if this.batch.is_empty() {
                        this.batch = event;
                    } else {
                        if this.batch.capacity() < BATCH_CAPACITY {
                            // Room for the events still to come, in one allocation.
                            this.batch.reserve(BATCH_CAPACITY);
                        }
                        this.batch.extend_from_slice(&event);
                    }
                    this.idle_polls = 0;
                    if !this.sent_any || this.batch.len() >= MAX_BATCH_BYTES {
                        return this.send_batch();
                    }
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending if this.batch.is_empty() => return this.poll_keep_alive(cx),
                Poll::Pending if this.idle_polls < YIELDS => {
                    // Let what is already on its way arrive before the batch leaves.
                    this.idle_polls += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => return this.send_batch(),
            }
        }
        if this.batch.is_empty() { Poll::Ready(None) } else { this.send_batch() }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.batch.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt;
    use http_body::Body as _;
    use http_body_util::BodyExt;

    use super::*;

    /// A sender of events and the events it sends.
    fn channel() -> (tokio::sync::mpsc::UnboundedSender<Vec<u8>>, Events) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        (tx, Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))))
    }

    /// Polls `body` once with a waker that counts its wakes.
    fn poll_once(body: &mut StreamBody, wakes: &Arc<AtomicUsize>) -> Polled {
        struct Counter(Arc<AtomicUsize>);
        impl std::task::Wake for Counter {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let waker = std::task::Waker::from(Arc::new(Counter(wakes.clone())));
        let mut cx = Context::from_waker(&waker);
        Pin::new(body).poll_frame(&mut cx)
    }

    fn data(polled: Polled) -> Vec<u8> {
        match polled {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap().to_vec(),
            other => panic!("not a data frame: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_first_event_leaves_at_once_then_those_already_there_leave_in_one_frame() {
        let (tx, rx) = channel();
        let mut body = StreamBody::new(rx, false);
        let wakes = Arc::new(AtomicUsize::new(0));
        // The first event does not wait for a batch, even with others behind it.
        for event in ["0", "a", "b", "c"] {
            tx.send(event.as_bytes().to_vec()).unwrap();
        }
        assert_eq!(data(poll_once(&mut body, &wakes)), b"0");
        assert_eq!(wakes.load(Ordering::Relaxed), 0);
        // Three more were there: the body yields (woken at once each time), then sends them.
        for n_wakes in 1..=usize::from(YIELDS) {
            assert!(poll_once(&mut body, &wakes).is_pending());
            assert_eq!(wakes.load(Ordering::Relaxed), n_wakes);
        }
        assert_eq!(data(poll_once(&mut body, &wakes)), b"abc");
        // Nothing there: pending, no wake of its own.
        assert!(poll_once(&mut body, &wakes).is_pending());
        assert_eq!(wakes.load(Ordering::Relaxed), usize::from(YIELDS));
        // A lone event: the yields, then it leaves although no other came.
        tx.send(b"d".to_vec()).unwrap();
        for _ in 0..YIELDS {
            assert!(poll_once(&mut body, &wakes).is_pending());
        }
        assert_eq!(data(poll_once(&mut body, &wakes)), b"d");
        // An event that arrives during the yields joins the batch, and starts them again.
        tx.send(b"e".to_vec()).unwrap();
        assert!(poll_once(&mut body, &wakes).is_pending());
        tx.send(b"f".to_vec()).unwrap();
        for _ in 0..YIELDS {
            assert!(poll_once(&mut body, &wakes).is_pending());
        }
        assert_eq!(data(poll_once(&mut body, &wakes)), b"ef");
        // The end sends what is left, then ends.
        tx.send(b"g".to_vec()).unwrap();
        drop(tx);
        assert_eq!(data(poll_once(&mut body, &wakes)), b"g");
        assert!(matches!(poll_once(&mut body, &wakes), Poll::Ready(None)));
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn a_batch_is_sent_once_it_reaches_its_bound() {
        let events: Vec<Vec<u8>> = (0..40).map(|_| vec![b'x'; 1024]).collect();
        let body = StreamBody::new(futures_util::stream::iter(events).boxed(), false);
        let frames: Vec<usize> =
            body.into_data_stream().map(|frame| frame.unwrap().len()).collect().await;
        assert_eq!(frames, [1024, MAX_BATCH_BYTES, MAX_BATCH_BYTES, 7 * 1024]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_sse_stream_sends_a_comment_every_interval_and_none_while_it_sends() {
        let (tx, rx) = channel();
        let mut body = StreamBody::new(rx, true);
        let started = Instant::now();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&frame[..], KEEP_ALIVE_COMMENT);
        assert_eq!(started.elapsed(), KEEP_ALIVE_INTERVAL);
        // An event half-way through the next interval puts the next comment off.
        tokio::time::sleep(KEEP_ALIVE_INTERVAL / 2).await;
        tx.send(b"event: x\n\n".to_vec()).unwrap();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&frame[..], b"event: x\n\n");
        let sent = Instant::now();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&frame[..], KEEP_ALIVE_COMMENT);
        assert_eq!(sent.elapsed(), KEEP_ALIVE_INTERVAL);
    }

    #[test]
    fn events_are_encoded_as_sse() {
        let mut out = Vec::new();
        sse_event(&mut out, "delta", &serde_json::json!({"text": "a\nb"}));
        sse_data(&mut out, &serde_json::json!({"n": 1}));
        sse_data_text(&mut out, "[DONE]");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: delta\ndata: {\"text\":\"a\\nb\"}\n\n\
             data: {\"n\":1}\n\n\
             data: [DONE]\n\n"
        );
    }
}
