//! What every API shape that takes tools and images shares: images given as `data:` URLs,
//! tool-call arguments given as JSON text, and the caps on the tools of one request.
//!
//! Remote image URLs (`http(s)://…`) are fetched only from the origins the operator allows
//! (`image_fetch.rs`; none by default, then 422): the gateway does not fetch what a caller
//! points it at unless told to (a fetch from inside the network is a server-side request
//! forgery risk, and an unbounded download). Other schemes are refused. Callers may always
//! send the image's bytes, base64, in a `data:` URL or the API shape's own base64 block.

use translator::{Content, IMAGE_MEDIA_TYPES, Part, UnifiedRequest};

use crate::error::ApiError;

/// Most tools one request may define (OpenAI's own cap).
pub const MAX_TOOLS: usize = 128;

/// Bytes of text per token in [`estimate_input_tokens`]: the common rule of thumb for
/// English text with the models' tokenizers.
pub const BYTES_PER_TOKEN: usize = 4;

/// Tokens [`estimate_input_tokens`] counts per image: about what Claude and Nova charge for
/// an image near their size limit (Claude's is width × height / 750, at most about 1,600).
pub const TOKENS_PER_IMAGE: u64 = 1_600;

/// Tokens [`estimate_input_tokens`] counts per video: a minute of video at Nova's sampling
/// of one frame per second (for videos up to 16 minutes) and 288 tokens a frame [U: the
/// per-frame count]. A fixed count, because the duration is not known without decoding the
/// video, and its size says little (at 4 bytes a token, a 25 MB video would be millions).
pub const TOKENS_PER_VIDEO: u64 = 60 * 288;

/// The gateway's estimate of a request's input tokens, for the token-counting routes
/// (Converse's `count-tokens`, Anthropic's `count_tokens`) when Bedrock's own count is not
/// asked: the bytes of its texts (system, messages, tool results, tool calls' inputs, tool
/// definitions) at [`BYTES_PER_TOKEN`], documents likewise from their decoded size,
/// [`TOKENS_PER_IMAGE`] per image, [`TOKENS_PER_VIDEO`] per video, at least 1. It grows with every part of the request; it
/// is not the model's tokenizer.
pub fn estimate_input_tokens(request: &UnifiedRequest) -> u64 {
    let mut text_bytes = request.prompt.as_ref().map_or(0, String::len);
    let mut images = 0u64;
    let mut videos = 0u64;
    for message in &request.messages {
        match &message.content {
            Content::Text(text) => text_bytes += text.len(),
            Content::Parts(parts) => {
                for part in parts {
                    match part {
                        Part::Text { text } => text_bytes += text.len(),
                        Part::Image { .. } => images += 1,
                        Part::Video { .. } => videos += 1,
                        Part::Document { data, .. } => text_bytes += data.len() / 4 * 3,
                        Part::ToolUse { name, input, .. } => {
                            text_bytes += name.len() + input.to_string().len();
                        }
                        Part::ToolResult { content, .. } => text_bytes += content.len(),
                    }
                }
            }
        }
    }
    for tool in &request.tools {
        text_bytes += tool.name.len()
            + tool.description.as_ref().map_or(0, String::len)
            + tool.parameters.to_string().len();
    }
    let text_tokens = u64::try_from(text_bytes.div_ceil(BYTES_PER_TOKEN)).unwrap_or(u64::MAX);
    text_tokens
        .saturating_add(images.saturating_mul(TOKENS_PER_IMAGE))
        .saturating_add(videos.saturating_mul(TOKENS_PER_VIDEO))
        .max(1)
}

/// A `data:<media type>;base64,<data>` URL as an image part, or an `http(s)://` URL as a
/// remote image part for `image_fetch::resolve`. Anything else (another scheme, a `data:`
/// URL that is not base64 or not of an image type the models take) is refused.
pub fn image_from_url(url: &str) -> Result<Part, ApiError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        // Fetched, or refused, by `image_fetch::resolve` before the request is encoded.
        return Ok(Part::Image {
            media_type: crate::image_fetch::REMOTE_IMAGE.to_owned(),
            data: url.to_owned(),
        });
    }
    let Some(rest) = url.strip_prefix("data:") else {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        let scheme: String = scheme.chars().take(16).collect();
        return Err(ApiError::Unsupported(format!(
            "image URLs of scheme {scheme:?} are not fetched by this gateway; send the image \
             as a `data:<media type>;base64,<data>` URL"
        )));
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(ApiError::BadRequest("a `data:` URL needs a `,` before its data".to_owned()));
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err(ApiError::BadRequest(
            "an image `data:` URL must be base64 (`data:<media type>;base64,<data>`)".to_owned(),
        ));
    };
    let media_type = media_type.to_ascii_lowercase();
    let media_type = if media_type == "image/jpg" { "image/jpeg".to_owned() } else { media_type };
    if !IMAGE_MEDIA_TYPES.contains(&media_type.as_str()) {
        let shown: String = media_type.chars().take(64).collect();
        return Err(ApiError::BadRequest(format!(
            "image media type {shown:?} is not one of {}",
            IMAGE_MEDIA_TYPES.join(", ")
        )));
    }
    check_base64(data, "the image")?;
    Ok(Part::Image { media_type, data: data.to_owned() })
}

