//! The `application/vnd.amazon.eventstream` encoder: frame layout, CRCs and the two kinds of
//! frame Bedrock sends on InvokeModelWithResponseStream (`chunk` events and exceptions).
//!
//! A frame is `total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload |
//! message_crc u32`, all big-endian, with zlib CRC32 (`crc32fast`). Only string headers
//! (type 7) are written, because Bedrock uses no other type.

use base64::Engine;

/// The alphabet whose prefixes Bedrock sends as `p` padding in chunk payloads.
pub const PADDING_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The longest header name the event-stream format allows.
pub const MAX_HEADER_NAME_LEN: usize = 255;

/// The longest header value the Rust SDK decoder accepts (`i16::MAX`).
pub const MAX_HEADER_VALUE_LEN: usize = 32_767;

/// The header type byte of a UTF-8 string value.
const HEADER_TYPE_STRING: u8 = 7;

/// Encodes one event-stream message with string headers, in the given order.
///
/// Names longer than [`MAX_HEADER_NAME_LEN`] bytes and values longer than
/// [`MAX_HEADER_VALUE_LEN`] bytes are a caller bug; they are cut to those limits so the frame
/// stays well-formed.
pub fn encode_frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut header_block = Vec::new();
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(MAX_HEADER_NAME_LEN)];
        let value = &value.as_bytes()[..value.len().min(MAX_HEADER_VALUE_LEN)];
        header_block.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        header_block.extend_from_slice(name);
        header_block.push(HEADER_TYPE_STRING);
        header_block
            .extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        header_block.extend_from_slice(value);
    }

    let total_len = 12 + header_block.len() + payload.len() + 4;
    let mut frame = Vec::with_capacity(total_len);
    frame.extend_from_slice(&u32::try_from(total_len).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(&u32::try_from(header_block.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&prelude_crc.to_be_bytes());
    frame.extend_from_slice(&header_block);
    frame.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&message_crc.to_be_bytes());
    frame
}

