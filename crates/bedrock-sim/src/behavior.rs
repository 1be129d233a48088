//! What a test can make the simulator do to a model's requests: [`Behavior`] (latency and an
//! optional [`Fault`]), the [`ErrorKind`]s Bedrock can answer with, and their JSON form.
//!
//! The JSON form is documented in the crate docs; it is converted through the private
//! `*Json` structs, which deny unknown fields.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Latency and fault injection for the requests of one model (or of every model, `"*"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BehaviorJson", into = "BehaviorJson")]
pub struct Behavior {
    /// Slept before the response starts (invoke and stream), before an injected HTTP error too.
    pub first_byte_latency: Duration,
    /// Slept between stream chunks; for invoke, slept once per output token.
    pub token_latency: Duration,
    /// The failure to inject, if any.
    pub fault: Option<Fault>,
    /// How many requests the fault hits before it stops; `None` means every request.
    pub fault_times: Option<u32>,
    /// Stream: after this many chunks (after the last one, when the stream has fewer), the
    /// stream holds, its connection open, until the simulator releases it
    /// ([`Simulator::release_held`](crate::Simulator::release_held), `POST /_sim/release`);
    /// then it goes on. Invoke: no effect. Not a fault: `fault_times` does not count it.
    pub hold_after_chunks: Option<u32>,
}

/// A failure injected into a request that was otherwise valid.
///
/// "After N chunks" counts the chunks that are sent intact first. When the stream has fewer
/// than N chunks, the fault fires after the last one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultJson", into = "FaultJson")]
pub enum Fault {
    /// An HTTP error response instead of the answer, on both routes.
    Error(ErrorKind),
    /// Stream: an exception frame after N chunks, then the body ends. Invoke: same as `Error`.
    ErrorAfterChunks(ErrorKind, u32),
    /// Stream: N chunks, then the first half of a frame, then the body ends.
    /// Invoke: a 200 whose body is the first half of the JSON (invalid JSON).
    TruncateAfterChunks(u32),
    /// Stream: N good chunks, then one whose message CRC is wrong, then the body ends.
    /// Invoke: no effect.
    BadChecksumAfterChunks(u32),
    /// Stream: N chunks, then the body fails and the connection is dropped.
    /// Invoke: the headers are sent, then the body fails before its first byte.
    AbortAfterChunks(u32),
    /// Invoke: a 200 whose body is this bad body instead of the answer. Stream: N chunks,
    /// then the bad body in place of the rest (see [`BadBody`]).
    BadBodyAfterChunks(BadBody, u32),
    /// An error answer from a proxy in front of Bedrock instead of Bedrock's: this status
    /// (400 to 599), an HTML page (`text/html`), no `x-amzn-ErrorType`.
    ProxyError(u16),
    /// An error answer of an error type Bedrock does not (yet) have: status 400,
    /// `x-amzn-ErrorType: <name>:…`, a `{"message"}` body.
    UnknownError(String),
    /// `Error(kind)` with its message padded to this many bytes.
    LongErrorMessage(ErrorKind, u32),
    /// Invoke: the first half of the body, then the connection drops. Stream: N chunks,
    /// the first half of the next frame, then the connection drops.
    ResetMidBodyAfterChunks(u32),
    /// Every byte of the answer's body sent alone, this long after the one before (a slow
    /// drip), on both routes.
    Drip(Duration),
    /// Stream: N chunks, then a frame whose prelude announces 2 GiB, then zeros after it
    /// until 2 GiB are sent or the client goes away. Invoke: a 200 whose `Content-Length`
    /// announces 2 GiB, then zeros.
    HugeFrameAfterChunks(u32),
    /// Stream: chunks without end (never the last one), `token_latency` apart (at least
    /// 1 ms). Invoke: a body that never ends.
    Endless,
}

