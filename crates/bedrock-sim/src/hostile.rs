//! The faults of a broken or hostile upstream that Bedrock's own errors cannot show: a
//! proxy's HTML error page, an error type Bedrock does not have, an error message of many
//! megabytes, and answer bodies that are malformed, cut off mid-body, dripped a byte at a
//! time, announced at 2 GiB, or endless ([`Fault`]). `invoke.rs` and `response_stream.rs`
//! call these for the faults they do not answer themselves.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body::{Frame, SizeHint};

use crate::behavior::{BadBody, Fault, HUGE_FRAME_BYTES};
use crate::error::{BedrockError, ERROR_TYPE_SUFFIX};
use crate::families::{Family, family_for};

/// What a `{"body": "invalid_json"}` fault sends instead of JSON.
pub(crate) const INVALID_JSON: &[u8] = b"<not JSON> the simulator's invalid_json fault {\"";

/// A Titan Text answer: the other family's answer for the embedding and image models.
const TITAN_TEXT_ANSWER: &[u8] = br#"{"inputTextTokenCount":3,"results":[{"tokenCount":1,"outputText":"other","completionReason":"FINISH"}]}"#;

/// An answer no family gives.
const UNKNOWN_SHAPE_ANSWER: &[u8] =
    br#"{"simUnknownAnswer":{"note":"a shape no model family answers"}}"#;

/// How long a body that fails waits for what it sent to be flushed first: a real connection
/// drops after what was sent has left.
pub(crate) const RESET_FLUSH_DELAY: Duration = Duration::from_millis(20);

/// The size of each write of an endless or huge body.
const WRITE_BYTES: usize = 64 * 1024;

/// Zeros, for the bytes after a huge frame's prelude.
static ZEROS: [u8; WRITE_BYTES] = [0; WRITE_BYTES];

/// The error answer of the faults that answer an error Bedrock's model has no shape for:
/// `None` for every other fault.
pub(crate) fn error_answer(
    fault: &Fault,
    base_model_id: &str,
) -> Option<Result<Response, BedrockError>> {
    match fault {
        Fault::LongErrorMessage(kind, n_bytes) => {
            let mut error = BedrockError::from_kind(*kind, base_model_id);
            let message = long_message(kind.default_message(), *n_bytes);
            error.body.insert("message".to_owned(), message.into());
            Some(Err(error))
        }
        Fault::ProxyError(status) => Some(Ok(proxy_error_page(*status))),
        Fault::UnknownError(name) => Some(Ok(unknown_error(name))),
        _ => None,
    }
}

/// `message` repeated up to `n_bytes` bytes (all of it ASCII).
fn long_message(message: &str, n_bytes: u32) -> String {
    let n_bytes = usize::try_from(n_bytes).unwrap_or(usize::MAX);
    let mut long = String::with_capacity(n_bytes);
    while long.len() < n_bytes {
        long.push_str(message);
        long.push(' ');
    }
    long.truncate(n_bytes);
    long
}

/// A load balancer's or proxy's error page: HTML, no `x-amzn-ErrorType`.
fn proxy_error_page(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1>\
         </center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    let mut response = (status, page).into_response();
    let content_type = HeaderValue::from_static("text/html; charset=utf-8");
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
}

/// A 400 in Bedrock's error encoding, of an error type the SDK does not model.
fn unknown_error(name: &str) -> Response {
    let message = format!("The simulator's {name}, an error type Bedrock does not have.");
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = (StatusCode::BAD_REQUEST, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&format!("{name}:{ERROR_TYPE_SUFFIX}")) {
        headers.insert("x-amzn-errortype", value);
    }
    response
}

/// The InvokeModel body of the body faults, in place of `answer` (which any other fault
/// leaves alone). `other_family_answer` is another family's answer to the same request.
pub(crate) fn invoke_body(
    answer: Vec<u8>,
    fault: &Fault,
    other_family_answer: impl FnOnce() -> Vec<u8>,
) -> Body {
    match fault {
        Fault::BadBodyAfterChunks(bad, _) => match bad {
            BadBody::InvalidJson => Body::from(INVALID_JSON),
            BadBody::OtherFamily => Body::from(other_family_answer()),
            BadBody::UnknownShape => Body::from(UNKNOWN_SHAPE_ANSWER),
            BadBody::Empty => Body::empty(),
        },
        Fault::ResetMidBodyAfterChunks(_) => {
            let answer = Bytes::from(answer);
            Body::from_stream(then_reset(answer.slice(..answer.len() / 2)))
        }
        Fault::Drip(pause) => {
            let answer = futures_util::stream::iter([Ok(Bytes::from(answer))]);
            Body::from_stream(drip(answer, *pause))
        }
        Fault::HugeFrameAfterChunks(_) => Body::new(Zeros(u64::from(HUGE_FRAME_BYTES))),
        Fault::Endless => Body::from_stream(endless_answer()),
        _ => Body::from(answer),
    }
}

