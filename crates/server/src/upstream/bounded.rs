//! [`BoundedResponses`]: the interceptor that puts a bound on what the gateway reads of
//! any answer from Bedrock, before the AWS SDK buffers it.
//!
//! The SDK reads a whole answer (InvokeModel, and every error answer) into memory before
//! it decodes it, however long it is; and its event-stream decoder buffers each frame
//! until the length its prelude announces has arrived, up to 4 GiB, before it checks the
//! frame's checksums. Both are unbounded in what a broken or hostile upstream can send.
//! So every answer's body is wrapped, before the SDK reads it, in a [`BoundedBody`]:
//!
//! - an event stream (a 200 of `application/vnd.amazon.eventstream`) is read frame by
//!   frame, and a frame whose prelude announces more than [`MAX_FRAME_BYTES`] fails the
//!   body at once, before its bytes are buffered;
//! - any other body fails once it passes [`MAX_BODY_BYTES`] (at once when its
//!   `Content-Length` says it will).
//!
//! The SDK reports the failure as an unreadable answer, which the pipeline does not
//! retry: Bedrock's headers had arrived.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_bedrockruntime::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_bedrockruntime::error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The most bytes of one whole answer (or error answer) the gateway reads: far above any
/// model's answer (a batch of base64 images is a few MiB), far below what would hurt.
pub const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// The largest event-stream frame accepted: the limit of the AWS event-stream
/// implementations (`aws-c-event-stream`'s 16 MiB message size); one Bedrock chunk is
/// one model event, a few hundred bytes.
pub const MAX_FRAME_BYTES: u32 = 16 * 1024 * 1024;

/// The smallest valid frame: a 12-byte prelude and a 4-byte message CRC.
const MIN_FRAME_BYTES: u32 = 16;

/// Wraps the body of every answer in a [`BoundedBody`]. Registered once on the client.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundedResponses;

impl Intercept for BoundedResponses {
    fn name(&self) -> &'static str {
        "BoundedResponses"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        let headers = response.headers();
        let status = response.status().as_u16();
        let (content_type, content_length) =
            (headers.get("content-type"), headers.get("content-length"));
        let limit = Limit::of_answer(status, content_type, content_length);
        let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
        *response.body_mut() = SdkBody::from_body_1_x(BoundedBody { inner, limit, failed: false });
        Ok(())
    }
}

impl<B> BoundedBody<B> {
    /// `inner`, the body of an answer of `status` with these `Content-Type` and
    /// `Content-Length`, bounded: frame by frame for an event stream (a 200 of
    /// `application/vnd.amazon.eventstream`), as a whole otherwise. The thin transport's
    /// bound, the same as the interceptor's.
    pub(crate) fn answer(
        inner: B,
        status: u16,
        content_type: Option<&str>,
        content_length: Option<&str>,
    ) -> BoundedBody<B> {
        let limit = Limit::of_answer(status, content_type, content_length);
        BoundedBody { inner, limit, failed: false }
    }
}

/// A body that fails instead of passing its bound (see the module docs).
#[derive(Debug)]
pub struct BoundedBody<B> {
    inner: B,
    limit: Limit,
    /// After a failure the body yields nothing more.
    failed: bool,
}

#[derive(Debug)]
enum Limit {
    /// A whole answer: at most [`MAX_BODY_BYTES`].
    Whole { declared_len: Option<u64>, read: u64 },
    /// An event stream: each frame at most [`MAX_FRAME_BYTES`].
    Frames(FrameReader),
}

/// Where an event stream's bytes are in its frames: only the 4-byte total length that
/// opens each frame is read; everything passes through unchanged.
#[derive(Debug, Default)]
struct FrameReader {
    /// Bytes of the current frame still to come after its length; 0 at a frame boundary.
    left_in_frame: u64,
    /// The next frame's total length, as far as it has arrived.
    length: [u8; 4],
    n_length_bytes: usize,
}

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BoundError {
    #[error(
        "Bedrock's answer is larger than the gateway's limit of {MAX_BODY_BYTES} bytes \
         ({0} bytes or more)"
    )]
    BodyTooLarge(u64),
    #[error(
        "an event-stream frame announces {0} bytes, more than the gateway's limit of \
         {MAX_FRAME_BYTES} bytes"
    )]
    FrameTooLarge(u32),
    #[error("an event-stream frame announces {0} bytes, less than the smallest frame")]
    FrameTooSmall(u32),
}

impl<B> BoundedBody<B> {
    /// `inner` read as a whole answer that announced `declared_len` bytes.
    #[cfg(test)]
    fn whole(inner: B, declared_len: Option<u64>) -> BoundedBody<B> {
        BoundedBody { inner, limit: Limit::Whole { declared_len, read: 0 }, failed: false }
    }

