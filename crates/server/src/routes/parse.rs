//! Request bodies parsed with bounded work: the caps on the lists a caller controls, and
//! the deserializers that enforce them while the body is parsed.
//!
//! A list over its cap is refused (400) at the item past the cap, before the rest of the
//! body is turned into values, so that what a request holds is bounded by its cap and not
//! by how many items fit in the body limit. Fields that take more than one JSON shape
//! (`stop`, `input`, `prompt`, message `content`) are read by a visitor, without an
//! intermediate `serde_json::Value`: a value tree costs several times its JSON text, and a
//! body of many small items many times more (a 6-byte `"ab",` is some 60 bytes as a
//! `Value` and some 56 as a `String`).
//!
//! The caps (also in README.md, "Limits on a request's lists"):
//!
//! | list | cap | routes |
//! |---|---|---|
//! | `messages` | [`MAX_MESSAGES`] | `/v1/generate`, `/v1/chat/completions` |
//! | `tools` | [`MAX_TOOLS`](crate::routes::content::MAX_TOOLS) | `/v1/generate`, `/v1/chat/completions` |
//! | `stop` | [`MAX_STOP_SEQUENCES`] | `/v1/generate`, `/v1/chat/completions`, `/v1/completions` |
//! | `input`, `images` of an embedding request | [`MAX_INPUTS`] | `/v1/embed`, `/v1/embeddings` |
//! | `images` of an edit | [`MAX_EDIT_IMAGES`] | `/v1/images/edits` |
//! | JSON values in `extra` | [`MAX_EXTRA_VALUES`] | every route with `extra` |
//! | request metadata entries | [`MAX_METADATA_ENTRIES`] | `bedrock.request_metadata`, OpenAI's `metadata` |
//!
//! The model families have their own, smaller limits (four stop sequences for Cohere,
//! 96 texts per call for Cohere Embed, five images for a Titan variation), checked by the
//! translator once the request is parsed.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

pub use crate::routes::embed::MAX_INPUTS;

/// Most messages of one conversation.
pub const MAX_MESSAGES: usize = 10_000;
/// Most stop sequences of one request.
pub const MAX_STOP_SEQUENCES: usize = 64;
/// Most input images of one image edit.
pub const MAX_EDIT_IMAGES: usize = 16;
/// Most JSON values (objects, arrays and scalars, at any depth) in one `extra` object.
pub const MAX_EXTRA_VALUES: usize = 10_000;
/// Most request metadata entries: more than fit in Bedrock's 8,500 characters.
pub const MAX_METADATA_ENTRIES: usize = 1_500;

/// The visitor methods that refuse a boolean, a number or an object with `$shape`, the
/// message of a list field that takes only strings.
macro_rules! refuse_other_shapes {
    ($shape:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom($shape))
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom($shape))
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom($shape))
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom($shape))
        }

        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom($shape))
        }
    };
}

/// `stop`: one string, or a list of at most [`MAX_STOP_SEQUENCES`] strings; `null` is none.
pub(crate) fn de_stop<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    const SHAPE: &str = "`stop` must be a string or an array of strings";
    struct Stop;
    impl<'de> Visitor<'de> for Stop {
        type Value = Option<Vec<String>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
            inner.deserialize_any(Stop)
        }

        fn visit_str<E: de::Error>(self, one: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![one.to_owned()]))
        }

        fn visit_string<E: de::Error>(self, one: String) -> Result<Self::Value, E> {
            Ok(Some(vec![one]))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let over = || format!("`stop` takes at most {MAX_STOP_SEQUENCES} sequences");
            bounded_seq(seq, MAX_STOP_SEQUENCES, &over, Some(SHAPE)).map(Some)
        }

        refuse_other_shapes!(SHAPE);
    }
    deserializer.deserialize_any(Stop)
}

/// Embedding `input`: one string, or a list of at most [`MAX_INPUTS`] strings (token
/// arrays, which OpenAI also takes, are not supported: Bedrock's models take text).
pub(crate) fn de_input<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    const SHAPE: &str =
        "`input` must be a string or an array of strings (token arrays are not supported)";
    struct Input;
    impl<'de> Visitor<'de> for Input {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }

        fn visit_str<E: de::Error>(self, one: &str) -> Result<Self::Value, E> {
            Ok(vec![one.to_owned()])
        }

        fn visit_string<E: de::Error>(self, one: String) -> Result<Self::Value, E> {
            Ok(vec![one])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let over = || {
                format!(
                    "`input` has more than {MAX_INPUTS} texts; at most {MAX_INPUTS} per request"
                )
            };
            bounded_seq(seq, MAX_INPUTS, &over, Some(SHAPE))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(E::custom(SHAPE))
        }

        refuse_other_shapes!(SHAPE);
    }
    deserializer.deserialize_any(Input)
}

/// A conversation's `messages`: at most [`MAX_MESSAGES`].
pub(crate) fn de_messages<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let over =
        || format!("`messages` has more than {MAX_MESSAGES} messages; at most {MAX_MESSAGES}");
    deserializer.deserialize_seq(Bounded::new(MAX_MESSAGES, &over))
}