/// Another family than `family`, whose answers and chunks `family`'s readers do not know:
/// Claude Messages for Titan Text, else Titan Text.
pub(crate) fn other_family(family: &'static dyn Family) -> &'static dyn Family {
    let other_id = if family.id() == "titan_text" {
        "anthropic.claude-3-haiku-20240307-v1:0"
    } else {
        "amazon.titan-text-express-v1"
    };
    family_for(other_id).unwrap_or(family)
}

/// The other family's answer for the models that have no [`Family`] (embeddings, images).
pub(crate) fn media_other_family_answer() -> Vec<u8> {
    TITAN_TEXT_ANSWER.to_vec()
}

/// The model JSON of chunk `chunk_idx` of an unknown shape.
pub(crate) fn unknown_shape_chunk(chunk_idx: usize) -> Vec<u8> {
    format!(r#"{{"simUnknownEvent":{{"index":{chunk_idx}}}}}"#).into_bytes()
}

/// The prelude of a frame that announces [`HUGE_FRAME_BYTES`]: its length, no headers, and
/// a right prelude CRC, so that only its length is wrong.
pub(crate) fn huge_frame_prelude() -> Vec<u8> {
    let mut prelude = HUGE_FRAME_BYTES.to_be_bytes().to_vec();
    prelude.extend_from_slice(&0_u32.to_be_bytes());
    let crc = crc32fast::hash(&prelude);
    prelude.extend_from_slice(&crc.to_be_bytes());
    prelude
}

/// Up to one write of zeros, of at most `n_bytes`.
pub(crate) fn zeros(n_bytes: u64) -> Bytes {
    let n_bytes = usize::try_from(n_bytes).unwrap_or(WRITE_BYTES).min(WRITE_BYTES);
    Bytes::from_static(&ZEROS[..n_bytes])
}

/// `sent`, then (once it has had time to leave) a failure that drops the connection.
pub(crate) fn then_reset(
    sent: Bytes,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some(sent), |sent| async move {
        match sent {
            Some(sent) => Some((Ok(sent), None)),
            None => {
                tokio::time::sleep(RESET_FLUSH_DELAY).await;
                let error = std::io::Error::other("simulated connection reset mid-body");
                Some((Err(error), None))
            }
        }
    })
    .take(2)
}

/// The bytes of `inner`, one at a time, `pause` apart.
pub(crate) fn drip<S>(
    inner: S,
    pause: Duration,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let state = (Box::pin(inner), Bytes::new(), false);
    futures_util::stream::unfold(state, move |(mut inner, mut pending, started)| async move {
        while pending.is_empty() {
            match inner.next().await? {
                Ok(bytes) => pending = bytes,
                Err(error) => return Some((Err(error), (inner, pending, started))),
            }
        }
        if started {
            tokio::time::sleep(pause).await;
        }
        let byte = pending.split_to(1);
        Some((Ok(byte), (inner, pending, true)))
    })
}

/// An InvokeModel body that never ends: the start of a Titan answer, then one word again
/// and again.
fn endless_answer() -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let words = Bytes::from("again ".repeat(WRITE_BYTES / 6));
    let start = Bytes::from_static(br#"{"results":[{"outputText":""#);
    futures_util::stream::iter([Ok(start)])
        .chain(futures_util::stream::repeat_with(move || Ok(words.clone())))
}

/// A body whose length says `n_bytes` (so `Content-Length` does), of zeros; it is sent as
/// fast as the client reads it, which is never all of it.
struct Zeros(u64);

impl http_body::Body for Zeros {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.0 == 0 {
            return Poll::Ready(None);
        }
        let bytes = zeros(self.0);
        self.0 -= bytes.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.0 == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_have_the_asked_length() {
        let message = long_message("It failed.", 1_000_003);
        assert_eq!(message.len(), 1_000_003);
        assert!(message.starts_with("It failed. It failed."));
        assert_eq!(long_message("It failed.", 4), "It f");
    }

    #[test]
    fn the_huge_prelude_announces_two_gib_with_a_right_crc() {
        let prelude = huge_frame_prelude();
        assert_eq!(prelude.len(), 12);
        assert_eq!(u32::from_be_bytes(prelude[..4].try_into().unwrap()), 1 << 31);
        assert_eq!(crc32fast::hash(&prelude[..8]).to_be_bytes(), prelude[8..]);
    }

    #[tokio::test]
    async fn a_drip_sends_every_byte_alone_and_a_reset_fails_after_its_bytes() {
        let inner = futures_util::stream::iter([Ok(Bytes::from("ab")), Ok(Bytes::from("c"))]);
        let bytes: Vec<Bytes> =
            drip(inner, Duration::from_millis(1)).map(Result::unwrap).collect().await;
        assert_eq!(bytes, ["a", "b", "c"]);
        let items: Vec<_> = then_reset(Bytes::from("half")).collect().await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap(), "half");
        assert!(items[1].is_err());
    }

    #[test]
    fn the_other_family_is_never_the_same() {
        let titan = family_for("amazon.titan-text-express-v1").unwrap();
        let claude = family_for("anthropic.claude-3-haiku-20240307-v1:0").unwrap();
        assert_eq!(other_family(titan).id(), claude.id());
        assert_eq!(other_family(claude).id(), titan.id());
    }
}
