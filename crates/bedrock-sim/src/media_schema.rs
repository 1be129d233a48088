//! The request-body checker, with the messages Bedrock's validator (everit) produces
//! (`#/texts: expected maximum item count: 96, found: 97`): objects, strings with lengths,
//! string and integer enums, booleans, numbers and integers with ranges, arrays with
//! bounds, free-form objects. The embedding and image families describe their bodies as a
//! [`Shape`]; the text families' simpler `schema::Schema` is converted to one.
//!
//! Families collect the violations with [`collect_violations`], append their own rules'
//! violations and build the error with [`finish`], or call [`check`]. After that they can
//! read the body without re-checking types.

use serde_json::Value;

use crate::error::BedrockError;
use crate::schema::{as_integer, malformed_input};

/// The shape of one JSON value in a request body.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    /// An object with only these keys, of which `required` must be present.
    Object { properties: Vec<(&'static str, Shape)>, required: Vec<&'static str> },
    /// Any object; its keys are not checked.
    AnyObject,
    /// A string of `min_len..=max_len` characters.
    String { min_len: usize, max_len: usize },
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// `true` or `false`.
    Boolean,
    /// A number within `minimum..=maximum`.
    Number { minimum: f64, maximum: f64 },
    /// An integer (an integer-valued float counts) within `minimum..=maximum`.
    Integer { minimum: i64, maximum: i64 },
    /// One of these integers.
    IntegerEnum(&'static [i64]),
    /// An array of `min_items..=max_items` items of one shape.
    Array { items: Box<Shape>, min_items: usize, max_items: usize },
}

/// How a body with several violations is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ViolationReport {
    /// `N schema violations found`, as Titan Text answers (wire document §2.2).
    Counted,
    /// Every violation, one after the other without a separator, as Cohere Embed answers:
    /// `#: required key [texts] not found#: extraneous key [inputText] is not permitted`.
    Joined,
}

/// A string of any length up to `max_len` characters.
pub(crate) fn string_up_to(max_len: usize) -> Shape {
    Shape::String { min_len: 0, max_len }
}

/// An array of `min_items..=max_items` items of shape `items`.
pub(crate) fn array_of(items: Shape, min_items: usize, max_items: usize) -> Shape {
    Shape::Array { items: Box::new(items), min_items, max_items }
}

/// Every violation of `shape` in `value`, in body order, as everit words them.
pub(crate) fn collect_violations(shape: &Shape, value: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    collect(shape, value, "#", &mut violations);
    violations
}

/// The ValidationException for `violations`, if there are any.
pub(crate) fn finish(violations: &[String], report: ViolationReport) -> Result<(), BedrockError> {
    match (violations, report) {
        ([], _) => Ok(()),
        ([violation], _) => Err(malformed_input(violation)),
        (_, ViolationReport::Counted) => {
            Err(malformed_input(&format!("{} schema violations found", violations.len())))
        }
        (_, ViolationReport::Joined) => Err(malformed_input(&violations.concat())),
    }
}

/// Checks `value` against `shape`.
pub(crate) fn check(
    shape: &Shape,
    value: &Value,
    report: ViolationReport,
) -> Result<(), BedrockError> {
    finish(&collect_violations(shape, value), report)
}

fn collect(shape: &Shape, value: &Value, pointer: &str, out: &mut Vec<String>) {
    match shape {
        Shape::Object { properties, required } => {
            let Some(object) = value.as_object() else {
                out.push(type_mismatch(pointer, "JSONObject", value));
                return;
            };
            for key in required {
                if !object.contains_key(*key) {
                    out.push(format!("{pointer}: required key [{key}] not found"));
                }
            }
            for (key, item) in object {
                match properties.iter().find(|(name, _)| name == key) {
                    Some((_, item_shape)) => {
                        collect(item_shape, item, &format!("{pointer}/{key}"), out);
                    }
                    None => out.push(format!("{pointer}: extraneous key [{key}] is not permitted")),
                }
            }
        }
        Shape::AnyObject => {
            if !value.is_object() {
                out.push(type_mismatch(pointer, "JSONObject", value));
            }
        }
        Shape::String { min_len, max_len } => {
            let Some(text) = value.as_str() else {
                out.push(type_mismatch(pointer, "String", value));
                return;
            };
            let n_chars = text.chars().count();
            if n_chars < *min_len {
                out.push(format!("{pointer}: expected minLength: {min_len}, actual: {n_chars}"));
            } else if n_chars > *max_len {
                out.push(format!("{pointer}: expected maxLength: {max_len}, actual: {n_chars}"));
            }
        }
        Shape::Enum(allowed) => {
            if !value.as_str().is_some_and(|text| allowed.contains(&text)) {
                out.push(format!("{pointer}: {} is not a valid enum value", enum_subject(value)));
            }
        }
        Shape::Boolean => {
            if !value.is_boolean() {
                out.push(type_mismatch(pointer, "Boolean", value));
            }
        }
        Shape::Number { minimum, maximum } => {
            let Some(number) = value.as_f64() else {
                out.push(type_mismatch(pointer, "Number", value));
                return;
            };
            if number < *minimum {
                let minimum = format_limit(*minimum);
                out.push(format!("{pointer}: {value} is not greater or equal to {minimum}"));
            } else if number > *maximum {
                let maximum = format_limit(*maximum);
                out.push(format!("{pointer}: {value} is not less or equal to {maximum}"));
            }
        }
        Shape::Integer { minimum, maximum } => {
            let Some(number) = as_integer(value) else {
                out.push(type_mismatch(pointer, "Integer", value));
                return;
            };
            if number < *minimum {
                out.push(format!("{pointer}: {value} is not greater or equal to {minimum}"));
            } else if number > *maximum {
                out.push(format!("{pointer}: {value} is not less or equal to {maximum}"));
            }
        }
        Shape::IntegerEnum(allowed) => {
            if !as_integer(value).is_some_and(|number| allowed.contains(&number)) {
                out.push(format!("{pointer}: {} is not a valid enum value", enum_subject(value)));
            }
        }
        Shape::Array { items, min_items, max_items } => {
            let Some(elements) = value.as_array() else {
                out.push(type_mismatch(pointer, "JSONArray", value));
                return;
            };
            let n_items = elements.len();
            if n_items < *min_items {
                out.push(format!(
                    "{pointer}: expected minimum item count: {min_items}, found: {n_items}"
                ));
            } else if n_items > *max_items {
                out.push(format!(
                    "{pointer}: expected maximum item count: {max_items}, found: {n_items}"
                ));
            }
            for (idx, element) in elements.iter().enumerate() {
                collect(items, element, &format!("{pointer}/{idx}"), out);
            }
        }
    }
}

