//! Deterministic text generation: the answer to a prompt is a sequence of words from a fixed
//! vocabulary, seeded by the FNV-1a hash of the prompt, cut by max tokens and stop sequences.
//!
//! One word is one token. Token `i` is `" word"` with a leading space; the first token has one
//! only when the family asks for it (Claude does, Titan does not). The natural length is
//! 16 to 47 tokens, chosen by the hash. The input token count is the number of
//! whitespace-separated words of the prompt, at least 1, plus the tokens of the request's
//! images and documents (`tools.rs`).
//!
//! A request whose [`ToolPlan`] calls a tool is answered with that one call instead
//! ([`Completion::tool_call`]): its tokens are the pieces of the input's compact JSON
//! (`tools::json_pieces`), one output token each, whatever max tokens and the stop sequences
//! are, and it ends with [`StopCause::EndOfText`] (the families say `tool_use`).
//!
//! A request that asks for reasoning ([`GenerationRequest::thinking`], Claude's extended
//! thinking) gets [`Completion::thinking`] too: 8 to 15 words seeded by the prompt's hash
//! (with a salt, so they are not the answer's words), and a signature, 64 standard base64
//! characters of the same seed. Its words count as output tokens; max tokens does not cut
//! them (the budget is checked by the family, and the natural lengths are far below it).

use base64::Engine;

use crate::prompt_cache::CacheUsage;
use crate::tools::{ToolCall, ToolPlan, json_pieces};

/// The words answers are made of.
pub(crate) const VOCABULARY: [&str; 64] = [
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "river", "mountain", "cloud",
    "signal", "gateway", "bedrock", "stream", "token", "model", "answer", "simple", "bright",
    "quiet", "garden", "harbor", "lantern", "meadow", "orbit", "pepper", "quartz", "ribbon",
    "saddle", "timber", "umbrella", "velvet", "window", "yellow", "zephyr", "anchor", "basket",
    "candle", "desert", "engine", "forest", "glacier", "hollow", "island", "jungle", "kettle",
    "ladder", "marble", "needle", "ocean", "pillow", "rocket", "silver", "tunnel", "valley",
    "wander", "crystal", "feather", "compass", "thunder", "voyage", "puzzle", "echo",
];

/// The shortest natural answer, in tokens.
pub(crate) const MIN_NATURAL_TOKENS: u32 = 16;

/// One more than the longest natural answer, in tokens.
pub(crate) const MAX_NATURAL_TOKENS_EXCLUSIVE: u32 = 48;

/// What a family asks the generator for, read from the request body. The families that know
/// no tools, media or reasoning leave the last three fields at their defaults
/// (`..GenerationRequest::default()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GenerationRequest {
    /// The text the answer is seeded by and the input tokens are counted from.
    pub(crate) prompt: String,
    /// The most output tokens to produce.
    pub(crate) max_tokens: u32,
    /// The answer stops before the first occurrence of any of these.
    pub(crate) stop_sequences: Vec<String>,
    /// Whether the first token has a leading space too.
    pub(crate) space_before_first_token: bool,
    /// The request's tools and tool choice, and whether it answers tool results.
    pub(crate) tools: ToolPlan,
    /// Whether the answer opens with the model's reasoning (Claude's `thinking`).
    pub(crate) thinking: bool,
    /// The input tokens of the request's images and documents, on top of the prompt's words.
    pub(crate) n_media_input_tokens: u32,
}

/// A generated answer. Code that builds one by hand leaves the fields it does not know at
/// their defaults (`..Completion::default()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Completion {
    /// Input tokens counted from the prompt, less those read from or written to the prompt
    /// cache (`cache`), as Bedrock reports them.
    pub(crate) n_input_tokens: u32,
    /// The text of each output token; the last may be cut short by a stop sequence.
    pub(crate) tokens: Vec<String>,
    /// Why the answer ended.
    pub(crate) stop: StopCause,
    /// The input tokens read from and written to the prompt cache (`prompt_cache.rs`).
    pub(crate) cache: CacheUsage,
    /// The tool the answer calls instead of answering in text; `tokens` are then the pieces
    /// of its input JSON.
    pub(crate) tool_call: Option<ToolCall>,
    /// The reasoning before the answer, when the request asked for it.
    pub(crate) thinking: Option<Thinking>,
}

/// The model's reasoning before its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Thinking {
    /// One word per token, each but the first with a leading space.
    pub(crate) tokens: Vec<String>,
    /// Claude's `signature` of the thinking block.
    pub(crate) signature: String,
}

impl Thinking {
    /// The whole reasoning text.
    pub(crate) fn text(&self) -> String {
        self.tokens.concat()
    }
}

/// Why an answer ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum StopCause {
    /// The natural end of the answer (also of a tool call).
    #[default]
    EndOfText,
    /// The max tokens limit was reached first.
    MaxTokens,
    /// This stop sequence appeared in the text; the text ends before it.
    StopSequence(String),
}

impl Completion {
    /// The whole answer text.
    pub(crate) fn text(&self) -> String {
        self.tokens.concat()
    }

