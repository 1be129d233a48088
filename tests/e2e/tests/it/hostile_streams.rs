//! Hostile event streams, with proptest: a fake Bedrock answers every
//! InvokeModelWithResponseStream with the bytes a case chose (valid chunk frames with
//! bytes flipped, lengths overwritten, cut short or with bytes inserted; exception and
//! unknown frames; arbitrary bytes), and the gateway reads them through the real SDK, its
//! frame bound (`upstream/bounded.rs`) and the family's decoder, on `/v1/generate` and on
//! the passthrough.
//!
//! Nothing panics (no `internal` error), every stream ends in bounded time and memory in
//! its API's encoding, an intact stream is answered whole, and a stream damaged before its
//! last frame is an error, never a `done`. Each property runs [`CASES`] cases.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bedrock_sim::eventstream::{encode_chunk_frame, encode_exception_frame, encode_frame, padding};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cancellation::wait_until_idle;
use crate::harness::Harness;

const CASES: u32 = 128;

/// How long one answer may take: far above any, so that only a hang trips it.
const ANSWER_BOUND: Duration = Duration::from_secs(60);

/// Far below what buffering an announced 2 GiB frame would take (nextest runs each test in
/// its own process, so this is the test's peak).
const MEMORY_BOUND: u64 = 1024 * 1024 * 1024;

/// The bytes the fake Bedrock answers with.
type Answer = Arc<Mutex<Vec<u8>>>;

struct Env {
    harness: Harness,
    answer: Answer,
    runtime: tokio::runtime::Runtime,
}

impl Env {
    fn start() -> Env {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let answer: Answer = Arc::default();
        let harness = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let fake = axum::Router::new().fallback(stream_answer).with_state(answer.clone());
            tokio::spawn(async move { axum::serve(listener, fake).await });
            let config = format!(
                "[upstream]\nkind = \"simulator\"\nendpoint_url = \"{url}\"\nmax_attempts = 1\n\
                 first_byte_timeout_ms = 20000\n\
                 stream_idle_timeout_ms = 20000\n\n\
                 [models.titan]\nmodel_id = \"amazon.titan-text-express-v1\"\n"
            );
            Harness::gateway_only(&config).await
        });
        Env { harness, answer, runtime }
    }

    /// Both stream routes with `bytes` as Bedrock's answer.
    fn check(&self, stream: &HostileStream) -> Result<(), TestCaseError> {
        let bytes = stream.bytes();
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) = bytes.clone();
        let fail = |what: String| {
            TestCaseError::fail(format!("{what}\nstream: {stream:?}\nbytes: {bytes:02x?}"))
        };
        let generate = self.runtime.block_on(self.generate()).map_err(&fail)?;
        check_generate(stream, &generate).map_err(|e| fail(format!("/v1/generate: {e}")))?;
        let passthrough = self.runtime.block_on(self.passthrough()).map_err(&fail)?;
        check_passthrough(stream, &passthrough)
            .map_err(|e| fail(format!("passthrough: {e}: {passthrough:?}")))
    }

    async fn generate(&self) -> Result<(StatusCode, String), String> {
        let body = json!({"model": "titan", "prompt": "Hi", "max_tokens": 32, "stream": true});
        let request = self.harness.http.post(self.harness.url("/v1/generate")).json(&body);
        bounded(async {
            let response = request.send().await.map_err(|e| format!("no answer: {e:?}"))?;
            let status = response.status();
            Ok((status, response.text().await.map_err(|e| format!("cut off: {e:?}"))?))
        })
        .await
    }

    async fn passthrough(
        &self,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), String> {
        let body = json!({"inputText": "Hi", "textGenerationConfig": {"maxTokenCount": 32}});
        let url = self.harness.url("/model/titan/invoke-with-response-stream");
        let request = self.harness.http.post(url).json(&body);
        bounded(async {
            let response = request.send().await.map_err(|e| format!("no answer: {e:?}"))?;
            let (status, headers) = (response.status(), response.headers().clone());
            let body = response.bytes().await.map_err(|e| format!("cut off: {e:?}"))?;
            Ok((status, headers, body.to_vec()))
        })
        .await
    }
}

