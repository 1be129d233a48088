//! Bedrock's answers as the thin transport reads them: its error answers, the exception
//! frames of a stream, and the payload of a `chunk` frame (the wire document §2 and §3),
//! decoded with the rules the SDK client decodes them with, so that both transports give
//! the pipeline the same [`UpstreamError`] for the same bytes:
//!
//! - An error answer's code is `x-amzn-ErrorType`, else the body's `code`, else its
//!   `__type`, cut at its first `:` and after its last `#`; its message is the body's
//!   last `message`, `Message` or `errorMessage`. A body that is not a JSON object, or a
//!   modelled shape whose members are of the wrong type, is an error of no code and no
//!   message (the SDK's "unhandled" error); a code the operation does not model keeps
//!   its code and message.
//! - An exception frame's kind is its `:exception-type`, its message and code come from
//!   its payload alone.
//! - A `chunk` frame's payload is `{"bytes": "<base64>", …}`: the decoded bytes, empty
//!   when `bytes` is absent.
//! - CountTokens: the request is `{"input": {"invokeModel": {"body": "<base64>"}}}` (the
//!   SDK's serializer's bytes); the answer `{"inputTokens": n}`, `n` required and an
//!   `i32` as the SDK reads it (a missing, fractional or out-of-range count is an
//!   unreadable answer; so is a negative one, which no `u32` holds). Its errors are read as
//!   InvokeModel's, but only the shapes CountTokens models (access denied, internal,
//!   resource not found, service unavailable, throttling, validation) have their kind:
//!   another code keeps its code and message with kind `Unknown`.
//!
//! JSON is read with the SDK's own tokenizer (`aws-smithy-json`), so that what counts as
//! a string, a number or trailing garbage is the same.

use std::borrow::Cow;

use aws_smithy_json::deserialize::error::DeserializeError;
use aws_smithy_json::deserialize::token::{
    expect_blob_or_null, expect_number_or_null, expect_start_object, expect_string_or_null,
    skip_value,
};
use aws_smithy_json::deserialize::{Token, json_token_iter};
use bytes::Bytes;

use crate::upstream::endpoint::Operation;
use crate::upstream::{BedrockErrorDetail, BedrockErrorKind, UpstreamError, bounded_message};

/// An error answer's code and message before its kind is known (the SDK's "generic" error
/// metadata).
#[derive(Debug, Default, PartialEq, Eq)]
struct Generic {
    code: Option<String>,
    message: Option<String>,
}

/// The error an error answer (any status but 2xx) of `operation` stands for. The status and
/// request id are the caller's to add.
pub(crate) fn error_answer(
    operation: Operation,
    error_type_header: Option<&str>,
    body: &[u8],
) -> UpstreamError {
    let Ok(generic) = generic_error(body, error_type_header) else {
        return unhandled();
    };
    let Some(code) = generic.code.as_deref() else {
        return unhandled();
    };
    let kind = modelled_kind(operation, code);
    if kind == BedrockErrorKind::Unknown {
        return bedrock(BedrockErrorKind::Unknown, generic, BedrockErrorDetail::default());
    }
    match shape_members(kind, body) {
        Ok(detail) => bedrock(kind, generic, detail),
        Err(_) => unhandled(),
    }
}

/// The error an exception frame of a stream stands for, from its `:exception-type` and
/// payload.
pub(crate) fn stream_exception(exception_type: &str, payload: &[u8]) -> UpstreamError {
    let Ok(generic) = generic_error(payload, None) else {
        return unhandled();
    };
    let kind = match exception_type {
        "internalServerException" => BedrockErrorKind::InternalServer,
        "modelStreamErrorException" => BedrockErrorKind::ModelStreamError,
        "validationException" => BedrockErrorKind::Validation,
        "throttlingException" => BedrockErrorKind::Throttling,
        "modelTimeoutException" => BedrockErrorKind::ModelTimeout,
        "serviceUnavailableException" => BedrockErrorKind::ServiceUnavailable,
        _ => return bedrock(BedrockErrorKind::Unknown, generic, BedrockErrorDetail::default()),
    };
    match shape_members(kind, payload) {
        Ok(detail) => bedrock(kind, generic, detail),
        // A modelled exception whose members cannot be read: the SDK's unreadable frame.
        Err(error) => {
            UpstreamError::Malformed(format!("failed to unmarshall {exception_type}: {error}"))
        }
    }
}

