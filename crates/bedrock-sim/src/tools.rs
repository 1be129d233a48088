//! Tool calls and media inputs that several families share: the tool plan a family reads from
//! its request ([`ToolPlan`]), the one tool call the simulator answers with ([`ToolCall`]), its
//! arguments generated from the tool's JSON schema, the pieces a stream sends them in, and
//! the checks and token counts of base64 images and documents.
//!
//! The rules (the "Simulator behaviour" of the tools contract, `/work/notes/tools-contract.md`):
//!
//! - A request that defines tools, whose choice is not "none" and whose last message holds no
//!   tool result is answered with one tool call and no text ([`ToolPlan::tool_to_call`]): the
//!   tool the choice names, else the first tool.
//! - Its input is a JSON object with each property of the schema's `required` list, or, when
//!   that list is absent or empty, every property of `properties` (in the order serde_json
//!   keeps object keys: sorted, as the workspace does not enable `preserve_order`). Each is
//!   valued by its own schema: `enum` its first value; `"string"` a word of the vocabulary
//!   drawn from the prompt's hash (one draw per string, in property order); `"integer"` 1;
//!   `"number"` 1.5; `"boolean"` true; `"array"` []; `"object"` {}; anything else (no
//!   `type`, a list of types) null.
//! - The call's id is a pure function of the prompt and the tool name ([`ToolCall::id`]), in
//!   the family's own format.
//! - A stream sends the input's compact JSON in pieces of at most [`MAX_PIECE_BYTES`] bytes,
//!   cut on char boundaries ([`json_pieces`]); each piece is one output token, so the output
//!   tokens of a tool call are its number of pieces (the same in the whole answer).
//! - A valid image or document adds a word naming it to the seed text
//!   ([`media_seed_word`]: its kind and the FNV-1a hash of its bytes), and
//!   `ceil(decoded bytes / 750)` input tokens ([`media_input_tokens`]) [U: Anthropic's own
//!   rule is width × height / 750; the simulator does not decode images].

use base64::Engine;
use serde_json::{Map, Value};

use crate::generate::{VOCABULARY, fnv1a_64};

/// The most bytes of one streamed piece of a tool call's input JSON.
pub(crate) const MAX_PIECE_BYTES: usize = 16;

/// How many decoded bytes of an image or document count as one input token.
pub(crate) const MEDIA_BYTES_PER_TOKEN: usize = 750;

/// The image media types every simulated family accepts.
pub(crate) const IMAGE_MEDIA_TYPES: &[&str] =
    &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// One tool the request defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolSpec {
    pub(crate) name: String,
    /// The JSON schema of the tool's input (Anthropic's `input_schema`, Nova's
    /// `inputSchema.json`, OpenAI's `parameters`); `{}` when the request gives none.
    pub(crate) input_schema: Value,
}

/// Which tool, if any, the request lets or makes the model call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    /// The model may call a tool (Claude `auto`, Nova `auto`, OpenAI `"auto"`), also the
    /// choice of a request that names none.
    #[default]
    Auto,
    /// The model must call some tool (Claude `any`, Nova `any`, OpenAI `"required"`).
    Required,
    /// The model must call this tool.
    Tool(String),
    /// The model may not call a tool.
    None,
}

/// What a family read about tools from a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ToolPlan {
    /// The tools the request defines, in order.
    pub(crate) tools: Vec<ToolSpec>,
    pub(crate) choice: ToolChoice,
    /// Whether the last message holds tool results: the model then answers in text.
    pub(crate) answers_tool_results: bool,
}

impl ToolPlan {
    /// The tool the answer calls: none without tools, for the choice "none", or when the last
    /// message holds tool results; else the tool the choice names (the first tool when it
    /// names one that is not defined, which the families refuse before this), else the first.
    pub(crate) fn tool_to_call(&self) -> Option<&ToolSpec> {
        if self.answers_tool_results {
            return None;
        }
        match &self.choice {
            ToolChoice::None => None,
            ToolChoice::Tool(name) => {
                self.tools.iter().find(|tool| tool.name == *name).or(self.tools.first())
            }
            ToolChoice::Auto | ToolChoice::Required => self.tools.first(),
        }
    }
}

/// The one tool call of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolCall {
    pub(crate) name: String,
    /// The arguments: always a JSON object.
    pub(crate) input: Value,
    /// The seed of the call's id: the hash of the prompt and the tool name.
    pub(crate) id_seed: u64,
}