    /// The number of output tokens: the answer's (or the tool call's pieces) and the
    /// reasoning's.
    pub(crate) fn n_output_tokens(&self) -> u32 {
        let n_thinking = self.thinking.as_ref().map_or(0, |thinking| thinking.tokens.len());
        u32::try_from(self.tokens.len() + n_thinking).unwrap_or(u32::MAX)
    }
}

/// Generates the answer to `request`.
pub(crate) fn generate(request: &GenerationRequest) -> Completion {
    let n_input_tokens =
        count_input_tokens(&request.prompt).saturating_add(request.n_media_input_tokens);
    let thinking = request.thinking.then(|| thinking_for(&request.prompt));
    if let Some(tool) = request.tools.tool_to_call() {
        let call = ToolCall::new(tool, &request.prompt);
        return Completion {
            n_input_tokens,
            tokens: json_pieces(&call.input_json()),
            stop: StopCause::EndOfText,
            cache: CacheUsage::default(),
            tool_call: Some(call),
            thinking,
        };
    }
    let mut rng = SplitMix64(fnv1a_64(request.prompt.as_bytes()));
    let span = u64::from(MAX_NATURAL_TOKENS_EXCLUSIVE - MIN_NATURAL_TOKENS);
    let n_natural = u64::from(MIN_NATURAL_TOKENS) + rng.next() % span;
    let n_tokens = n_natural.min(u64::from(request.max_tokens));

    let mut tokens = Vec::new();
    for token_idx in 0..n_tokens {
        let word_idx = usize::try_from(rng.next() % VOCABULARY.len() as u64).unwrap_or_default();
        let word = VOCABULARY[word_idx % VOCABULARY.len()];
        let space = if token_idx > 0 || request.space_before_first_token { " " } else { "" };
        tokens.push(format!("{space}{word}"));
    }

    let stop = match cut_at_stop_sequence(&mut tokens, &request.stop_sequences) {
        Some(sequence) => StopCause::StopSequence(sequence),
        None if n_tokens < n_natural => StopCause::MaxTokens,
        None => StopCause::EndOfText,
    };
    Completion {
        n_input_tokens,
        tokens,
        stop,
        cache: CacheUsage::default(),
        tool_call: None,
        thinking,
    }
}

/// The reasoning before the answer to `prompt`.
fn thinking_for(prompt: &str) -> Thinking {
    let mut rng = SplitMix64(fnv1a_64(format!("thinking\u{0}{prompt}").as_bytes()));
    let n_words = 8 + rng.next() % 8;
    let tokens = (0..n_words)
        .map(|word_idx| {
            let idx = usize::try_from(rng.next() % VOCABULARY.len() as u64).unwrap_or_default();
            let space = if word_idx > 0 { " " } else { "" };
            format!("{space}{}", VOCABULARY[idx % VOCABULARY.len()])
        })
        .collect();
    let signature_bytes: Vec<u8> = (0..6).flat_map(|_| rng.next().to_be_bytes()).collect();
    let signature = base64::engine::general_purpose::STANDARD.encode(signature_bytes);
    Thinking { tokens, signature }
}

/// The number of whitespace-separated words of `prompt`, at least 1.
pub(crate) fn count_input_tokens(prompt: &str) -> u32 {
    u32::try_from(prompt.split_whitespace().count()).unwrap_or(u32::MAX).max(1)
}

/// The 64-bit FNV-1a hash.
pub(crate) fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

/// Cuts `tokens` before the earliest occurrence of any non-empty stop sequence in their
/// text and returns that sequence. The token the occurrence starts in keeps the part before
/// it, or is dropped when that part is empty.
fn cut_at_stop_sequence(tokens: &mut Vec<String>, stop_sequences: &[String]) -> Option<String> {
    let text = tokens.concat();
    let (cut_at, sequence) = stop_sequences
        .iter()
        .filter(|sequence| !sequence.is_empty())
        .filter_map(|sequence| text.find(sequence.as_str()).map(|at| (at, sequence)))
        .min_by_key(|(at, _)| *at)?;

    let mut kept = 0;
    let mut token_start = 0;
    for token in tokens.iter_mut() {
        let token_end = token_start + token.len();
        if token_end <= cut_at {
            kept += 1;
        } else {
            token.truncate(cut_at - token_start);
            if !token.is_empty() {
                kept += 1;
            }
            break;
        }
        token_start = token_end;
    }
    tokens.truncate(kept);
    Some(sequence.clone())
}