/// A malformed answer body (see [`Fault::BadBodyAfterChunks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadBody {
    /// Invoke: bytes that are not JSON. Stream: one chunk whose bytes are not JSON, then
    /// the end.
    InvalidJson,
    /// Invoke: another model family's answer. Stream: another family's chunks to the end.
    OtherFamily,
    /// Invoke: a JSON object no family answers. Stream: chunks of a shape no family sends,
    /// to the end.
    UnknownShape,
    /// Invoke: an empty body. Stream: the end, without a last chunk or invocation metrics.
    Empty,
}

/// The 2 GiB a [`Fault::HugeFrameAfterChunks`] announces.
pub const HUGE_FRAME_BYTES: u32 = 1 << 31;

/// The longest message a [`Fault::LongErrorMessage`] may ask for.
pub const MAX_LONG_MESSAGE_BYTES: u32 = 64 * 1024 * 1024;

/// The error shapes of InvokeModel and InvokeModelWithResponseStream (wire document §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// `AccessDeniedException`, 403.
    #[serde(rename = "AccessDeniedException")]
    AccessDenied,
    /// `ResourceNotFoundException`, 404.
    #[serde(rename = "ResourceNotFoundException")]
    ResourceNotFound,
    /// `ThrottlingException`, 429.
    #[serde(rename = "ThrottlingException")]
    Throttling,
    /// `ModelTimeoutException`, 408.
    #[serde(rename = "ModelTimeoutException")]
    ModelTimeout,
    /// `InternalServerException`, 500.
    #[serde(rename = "InternalServerException")]
    InternalServer,
    /// `ServiceUnavailableException`, 503.
    #[serde(rename = "ServiceUnavailableException")]
    ServiceUnavailable,
    /// `ValidationException`, 400.
    #[serde(rename = "ValidationException")]
    Validation,
    /// `ServiceQuotaExceededException`, 400.
    #[serde(rename = "ServiceQuotaExceededException")]
    ServiceQuotaExceeded,
    /// `ModelNotReadyException`, 429.
    #[serde(rename = "ModelNotReadyException")]
    ModelNotReady,
    /// `ModelErrorException`, 424, with `originalStatusCode` and `resourceName`.
    #[serde(rename = "ModelErrorException")]
    ModelError,
    /// `ModelStreamErrorException`, 424, with `originalStatusCode` and `originalMessage`.
    #[serde(rename = "ModelStreamErrorException")]
    ModelStreamError,
}