impl ToolCall {
    /// The call of `tool` for a request whose seed text is `prompt`.
    pub(crate) fn new(tool: &ToolSpec, prompt: &str) -> ToolCall {
        let prompt_hash = fnv1a_64(prompt.as_bytes());
        let id_seed = fnv1a_64(format!("{prompt_hash:016x}\u{0}{}", tool.name).as_bytes());
        ToolCall {
            name: tool.name.clone(),
            input: arguments(&tool.input_schema, prompt_hash),
            id_seed,
        }
    }

    /// The compact JSON text of the input.
    pub(crate) fn input_json(&self) -> String {
        self.input.to_string()
    }

    /// `prefix` and `n_chars` base-62 characters derived from the prompt and the tool name.
    pub(crate) fn id(&self, prefix: &str, n_chars: usize) -> String {
        base62_id(prefix, self.id_seed, n_chars)
    }
}

/// `prefix` and `n_chars` base-62 characters derived from `seed`.
pub(crate) fn base62_id(prefix: &str, seed: u64, n_chars: usize) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut state = seed;
    let mut id = String::from(prefix);
    for _ in 0..n_chars {
        state = state.wrapping_mul(0x5851_f42d_4c95_7f2d).wrapping_add(0x1405_7b7e_f767_814f);
        let digit = usize::try_from((state >> 33) % 62).unwrap_or_default();
        id.push(char::from(ALPHABET[digit]));
    }
    id
}

/// The arguments of a call of a tool whose input schema is `schema`, strings drawn from
/// `prompt_hash` (see the module documentation).
pub(crate) fn arguments(schema: &Value, prompt_hash: u64) -> Value {
    let empty = Map::new();
    let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let names: Vec<&str> = if required.is_empty() {
        properties.keys().map(String::as_str).collect()
    } else {
        required
    };
    let mut words = WordDraw(prompt_hash);
    let mut input = Map::new();
    for name in names {
        let value = properties
            .get(name)
            .map_or(Value::Null, |property| property_value(property, &mut words));
        input.insert(name.to_owned(), value);
    }
    Value::Object(input)
}

fn property_value(property: &Value, words: &mut WordDraw) -> Value {
    if let Some(first) = property.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    match property.get("type").and_then(Value::as_str) {
        Some("string") => Value::String(words.next().to_owned()),
        Some("integer") => Value::from(1),
        Some("number") => Value::from(1.5),
        Some("boolean") => Value::Bool(true),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => Value::Object(Map::new()),
        _ => Value::Null,
    }
}

/// Vocabulary words drawn from a hash, one after the other.
struct WordDraw(u64);

impl WordDraw {
    fn next(&mut self) -> &'static str {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let idx = usize::try_from(z % VOCABULARY.len() as u64).unwrap_or_default();
        VOCABULARY[idx % VOCABULARY.len()]
    }
}

