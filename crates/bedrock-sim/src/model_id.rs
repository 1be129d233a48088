//! The `{modelId}` path label: percent-decoding, the shape check Bedrock applies (wire
//! document §1.3) and reduction of ARNs and cross-region profile ids to a base model id (§6).

use crate::error::BedrockError;

/// The pattern of the `modelId` member, verbatim from the service model; quoted in the
/// message of a failed check. The simulator approximates it with [`check_model_id_shape`].
pub(crate) const MODEL_ID_PATTERN: &str = r"(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:(([0-9]{12}:custom-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}/[a-z0-9]{12})|(:foundation-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}))|([0-9]{12}:imported-model/[a-z0-9]{12})|([0-9]{12}:provisioned-model/[a-z0-9]{12})|([0-9]{12}:custom-model-deployment/[a-z0-9]{12})|([0-9]{12}:(inference-profile|application-inference-profile)/[a-zA-Z0-9-:.]+)))|([a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}))|(([0-9a-zA-Z][_-]?)+)|([a-zA-Z0-9-:.]+)$|(^(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:prompt/[0-9a-zA-Z]{10}(?::[0-9]{1,5})?))$|(^arn:aws:sagemaker:[a-z0-9-]+:[0-9]{12}:endpoint/[a-zA-Z0-9-]+$)|(^arn:aws(-[^:]+)?:bedrock:([0-9a-z-]{1,20}):([0-9]{12}):(default-)?prompt-router/[a-zA-Z0-9-:.]+$)";

/// The longest model id Bedrock accepts, in characters.
pub(crate) const MAX_MODEL_ID_LEN: usize = 2048;

/// The geography prefixes of cross-region inference profile ids.
pub(crate) const GEOGRAPHY_PREFIXES: &[&str] =
    &["us", "eu", "apac", "us-gov", "ca", "jp", "au", "global"];

/// Decodes `%XX` escapes of one raw path segment. `None` for a bad escape or a result that
/// is not UTF-8.
pub(crate) fn percent_decode(segment: &str) -> Option<String> {
    let raw = segment.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut idx = 0;
    while idx < raw.len() {
        if raw[idx] == b'%' {
            let high = raw.get(idx + 1).and_then(|byte| hex_value(*byte))?;
            let low = raw.get(idx + 2).and_then(|byte| hex_value(*byte))?;
            decoded.push(high * 16 + low);
            idx += 3;
        } else {
            decoded.push(raw[idx]);
            idx += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).and_then(|digit| u8::try_from(digit).ok())
}

/// Checks the length and, approximately, the pattern of a model id: ARNs may use
/// `[A-Za-z0-9-:._/]`, other ids `[A-Za-z0-9-:._]`.
pub(crate) fn check_model_id_shape(model_id: &str) -> Result<(), BedrockError> {
    let n_chars = model_id.chars().count();
    let constraint = if n_chars == 0 {
        "Member must have length greater than or equal to 1".to_owned()
    } else if n_chars > MAX_MODEL_ID_LEN {
        format!("Member must have length less than or equal to {MAX_MODEL_ID_LEN}")
    } else {
        let is_arn = model_id.starts_with("arn:");
        let allowed = |c: char| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '_') || (is_arn && c == '/')
        };
        if model_id.chars().all(allowed) {
            return Ok(());
        }
        format!("Member must satisfy regular expression pattern: {MODEL_ID_PATTERN}")
    };
    Err(BedrockError::validation(format!(
        "1 validation error detected: Value '{model_id}' at 'modelId' failed to satisfy \
         constraint: {constraint}"
    )))
}

/// The base model id inside a model id: a `foundation-model/` or `inference-profile/` ARN is
/// cut to the id it embeds, then a geography prefix is dropped, so
/// `arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v2:1` becomes
/// `anthropic.claude-v2:1`. `None` for an ARN that embeds no model id.
pub(crate) fn base_model_id(model_id: &str) -> Option<&str> {
    let id = if model_id.starts_with("arn:") {
        // arn:partition:service:region:account:resource-type/resource-id
        let mut parts = model_id.splitn(6, ':');
        let (_arn, _partition, service) = (parts.next(), parts.next(), parts.next()?);
        let (_region, _account, resource) = (parts.next(), parts.next(), parts.next()?);
        let (resource_type, resource_id) = resource.split_once('/')?;
        match (service, resource_type) {
            ("bedrock", "foundation-model" | "inference-profile") => resource_id,
            _ => return None,
        }
    } else {
        model_id
    };
    match id.split_once('.') {
        Some((prefix, rest)) if GEOGRAPHY_PREFIXES.contains(&prefix) && rest.contains('.') => {
            Some(rest)
        }
        _ => Some(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("anthropic.claude-v2%3A1").unwrap(), "anthropic.claude-v2:1");
        assert_eq!(percent_decode("a%2fb%2F").unwrap(), "a/b/");
        assert_eq!(percent_decode("%E2%82%AC").unwrap(), "€");
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn shapes() {
        let good = [
            "amazon.titan-text-express-v1",
            "anthropic.claude-v2:1",
            "my_model-1",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2",
        ];
        for id in good {
            assert_eq!(check_model_id_shape(id), Ok(()), "{id}");
        }
        let error = check_model_id_shape("anthropic claude").unwrap_err();
        assert!(
            error.message().starts_with(
                "1 validation error detected: Value 'anthropic claude' at 'modelId' failed to \
                 satisfy constraint: Member must satisfy regular expression pattern: (arn:aws"
            ),
            "{}",
            error.message()
        );
        assert!(check_model_id_shape("a/b").is_err());
        assert!(check_model_id_shape("").unwrap_err().message().contains("greater than or equal"));
        let long = "a".repeat(MAX_MODEL_ID_LEN + 1);
        assert!(check_model_id_shape(&long).unwrap_err().message().contains("less than"));
    }

    #[test]
    fn base_ids() {
        let cases = [
            ("anthropic.claude-v2", Some("anthropic.claude-v2")),
            ("us.anthropic.claude-v2:1", Some("anthropic.claude-v2:1")),
            ("us-gov.amazon.titan-text-lite-v1", Some("amazon.titan-text-lite-v1")),
            ("global.anthropic.claude-instant-v1", Some("anthropic.claude-instant-v1")),
            ("us.claude", Some("us.claude")),
            (
                "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2",
                Some("anthropic.claude-v2"),
            ),
            (
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-v2:1",
                Some("anthropic.claude-v2:1"),
            ),
            ("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefabcdef", None),
            ("arn:aws:sagemaker:us-east-1:767398002385:endpoint/endpoint-quick-start", None),
        ];
        for (id, expected) in cases {
            assert_eq!(base_model_id(id), expected, "{id}");
        }
    }
}