/// The splitmix64 generator: small, fast and good enough to pick words.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: &str, max_tokens: u32, stop_sequences: &[&str]) -> GenerationRequest {
        GenerationRequest {
            prompt: prompt.to_owned(),
            max_tokens,
            stop_sequences: stop_sequences.iter().map(|s| (*s).to_owned()).collect(),
            space_before_first_token: false,
            ..GenerationRequest::default()
        }
    }

    #[test]
    fn fnv1a_known_values() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn same_prompt_same_answer() {
        let first = generate(&request("tell me a story", 1000, &[]));
        let second = generate(&request("tell me a story", 1000, &[]));
        let other = generate(&request("tell me another story", 1000, &[]));
        assert_eq!(first, second);
        assert_ne!(first.text(), other.text());
        assert_eq!(first.stop, StopCause::EndOfText);
        assert_eq!(first.n_input_tokens, 4);
    }

    #[test]
    fn natural_lengths_stay_in_range() {
        for idx in 0..200 {
            let completion = generate(&request(&format!("prompt {idx}"), 1000, &[]));
            let n_tokens = completion.n_output_tokens();
            assert!((MIN_NATURAL_TOKENS..MAX_NATURAL_TOKENS_EXCLUSIVE).contains(&n_tokens));
            assert!(!completion.tokens[0].starts_with(' '));
            assert!(completion.tokens[1..].iter().all(|token| token.starts_with(' ')));
        }
    }

    #[test]
    fn max_tokens_cuts() {
        let completion = generate(&request("hello", 3, &[]));
        assert_eq!(completion.n_output_tokens(), 3);
        assert_eq!(completion.stop, StopCause::MaxTokens);
        let completion = generate(&request("hello", 0, &[]));
        assert_eq!(completion.tokens, Vec::<String>::new());
        assert_eq!(completion.stop, StopCause::MaxTokens);
    }

    #[test]
    fn stop_sequence_cuts_before_the_first_occurrence() {
        let full = generate(&request("hello", 1000, &[])).text();
        // A sequence that starts in the middle of the fifth token.
        let start = full.match_indices(' ').nth(4).unwrap().0 + 2;
        let sequence = &full[start..start + 3];
        let expected = &full[..full.find(sequence).unwrap()];
        let completion = generate(&request("hello", 1000, &["never-there", sequence]));
        assert_eq!(completion.text(), expected);
        assert_eq!(completion.stop, StopCause::StopSequence(sequence.to_owned()));
        assert!(completion.tokens.iter().all(|token| !token.is_empty()));
    }

    #[test]
    fn stop_sequence_at_a_token_start_drops_the_token() {
        let mut tokens = vec!["a".to_owned(), " b".to_owned(), " c".to_owned()];
        let sequence = cut_at_stop_sequence(&mut tokens, &[" b".to_owned(), String::new()]);
        assert_eq!(sequence.as_deref(), Some(" b"));
        assert_eq!(tokens, vec!["a".to_owned()]);
    }

    #[test]
    fn input_tokens_are_words() {
        assert_eq!(count_input_tokens(""), 1);
        assert_eq!(count_input_tokens("\n\nHuman: hi there\n\nAssistant:"), 4);
    }

    #[test]
    fn a_tool_plan_answers_with_a_call() {
        use serde_json::json;

        use crate::tools::{ToolChoice, ToolSpec};

        let schema = json!({"type": "object", "properties": {"city": {"type": "string"},
            "days": {"type": "integer"}}, "required": ["city", "days"]});
        let mut with_tools = request("weather in Paris", 1, &["}"]);
        with_tools.tools.tools =
            vec![ToolSpec { name: "get_weather".to_owned(), input_schema: schema }];
        with_tools.n_media_input_tokens = 5;
        let completion = generate(&with_tools);
        let call = completion.tool_call.clone().unwrap();
        assert_eq!(call.name, "get_weather");
        let json = call.input_json();
        let city = call.input["city"].as_str().unwrap().to_owned();
        assert_eq!(json, format!(r#"{{"city":"{city}","days":1}}"#));
        // Neither max tokens nor stop sequences cut a call.
        assert_eq!(completion.tokens, json_pieces(&json));
        assert_eq!(completion.tokens.concat(), json);
        assert_eq!(completion.stop, StopCause::EndOfText);
        assert_eq!(completion.n_output_tokens(), u32::try_from(completion.tokens.len()).unwrap());
        assert_eq!(completion.n_input_tokens, 3 + 5);
        assert!(completion.thinking.is_none());

        // Tool results in the last message, or the choice "none": a text answer.
        with_tools.tools.answers_tool_results = true;
        assert_eq!(generate(&with_tools).tool_call, None);
        with_tools.tools.answers_tool_results = false;
        with_tools.tools.choice = ToolChoice::None;
        assert_eq!(generate(&with_tools).tool_call, None);
    }

    #[test]
    fn thinking_opens_the_answer() {
        let mut thinking = request("why is the sky blue", 1000, &[]);
        thinking.thinking = true;
        let completion = generate(&thinking);
        let reasoning = completion.thinking.clone().unwrap();
        assert!((8..16).contains(&reasoning.tokens.len()));
        assert!(!reasoning.tokens[0].starts_with(' '));
        assert!(reasoning.tokens[1..].iter().all(|token| token.starts_with(' ')));
        assert_eq!(reasoning.signature.len(), 64);
        assert_eq!(generate(&thinking), completion);
        let plain = generate(&request("why is the sky blue", 1000, &[]));
        assert_eq!(plain.tokens, completion.tokens);
        assert_eq!(
            completion.n_output_tokens(),
            plain.n_output_tokens() + u32::try_from(reasoning.tokens.len()).unwrap()
        );
    }

    #[test]
    fn vocabulary_words_are_distinct() {
        let mut words = VOCABULARY.to_vec();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), VOCABULARY.len());
    }
}