/// Refuses data that is not standard base64 (with or without padding), naming `what`.
pub fn check_base64(data: &str, what: &str) -> Result<(), ApiError> {
    let body = data.trim_end_matches('=');
    let well_formed = !data.is_empty()
        && data.len() - body.len() <= 2
        && body.len() % 4 != 1
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if well_formed {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("{what} is not valid base64 data")))
    }
}

/// A tool call's arguments, given as JSON text (OpenAI's `arguments`), as the JSON object
/// they must be. An empty text is no arguments (`{}`).
pub fn tool_arguments(arguments: &str, call_id: &str) -> Result<serde_json::Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) | Err(_) => {
            let id: String = call_id.chars().take(64).collect();
            Err(ApiError::BadRequest(format!(
                "the arguments of tool call {id:?} must be the JSON text of an object"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_become_image_parts_and_the_rest_is_refused() {
        let part = image_from_url("data:image/png;base64,iVBORw0KGgo=").unwrap();
        let expected =
            Part::Image { media_type: "image/png".to_owned(), data: "iVBORw0KGgo=".to_owned() };
        assert_eq!(part, expected);
        let jpg = image_from_url("data:image/JPG;base64,/9j/").unwrap();
        assert!(matches!(jpg, Part::Image { media_type, .. } if media_type == "image/jpeg"));
        let remote = image_from_url("https://example.com/cat.png").unwrap();
        assert!(
            matches!(remote, Part::Image { media_type, data } if media_type == "url" && data == "https://example.com/cat.png")
        );
        for (url, unsupported) in [
            ("ftp://example.com/cat.png", true),
            ("file:///etc/passwd", true),
            ("data:image/png,rawbytes", false),
            ("data:image/tiff;base64,AAAA", false),
            ("data:image/png;base64,not base64!", false),
            ("data:image/png;base64,", false),
            ("data:image/png;base64", false),
        ] {
            let error = image_from_url(url).unwrap_err();
            let is_unsupported = matches!(error, ApiError::Unsupported(_));
            assert_eq!(is_unsupported, unsupported, "{url}: {error:?}");
        }
    }

    #[test]
    fn the_estimate_grows_with_every_part() {
        let text = |text: &str| UnifiedRequest {
            messages: vec![translator::Message::text(translator::Role::User, text)],
            ..UnifiedRequest::default()
        };
        assert_eq!(estimate_input_tokens(&text("")), 1);
        assert_eq!(estimate_input_tokens(&text("12345678")), 2);
        let mut with_image = text("12345678");
        with_image.messages[0].content = Content::Parts(vec![
            Part::Text { text: "12345678".to_owned() },
            Part::Image { media_type: "image/png".to_owned(), data: "AAAA".to_owned() },
        ]);
        assert_eq!(estimate_input_tokens(&with_image), 2 + TOKENS_PER_IMAGE);
        let mut with_video = text("12345678");
        with_video.messages[0].content = Content::Parts(vec![
            Part::Text { text: "12345678".to_owned() },
            Part::Video { format: "mp4".to_owned(), data: "AAAA".repeat(1_000) },
        ]);
        assert_eq!(estimate_input_tokens(&with_video), 2 + 17_280);
        let mut with_tool = text("12345678");
        with_tool.tools = vec![translator::Tool {
            name: "abcd".to_owned(),
            description: None,
            parameters: serde_json::json!({}),
        }];
        assert_eq!(estimate_input_tokens(&with_tool), 4);
    }

    #[test]
    fn arguments_must_be_an_object() {
        assert_eq!(tool_arguments(r#"{"a":1}"#, "c").unwrap(), serde_json::json!({"a": 1}));
        assert_eq!(tool_arguments(" ", "c").unwrap(), serde_json::json!({}));
        for bad in ["[1]", "{", "3", "\"x\""] {
            assert!(tool_arguments(bad, "c").is_err(), "{bad}");
        }
    }
}