impl ErrorKind {
    /// Every kind, in the order of the wire document's table.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::AccessDenied,
        ErrorKind::ResourceNotFound,
        ErrorKind::Throttling,
        ErrorKind::ModelTimeout,
        ErrorKind::InternalServer,
        ErrorKind::ServiceUnavailable,
        ErrorKind::Validation,
        ErrorKind::ServiceQuotaExceeded,
        ErrorKind::ModelNotReady,
        ErrorKind::ModelError,
        ErrorKind::ModelStreamError,
    ];

    /// The error shape name, the prefix of `x-amzn-ErrorType`: `"ThrottlingException"`.
    pub fn shape_name(self) -> &'static str {
        match self {
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::ModelTimeout => "ModelTimeoutException",
            ErrorKind::InternalServer => "InternalServerException",
            ErrorKind::ServiceUnavailable => "ServiceUnavailableException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            ErrorKind::ModelNotReady => "ModelNotReadyException",
            ErrorKind::ModelError => "ModelErrorException",
            ErrorKind::ModelStreamError => "ModelStreamErrorException",
        }
    }

    /// The HTTP status Bedrock answers this error with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::AccessDenied => 403,
            ErrorKind::ResourceNotFound => 404,
            ErrorKind::Throttling => 429,
            ErrorKind::ModelTimeout => 408,
            ErrorKind::InternalServer => 500,
            ErrorKind::ServiceUnavailable => 503,
            ErrorKind::Validation => 400,
            ErrorKind::ServiceQuotaExceeded => 400,
            ErrorKind::ModelNotReady => 429,
            ErrorKind::ModelError => 424,
            ErrorKind::ModelStreamError => 424,
        }
    }

    /// The `:exception-type` of this error inside a stream, when `ResponseStream` has a
    /// member for it (wire document §2.3).
    pub fn stream_exception_type(self) -> Option<&'static str> {
        match self {
            ErrorKind::InternalServer => Some("internalServerException"),
            ErrorKind::ModelStreamError => Some("modelStreamErrorException"),
            ErrorKind::Validation => Some("validationException"),
            ErrorKind::Throttling => Some("throttlingException"),
            ErrorKind::ModelTimeout => Some("modelTimeoutException"),
            ErrorKind::ServiceUnavailable => Some("serviceUnavailableException"),
            ErrorKind::AccessDenied
            | ErrorKind::ResourceNotFound
            | ErrorKind::ServiceQuotaExceeded
            | ErrorKind::ModelNotReady
            | ErrorKind::ModelError => None,
        }
    }

    /// The lowerCamel form of the shape name, sent as `:exception-type` even for the kinds
    /// that have no `ResponseStream` member (the SDK then reports `Unhandled`).
    pub fn lower_camel_name(self) -> String {
        let shape = self.shape_name();
        let mut chars = shape.chars();
        match chars.next() {
            Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
            None => String::new(),
        }
    }

    /// A realistic `message` for this error.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorKind::AccessDenied => {
                "You don't have access to the model with the specified model ID."
            }
            ErrorKind::ResourceNotFound => {
                "This model version has reached the end of its life. Please refer to the AWS \
                 documentation for more details."
            }
            ErrorKind::Throttling => "Too many requests, please wait before trying again.",
            ErrorKind::ModelTimeout => {
                "Model has timed out in processing the request. Try your request again."
            }
            ErrorKind::InternalServer => {
                "The system encountered an unexpected error during processing. Try your request \
                 again."
            }
            ErrorKind::ServiceUnavailable => "Bedrock is unable to process your request.",
            ErrorKind::Validation => {
                "Malformed input request: 2 schema violations found, please reformat your input \
                 and try again."
            }
            ErrorKind::ServiceQuotaExceeded => {
                "Your request exceeded the service quota for this model. Request a quota \
                 increase and try again."
            }
            ErrorKind::ModelNotReady => {
                "Model is not ready for inference. Wait and try your request again."
            }
            ErrorKind::ModelError => "The model returned an error. Try your request again.",
            ErrorKind::ModelStreamError => {
                "The model encountered an error while streaming its response."
            }
        }
    }
}

/// The `originalStatusCode` that model errors carry.
pub(crate) const MODEL_ORIGINAL_STATUS_CODE: u16 = 500;

/// The `originalMessage` of a `ModelStreamErrorException`.
pub(crate) const MODEL_STREAM_ORIGINAL_MESSAGE: &str =
    "Internal failure while generating the response.";

/// The JSON form of [`Behavior`]; durations are whole milliseconds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BehaviorJson {
    #[serde(default)]
    first_byte_latency_ms: u64,
    #[serde(default)]
    token_latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fault: Option<Fault>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fault_times: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hold_after_chunks: Option<u32>,
}

impl TryFrom<BehaviorJson> for Behavior {
    type Error = String;

    fn try_from(json: BehaviorJson) -> Result<Behavior, String> {
        Ok(Behavior {
            first_byte_latency: Duration::from_millis(json.first_byte_latency_ms),
            token_latency: Duration::from_millis(json.token_latency_ms),
            fault: json.fault,
            fault_times: json.fault_times,
            hold_after_chunks: json.hold_after_chunks,
        })
    }
}

impl From<Behavior> for BehaviorJson {
    fn from(behavior: Behavior) -> BehaviorJson {
        BehaviorJson {
            first_byte_latency_ms: whole_millis(behavior.first_byte_latency),
            token_latency_ms: whole_millis(behavior.token_latency),
            fault: behavior.fault,
            fault_times: behavior.fault_times,
            hold_after_chunks: behavior.hold_after_chunks,
        }
    }
}