/// `json` cut into pieces of at most [`MAX_PIECE_BYTES`] bytes, each ending on a char
/// boundary (a char longer than that alone is one piece). Concatenated, they are `json`.
pub(crate) fn json_pieces(json: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    for ch in json.chars() {
        if !piece.is_empty() && piece.len() + ch.len_utf8() > MAX_PIECE_BYTES {
            pieces.push(std::mem::take(&mut piece));
        }
        piece.push(ch);
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

/// The bytes of standard base64 `data` (padding optional), or `None` when it is not base64.
pub(crate) fn decode_base64(data: &str) -> Option<Vec<u8>> {
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(data.as_bytes()).ok()
}

/// The input tokens of an image or document of `n_bytes` decoded bytes.
pub(crate) fn media_input_tokens(n_bytes: usize) -> u32 {
    u32::try_from(n_bytes.div_ceil(MEDIA_BYTES_PER_TOKEN)).unwrap_or(u32::MAX)
}

/// The word an image or document of `kind` (`image`, `document`) adds to the seed text.
pub(crate) fn media_seed_word(kind: &str, bytes: &[u8]) -> String {
    format!("{kind}-{:016x}", fnv1a_64(bytes))
}

/// A decoded image or document: the word it adds to the seed text and its input tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Media {
    pub(crate) seed_word: String,
    pub(crate) n_input_tokens: u32,
}

impl Media {
    /// The media of `kind` made of `bytes`.
    pub(crate) fn new(kind: &str, bytes: &[u8]) -> Media {
        Media {
            seed_word: media_seed_word(kind, bytes),
            n_input_tokens: media_input_tokens(bytes.len()),
        }
    }
}

/// Whether `name` matches `^[a-zA-Z0-9_-]{1,64}$`, the tool names Anthropic, Bedrock's
/// Converse and OpenAI accept.
pub(crate) fn is_valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool(name: &str, schema: Value) -> ToolSpec {
        ToolSpec { name: name.to_owned(), input_schema: schema }
    }

    #[test]
    fn the_plan_picks_the_named_tool_else_the_first() {
        let tools = vec![tool("a", json!({})), tool("b", json!({}))];
        let plan = |choice, answers_tool_results| ToolPlan {
            tools: tools.clone(),
            choice,
            answers_tool_results,
        };
        let called = |plan: ToolPlan| plan.tool_to_call().map(|tool| tool.name.clone());
        assert_eq!(called(plan(ToolChoice::Auto, false)), Some("a".to_owned()));
        assert_eq!(called(plan(ToolChoice::Required, false)), Some("a".to_owned()));
        assert_eq!(called(plan(ToolChoice::Tool("b".to_owned()), false)), Some("b".to_owned()));
        assert_eq!(called(plan(ToolChoice::None, false)), None);
        assert_eq!(called(plan(ToolChoice::Required, true)), None);
        assert_eq!(called(ToolPlan::default()), None);
    }

    #[test]
    fn arguments_follow_the_schema() {
        let schema = json!({"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "kelvin"]},
            "days": {"type": "integer"}, "ratio": {"type": "number"}, "exact": {"type": "boolean"},
            "tags": {"type": "array"}, "extra": {"type": "object"}, "any": {}}});
        let input = arguments(&schema, 7);
        let city = input["city"].as_str().unwrap();
        assert!(VOCABULARY.contains(&city));
        assert_eq!(
            input,
            json!({"any": null, "city": city, "days": 1, "exact": true, "extra": {},
                "ratio": 1.5, "tags": [], "unit": "celsius"})
        );
        // Only the required properties, when there is a list of them; an unknown one is null.
        let required = json!({"properties": {"city": {"type": "string"}, "days": {"type":
            "integer"}}, "required": ["days", "missing"]});
        assert_eq!(arguments(&required, 7), json!({"days": 1, "missing": null}));
        assert_eq!(arguments(&json!({"type": "object"}), 7), json!({}));
        // The same prompt, the same words.
        assert_eq!(arguments(&schema, 7), input);
    }

    #[test]
    fn calls_are_deterministic() {
        let weather = tool("get_weather", json!({"properties": {"city": {"type": "string"}}}));
        let call = ToolCall::new(&weather, "weather in Paris?");
        assert_eq!(call, ToolCall::new(&weather, "weather in Paris?"));
        assert_ne!(call.id("", 24), ToolCall::new(&weather, "weather in Rome?").id("", 24));
        let id = call.id("call_", 24);
        assert!(id.starts_with("call_"));
        assert_eq!(id.len(), 29);
        assert!(id[5..].bytes().all(|byte| byte.is_ascii_alphanumeric()));
        assert_eq!(
            call.input_json(),
            format!(r#"{{"city":"{}"}}"#, call.input["city"].as_str().unwrap())
        );
    }

    #[test]
    fn pieces_are_short_and_whole_chars() {
        assert_eq!(
            json_pieces(r#"{"city":"Paris","days":1}"#),
            [r#"{"city":"Paris","#, r#""days":1}"#]
        );
        assert_eq!(json_pieces(""), Vec::<String>::new());
        let text = r#"{"word":"ééééééééé€"}"#;
        let pieces = json_pieces(text);
        assert!(pieces.iter().all(|piece| piece.len() <= MAX_PIECE_BYTES && !piece.is_empty()));
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces, [r#"{"word":"ééé"#, "éééééé€\"", "}"]);
    }

    #[test]
    fn media_helpers() {
        assert_eq!(decode_base64("aGk="), Some(b"hi".to_vec()));
        assert_eq!(decode_base64("aGk"), Some(b"hi".to_vec()));
        assert_eq!(decode_base64("not base64!"), None);
        assert_eq!(media_input_tokens(0), 0);
        assert_eq!(media_input_tokens(1), 1);
        assert_eq!(media_input_tokens(750), 1);
        assert_eq!(media_input_tokens(751), 2);
        assert_eq!(Media::new("image", b"hi").seed_word, format!("image-{:016x}", fnv1a_64(b"hi")));
        assert!(is_valid_tool_name("get_weather-2"));
        assert!(!is_valid_tool_name("get weather"));
        assert!(!is_valid_tool_name(""));
        assert!(!is_valid_tool_name(&"a".repeat(65)));
    }
}