    /// `inner` read as an event stream.
    #[cfg(test)]
    fn frames(inner: B) -> BoundedBody<B> {
        BoundedBody { inner, limit: Limit::Frames(FrameReader::default()), failed: false }
    }
}

impl Limit {
    fn of_answer(status: u16, content_type: Option<&str>, content_length: Option<&str>) -> Limit {
        let event_stream = status == 200
            && content_type.is_some_and(|value| {
                value.trim().to_ascii_lowercase().starts_with("application/vnd.amazon.eventstream")
            });
        if event_stream {
            return Limit::Frames(FrameReader::default());
        }
        let declared_len = content_length.and_then(|v| v.trim().parse().ok());
        Limit::Whole { declared_len, read: 0 }
    }

    /// Checks `data` (the next bytes of the body) against the bound.
    fn check(&mut self, data: &[u8]) -> Result<(), BoundError> {
        match self {
            Limit::Whole { read, .. } => {
                *read = read.saturating_add(data.len() as u64);
                if *read > MAX_BODY_BYTES {
                    return Err(BoundError::BodyTooLarge(*read));
                }
                Ok(())
            }
            Limit::Frames(reader) => reader.check(data),
        }
    }
}

impl FrameReader {
    fn check(&mut self, mut data: &[u8]) -> Result<(), BoundError> {
        while !data.is_empty() {
            if self.left_in_frame > 0 {
                let n_skipped =
                    data.len().min(usize::try_from(self.left_in_frame).unwrap_or(usize::MAX));
                self.left_in_frame -= n_skipped as u64;
                data = &data[n_skipped..];
                continue;
            }
            let n_taken = data.len().min(4 - self.n_length_bytes);
            self.length[self.n_length_bytes..self.n_length_bytes + n_taken]
                .copy_from_slice(&data[..n_taken]);
            self.n_length_bytes += n_taken;
            data = &data[n_taken..];
            if self.n_length_bytes == 4 {
                let total_len = u32::from_be_bytes(self.length);
                if total_len > MAX_FRAME_BYTES {
                    return Err(BoundError::FrameTooLarge(total_len));
                }
                if total_len < MIN_FRAME_BYTES {
                    return Err(BoundError::FrameTooSmall(total_len));
                }
                self.left_in_frame = u64::from(total_len) - 4;
                self.n_length_bytes = 0;
            }
        }
        Ok(())
    }
}