/// The JSON form of [`Fault`]: exactly one of `error` (with an optional `after_chunks` or
/// `message_bytes`), `body` (with an optional `after_chunks`), `truncate_after_chunks`,
/// `bad_checksum_after_chunks`, `abort_after_chunks`, `proxy_error`, `unknown_error`,
/// `reset_mid_body_after_chunks`, `drip_byte_ms`, `huge_frame_after_chunks` or
/// `endless` (`true`).
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<BadBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_chunks: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_bytes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    truncate_after_chunks: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bad_checksum_after_chunks: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    abort_after_chunks: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proxy_error: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unknown_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reset_mid_body_after_chunks: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drip_byte_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    huge_frame_after_chunks: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endless: Option<bool>,
}

impl TryFrom<FaultJson> for Fault {
    type Error = String;

    fn try_from(json: FaultJson) -> Result<Fault, String> {
        let forms = [
            json.error.is_some(),
            json.body.is_some(),
            json.truncate_after_chunks.is_some(),
            json.bad_checksum_after_chunks.is_some(),
            json.abort_after_chunks.is_some(),
            json.proxy_error.is_some(),
            json.unknown_error.is_some(),
            json.reset_mid_body_after_chunks.is_some(),
            json.drip_byte_ms.is_some(),
            json.huge_frame_after_chunks.is_some(),
            json.endless.is_some(),
        ];
        let after_chunks_allowed = json.error.is_some() || json.body.is_some();
        let message_bytes_allowed = json.error.is_some() && json.after_chunks.is_none();
        if forms.iter().filter(|set| **set).count() != 1
            || (json.after_chunks.is_some() && !after_chunks_allowed)
            || (json.message_bytes.is_some() && !message_bytes_allowed)
        {
            return Err("a fault needs exactly one of `error` (optionally with `after_chunks` \
                        or `message_bytes`), `body` (optionally with `after_chunks`), \
                        `truncate_after_chunks`, `bad_checksum_after_chunks`, \
                        `abort_after_chunks`, `proxy_error`, `unknown_error`, \
                        `reset_mid_body_after_chunks`, `drip_byte_ms`, \
                        `huge_frame_after_chunks` or `endless`"
                .to_owned());
        }
        if let Some(kind) = json.error {
            return Ok(match (json.after_chunks, json.message_bytes) {
                (Some(n_chunks), _) => Fault::ErrorAfterChunks(kind, n_chunks),
                (None, Some(n_bytes)) if n_bytes > MAX_LONG_MESSAGE_BYTES => {
                    return Err(format!(
                        "`message_bytes`: {n_bytes} is more than {MAX_LONG_MESSAGE_BYTES}"
                    ));
                }
                (None, Some(n_bytes)) => Fault::LongErrorMessage(kind, n_bytes),
                (None, None) => Fault::Error(kind),
            });
        }
        if let Some(bad) = json.body {
            return Ok(Fault::BadBodyAfterChunks(bad, json.after_chunks.unwrap_or(0)));
        }
        if let Some(status) = json.proxy_error {
            if !(400..=599).contains(&status) {
                return Err(format!("`proxy_error`: {status} is not an error status (400 to 599)"));
            }
            return Ok(Fault::ProxyError(status));
        }
        if let Some(name) = json.unknown_error {
            let plain = !name.is_empty() && name.len() <= 128;
            if !(plain && name.chars().all(|c| c.is_ascii_alphanumeric())) {
                return Err(format!(
                    "`unknown_error`: {name:?} is not 1 to 128 ASCII letters and digits"
                ));
            }
            if ErrorKind::ALL.iter().any(|kind| kind.shape_name() == name) {
                return Err(format!("`unknown_error`: {name} is a known error: use `error`"));
            }
            return Ok(Fault::UnknownError(name));
        }
        if let Some(ms) = json.drip_byte_ms {
            if !(1..=60_000).contains(&ms) {
                return Err(format!("`drip_byte_ms`: {ms} is not in 1..=60000"));
            }
            return Ok(Fault::Drip(Duration::from_millis(ms)));
        }
        if let Some(endless) = json.endless {
            if !endless {
                return Err("`endless`: only `true` means anything".to_owned());
            }
            return Ok(Fault::Endless);
        }
        let fault = match (
            json.truncate_after_chunks,
            json.bad_checksum_after_chunks,
            json.abort_after_chunks,
            json.reset_mid_body_after_chunks,
        ) {
            (Some(n_chunks), ..) => Fault::TruncateAfterChunks(n_chunks),
            (_, Some(n_chunks), ..) => Fault::BadChecksumAfterChunks(n_chunks),
            (_, _, Some(n_chunks), _) => Fault::AbortAfterChunks(n_chunks),
            (.., Some(n_chunks)) => Fault::ResetMidBodyAfterChunks(n_chunks),
            (None, None, None, None) => {
                Fault::HugeFrameAfterChunks(json.huge_frame_after_chunks.unwrap_or(0))
            }
        };
        Ok(fault)
    }
}

