use serde::Deserialize;
use serde_json::json;

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default, deserialize_with = "de_stop")]
    stop: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_input")]
    input: Vec<String>,
    #[serde(default, deserialize_with = "de_opt_messages")]
    messages: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_edit_images")]
    images: Vec<String>,
    #[serde(default, deserialize_with = "de_extra")]
    extra: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "de_metadata")]
    metadata: Option<BTreeMap<String, String>>,
}

fn parse(text: &str) -> Result<Body, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

fn list(n: usize, item: &str) -> String {
    vec![format!("{item:?}"); n].join(",")
}

#[test]
fn stop_is_a_string_a_list_or_null() {
    assert_eq!(parse(r#"{"stop": "x"}"#).unwrap().stop, Some(vec!["x".to_owned()]));
    assert_eq!(parse(r#"{"stop": ["a", "b"]}"#).unwrap().stop.unwrap(), ["a", "b"]);
    assert_eq!(parse(r#"{"stop": null}"#).unwrap().stop, None);
    assert_eq!(parse("{}").unwrap().stop, None);
    for bad in [r#"{"stop": 5}"#, r#"{"stop": [5]}"#, r#"{"stop": {"a": 1}}"#, r#"{"stop": true}"#]
    {
        let error = parse(bad).unwrap_err();
        assert!(error.contains("`stop` must be a string or an array of strings"), "{error}");
    }
}

#[test]
fn stop_sequences_over_the_cap_are_refused_at_the_one_past_it() {
    let at_cap = format!(r#"{{"stop": [{}]}}"#, list(MAX_STOP_SEQUENCES, "ab"));
    assert_eq!(parse(&at_cap).unwrap().stop.unwrap().len(), MAX_STOP_SEQUENCES);
    // The bytes after the item past the cap are not JSON: the parse never reads them.
    let over = format!(r#"{{"stop": [{}, "ab" garbage"#, list(MAX_STOP_SEQUENCES, "ab"));
    let error = parse(&over).unwrap_err();
    assert!(error.contains("`stop` takes at most 64 sequences"), "{error}");
}

#[test]
fn input_is_a_string_or_a_list_within_the_cap() {
    assert_eq!(parse(r#"{"input": "x"}"#).unwrap().input, ["x"]);
    let at_cap = format!(r#"{{"input": [{}]}}"#, list(MAX_INPUTS, "w"));
    assert_eq!(parse(&at_cap).unwrap().input.len(), MAX_INPUTS);
    let over = format!(r#"{{"input": [{}, "w", garbage"#, list(MAX_INPUTS, "w"));
    let error = parse(&over).unwrap_err();
    assert!(error.contains("`input` has more than 2048 texts; at most 2048"), "{error}");
    let error = parse(r#"{"input": [[1, 2]]}"#).unwrap_err();
    assert!(error.contains("token arrays are not supported"), "{error}");
}

#[test]
fn messages_and_images_are_capped() {
    let at_cap = format!(r#"{{"messages": [{}]}}"#, list(MAX_MESSAGES, "m"));
    assert_eq!(parse(&at_cap).unwrap().messages.unwrap().len(), MAX_MESSAGES);
    assert_eq!(parse(r#"{"messages": null}"#).unwrap().messages, None);
    let over = format!(r#"{{"messages": [{}, "m", garbage"#, list(MAX_MESSAGES, "m"));
    let error = parse(&over).unwrap_err();
    assert!(error.contains("at most 10000"), "{error}");
    let at_cap = format!(r#"{{"images": [{}]}}"#, list(MAX_EDIT_IMAGES, "AA=="));
    assert_eq!(parse(&at_cap).unwrap().images.len(), MAX_EDIT_IMAGES);
    let over = format!(r#"{{"images": [{}]}}"#, list(MAX_EDIT_IMAGES + 1, "AA=="));
    let error = parse(&over).unwrap_err();
    assert!(error.contains("`images` has more than 16 images"), "{error}");
}

#[test]
fn extra_counts_its_values_at_every_depth() {
    let extra = parse(r#"{"extra": {"a": [1, {"b": null}], "c": "d"}}"#).unwrap().extra.unwrap();
    assert_eq!(Value::Object(extra), json!({"a": [1, {"b": null}], "c": "d"}));
    assert_eq!(parse(r#"{"extra": null}"#).unwrap().extra, None);
    assert!(parse(r#"{"extra": [1]}"#).is_err());
    // The object itself and its values: MAX_EXTRA_VALUES in all fit, one more does not.
    let fits = format!(r#"{{"extra": {{"a": [{}]}}}}"#, vec!["0"; MAX_EXTRA_VALUES - 2].join(","));
    assert!(parse(&fits).is_ok());
    let over =
        format!(r#"{{"extra": {{"a": [{}, garbage"#, vec!["0"; MAX_EXTRA_VALUES - 1].join(","));
    let error = parse(&over).unwrap_err();
    assert!(error.contains("`extra` holds more than 10000 JSON values"), "{error}");
}

#[test]
fn metadata_entries_are_capped() {
    let metadata = parse(r#"{"metadata": {"team": "search"}}"#).unwrap().metadata.unwrap();
    assert_eq!(metadata["team"], "search");
    let entries: Vec<String> =
        (0..=MAX_METADATA_ENTRIES).map(|idx| format!(r#""k{idx}": "v""#)).collect();
    let error = parse(&format!(r#"{{"metadata": {{{}}}}}"#, entries.join(","))).unwrap_err();
    assert!(error.contains("more than 1500 entries"), "{error}");
}

#[derive(Debug, Deserialize)]
#[expect(dead_code, reason = "only the field names are read")]
struct Outer {
    model: String,
    messages: Vec<Inner>,
}

#[derive(Debug, Deserialize)]
#[expect(dead_code, reason = "only the field names are read")]
struct Inner {
    role: String,
}

#[test]
fn the_fields_of_a_derived_struct_are_read_from_serde() {
    assert_eq!(struct_fields::<Outer>(), ["model", "messages"]);
    assert_eq!(struct_fields::<Inner>(), ["role"]);
    assert!(struct_fields::<String>().is_empty());
}

#[test]
fn unknown_fields_are_found_with_the_index_of_their_object() {
    let scan = |body: Value| {
        let body = body.to_string();
        UnknownFields::scan(body.as_bytes(), &["model", "messages"], Some(("messages", &["role"])))
            .unwrap()
    };
    let clean = scan(json!({"model": "m", "tools": [], "store": false, "x": null,
                            "messages": [{"role": "user", "name": null}]}));
    assert_eq!(clean, UnknownFields::default());
    let found = scan(json!({"model": "m", "tools": [{"type": "function"}], "logit_bias": {},
                            "messages": [{"role": "user"}, {"role": "user", "store": true,
                                         "tool_calls": [1]}, {"role": "x", "audio": 1}]}));
    // The first by name, as a map of the unknown fields would list them.
    assert_eq!(found.top.as_deref(), Some("logit_bias"));
    assert_eq!(found.nested, Some((1, "store".to_owned())));
    let text =
        r#"{"model": "m", "zeta": 1, "alpha": 2, "messages": [{"role": "u", "z": 1, "b": 2}]}"#;
    let found =
        UnknownFields::scan(text.as_bytes(), &["model", "messages"], Some(("messages", &["role"])))
            .unwrap();
    assert_eq!(found.top.as_deref(), Some("alpha"));
    assert_eq!(found.nested, Some((0, "b".to_owned())));
}

#[test]
fn field_values_are_told_apart_without_being_kept() {
    let value = |text: &str| serde_json::from_str::<FieldValue>(text).unwrap();
    assert_eq!(value("null"), FieldValue::Null);
    assert_eq!(value("false"), FieldValue::False);
    assert_eq!(value("[]"), FieldValue::EmptyArray);
    for other in ["true", "0", "-1", "1.5", "\"\"", "[null]", "{}", r#"{"a": [1]}"#] {
        assert_eq!(value(other), FieldValue::Other, "{other}");
    }
    assert!(harmless("anything", FieldValue::Null));
    assert!(harmless("store", FieldValue::False));
    assert!(!harmless("stream_options", FieldValue::False));
    assert!(harmless("tools", FieldValue::EmptyArray));
    assert!(!harmless("functions", FieldValue::EmptyArray));
}