/// How everit prints the value of a failed enum: strings without their quotes.
fn enum_subject(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A `{pointer}: expected type: {expected}, found: {type}` violation.
pub(crate) fn type_mismatch(pointer: &str, expected: &str, value: &Value) -> String {
    format!("{pointer}: expected type: {expected}, found: {}", type_name(value))
}

/// The Java type name everit reports for a JSON value.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(number) if number.is_f64() => "BigDecimal",
        Value::Number(_) => "Integer",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    }
}

fn format_limit(limit: f64) -> String {
    if limit.fract() == 0.0 { format!("{limit:.0}") } else { format!("{limit}") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn shape() -> Shape {
        Shape::Object {
            properties: vec![
                ("texts", array_of(string_up_to(5), 1, 2)),
                ("input_type", Shape::Enum(&["search_query", "search_document"])),
                ("normalize", Shape::Boolean),
                ("dimensions", Shape::IntegerEnum(&[256, 512])),
                ("scale", Shape::Number { minimum: 1.1, maximum: 10.0 }),
                ("count", Shape::Integer { minimum: 1, maximum: 5 }),
                ("source", Shape::AnyObject),
                ("name", Shape::String { min_len: 1, max_len: 3 }),
            ],
            required: vec!["texts"],
        }
    }

    fn message(body: Value, report: ViolationReport) -> String {
        match check(&shape(), &body, report) {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.message().to_owned(),
        }
    }

    #[test]
    fn single_violations_read_like_everit() {
        let cases = [
            (json!({"texts": ["a"], "dimensions": 512.0, "source": {"x": 1}}), "ok"),
            (json!({"texts": []}), "#/texts: expected minimum item count: 1, found: 0"),
            (
                json!({"texts": ["a", "b", "c"]}),
                "#/texts: expected maximum item count: 2, found: 3",
            ),
            (json!({"texts": ["abcdef"]}), "#/texts/0: expected maxLength: 5, actual: 6"),
            (json!({"texts": ["a"], "name": ""}), "#/name: expected minLength: 1, actual: 0"),
            (
                json!({"texts": ["a"], "input_type": "nope"}),
                "#/input_type: nope is not a valid enum value",
            ),
            (json!({"texts": ["a"], "input_type": 3}), "#/input_type: 3 is not a valid enum value"),
            (
                json!({"texts": ["a"], "normalize": "yes"}),
                "#/normalize: expected type: Boolean, found: String",
            ),
            (
                json!({"texts": ["a"], "dimensions": 300}),
                "#/dimensions: 300 is not a valid enum value",
            ),
            (json!({"texts": ["a"], "scale": 1.0}), "#/scale: 1.0 is not greater or equal to 1.1"),
            (json!({"texts": ["a"], "count": 6}), "#/count: 6 is not less or equal to 5"),
            (
                json!({"texts": ["a"], "source": []}),
                "#/source: expected type: JSONObject, found: JSONArray",
            ),
            (json!({"texts": "a"}), "#/texts: expected type: JSONArray, found: String"),
        ];
        for (body, detail) in cases {
            let expected = if detail == "ok" {
                "ok".to_owned()
            } else {
                format!(
                    "Malformed input request: {detail}, please reformat your input and try again."
                )
            };
            assert_eq!(message(body.clone(), ViolationReport::Joined), expected, "{body}");
        }
    }

    #[test]
    fn several_violations_are_counted_or_joined() {
        // Keys in alphabetical order, so the order does not depend on serde_json's map.
        let body = json!({"count": 0, "inputText": "hi"});
        assert_eq!(
            message(body.clone(), ViolationReport::Counted),
            "Malformed input request: 3 schema violations found, please reformat your input and \
             try again."
        );
        assert_eq!(
            message(body, ViolationReport::Joined),
            "Malformed input request: #: required key [texts] not found#/count: 0 is not greater \
             or equal to 1#: extraneous key [inputText] is not permitted, please reformat your \
             input and try again."
        );
    }
}