/// [`de_messages`] of a field that may be left out or `null`.
pub(crate) fn de_opt_messages<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let over =
        || format!("`messages` has more than {MAX_MESSAGES} messages; at most {MAX_MESSAGES}");
    deserializer.deserialize_option(OptionOf(Bounded::new(MAX_MESSAGES, &over)))
}

/// A unified message's `content`: a string, or a list of parts (each read as its own
/// `type` says, so that a malformed part gets that type's error).
pub(crate) fn de_content<'de, D>(deserializer: D) -> Result<translator::Content, D::Error>
where
    D: Deserializer<'de>,
{
    struct ContentVisitor;
    impl<'de> Visitor<'de> for ContentVisitor {
        type Value = translator::Content;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a list of content parts")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(translator::Content::Text(text.to_owned()))
        }

        fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
            Ok(translator::Content::Text(text))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut parts = Vec::new();
            while let Some(part) = seq.next_element::<translator::Part>()? {
                parts.push(part);
            }
            Ok(translator::Content::Parts(parts))
        }
    }
    deserializer.deserialize_any(ContentVisitor)
}

/// A request's `tools`: at most [`MAX_TOOLS`](crate::routes::content::MAX_TOOLS); `null`
/// is none.
pub(crate) fn de_tools<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    use crate::routes::content::MAX_TOOLS;
    let over = || format!("`tools` has more than {MAX_TOOLS} tools; at most {MAX_TOOLS}");
    deserializer.deserialize_option(OptionOf(Bounded::new(MAX_TOOLS, &over)))
}

/// An embedding request's `images`: at most [`MAX_INPUTS`].
pub(crate) fn de_embed_images<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let over =
        || format!("`images` has more than {MAX_INPUTS} images; at most {MAX_INPUTS} per request");
    deserializer.deserialize_seq(Bounded::new(MAX_INPUTS, &over))
}

/// An image edit's `images`: at most [`MAX_EDIT_IMAGES`].
pub(crate) fn de_edit_images<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let over =
        || format!("`images` has more than {MAX_EDIT_IMAGES} images; at most {MAX_EDIT_IMAGES}");
    deserializer.deserialize_seq(Bounded::new(MAX_EDIT_IMAGES, &over))
}

/// Request metadata (`key: value` strings): at most [`MAX_METADATA_ENTRIES`] entries;
/// `null` is none.
pub(crate) fn de_metadata<'de, D>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct Metadata;
    impl<'de> Visitor<'de> for Metadata {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of strings")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if entries.len() == MAX_METADATA_ENTRIES {
                    return Err(de::Error::custom(format!(
                        "request metadata has more than {MAX_METADATA_ENTRIES} entries"
                    )));
                }
                entries.insert(key, value);
            }
            Ok(entries)
        }
    }
    deserializer.deserialize_option(OptionOf(Metadata))
}

/// `extra`, the model-specific body fields: an object of at most [`MAX_EXTRA_VALUES`] JSON
/// values, counted at every depth; `null` is none.
pub(crate) fn de_extra<'de, D>(deserializer: D) -> Result<Option<Map<String, Value>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct Extra;
    impl<'de> Visitor<'de> for Extra {
        type Value = Map<String, Value>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of model-specific body fields")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let budget = Cell::new(MAX_EXTRA_VALUES);
            match (CountedValue { budget: &budget }).visit_map(map)? {
                Value::Object(object) => Ok(object),
                _ => Err(de::Error::custom("`extra` must be an object")),
            }
        }
    }
    deserializer.deserialize_option(OptionOf(Extra))
}

/// Reads the items of `seq`, at most `max`: the item past it is an error (`over`), as is
/// an item that is not a `T` (`shape`, else the item's own error).
fn bounded_seq<'de, A, T>(
    mut seq: A,
    max: usize,
    over: &dyn Fn() -> String,
    shape: Option<&str>,
) -> Result<Vec<T>, A::Error>
where
    A: SeqAccess<'de>,
    T: Deserialize<'de>,
{
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(max).min(1024));
    loop {
        let item = match shape {
            Some(shape) => seq.next_element::<T>().map_err(|_| de::Error::custom(shape))?,
            None => seq.next_element::<T>()?,
        };
        let Some(item) = item else {
            return Ok(items);
        };
        if items.len() == max {
            return Err(de::Error::custom(over()));
        }
        items.push(item);
    }
}

/// A list of at most `max` items.
struct Bounded<'a, T> {
    max: usize,
    over: &'a dyn Fn() -> String,
    item: PhantomData<T>,
}

impl<'a, T> Bounded<'a, T> {
    fn new(max: usize, over: &'a dyn Fn() -> String) -> Bounded<'a, T> {
        Bounded { max, over, item: PhantomData }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<T>, A::Error> {
        bounded_seq(seq, self.max, self.over, None)
    }
}

/// `null` (or nothing) as `None`, anything else as the inner visitor reads it.
struct OptionOf<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for OptionOf<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
        inner.deserialize_any(self.0).map(Some)
    }
}