/// Encodes a `chunk` event whose payload is `{"bytes":"<base64 of model_json>","p":"<padding>"}`.
///
/// `padding` is left out of the payload when `None` (Bedrock before 2025 sent none).
pub fn encode_chunk_frame(model_json: &[u8], padding: Option<&str>) -> Vec<u8> {
    let payload = chunk_payload(model_json, padding);
    encode_frame(
        &[
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.as_bytes(),
    )
}

/// Encodes an exception message: `exception_type` is the lowerCamel member name of the
/// `ResponseStream` union (`throttlingException`) and `payload` its JSON (`{"message":"..."}`).
pub fn encode_exception_frame(exception_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

/// The JSON payload of a `chunk` event. Base64 and the padding alphabet need no JSON
/// escaping, so the text is written directly; a padding with other characters is dropped.
pub fn chunk_payload(model_json: &[u8], padding: Option<&str>) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.encode(model_json);
    match padding {
        Some(padding) if padding.chars().all(|c| c.is_ascii_alphanumeric()) => {
            format!(r#"{{"bytes":"{bytes}","p":"{padding}"}}"#)
        }
        _ => format!(r#"{{"bytes":"{bytes}"}}"#),
    }
}

/// The padding of `len` characters: a prefix of [`PADDING_ALPHABET`], at most all of it.
pub fn padding(len: usize) -> &'static str {
    &PADDING_ALPHABET[..len.min(PADDING_ALPHABET.len())]
}

/// Breaks the message CRC of an encoded frame so that a decoder reports
/// `MessageChecksumMismatch`. Frames shorter than a prelude are left alone.
pub fn corrupt_message_crc(frame: &mut [u8]) {
    if frame.len() >= 16
        && let Some(last) = frame.last_mut()
    {
        *last ^= 0xFF;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses the space-separated hex dumps of the wire document.
    fn hex(dump: &str) -> Vec<u8> {
        dump.split_whitespace().map(|byte| u8::from_str_radix(byte, 16).unwrap()).collect()
    }

    #[test]
    fn chunk_frame_matches_the_byte_exact_vector() {
        let expected = hex("
            00 00 00 8f 00 00 00 4b b7 9a 60 32 0b 3a 65 76
            65 6e 74 2d 74 79 70 65 07 00 05 63 68 75 6e 6b
            0d 3a 63 6f 6e 74 65 6e 74 2d 74 79 70 65 07 00
            10 61 70 70 6c 69 63 61 74 69 6f 6e 2f 6a 73 6f
            6e 0d 3a 6d 65 73 73 61 67 65 2d 74 79 70 65 07
            00 05 65 76 65 6e 74 7b 22 62 79 74 65 73 22 3a
            22 65 79 4a 76 64 58 52 77 64 58 52 55 5a 58 68
            30 49 6a 6f 69 53 47 6b 69 4c 43 4a 70 62 6d 52
            6c 65 43 49 36 4d 48 30 3d 22 7d 5b 97 9d 80");
        let frame = encode_chunk_frame(br#"{"outputText":"Hi","index":0}"#, None);
        assert_eq!(frame, expected);
        assert_eq!(frame.len(), 143);

        let direct = encode_frame(
            &[
                (":event-type", "chunk"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            br#"{"bytes":"eyJvdXRwdXRUZXh0IjoiSGkiLCJpbmRleCI6MH0="}"#,
        );
        assert_eq!(direct, expected);
    }

    #[test]
    fn exception_frame_matches_the_byte_exact_vector() {
        let expected = hex("
            00 00 00 b2 00 00 00 61 35 90 d5 d3 0f 3a 65 78
            63 65 70 74 69 6f 6e 2d 74 79 70 65 07 00 13 74
            68 72 6f 74 74 6c 69 6e 67 45 78 63 65 70 74 69
            6f 6e 0d 3a 63 6f 6e 74 65 6e 74 2d 74 79 70 65
            07 00 10 61 70 70 6c 69 63 61 74 69 6f 6e 2f 6a
            73 6f 6e 0d 3a 6d 65 73 73 61 67 65 2d 74 79 70
            65 07 00 09 65 78 63 65 70 74 69 6f 6e 7b 22 6d
            65 73 73 61 67 65 22 3a 22 54 6f 6f 20 6d 61 6e
            79 20 72 65 71 75 65 73 74 73 2c 20 70 6c 65 61
            73 65 20 77 61 69 74 20 62 65 66 6f 72 65 20 74
            72 79 69 6e 67 20 61 67 61 69 6e 2e 22 7d e8 ff
            b2 6a");
        let frame = encode_exception_frame(
            "throttlingException",
            br#"{"message":"Too many requests, please wait before trying again."}"#,
        );
        assert_eq!(frame, expected);
        assert_eq!(frame.len(), 178);
    }

    #[test]
    fn chunk_headers_are_always_75_bytes() {
        let frame = encode_chunk_frame(b"{}", Some(padding(10)));
        assert_eq!(&frame[4..8], &75u32.to_be_bytes());
        assert_eq!(
            frame.len(),
            u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize
        );
    }

    #[test]
    fn chunk_payload_carries_padding_after_bytes() {
        assert_eq!(chunk_payload(b"{}", Some("abc")), r#"{"bytes":"e30=","p":"abc"}"#);
        assert_eq!(chunk_payload(b"{}", Some("a\"b")), r#"{"bytes":"e30="}"#);
    }

    #[test]
    fn padding_is_a_prefix_of_the_alphabet() {
        assert_eq!(padding(0), "");
        assert_eq!(padding(4), "abcd");
        assert_eq!(padding(1000), PADDING_ALPHABET);
    }

    #[test]
    fn corrupting_changes_only_the_message_crc() {
        let good = encode_chunk_frame(b"{}", None);
        let mut bad = good.clone();
        corrupt_message_crc(&mut bad);
        assert_eq!(good.len(), bad.len());
        assert_eq!(good[..good.len() - 1], bad[..bad.len() - 1]);
        assert_ne!(good.last(), bad.last());
    }
}