async fn bounded<T>(exchange: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(ANSWER_BOUND, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no whole answer within {ANSWER_BOUND:?}")))
}

async fn stream_answer(State(answer): State<Answer>) -> Response {
    let bytes = answer.lock().unwrap_or_else(PoisonError::into_inner).clone();
    (
        [
            ("content-type", "application/vnd.amazon.eventstream"),
            ("x-amzn-bedrock-content-type", "application/json"),
            ("x-amzn-requestid", "fake-bedrock"),
        ],
        bytes,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------
// The streams
// ---------------------------------------------------------------------------------

/// One frame (or not) of what the fake Bedrock sends.
#[derive(Debug, Clone)]
enum Part {
    /// A Titan chunk with this text; the last one of a stream carries its stop reason.
    Chunk(String),
    /// A Bedrock exception frame of this union member.
    Exception(&'static str),
    /// An event of a type the SDK does not model.
    UnknownEvent,
    /// Bytes that are no frame.
    Garbage(Vec<u8>),
}

/// A change to the bytes of the frames.
#[derive(Debug, Clone)]
enum Damage {
    /// `byte ^= mask` (mask not 0) at a place.
    Flip(prop::sample::Index, u8),
    /// A frame's total length or headers length (`field` 0 or 1) overwritten.
    Length { frame: prop::sample::Index, field: bool, value: u32 },
    /// The bytes from a place on are dropped.
    Cut(prop::sample::Index),
    /// Bytes inserted at a place.
    Insert(prop::sample::Index, Vec<u8>),
}

#[derive(Debug, Clone)]
struct HostileStream {
    parts: Vec<Part>,
    damage: Vec<Damage>,
}

impl HostileStream {
    /// The frames of the parts, each with its offset.
    fn frames(&self) -> Vec<Vec<u8>> {
        let n_chunks = self.parts.iter().filter(|p| matches!(p, Part::Chunk(_))).count();
        let mut seen_chunks = 0;
        self.parts
            .iter()
            .map(|part| match part {
                Part::Chunk(text) => {
                    seen_chunks += 1;
                    let last = seen_chunks == n_chunks;
                    let chunk = titan_chunk(text, last);
                    encode_chunk_frame(chunk.to_string().as_bytes(), Some(padding(text.len() % 7)))
                }
                Part::Exception(member) => {
                    encode_exception_frame(member, br#"{"message":"the fake Bedrock refused"}"#)
                }
                Part::UnknownEvent => encode_frame(
                    &[
                        (":event-type", "somethingNew"),
                        (":content-type", "application/json"),
                        (":message-type", "event"),
                    ],
                    b"{}",
                ),
                Part::Garbage(bytes) => bytes.clone(),
            })
            .collect()
    }

    fn bytes(&self) -> Vec<u8> {
        let frames = self.frames();
        let starts: Vec<usize> = frames
            .iter()
            .scan(0, |at, frame| {
                let start = *at;
                *at += frame.len();
                Some(start)
            })
            .collect();
        let mut bytes = frames.concat();
        for damage in &self.damage {
            match damage {
                Damage::Flip(at, mask) if !bytes.is_empty() => {
                    let at = at.index(bytes.len());
                    bytes[at] ^= mask;
                }
                Damage::Length { frame, field, value } if !starts.is_empty() => {
                    let at = starts[frame.index(starts.len())] + if *field { 4 } else { 0 };
                    if at + 4 <= bytes.len() {
                        bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
                    }
                }
                Damage::Cut(at) => bytes.truncate(at.index(bytes.len() + 1)),
                Damage::Insert(at, inserted) => {
                    let at = at.index(bytes.len() + 1);
                    bytes.splice(at..at, inserted.iter().copied());
                }
                _ => {}
            }
        }
        bytes
    }

    /// Whether a part changes nothing of the answer: a chunk, an event the SDK skips, no
    /// bytes at all.
    fn harmless(part: &Part) -> bool {
        match part {
            Part::Chunk(_) | Part::UnknownEvent => true,
            Part::Garbage(bytes) => bytes.is_empty(),
            Part::Exception(_) => false,
        }
    }

    fn n_chunks(&self) -> usize {
        self.parts.iter().filter(|part| matches!(part, Part::Chunk(_))).count()
    }

    /// Chunks (and skipped events) only, and intact: the model's whole answer.
    fn intact(&self) -> bool {
        self.damage.is_empty() && self.n_chunks() > 0 && self.parts.iter().all(Self::harmless)
    }

    /// The text an intact stream answers.
    fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Chunk(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The answer cannot be complete: there is no last chunk, something other than a
    /// chunk or a skipped event comes before it, or the bytes before it differ from the
    /// intact frames.
    fn broken_before_the_end(&self) -> bool {
        let Some(last_chunk) = self.parts.iter().rposition(|part| matches!(part, Part::Chunk(_)))
        else {
            return true;
        };
        if !self.parts[..last_chunk].iter().all(Self::harmless) {
            return true;
        }
        let frames = self.frames();
        let last_start = frames[..last_chunk].iter().map(Vec::len).sum::<usize>();
        let intact = frames.concat();
        let damaged = self.bytes();
        damaged.len() < last_start || damaged[..last_start] != intact[..last_start]
    }
}

fn titan_chunk(text: &str, last: bool) -> Value {
    if last {
        json!({"outputText": text, "index": 0, "totalOutputTextTokenCount": 4,
            "completionReason": "FINISH", "inputTextTokenCount": null,
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 2, "outputTokenCount": 4,
                "invocationLatency": 20, "firstByteLatency": 10}})
    } else {
        json!({"outputText": text, "index": 0, "totalOutputTextTokenCount": null,
            "completionReason": null, "inputTextTokenCount": 2})
    }
}

fn hostile_stream() -> impl Strategy<Value = HostileStream> {
    let text = "[a-zA-Z ,.]{0,12}";
    let part = prop_oneof![
        8 => text.prop_map(Part::Chunk),
        1 => proptest::sample::select(vec![
            "throttlingException", "modelStreamErrorException", "internalServerException",
            "validationException", "somethingElseException",
        ])
        .prop_map(Part::Exception),
        1 => Just(Part::UnknownEvent),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Part::Garbage),
    ];
    let length = prop_oneof![
        any::<u32>(),
        proptest::sample::select(vec![0, 1, 15, 16, 17, 1 << 24, (1 << 24) + 1, 1 << 31, u32::MAX]),
    ];
    let damage = prop_oneof![
        (any::<prop::sample::Index>(), 1_u8..=255).prop_map(|(at, mask)| Damage::Flip(at, mask)),
        (any::<prop::sample::Index>(), any::<bool>(), length)
            .prop_map(|(frame, field, value)| Damage::Length { frame, field, value }),
        any::<prop::sample::Index>().prop_map(Damage::Cut),
        (any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(at, bytes)| Damage::Insert(at, bytes)),
    ];
    let intact = proptest::collection::vec(text.prop_map(Part::Chunk), 1..5)
        .prop_map(|parts| HostileStream { parts, damage: Vec::new() });
    let damaged = (proptest::collection::vec(part, 0..5), proptest::collection::vec(damage, 0..3))
        .prop_map(|(parts, damage)| HostileStream { parts, damage });
    prop_oneof![1 => intact, 4 => damaged]
}

// ---------------------------------------------------------------------------------
// What the answers must be
// ---------------------------------------------------------------------------------

/// `/v1/generate`: the whole text and `done` for an intact stream; for a broken one an
/// error, as a status before the stream or as its last event; never `internal`.
fn check_generate(
    stream: &HostileStream,
    (status, text): &(StatusCode, String),
) -> Result<(), String> {
    if status.as_u16() != 200 {
        let body: Value =
            serde_json::from_str(text).map_err(|e| format!("{status}: {e}: {text}"))?;
        let kind = body["error"]["type"].as_str().ok_or(format!("{status}: {text}"))?;
        if kind == "internal" || stream.intact() {
            return Err(format!("{status}: {text}"));
        }
        return Ok(());
    }
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|block| !block.trim().is_empty()) {
        let mut event = "message";
        let mut data = "";
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event: ") {
                event = name;
            } else if let Some(value) = line.strip_prefix("data: ") {
                data = value;
            }
        }
        if !data.is_empty() {
            let data: Value = serde_json::from_str(data).map_err(|e| format!("{e}: {data}"))?;
            events.push((event.to_owned(), data));
        }
    }
    let (last, data) = events.last().ok_or("an empty event stream")?;
    let deltas: String = events
        .iter()
        .filter(|(event, _)| event == "delta")
        .filter_map(|(_, data)| data["text"].as_str())
        .collect();
    match last.as_str() {
        "done" if stream.broken_before_the_end() => {
            Err(format!("done for a broken stream: {text}"))
        }
        "done" if stream.intact() && deltas != stream.text() => {
            Err(format!("{deltas:?} for {:?}", stream.text()))
        }
        "done" => Ok(()),
        "error" if stream.intact() => Err(format!("an intact stream failed: {text}")),
        "error" => match data["error"]["type"].as_str() {
            Some("internal") | None => Err(format!("not a clear error: {data}")),
            Some(_) => Ok(()),
        },
        other => Err(format!("the stream ended with {other:?}")),
    }
}

/// The passthrough: Bedrock's encoding whatever happens; an intact stream forwarded chunk
/// by chunk; a broken one ends with an exception frame, or is refused before it starts.
fn check_passthrough(
    stream: &HostileStream,
    (status, headers, body): &(StatusCode, reqwest::header::HeaderMap, Vec<u8>),
) -> Result<(), String> {
    if status.as_u16() != 200 {
        let shape = headers.get("x-amzn-errortype").ok_or("no x-amzn-ErrorType")?;
        let gateway_type = headers.get("x-gateway-error-type").and_then(|v| v.to_str().ok());
        if stream.intact() || gateway_type == Some("internal") {
            return Err(format!("{status} {shape:?}"));
        }
        let body: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        return body["message"].as_str().map(|_| ()).ok_or("no message".to_owned());
    }
    let frames = frames(body)?;
    let n_chunks = frames.iter().filter(|kind| kind.as_str() == "chunk").count();
    let ended_with_exception = frames.last().is_some_and(|kind| kind != "chunk");
    if frames.iter().rev().skip(1).any(|kind| kind != "chunk") {
        return Err(format!("an exception before the end: {frames:?}"));
    }
    if stream.intact() {
        let expected = stream.n_chunks();
        return match (ended_with_exception, n_chunks == expected) {
            (false, true) => Ok(()),
            _ => Err(format!("{frames:?} for {expected} chunks")),
        };
    }
    Ok(())
}

/// Each frame's `:event-type` or `:exception-type`, checked to be whole frames with
/// their checksums right.
fn frames(mut bytes: &[u8]) -> Result<Vec<String>, String> {
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let mut kinds = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 16 {
            return Err(format!("{} bytes after the last whole frame", bytes.len()));
        }
        let (total, headers_len) = (be32(bytes) as usize, be32(&bytes[4..]) as usize);
        if total > bytes.len() || total < 16 + headers_len {
            return Err(format!("a frame of {total} bytes with {headers_len} of headers"));
        }
        if crc32(&bytes[..8]) != be32(&bytes[8..])
            || crc32(&bytes[..total - 4]) != be32(&bytes[total - 4..])
        {
            return Err("a frame with a wrong checksum".to_owned());
        }
        let mut block = &bytes[12..12 + headers_len];
        let mut headers = Vec::new();
        while let Some((&name_len, rest)) = block.split_first() {
            let (name, rest) = rest.split_at(usize::from(name_len));
            if rest.first() != Some(&7) {
                return Err(format!("header {name:?} is not a string"));
            }
            let value_len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
            let value = &rest[3..3 + value_len];
            headers.push((String::from_utf8_lossy(name), String::from_utf8_lossy(value)));
            block = &rest[3 + value_len..];
        }
        let header = |wanted: &str| {
            headers.iter().find(|(name, _)| name == wanted).map(|(_, value)| value.to_string())
        };
        let kind = match header(":message-type").as_deref() {
            Some("event") => header(":event-type").unwrap_or_default(),
            _ => header(":exception-type").unwrap_or_else(|| "no exception type".to_owned()),
        };
        kinds.push(kind);
        bytes = &bytes[total..];
    }
    Ok(kinds)
}

/// zlib's CRC32, bit by bit: the test reads frames without the gateway's code.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn hostile_event_streams_end_in_an_error_or_the_whole_answer() {
    let env = Env::start();
    let config = Config { failure_persistence: None, ..Config::with_cases(CASES) };
    let mut runner = TestRunner::new(config);
    if let Err(failure) = runner.run(&hostile_stream(), |stream| env.check(&stream)) {
        panic!("{failure}");
    }
    env.runtime.block_on(wait_until_idle(&env.harness));
    if let Some(peak) = peak_rss_bytes() {
        assert!(peak < MEMORY_BOUND, "peak resident memory {peak} bytes");
    }
}

#[test]
fn the_test_crc32_is_zlibs() {
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}