/// The CountTokens request body of an InvokeModel body.
pub(crate) fn count_tokens_request(invoke_body: &[u8]) -> Bytes {
    let encoded = aws_smithy_types::base64::encode(invoke_body);
    Bytes::from(format!(r#"{{"input":{{"invokeModel":{{"body":"{encoded}"}}}}}}"#))
}

/// The count of a CountTokens answer's body, read as the SDK reads it.
pub(crate) fn count_tokens_answer(body: &[u8]) -> Result<u32, UpstreamError> {
    let unreadable = |error: &dyn std::fmt::Display| {
        UpstreamError::Malformed(bounded_message(&format!(
            "the CountTokens answer could not be read: {error}"
        )))
    };
    let mut tokens = json_token_iter(or_empty_doc(body)).peekable();
    let mut input_tokens = None;
    let read = (|| -> Result<(), DeserializeError> {
        expect_start_object(tokens.next())?;
        loop {
            match tokens.next().transpose()? {
                Some(Token::EndObject { .. }) => break,
                Some(Token::ObjectKey { key, .. }) => {
                    if key.to_unescaped()? == "inputTokens" {
                        input_tokens =
                            expect_number_or_null(tokens.next())?.map(i32::try_from).transpose()?;
                    } else {
                        skip_value(&mut tokens)?;
                    }
                }
                other => {
                    return Err(DeserializeError::custom(format!(
                        "expected object key or end object, found: {other:?}"
                    )));
                }
            }
        }
        if tokens.next().is_some() {
            return Err(DeserializeError::custom(
                "found more JSON tokens after completing parsing",
            ));
        }
        Ok(())
    })();
    read.map_err(|error| unreadable(&error))?;
    let n_tokens = input_tokens.ok_or_else(|| unreadable(&"inputTokens is missing"))?;
    u32::try_from(n_tokens).map_err(|_| unreadable(&format!("inputTokens is {n_tokens}")))
}

/// The decoded bytes of a `chunk` frame's payload.
pub(crate) fn chunk_bytes(payload: &[u8]) -> Result<Bytes, DeserializeError> {
    if let Some(value) = plain_chunk_value(payload)
        && let Ok(decoded) = aws_smithy_types::base64::decode(value)
    {
        return Ok(Bytes::from(decoded));
    }
    tokenized_chunk_bytes(payload)
}

/// The base64 value of a payload of the shape Bedrock sends every chunk in,
/// `{"bytes":"…"}` or `{"bytes":"…","p":"…"}` (the padding in letters and digits), read
/// without the tokenizer: neither value can hold a quote, and a value with an escape (or
/// anything else outside base64's alphabet) fails the decoding, which checks every byte.
/// Any other payload, and any value that is not base64, goes through
/// [`tokenized_chunk_bytes`], which gives the same bytes for these and the SDK's error for
/// the rest.
fn plain_chunk_value(payload: &[u8]) -> Option<&str> {
    let rest = payload.strip_prefix(br#"{"bytes":""#)?;
    let end = rest.iter().position(|&byte| byte == b'"')?;
    let (value, tail) = (&rest[..end], &rest[end + 1..]);
    if tail != b"}" {
        let padding = tail.strip_prefix(br#","p":""#)?.strip_suffix(br#""}"#)?;
        if !padding.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
    }
    std::str::from_utf8(value).ok()
}

/// [`chunk_bytes`] by the SDK's rules, with its JSON tokenizer.
fn tokenized_chunk_bytes(payload: &[u8]) -> Result<Bytes, DeserializeError> {
    let mut tokens = json_token_iter(or_empty_doc(payload)).peekable();
    let mut bytes = None;
    match tokens.next().transpose()? {
        Some(Token::ValueNull { .. }) => {
            return Err(DeserializeError::custom("expected payload member value"));
        }
        Some(Token::StartObject { .. }) => loop {
            match tokens.next().transpose()? {
                Some(Token::EndObject { .. }) => break,
                Some(Token::ObjectKey { key, .. }) => {
                    if key.to_unescaped()? == "bytes" {
                        bytes = expect_blob_or_null(tokens.next())?;
                    } else {
                        skip_value(&mut tokens)?;
                    }
                }
                other => {
                    return Err(DeserializeError::custom(format!(
                        "expected object key or end object, found: {other:?}"
                    )));
                }
            }
        },
        _ => return Err(DeserializeError::custom("expected start object or null")),
    }
    if tokens.next().is_some() {
        return Err(DeserializeError::custom("found more JSON tokens after completing parsing"));
    }
    Ok(bytes.map(|blob| Bytes::from(blob.into_inner())).unwrap_or_default())
}

/// The error kind of `code` that `operation` models (InvokeModel has no
/// `ModelStreamErrorException`), else `Unknown`.
fn modelled_kind(operation: Operation, code: &str) -> BedrockErrorKind {
    let kind = BedrockErrorKind::ALL
        .into_iter()
        .find(|kind| kind.shape_name() == Some(code))
        .unwrap_or(BedrockErrorKind::Unknown);
    use BedrockErrorKind as K;
    match (operation, kind) {
        (Operation::Invoke, K::ModelStreamError) => K::Unknown,
        (
            Operation::CountTokens,
            K::AccessDenied
            | K::InternalServer
            | K::ResourceNotFound
            | K::ServiceUnavailable
            | K::Throttling
            | K::Validation,
        ) => kind,
        (Operation::CountTokens, _) => K::Unknown,
        (_, kind) => kind,
    }
}

/// An error the SDK could not read (no code, no message).
fn unhandled() -> UpstreamError {
    bedrock(BedrockErrorKind::Unknown, Generic::default(), BedrockErrorDetail::default())
}

fn bedrock(
    kind: BedrockErrorKind,
    generic: Generic,
    mut detail: BedrockErrorDetail,
) -> UpstreamError {
    detail.code = generic.code.as_deref().map(bounded_message);
    for member in [&mut detail.resource_name, &mut detail.original_message] {
        *member = member.as_deref().map(bounded_message);
    }
    UpstreamError::Bedrock {
        kind,
        message: bounded_message(generic.message.as_deref().unwrap_or_default()),
        detail: Box::new(detail),
    }
}

/// The code (header first) and message of an error answer or exception payload.
fn generic_error(
    body: &[u8],
    error_type_header: Option<&str>,
) -> Result<Generic, DeserializeError> {
    let mut tokens = json_token_iter(body).peekable();
    let (mut typ, mut code, mut message) = (None, None, None);
    if let Some(Token::StartObject { .. }) = tokens.next().transpose()? {
        loop {
            match tokens.next().transpose()? {
                Some(Token::EndObject { .. }) => break,
                Some(Token::ObjectKey { key, .. }) => {
                    if let Some(Ok(Token::ValueString { value, .. })) = tokens.peek() {
                        let slot = match key.as_escaped_str() {
                            "code" => Some(&mut code),
                            "__type" => Some(&mut typ),
                            "message" | "Message" | "errorMessage" => Some(&mut message),
                            _ => None,
                        };
                        if let Some(slot) = slot {
                            *slot = Some(value.to_unescaped()?.into_owned());
                        }
                    }
                    skip_value(&mut tokens)?;
                }
                _ => return Err(DeserializeError::custom("expected object key or end object")),
            }
        }
        if tokens.next().is_some() {
            return Err(DeserializeError::custom(
                "found more JSON tokens after completing parsing",
            ));
        }
    }
    let code = error_type_header.map(Cow::Borrowed).or(code.or(typ).map(Cow::Owned));
    Ok(Generic { code: code.map(|code| sanitize_error_code(&code).to_owned()), message })
}

/// `ValidationException:http://internal.amazon.com/…` and `com.amazon.bedrock#X` → the
/// shape name.
fn sanitize_error_code(code: &str) -> &str {
    let code = code.find(':').map_or(code, |at| &code[..at]);
    code.find('#').map_or(code, |at| &code[at + 1..])
}

/// The members of `kind`'s shape besides its message, read as the SDK reads them: an error
/// when the body is not one JSON object or a member is of the wrong type.
fn shape_members(
    kind: BedrockErrorKind,
    body: &[u8],
) -> Result<BedrockErrorDetail, DeserializeError> {
    let mut detail = BedrockErrorDetail::default();
    let mut tokens = json_token_iter(or_empty_doc(body)).peekable();
    expect_start_object(tokens.next())?;
    loop {
        match tokens.next().transpose()? {
            Some(Token::EndObject { .. }) => break,
            Some(Token::ObjectKey { key, .. }) => {
                let key = key.to_unescaped()?;
                match (kind, key.as_ref()) {
                    // The message member only has to be a string (the message itself is
                    // the generic one).
                    (_, "message") => {
                        if let Some(value) = expect_string_or_null(tokens.next())? {
                            value.to_unescaped()?;
                        }
                    }
                    (
                        BedrockErrorKind::ModelError | BedrockErrorKind::ModelStreamError,
                        "originalStatusCode",
                    ) => {
                        detail.original_status_code = expect_number_or_null(tokens.next())?
                            .map(|number| {
                                i32::try_from(number).map_err(|error| {
                                    DeserializeError::custom_source("originalStatusCode", error)
                                })
                            })
                            .transpose()?;
                    }
                    (BedrockErrorKind::ModelError, "resourceName") => {
                        detail.resource_name = owned_string(tokens.next())?;
                    }
                    (BedrockErrorKind::ModelStreamError, "originalMessage") => {
                        detail.original_message = owned_string(tokens.next())?;
                    }
                    _ => skip_value(&mut tokens)?,
                }
            }
            other => {
                return Err(DeserializeError::custom(format!(
                    "expected object key or end object, found: {other:?}"
                )));
            }
        }
    }
    if tokens.next().is_some() {
        return Err(DeserializeError::custom("found more JSON tokens after completing parsing"));
    }
    Ok(detail)
}

fn owned_string(
    token: Option<Result<Token<'_>, DeserializeError>>,
) -> Result<Option<String>, DeserializeError> {
    match expect_string_or_null(token)? {
        Some(value) => Ok(Some(value.to_unescaped()?.into_owned())),
        None => Ok(None),
    }
}

/// An empty body reads as `{}`.
fn or_empty_doc(body: &[u8]) -> &[u8] {
    if body.is_empty() { b"{}" } else { body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(error: UpstreamError) -> (BedrockErrorKind, String, BedrockErrorDetail) {
        match error {
            UpstreamError::Bedrock { kind, message, detail } => (kind, message, *detail),
            other => panic!("not a Bedrock error: {other:?}"),
        }
    }

    fn code(code: &str) -> BedrockErrorDetail {
        BedrockErrorDetail { code: Some(code.to_owned()), ..BedrockErrorDetail::default() }
    }

    #[test]
    fn error_answers_are_classified_by_header_then_body_code() {
        let header =
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/");
        let body = br#"{"message":"Too many requests, please wait before trying again."}"#;
        let (kind, message, detail) = parts(error_answer(Operation::Invoke, header, body));
        assert_eq!(kind, BedrockErrorKind::Throttling);
        assert_eq!(message, "Too many requests, please wait before trying again.");
        assert_eq!(detail, code("ThrottlingException"));
        // No header: the body's `code`, then `__type`, namespace cut.
        let body = br#"{"__type":"com.amazon.bedrock#ValidationException","Message":"bad"}"#;
        let (kind, message, _) = parts(error_answer(Operation::Invoke, None, body));
        assert_eq!((kind, message.as_str()), (BedrockErrorKind::Validation, "bad"));
        let body = br#"{"code":"AccessDeniedException","__type":"X","errorMessage":"no"}"#;
        let (kind, message, _) = parts(error_answer(Operation::Invoke, None, body));
        assert_eq!((kind, message.as_str()), (BedrockErrorKind::AccessDenied, "no"));
    }

    #[test]
    fn model_errors_keep_their_extra_members() {
        let body = br#"{"message":"m","originalStatusCode":500,"resourceName":"arn:x"}"#;
        let (kind, _, detail) =
            parts(error_answer(Operation::Invoke, Some("ModelErrorException"), body));
        assert_eq!(kind, BedrockErrorKind::ModelError);
        assert_eq!(detail.original_status_code, Some(500));
        assert_eq!(detail.resource_name.as_deref(), Some("arn:x"));
        let body = br#"{"message":"m","originalStatusCode":503,"originalMessage":"o"}"#;
        let header = Some("ModelStreamErrorException");
        let (kind, _, detail) = parts(error_answer(Operation::InvokeStream, header, body));
        assert_eq!(kind, BedrockErrorKind::ModelStreamError);
        assert_eq!(
            (detail.original_status_code, detail.original_message.as_deref()),
            (Some(503), Some("o"))
        );
        // InvokeModel does not model it: unknown, code and message kept.
        let (kind, message, detail) = parts(error_answer(Operation::Invoke, header, body));
        assert_eq!((kind, message.as_str()), (BedrockErrorKind::Unknown, "m"));
        assert_eq!(detail, code("ModelStreamErrorException"));
    }

    #[test]
    fn unreadable_error_answers_have_no_code_and_no_message() {
        let unhandled = (BedrockErrorKind::Unknown, String::new(), BedrockErrorDetail::default());
        let header = Some("ThrottlingException");
        for body in [&b"<html>502 Bad Gateway</html>"[..], br#"{"message":"a"} x"#] {
            assert_eq!(parts(error_answer(Operation::Invoke, header, body)), unhandled);
        }
        // A modelled shape with a member of the wrong type.
        let body = br#"{"message":"m","originalStatusCode":"five hundred"}"#;
        let error = error_answer(Operation::Invoke, Some("ModelErrorException"), body);
        assert_eq!(parts(error), unhandled);
        // No code anywhere: unknown even with a message.
        assert_eq!(parts(error_answer(Operation::Invoke, None, br#"{"message":"m"}"#)), unhandled);
        // An empty body is fine.
        let (kind, message, _) = parts(error_answer(Operation::Invoke, header, b""));
        assert_eq!((kind, message.as_str()), (BedrockErrorKind::Throttling, ""));
        // An unknown code keeps it.
        let (kind, _, detail) =
            parts(error_answer(Operation::Invoke, Some("SimException:x"), b"{}"));
        assert_eq!((kind, detail), (BedrockErrorKind::Unknown, code("SimException")));
    }

    #[test]
    fn exception_frames_take_their_kind_from_the_frame_header() {
        let payload = br#"{"message":"busy"}"#;
        let (kind, message, detail) = parts(stream_exception("throttlingException", payload));
        assert_eq!((kind, message.as_str()), (BedrockErrorKind::Throttling, "busy"));
        assert_eq!(detail, BedrockErrorDetail::default(), "no code in a frame");
        let payload = br#"{"message":"m","originalStatusCode":500,"originalMessage":"o"}"#;
        let (kind, _, detail) = parts(stream_exception("modelStreamErrorException", payload));
        assert_eq!(kind, BedrockErrorKind::ModelStreamError);
        assert_eq!(detail.original_status_code, Some(500));
        let (kind, message, _) = parts(stream_exception("accessDeniedException", payload));
        assert_eq!((kind, message.as_str()), (BedrockErrorKind::Unknown, "m"));
        let bad = br#"{"message":"m","originalStatusCode":"x"}"#;
        let error = stream_exception("modelStreamErrorException", bad);
        assert!(matches!(error, UpstreamError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn chunk_payloads_decode_their_base64_bytes() {
        let payload = br#"{"bytes":"eyJvdXRwdXRUZXh0IjoiSGkiLCJpbmRleCI6MH0=","p":"abcd"}"#;
        assert_eq!(chunk_bytes(payload).unwrap(), &br#"{"outputText":"Hi","index":0}"#[..]);
        assert_eq!(chunk_bytes(br#"{"p":"ab"}"#).unwrap(), Bytes::new());
        assert_eq!(chunk_bytes(b"").unwrap(), Bytes::new());
        for bad in
            [&br#"{"bytes":"not base64!"}"#[..], b"null", b"[1]", br#"{"bytes":1}"#, b"{} {}"]
        {
            assert!(chunk_bytes(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_plain_chunk_shape_reads_as_the_tokenizer_reads_it() {
        let payloads: [&[u8]; 12] = [
            br#"{"bytes":"eyJhIjoxfQ=="}"#,
            br#"{"bytes":"eyJhIjoxfQ==","p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123"}"#,
            br#"{"bytes":"","p":""}"#,
            // Not base64, or not the plain shape: the tokenizer decides, as before.
            br#"{"bytes":"eyJhIjoxfQ","p":"ab"}"#,
            br#"{"bytes":"ey\u004aaIjoxfQ=="}"#,
            br#"{"bytes":"eyJhIjoxfQ==","p":"a b"}"#,
            br#"{"bytes":"eyJhIjoxfQ==","p":"ab","q":1}"#,
            br#"{"bytes":"eyJhIjoxfQ=="} "#,
            br#"{"bytes":"eyJhIjoxfQ==""#,
            br#"{"bytes":"eyJhIjoxfQ==","p":"ab"}}"#,
            br#"{"p":"ab","bytes":"eyJhIjoxfQ=="}"#,
            br#"{"bytes":"eyJhIjoxfQ==","bytes":"e30="}"#,
        ];
        for payload in payloads {
            let text = String::from_utf8_lossy(payload);
            let fast = chunk_bytes(payload).map_err(|error| error.to_string());
            let tokenized = tokenized_chunk_bytes(payload).map_err(|error| error.to_string());
            assert_eq!(fast, tokenized, "{text}");
        }
        assert!(plain_chunk_value(payloads[1]).is_some());
        // An escape is not refused by the shape's reading but by the decoding, which checks
        // every byte: the tokenizer then reads it.
        let escaped = plain_chunk_value(payloads[4]).unwrap();
        assert!(aws_smithy_types::base64::decode(escaped).is_err());
    }

    #[test]
    fn count_tokens_bodies_are_read_as_the_sdk_reads_them() {
        use BedrockErrorKind as K;
        assert_eq!(
            count_tokens_request(br#"{"a":1}"#),
            Bytes::from_static(br#"{"input":{"invokeModel":{"body":"eyJhIjoxfQ=="}}}"#)
        );
        assert_eq!(count_tokens_answer(br#"{"inputTokens": 12, "other": [1]}"#).unwrap(), 12);
        for body in [&b"{}"[..], br#"{"inputTokens":-1}"#, br#"{"inputTokens":1.5}"#, b"[]", b""] {
            let answer = count_tokens_answer(body);
            assert!(matches!(answer, Err(UpstreamError::Malformed(_))), "{body:?}: {answer:?}");
        }
        let header = Some("ThrottlingException");
        assert_eq!(parts(error_answer(Operation::CountTokens, header, b"{}")).0, K::Throttling);
        let header = Some("ModelTimeoutException");
        let (kind, _, detail) = parts(error_answer(Operation::CountTokens, header, b"{}"));
        assert_eq!((kind, detail.code.as_deref()), (K::Unknown, Some("ModelTimeoutException")));
    }
}
