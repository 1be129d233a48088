//! A small JSON-schema checker for model request bodies, with the messages Bedrock's
//! validator (everit) produces: `Malformed input request: #: extraneous key [inputText] is not
//! permitted, please reformat your input and try again.`
//!
//! Families describe their body as a [`Schema`] and call [`validate`]; after that they can read
//! the body without re-checking types.

use serde_json::Value;

use crate::error::BedrockError;
use crate::media_schema::{Shape, ViolationReport, array_of, check, string_up_to, type_name};

/// The shape of one JSON value in a request body.
#[derive(Debug, Clone)]
pub(crate) enum Schema {
    /// An object with only these keys, of which `required` must be present.
    Object { properties: Vec<(&'static str, Schema)>, required: Vec<&'static str> },
    /// A string.
    String,
    /// A number within `minimum..=maximum`.
    Number { minimum: f64, maximum: f64 },
    /// An integer (an integer-valued float counts) within `minimum..=maximum`.
    Integer { minimum: i64, maximum: i64 },
    /// An array of strings.
    StringArray,
}

/// Checks `value` against `schema`; every violation is found before the error is built.
/// The checking itself is `media_schema`'s, whose [`Shape`] is a superset of [`Schema`].
pub(crate) fn validate(schema: &Schema, value: &Value) -> Result<(), BedrockError> {
    check(&schema.to_shape(), value, ViolationReport::Counted)
}

impl Schema {
    fn to_shape(&self) -> Shape {
        match self {
            Schema::Object { properties, required } => Shape::Object {
                properties: properties.iter().map(|(key, item)| (*key, item.to_shape())).collect(),
                required: required.clone(),
            },
            Schema::String => string_up_to(usize::MAX),
            Schema::Number { minimum, maximum } => {
                Shape::Number { minimum: *minimum, maximum: *maximum }
            }
            Schema::Integer { minimum, maximum } => {
                Shape::Integer { minimum: *minimum, maximum: *maximum }
            }
            Schema::StringArray => array_of(string_up_to(usize::MAX), 0, usize::MAX),
        }
    }
}

/// The ValidationException for a body that does not fit its schema.
pub(crate) fn malformed_input(detail: &str) -> BedrockError {
    BedrockError::validation(format!(
        "Malformed input request: {detail}, please reformat your input and try again."
    ))
}

/// Parses a request body that must be a JSON object.
pub(crate) fn parse_json_object(body: &[u8]) -> Result<Value, BedrockError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        let detail = if body.iter().all(u8::is_ascii_whitespace) {
            "A JSONObject text must begin with '{' at 0 [character 1 line 1]".to_owned()
        } else {
            format!("{error}")
        };
        malformed_input(&detail)
    })?;
    if !value.is_object() {
        return Err(malformed_input(&format!(
            "#: expected type: JSONObject, found: {}",
            type_name(&value)
        )));
    }
    Ok(value)
}

/// The integer value of a JSON number, accepting integer-valued floats such as `512.0`.
pub(crate) fn as_integer(value: &Value) -> Option<i64> {
    if let Some(integer) = value.as_i64() {
        return Some(integer);
    }
    let float = value.as_f64()?;
    let in_range = float.fract() == 0.0 && float.abs() < 9.0e15;
    // Integral and well inside the i64 range, so the cast is exact.
    in_range.then_some(float as i64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Schema {
        Schema::Object {
            properties: vec![
                ("text", Schema::String),
                (
                    "config",
                    Schema::Object {
                        properties: vec![
                            ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
                            ("max", Schema::Integer { minimum: 0, maximum: 10 }),
                            ("stops", Schema::StringArray),
                        ],
                        required: vec![],
                    },
                ),
            ],
            required: vec!["text"],
        }
    }

    /// Validates `body` and returns the error message, or "ok".
    fn check(body: Value) -> String {
        match validate(&schema(), &body) {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.message().to_owned(),
        }
    }

    #[test]
    fn messages() {
        let cases = [
            (json!({"text": "hi"}), "ok"),
            (json!({"text": "hi", "config": {"temperature": 1, "max": 10.0, "stops": []}}), "ok"),
            (
                json!({}),
                "Malformed input request: #: required key [text] not found, please reformat \
                 your input and try again.",
            ),
            (
                json!({"text": "hi", "inputText": "x"}),
                "Malformed input request: #: extraneous key [inputText] is not permitted, \
                 please reformat your input and try again.",
            ),
            (
                json!({"text": "hi", "config": {"temperature": 1.5}}),
                "Malformed input request: #/config/temperature: 1.5 is not less or equal to 1, \
                 please reformat your input and try again.",
            ),
            (
                json!({"text": "hi", "config": {"max": -1}}),
                "Malformed input request: #/config/max: -1 is not greater or equal to 0, please \
                 reformat your input and try again.",
            ),
            (
                json!({"text": "hi", "config": {"max": 2.5}}),
                "Malformed input request: #/config/max: expected type: Integer, found: \
                 BigDecimal, please reformat your input and try again.",
            ),
            (
                json!({"text": 3, "config": {"stops": ["a", 1]}}),
                "Malformed input request: 2 schema violations found, please reformat your input \
                 and try again.",
            ),
            (
                json!({"text": "hi", "config": null}),
                "Malformed input request: #/config: expected type: JSONObject, found: Null, \
                 please reformat your input and try again.",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(check(body.clone()), expected, "{body}");
        }
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert!(parse_json_object(br#"{"a":1}"#).is_ok());
        let error = parse_json_object(b"[1]").unwrap_err();
        assert_eq!(
            error.message(),
            "Malformed input request: #: expected type: JSONObject, found: JSONArray, please \
             reformat your input and try again."
        );
        assert!(parse_json_object(b"not json").unwrap_err().message().starts_with("Malformed"));
        assert!(parse_json_object(b"").unwrap_err().message().contains("JSONObject text"));
    }
}