impl From<Fault> for FaultJson {
    fn from(fault: Fault) -> FaultJson {
        let mut json = FaultJson::default();
        match fault {
            Fault::Error(kind) => json.error = Some(kind),
            Fault::ErrorAfterChunks(kind, n_chunks) => {
                json.error = Some(kind);
                json.after_chunks = Some(n_chunks);
            }
            Fault::TruncateAfterChunks(n_chunks) => json.truncate_after_chunks = Some(n_chunks),
            Fault::BadChecksumAfterChunks(n_chunks) => {
                json.bad_checksum_after_chunks = Some(n_chunks);
            }
            Fault::AbortAfterChunks(n_chunks) => json.abort_after_chunks = Some(n_chunks),
            Fault::BadBodyAfterChunks(bad, n_chunks) => {
                json.body = Some(bad);
                json.after_chunks = (n_chunks > 0).then_some(n_chunks);
            }
            Fault::ProxyError(status) => json.proxy_error = Some(status),
            Fault::UnknownError(name) => json.unknown_error = Some(name),
            Fault::LongErrorMessage(kind, n_bytes) => {
                json.error = Some(kind);
                json.message_bytes = Some(n_bytes);
            }
            Fault::ResetMidBodyAfterChunks(n_chunks) => {
                json.reset_mid_body_after_chunks = Some(n_chunks);
            }
            Fault::Drip(pause) => json.drip_byte_ms = Some(whole_millis(pause)),
            Fault::HugeFrameAfterChunks(n_chunks) => json.huge_frame_after_chunks = Some(n_chunks),
            Fault::Endless => json.endless = Some(true),
        }
        json
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn whole_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behavior_json_round_trips() {
        let text = r#"{"first_byte_latency_ms":50,"token_latency_ms":5,"fault":{"error":"ThrottlingException","after_chunks":2},"fault_times":1,"hold_after_chunks":1}"#;
        let behavior: Behavior = serde_json::from_str(text).unwrap();
        assert_eq!(
            behavior,
            Behavior {
                first_byte_latency: Duration::from_millis(50),
                token_latency: Duration::from_millis(5),
                fault: Some(Fault::ErrorAfterChunks(ErrorKind::Throttling, 2)),
                fault_times: Some(1),
                hold_after_chunks: Some(1),
            }
        );
        assert_eq!(serde_json::to_string(&behavior).unwrap(), text);
    }

    #[test]
    fn every_fault_round_trips() {
        let faults = [
            Fault::Error(ErrorKind::ModelError),
            Fault::ErrorAfterChunks(ErrorKind::ModelStreamError, 0),
            Fault::TruncateAfterChunks(3),
            Fault::BadChecksumAfterChunks(1),
            Fault::AbortAfterChunks(2),
            Fault::BadBodyAfterChunks(BadBody::InvalidJson, 0),
            Fault::BadBodyAfterChunks(BadBody::OtherFamily, 3),
            Fault::BadBodyAfterChunks(BadBody::UnknownShape, 1),
            Fault::BadBodyAfterChunks(BadBody::Empty, 2),
            Fault::ProxyError(502),
            Fault::UnknownError("SomethingNewException".to_owned()),
            Fault::LongErrorMessage(ErrorKind::Validation, 20_000_000),
            Fault::ResetMidBodyAfterChunks(1),
            Fault::Drip(Duration::from_millis(5)),
            Fault::HugeFrameAfterChunks(2),
            Fault::Endless,
        ];
        for fault in faults {
            let text = serde_json::to_string(&fault).unwrap();
            assert_eq!(serde_json::from_str::<Fault>(&text).unwrap(), fault, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&Fault::TruncateAfterChunks(3)).unwrap(),
            r#"{"truncate_after_chunks":3}"#
        );
        let forms = [
            (r#"{"body":"invalid_json"}"#, Fault::BadBodyAfterChunks(BadBody::InvalidJson, 0)),
            (
                r#"{"body":"other_family","after_chunks":2}"#,
                Fault::BadBodyAfterChunks(BadBody::OtherFamily, 2),
            ),
            (
                r#"{"error":"ValidationException","message_bytes":1000}"#,
                Fault::LongErrorMessage(ErrorKind::Validation, 1000),
            ),
            (r#"{"drip_byte_ms":20}"#, Fault::Drip(Duration::from_millis(20))),
            (r#"{"endless":true}"#, Fault::Endless),
        ];
        for (text, fault) in forms {
            assert_eq!(serde_json::from_str::<Fault>(text).unwrap(), fault, "{text}");
        }
    }

    #[test]
    fn empty_object_is_the_default_behavior() {
        assert_eq!(serde_json::from_str::<Behavior>("{}").unwrap(), Behavior::default());
    }

    #[test]
    fn bad_json_is_rejected() {
        let bad = [
            r#"{"latency_ms":5}"#,
            r#"{"fault":{}}"#,
            r#"{"fault":{"error":"NopeException"}}"#,
            r#"{"fault":{"truncate_after_chunks":1,"abort_after_chunks":1}}"#,
            r#"{"fault":{"after_chunks":1}}"#,
            r#"{"fault":{"error":"ThrottlingException","colour":"red"}}"#,
            r#"{"fault":{"body":"gibberish"}}"#,
            r#"{"fault":{"truncate_after_chunks":1,"after_chunks":1}}"#,
            r#"{"fault":{"error":"ValidationException","after_chunks":1,"message_bytes":9}}"#,
            r#"{"fault":{"error":"ValidationException","message_bytes":100000000}}"#,
            r#"{"fault":{"proxy_error":200}}"#,
            r#"{"fault":{"unknown_error":"ThrottlingException"}}"#,
            r#"{"fault":{"unknown_error":"bad name!"}}"#,
            r#"{"fault":{"drip_byte_ms":0}}"#,
            r#"{"fault":{"endless":false}}"#,
            r#"{"fault":{"endless":true,"drip_byte_ms":5}}"#,
        ];
        for text in bad {
            assert!(serde_json::from_str::<Behavior>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn kinds_are_consistent() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.shape_name()));
            assert!(kind.shape_name().ends_with("Exception"));
            if let Some(exception_type) = kind.stream_exception_type() {
                assert_eq!(exception_type, kind.lower_camel_name());
            }
        }
        assert_eq!(ErrorKind::ModelNotReady.lower_camel_name(), "modelNotReadyException");
        let n_in_stream = ErrorKind::ALL.iter().filter(|k| k.stream_exception_type().is_some());
        assert_eq!(n_in_stream.count(), 6);
    }
}
