//! The unified embedding request and answer.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::unified::Param;

/// Texts (and, for the families that take them, images) to embed, whatever the model. The
/// server fans a batch out over as many InvokeModel calls as the family needs
/// ([`crate::EmbeddingFamily::max_batch`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    /// The texts; may be empty when `images` is not.
    #[serde(default)]
    pub input: Vec<String>,
    /// Images to embed, each base64 (standard alphabet) or a `data:image/...;base64,` URI
    /// of a PNG, JPEG, GIF or WebP image; the format is read from the image's own bytes.
    /// One vector per image comes after the vectors of `input`, in order. Only families
    /// whose `params()` hold [`Param::Images`] take them; the others refuse the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_type: Option<InputType>,
    /// Model-specific body fields merged into every InvokeModel body.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What the embedded texts are for (Cohere's `input_type`, Nova's `embeddingPurpose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    SearchDocument,
    SearchQuery,
    Classification,
    Clustering,
}

/// The vectors of one InvokeModel call, in input order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens, where the body says; else the server reads Bedrock's header.
    pub input_tokens: Option<u32>,
}

impl EmbedRequest {
    pub fn validate(&self) -> Result<(), TranslateError> {
        if self.input.is_empty() && self.images.is_empty() {
            return Err(TranslateError::InvalidRequest("`input` must not be empty".to_owned()));
        }
        if self.input.iter().any(String::is_empty) {
            return Err(TranslateError::InvalidRequest(
                "`input` texts must not be empty strings".to_owned(),
            ));
        }
        for (i, image) in self.images.iter().enumerate() {
            parse_image(image).map_err(|detail| {
                TranslateError::InvalidRequest(format!("`images[{i}]` {detail}"))
            })?;
        }
        if self.dimensions == Some(0) {
            return Err(TranslateError::InvalidRequest(
                "`dimensions` must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// The optional parameters this request sets.
    pub fn params_set(&self) -> Vec<Param> {
        let mut params = Vec::new();
        if self.dimensions.is_some() {
            params.push(Param::Dimensions);
        }
        if self.normalize.is_some() {
            params.push(Param::Normalize);
        }
        if self.input_type.is_some() {
            params.push(Param::InputType);
        }
        if !self.images.is_empty() {
            params.push(Param::Images);
        }
        params
    }
}

/// The image formats an embedding request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl ImageFormat {
    /// The lowercase name Nova's `format` and the `image/...` media types use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
        }
    }
}

/// One image of [`EmbedRequest::images`]: its format and its bare base64 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageInput<'a> {
    pub(crate) format: ImageFormat,
    pub(crate) base64: &'a str,
}

/// Reads one image of a request: strips a `data:image/...;base64,` prefix, checks the base64
/// text and reads the format from the first bytes (PNG, JPEG, GIF or WebP signature). The
/// error completes "`images[i]` ...".
pub(crate) fn parse_image(image: &str) -> Result<ImageInput<'_>, String> {
    let base64 = match image.strip_prefix("data:") {
        Some(uri) => match uri.split_once(',') {
            Some((media, data)) if media.starts_with("image/") && media.ends_with(";base64") => {
                data
            }
            _ => return Err("must be a `data:image/...;base64,` URI or bare base64".to_owned()),
        },
        None => image,
    };
    if base64.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if !is_base64(base64) {
        return Err("is not valid base64".to_owned());
    }
    let head = decode_base64_prefix(base64);
    let format = if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        ImageFormat::Png
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        ImageFormat::Jpeg
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        ImageFormat::Gif
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP".as_slice()) {
        ImageFormat::Webp
    } else {
        return Err("is not a PNG, JPEG, GIF or WebP image".to_owned());
    };
    Ok(ImageInput { format, base64 })
}

/// Whether `text` is padded standard base64 (RFC 4648 §4).
fn is_base64(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return false;
    }
    let body = text.trim_end_matches('=');
    bytes.len() - body.len() <= 2
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The first 12 bytes of valid base64 `text` (fewer if it is shorter): enough for a
/// signature.
fn decode_base64_prefix(text: &str) -> Vec<u8> {
    let sextet = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let mut out = Vec::with_capacity(12);
    for quad in text.as_bytes().chunks(4).take(4) {
        let n_chars = quad.iter().take_while(|c| **c != b'=').count();
        let bits = quad[..n_chars]
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, c)| bits | (sextet(*c) << (18 - 6 * i)));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..n_chars.saturating_sub(1) + 1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{ImageFormat, parse_image};

    /// The signature of each format, base64-encoded with some padding after it.
    const PNG: &str = "iVBORw0KGgoAAAANSUhEUg==";
    const JPEG: &str = "/9j/4AAQSkZJRgABAQ==";
    const GIF: &str = "R0lGODlhAQABAAAAACw=";
    const WEBP: &str = "UklGRiQAAABXRUJQVlA4IA==";

    #[test]
    fn formats_are_read_from_the_bytes() {
        for (image, format) in [
            (PNG, ImageFormat::Png),
            (JPEG, ImageFormat::Jpeg),
            (GIF, ImageFormat::Gif),
            (WEBP, ImageFormat::Webp),
        ] {
            assert_eq!(parse_image(image).unwrap().format, format, "{image}");
            let uri = format!("data:image/png;base64,{image}");
            let parsed = parse_image(&uri).unwrap();
            assert_eq!((parsed.format, parsed.base64), (format, image), "{uri}");
        }
    }

    #[test]
    fn bad_images_are_refused() {
        for image in ["", "data:image/png;base64,", "not base64!", "iVBORw0KGgo", "AAAAAAAA"] {
            assert!(parse_image(image).is_err(), "{image}");
        }
        assert!(parse_image(&format!("data:text/plain;base64,{PNG}")).is_err());
        assert!(parse_image(&format!("data:image/png,{PNG}")).is_err());
    }
}