/// A JSON value built while counting its values against a shared budget.
struct CountedValue<'a> {
    budget: &'a Cell<usize>,
}

impl CountedValue<'_> {
    fn spend<E: de::Error>(&self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(E::custom(format!(
                "`extra` holds more than {MAX_EXTRA_VALUES} JSON values; at most {MAX_EXTRA_VALUES}"
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for CountedValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Value, D::Error> {
        inner.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(CountedValue { budget: self.budget })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(CountedValue { budget: self.budget })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// What an unsupported field's value is, read without keeping it: OpenAI's no-op values
/// (`null`, `false`, `[]`) are told apart from the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValue {
    Null,
    False,
    EmptyArray,
    Other,
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FieldValue, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = FieldValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_unit<E: de::Error>(self) -> Result<FieldValue, E> {
                Ok(FieldValue::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<FieldValue, E> {
                Ok(FieldValue::Null)
            }

            fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<FieldValue, D::Error> {
                inner.deserialize_any(Shape)
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<FieldValue, E> {
                Ok(if value { FieldValue::Other } else { FieldValue::False })
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<FieldValue, E> {
                Ok(FieldValue::Other)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<FieldValue, E> {
                Ok(FieldValue::Other)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<FieldValue, E> {
                Ok(FieldValue::Other)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<FieldValue, E> {
                Ok(FieldValue::Other)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldValue, A::Error> {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(FieldValue::EmptyArray);
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldValue::Other)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldValue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FieldValue::Other)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// The field names a derived `Deserialize` struct takes (serde hands them to
/// `deserialize_struct`), so that the fields outside them can be found in a second read
/// of the body without listing the fields twice. Empty for a type that is not a struct.
pub(crate) fn struct_fields<T: de::DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let fields = Cell::new(&[][..]);
    let _ = T::deserialize(Probe(&fields));
    fields.get()
}

/// The field of a JSON object outside `known` whose value is not OpenAI's no-op (see
/// [`harmless`]), the first by name when there are several (as a map of them would list
/// them), and, for the objects of the array field `nested.0`, such a field outside
/// `nested.1` of the first object that has one, with that object's index. Read without
/// keeping any value.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UnknownFields {
    pub top: Option<String>,
    pub nested: Option<(usize, String)>,
}

impl UnknownFields {
    /// Reads `body` (a JSON object already parsed once, so valid) for its unknown fields.
    pub(crate) fn scan(
        body: &[u8],
        known: &'static [&'static str],
        nested: Option<(&'static str, &'static [&'static str])>,
    ) -> Result<UnknownFields, serde_json::Error> {
        let mut found = UnknownFields::default();
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        TopScan { known, nested, found: &mut found }.deserialize(&mut deserializer)?;
        Ok(found)
    }
}

/// Whether `value` of the unsupported field `key` changes nothing: `null`, `false` for
/// `logprobs`, `parallel_tool_calls` and `store`, an empty `tools`.
pub(crate) fn harmless(key: &str, value: FieldValue) -> bool {
    match value {
        FieldValue::Null => true,
        FieldValue::False => matches!(key, "logprobs" | "parallel_tool_calls" | "store"),
        FieldValue::EmptyArray => key == "tools",
        FieldValue::Other => false,
    }
}

struct TopScan<'a> {
    known: &'static [&'static str],
    nested: Option<(&'static str, &'static [&'static str])>,
    found: &'a mut UnknownFields,
}

impl<'de> DeserializeSeed<'de> for TopScan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopScan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.nested {
                Some((field, known)) if key == field => {
                    let mut at = None;
                    map.next_value_seed(NestedScan { known, found: &mut at })?;
                    if self.found.nested.is_none() {
                        self.found.nested = at;
                    }
                }
                _ if self.known.contains(&key.as_ref()) => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let value = map.next_value::<FieldValue>()?;
                    if !harmless(&key, value)
                        && self.found.top.as_deref().is_none_or(|top| *key < *top)
                    {
                        self.found.top = Some(key.into_owned());
                    }
                }
            }
        }
        Ok(())
    }
}

/// The objects of an array field: the first unknown, not harmless field and its index.
struct NestedScan<'a> {
    known: &'static [&'static str],
    found: &'a mut Option<(usize, String)>,
}

impl<'de> DeserializeSeed<'de> for NestedScan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NestedScan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(first) = seq.next_element_seed(ObjectScan { known: self.known })? {
            if self.found.is_none()
                && let Some(key) = first
            {
                *self.found = Some((index, key));
            }
            index += 1;
        }
        Ok(())
    }

    // Anything else was refused by the first, typed read; nothing to find in it.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// One object of a nested array: its unknown, not harmless field first by name.
struct ObjectScan {
    known: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for ObjectScan {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectScan {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut first = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if self.known.contains(&key.as_ref()) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value::<FieldValue>()?;
            if !harmless(&key, value) && first.as_deref().is_none_or(|first| *key < *first) {
                first = Some(key.into_owned());
            }
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests;
