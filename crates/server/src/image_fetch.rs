//! Images that callers name by URL, fetched only from the origins the operator allows.
//!
//! By default the gateway fetches nothing: an image given by `http(s)://` URL (OpenAI's
//! `image_url`, the Responses API's `input_image`, Anthropic's `url` source) is refused
//! (422), since a fetch from inside the network on a caller's word is a server-side request
//! forgery and an unbounded download. An operator who wants it lists URL prefixes in
//! `[image_fetch] allow` (each `http://` or `https://`, a host and a path ending in `/`,
//! so that `https://cdn.example.com/` does not also allow `https://cdn.example.com.evil/`);
//! a URL outside them is still refused. A fetch:
//! - is one GET with no redirect followed (a redirect is a refusal: its target was not
//!   checked against the list), no cookies and no caller headers;
//! - must answer 200 with a `Content-Type` of an image type the models take (PNG, JPEG,
//!   GIF, WebP), within `timeout_ms` for the whole transfer, and at most `max_bytes`
//!   (read frame by frame and abandoned past the limit, never buffered whole first);
//! - at most [`MAX_FETCHES`] per request.
//!
//! The route conversions leave a remote image as a part whose media type is
//! [`REMOTE_IMAGE`] and whose data is the URL (`routes::content::image_from_url`);
//! [`resolve`], called by `routes::text` before the request is encoded, replaces each with
//! the fetched bytes or refuses the request. A part left unresolved fails validation (its
//! media type is none the families take), so no URL ever reaches a model body.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use translator::{Content, IMAGE_MEDIA_TYPES, Part, UnifiedRequest};

use crate::error::ApiError;

/// The media type of an image part that still holds its URL (see the module docs).
pub const REMOTE_IMAGE: &str = "url";

/// Most remote images of one request.
pub const MAX_FETCHES: usize = 8;

/// `max_bytes` when the config leaves it out: 5 MiB, Claude's limit per image.
pub const DEFAULT_MAX_BYTES: usize = 5 * 1024 * 1024;

/// The largest `max_bytes` the config takes: 20 MiB.
pub const MAX_MAX_BYTES: usize = 20 * 1024 * 1024;