impl<B> Body for BoundedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        // An announced length over the bound fails before anything is read.
        if let Limit::Whole { declared_len: Some(len), read: 0 } = self.limit
            && len > MAX_BODY_BYTES
        {
            self.failed = true;
            return Poll::Ready(Some(Err(BoundError::BodyTooLarge(len).into())));
        }
        let polled = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        let frame = match polled {
            None => return Poll::Ready(None),
            Some(Err(error)) => return Poll::Ready(Some(Err(error.into()))),
            Some(Ok(frame)) => frame,
        };
        if let Some(data) = frame.data_ref()
            && let Err(error) = self.limit.check(data)
        {
            self.failed = true;
            return Poll::Ready(Some(Err(error.into())));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.failed { SizeHint::with_exact(0) } else { self.inner.size_hint() }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    type Chunks = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>,
    >;

    fn body(chunks: Vec<Vec<u8>>) -> Chunks {
        let frames: Vec<_> = chunks.into_iter().map(|c| Ok(Frame::data(Bytes::from(c)))).collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn frame(total_len: u32) -> Vec<u8> {
        let mut frame = total_len.to_be_bytes().to_vec();
        frame.resize(total_len as usize, 0);
        frame
    }

    async fn read<B>(mut body: BoundedBody<B>) -> Result<usize, String>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let mut n_bytes = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            n_bytes += frame.data_ref().map_or(0, Bytes::len);
        }
        Ok(n_bytes)
    }

    #[tokio::test]
    async fn frames_pass_whole_and_split_anywhere() {
        let stream: Vec<u8> = [frame(16), frame(100), frame(40)].concat();
        for split in [1, 3, 5, 17, 50, stream.len()] {
            let chunks: Vec<Vec<u8>> = stream.chunks(split).map(<[u8]>::to_vec).collect();
            let n_bytes = read(BoundedBody::frames(body(chunks))).await.unwrap();
            assert_eq!(n_bytes, stream.len(), "split {split}");
        }
    }

    #[tokio::test]
    async fn a_frame_announcing_two_gib_fails_before_its_bytes_arrive() {
        let mut prelude = 0x8000_0000_u32.to_be_bytes().to_vec();
        prelude.extend_from_slice(&[0; 8]);
        let chunks = vec![frame(20), prelude[..2].to_vec(), prelude[2..].to_vec(), vec![0; 1024]];
        let error = read(BoundedBody::frames(body(chunks))).await.unwrap_err();
        assert!(error.contains("2147483648"), "{error}");
        let error = read(BoundedBody::frames(body(vec![frame(8)]))).await.unwrap_err();
        assert!(error.contains("less than the smallest frame"), "{error}");
        let limit = read(BoundedBody::frames(body(vec![frame(MAX_FRAME_BYTES)]))).await;
        assert_eq!(limit, Ok(MAX_FRAME_BYTES as usize));
    }

    /// A piece of a hostile event stream.
    #[derive(Debug, Clone)]
    enum Piece {
        /// A frame of this total length (16 to a few hundred bytes), its bytes after the
        /// length all `fill`.
        Frame(u32, u8),
        /// A prelude announcing an out-of-bounds length, and nothing of its frame.
        BadLength(u32),
        /// Bytes that are not a frame: the reader takes their first four for a length.
        Raw(Vec<u8>),
    }

    fn piece() -> impl proptest::strategy::Strategy<Value = Piece> {
        use proptest::prelude::*;
        let bad = prop_oneof![0..MIN_FRAME_BYTES, MAX_FRAME_BYTES + 1..=u32::MAX];
        prop_oneof![
            6 => (MIN_FRAME_BYTES..400, any::<u8>()).prop_map(|(len, fill)| Piece::Frame(len, fill)),
            1 => bad.prop_map(Piece::BadLength),
            1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Piece::Raw),
        ]
    }

    fn stream_of(pieces: &[Piece]) -> Vec<u8> {
        let mut stream = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Frame(len, fill) => {
                    stream.extend_from_slice(&len.to_be_bytes());
                    stream.resize(stream.len() + *len as usize - 4, *fill);
                }
                Piece::BadLength(len) => stream.extend_from_slice(&len.to_be_bytes()),
                Piece::Raw(bytes) => stream.extend_from_slice(bytes),
            }
        }
        stream
    }

    /// The reference reading: the first length, at a frame boundary, out of bounds.
    fn first_bad_length(stream: &[u8]) -> Option<u32> {
        let mut at = 0_usize;
        while let Some(prelude) = stream.get(at..at + 4) {
            let len = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]);
            if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&len) {
                return Some(len);
            }
            at += len as usize;
        }
        None
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..proptest::test_runner::Config::with_cases(256)
        })]

        /// Any bytes, split anywhere: they pass through unchanged, or the body fails at the
        /// first frame whose prelude is out of bounds, as the reference reading says,
        /// wherever the splits fall; nothing is buffered.
        #[test]
        fn any_event_stream_bytes_pass_or_fail_at_the_first_bad_length(
            pieces in proptest::collection::vec(piece(), 0..12),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..8),
        ) {
            use futures_util::FutureExt;
            let stream = stream_of(&pieces);
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
            cuts.extend([0, stream.len()]);
            cuts.sort_unstable();
            let chunks = cuts.windows(2).map(|w| stream[w[0]..w[1]].to_vec()).collect();
            let read = read(BoundedBody::frames(body(chunks))).now_or_never();
            let Some(read) = read else {
                return Err(proptest::test_runner::TestCaseError::fail("the body waited"));
            };
            match (first_bad_length(&stream), read) {
                (None, Ok(n_bytes)) => proptest::prop_assert_eq!(n_bytes, stream.len()),
                (Some(len), Err(error)) => {
                    proptest::prop_assert!(error.contains(&format!(" {len} bytes")), "{error}");
                }
                (expected, read) => {
                    return Err(proptest::test_runner::TestCaseError::fail(format!(
                        "expected a failure at {expected:?}, read {read:?}"
                    )));
                }
            }
        }
    }

    #[tokio::test]
    async fn a_whole_answer_is_cut_at_the_limit_or_refused_by_its_length() {
        let mib = vec![0_u8; 1024 * 1024];
        let chunks = vec![mib.clone(); 32];
        assert_eq!(read(BoundedBody::whole(body(chunks), None)).await, Ok(32 * mib.len()));
        let chunks = vec![mib.clone(); 40];
        let error = read(BoundedBody::whole(body(chunks), None)).await.unwrap_err();
        assert!(error.contains("larger than the gateway's limit"), "{error}");
        let declared = Some(2 * 1024 * 1024 * 1024);
        let error = read(BoundedBody::whole(body(vec![vec![0; 10]]), declared)).await.unwrap_err();
        assert!(error.contains("2147483648 bytes"), "{error}");
    }
}