/// `timeout_ms` when the config leaves it out.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// `[image_fetch]`: where images may be fetched from, and the bounds of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFetchConfig {
    /// URL prefixes; empty: nothing is fetched.
    pub allow: Vec<String>,
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for ImageFetchConfig {
    fn default() -> ImageFetchConfig {
        ImageFetchConfig {
            allow: Vec::new(),
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl ImageFetchConfig {
    /// The problem with an `allow` entry, if any.
    pub fn check_prefix(prefix: &str) -> Option<String> {
        let Some(rest) = prefix.strip_prefix("https://").or_else(|| prefix.strip_prefix("http://"))
        else {
            return Some(format!("{prefix:?} is not an http:// or https:// URL"));
        };
        let Some((host, _path)) = rest.split_once('/') else {
            return Some(format!("{prefix:?} needs a path after its host, ending in `/`"));
        };
        if host.is_empty() || host.contains('@') {
            return Some(format!("{prefix:?} needs a host (and no user info)"));
        }
        if !prefix.ends_with('/') {
            return Some(format!("{prefix:?} must end in `/`"));
        }
        None
    }
}

/// The fetcher of one config: its list and, when the list is not empty, its HTTP client.
#[derive(Debug)]
pub struct ImageFetcher {
    config: ImageFetchConfig,
    client: Option<crate::upstream::HttpClient>,
}

impl ImageFetcher {
    pub fn new(config: &ImageFetchConfig) -> ImageFetcher {
        let client =
            (!config.allow.is_empty()).then(|| crate::upstream::http_client(config.timeout));
        ImageFetcher { config: config.clone(), client }
    }

    /// Whether `url` is under one of the allowed prefixes (and names no user info, which
    /// could make the host another than the one the prefix shows).
    fn allows(&self, url: &str) -> bool {
        let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
        let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or_default();
        !authority.contains('@') && self.config.allow.iter().any(|prefix| url.starts_with(prefix))
    }

    /// The image at `url`, base64, as a part; or why not.
    async fn fetch(&self, url: &str) -> Result<Part, ApiError> {
        let shown = shown(url);
        let refused = || {
            ApiError::Unsupported(format!(
                "the image URL {shown:?} is not fetched: this gateway fetches images only from \
                 the origins its operator allows (`image_fetch.allow`); send the image as a \
                 `data:<media type>;base64,<data>` URL"
            ))
        };
        let Some(client) = self.client.as_ref().filter(|_| self.allows(url)) else {
            return Err(refused());
        };
        let uri: hyper::Uri = url.parse().map_err(|_| {
            ApiError::BadRequest(format!("the image URL {shown:?} is not a valid URL"))
        })?;
        let request = hyper::Request::get(uri)
            .header(hyper::header::ACCEPT, IMAGE_MEDIA_TYPES.join(", "))
            .header(hyper::header::USER_AGENT, "bedrock-gateway image fetch")
            .body(http_body_util::Full::new(Bytes::new()))
            .map_err(|e| ApiError::BadRequest(format!("the image URL {shown:?}: {e}")))?;
        let failed = |what: String| ApiError::BadRequest(format!("the image at {shown:?} {what}"));
        let transfer = async {
            let response = client
                .request(request)
                .await
                .map_err(|_| failed("could not be fetched".to_owned()))?;
            let status = response.status();
            if status != hyper::StatusCode::OK {
                return Err(failed(format!("answered {} (redirects are not followed)", status)));
            }
            let media_type = response
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(|value| {
                    value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
                })
                .unwrap_or_default();
            if !IMAGE_MEDIA_TYPES.contains(&media_type.as_str()) {
                return Err(failed(format!(
                    "is of type {:?}, not one of {}",
                    shown_short(&media_type),
                    IMAGE_MEDIA_TYPES.join(", ")
                )));
            }
            let max_bytes = self.config.max_bytes;
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|_| failed("was cut off".to_owned()))?;
                if let Some(data) = frame.data_ref() {
                    if bytes.len() + data.len() > max_bytes {
                        return Err(failed(format!("is larger than {max_bytes} bytes")));
                    }
                    bytes.extend_from_slice(data);
                }
            }
            if bytes.is_empty() {
                return Err(failed("is empty".to_owned()));
            }
            Ok(Part::Image {
                media_type,
                data: base64::engine::general_purpose::STANDARD.encode(bytes),
            })
        };
        match tokio::time::timeout(self.config.timeout, transfer).await {
            Ok(part) => part,
            Err(_) => {
                Err(failed(format!("did not arrive within {} ms", self.config.timeout.as_millis())))
            }
        }
    }
}

/// Replaces every remote image part of `request` with its fetched bytes, in order, or
/// refuses the request (see the module docs).
pub async fn resolve(fetcher: &ImageFetcher, request: &mut UnifiedRequest) -> Result<(), ApiError> {
    let remote =
        |part: &Part| matches!(part, Part::Image { media_type, .. } if media_type == REMOTE_IMAGE);
    let n_remote: usize = request
        .messages
        .iter()
        .map(|message| match &message.content {
            Content::Parts(parts) => parts.iter().filter(|part| remote(part)).count(),
            Content::Text(_) => 0,
        })
        .sum();
    if n_remote == 0 {
        return Ok(());
    }
    if n_remote > MAX_FETCHES {
        return Err(ApiError::BadRequest(format!(
            "the request names {n_remote} images by URL; at most {MAX_FETCHES}"
        )));
    }
    for message in &mut request.messages {
        let Content::Parts(parts) = &mut message.content else { continue };
        for part in parts.iter_mut() {
            if let Part::Image { media_type, data } = part
                && media_type == REMOTE_IMAGE
            {
                *part = fetcher.fetch(data).await?;
            }
        }
    }
    Ok(())
}

/// A URL as shown in a message: at most 120 characters.
fn shown(url: &str) -> String {
    let cut: String = url.chars().take(120).collect();
    if cut.len() < url.len() { format!("{cut}…") } else { cut }
}

fn shown_short(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_origins_with_a_path() {
        for good in ["https://cdn.example.com/", "http://127.0.0.1:8000/images/"] {
            assert_eq!(ImageFetchConfig::check_prefix(good), None, "{good}");
        }
        for bad in [
            "https://cdn.example.com",
            "ftp://cdn.example.com/",
            "https:///",
            "https://user@cdn.example.com/",
            "https://cdn.example.com/images",
            "cdn.example.com/",
        ] {
            assert!(ImageFetchConfig::check_prefix(bad).is_some(), "{bad}");
        }
    }

    #[tokio::test]
    async fn only_urls_under_an_allowed_prefix_are_fetched() {
        let config = ImageFetchConfig {
            allow: vec!["https://cdn.example.com/img/".to_owned()],
            ..ImageFetchConfig::default()
        };
        let fetcher = ImageFetcher::new(&config);
        assert!(fetcher.allows("https://cdn.example.com/img/cat.png"));
        for url in [
            "https://cdn.example.com/other/cat.png",
            "https://cdn.example.com.evil.net/img/cat.png",
            "http://cdn.example.com/img/cat.png",
            "https://cdn.example.com/img@evil.net/cat.png",
        ] {
            assert!(!fetcher.allows(url), "{url}");
        }
        // Nothing is fetched by default: a refusal (422), not a connection.
        let closed = ImageFetcher::new(&ImageFetchConfig::default());
        let error = closed.fetch("https://cdn.example.com/img/cat.png").await.unwrap_err();
        assert!(matches!(error, ApiError::Unsupported(_)), "{error:?}");
        let mut request = UnifiedRequest {
            messages: vec![translator::Message {
                role: translator::Role::User,
                content: Content::Parts(vec![Part::Image {
                    media_type: REMOTE_IMAGE.to_owned(),
                    data: "https://cdn.example.com/img/cat.png".to_owned(),
                }]),
            }],
            ..UnifiedRequest::default()
        };
        assert!(resolve(&closed, &mut request).await.is_err());
        let too_many = Part::Image { media_type: REMOTE_IMAGE.to_owned(), data: "x".to_owned() };
        request.messages[0].content = Content::Parts(vec![too_many; MAX_FETCHES + 1]);
        let error = resolve(&fetcher, &mut request).await.unwrap_err();
        assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
    }
}
