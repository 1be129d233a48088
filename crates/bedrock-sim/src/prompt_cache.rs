//! Bedrock's prompt cache, for the models that have one (Claude 3.5 Haiku, 3.7 Sonnet and
//! later; Nova): what a request reads from it and writes to it, and the bounded store of
//! the prefixes written.
//!
//! What Bedrock does (AWS "Prompt caching for faster model inference", its "Supported models,
//! Regions, and limits" table as quoted by Portkey's Bedrock prompt-caching page):
//!
//! - A request marks *cache checkpoints*: Claude's `cache_control: {"type": "ephemeral"}` on
//!   a tool, a system block or a message content block; Nova's `{"cachePoint": {"type":
//!   "default"}}` blocks in `system` and `messages[].content`. The cached prefix is
//!   everything before the checkpoint, in the model's order (Claude: tools, system,
//!   messages; Nova: system, messages), for this model. At most four checkpoints (Claude
//!   refuses a fifth with Anthropic's `A maximum of 4 blocks with cache_control may be
//!   provided. Found 5.`).
//! - A checkpoint caches only when its prefix has at least the model's minimum of tokens;
//!   below it, inference succeeds and nothing is cached. The minimums are in the families.
//! - A cached prefix lives five minutes, and each hit starts the five minutes again. (Claude
//!   4.5 and later also take `"ttl": "1h"`; the simulator keeps every prefix five minutes.)
//! - Claude looks for a hit at the block boundaries up to about 20 blocks before each
//!   breakpoint, not only at the breakpoints (AWS `agent-toolkit-for-aws` prompt-caching
//!   reference: "Bedrock checks ~20 preceding blocks automatically"); Nova only at its
//!   checkpoints.
//! - The answer reports the tokens read from the cache (the longest prefix found) and
//!   written to it (from there to the last checkpoint that caches), and the input tokens
//!   *without* both: DataDog's `dd-trace-js` Bedrock plugin adds them back because "bedrock
//!   input tokens only count non-cached tokens", and LiteLLM's recorded Converse usage has
//!   `inputTokens` 3 beside `cacheWriteInputTokens` 1789 (total 2193 = 3 + 401 + 1789).
//!
//! The simulator counts tokens as it counts input tokens (`generate::count_input_tokens`,
//! words), so a prefix's tokens are the words of the texts before the checkpoint; the rest
//! of a block (tool definitions, images) is part of the prefix's identity but counts no
//! tokens. The identity is a 64-bit FNV-1a hash of the prefix in a canonical encoding
//! (object keys sorted, the checkpoint markers left out, so that a marker that moves does not
//! change the prefix before it). The quota still counts every input token, cached or not.
//!
//! The store is bounded: at most [`CAPACITY`] prefixes across all models; an expired prefix
//! is dropped when the store is next used, and when it is full the prefix closest to expiry
//! makes room. Time is `tokio::time::Instant`, passed in, so tests move it by hand.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::families::InvocationMetrics;

/// How long a cached prefix lives after it was written or last read.
pub(crate) const TTL: Duration = Duration::from_secs(5 * 60);

/// The most prefixes the store holds, across all models.
pub(crate) const CAPACITY: usize = 10_000;

/// The most checkpoints a request may mark.
pub(crate) const MAX_CHECKPOINTS: usize = 4;

/// How many block boundaries before a breakpoint Claude also looks a prefix up at.
pub(crate) const LOOKBACK_BLOCKS: usize = 20;

/// The tokens of one request read from and written to the prompt cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheUsage {
    pub(crate) read: u32,
    pub(crate) write: u32,
}

/// One place a request's prompt may be cached up to: the end of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheBoundary {
    /// The input tokens before this boundary.
    pub(crate) n_prefix_tokens: u32,
    /// The identity of the prefix before this boundary ([`PrefixHasher`]).
    pub(crate) prefix_hash: u64,
    /// Whether the request marks a checkpoint here; the other boundaries are only looked up.
    pub(crate) checkpoint: bool,
}

/// What a request asks of the prompt cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CacheRequest {
    /// The least prefix, in tokens, that a checkpoint caches for the model.
    pub(crate) min_prefix_tokens: u32,
    /// The boundaries in request order; empty when the request marks no checkpoint.
    pub(crate) boundaries: Vec<CacheBoundary>,
}

/// The invocation metrics of a model with a prompt cache: the two cache counts follow the
/// four others (recorded from Nova, wire document §3.4; expected for Claude [U]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CacheInvocationMetrics {
    #[serde(flatten)]
    pub(crate) metrics: InvocationMetrics,
    pub(crate) cache_read_input_token_count: u32,
    pub(crate) cache_write_input_token_count: u32,
}

impl CacheInvocationMetrics {
    pub(crate) fn new(metrics: InvocationMetrics, cache: CacheUsage) -> CacheInvocationMetrics {
        CacheInvocationMetrics {
            metrics,
            cache_read_input_token_count: cache.read,
            cache_write_input_token_count: cache.write,
        }
    }
}

/// Builds prefix identities block by block: the state after a block is the identity of the
/// prefix up to it. The encoding is canonical (tags and lengths, object keys sorted,
/// `cache_control` left out), so equal prefixes hash equal whatever their key order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrefixHasher(u64);

impl Default for PrefixHasher {
    fn default() -> PrefixHasher {
        PrefixHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl PrefixHasher {
    /// The identity of what was fed so far.
    pub(crate) fn finish(&self) -> u64 {
        self.0
    }

    /// Feeds a section or role name, so that the same block in another place differs.
    pub(crate) fn tag(&mut self, tag: &str) {
        self.bytes(b"T");
        self.text(tag);
    }

    /// Feeds one block (or tool) of the prompt.
    pub(crate) fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.bytes(b"n"),
            Value::Bool(flag) => self.bytes(if *flag { b"t" } else { b"f" }),
            Value::Number(number) => {
                self.bytes(b"#");
                self.text(&number.to_string());
            }
            Value::String(text) => {
                self.bytes(b"s");
                self.text(text);
            }
            Value::Array(items) => {
                self.bytes(b"[");
                self.len(items.len());
                items.iter().for_each(|item| self.value(item));
            }
            Value::Object(object) => {
                let mut keys: Vec<&String> =
                    object.keys().filter(|key| *key != "cache_control").collect();
                keys.sort_unstable();
                self.bytes(b"{");
                self.len(keys.len());
                for key in keys {
                    self.text(key);
                    if let Some(item) = object.get(key) {
                        self.value(item);
                    }
                }
            }
        }
    }

    fn text(&mut self, text: &str) {
        self.len(text.len());
        self.bytes(text.as_bytes());
    }

    fn len(&mut self, len: usize) {
        self.bytes(&(len as u64).to_le_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        self.0 =
            bytes.iter().fold(self.0, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME));
    }
}

/// The items of a JSON array; none for anything else.
pub(crate) fn items(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[][..], Vec::as_slice)
}

/// The words of `text`, as the simulator counts input tokens.
pub(crate) fn n_words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// The prefixes written, shared by all requests of a simulator.
#[derive(Default)]
pub(crate) struct PromptCache {
    entries: Mutex<Entries>,
}

/// A cached prefix: its model and identity.
type Key = (String, u64);

#[derive(Default)]
struct Entries {
    /// When each prefix expires, and its place in `by_expiry`.
    by_key: HashMap<Key, (Instant, u64)>,
    /// The prefixes by expiry (then by a sequence number), the first to expire first.
    by_expiry: BTreeMap<(Instant, u64), Key>,
    next_seq: u64,
}

impl PromptCache {
    /// Reads and writes the cache for one request to `model` at `now`.
    ///
    /// The prefix read is the longest cached one at a boundary that is a checkpoint or at
    /// most [`LOOKBACK_BLOCKS`] before one, and has at least the minimum of tokens; its
    /// lifetime starts again. Every checkpoint after it with at least the minimum is written.
    /// Written tokens are those from the prefix read to the last checkpoint written.
    pub(crate) fn apply(&self, model: &str, request: &CacheRequest, now: Instant) -> CacheUsage {
        let boundaries = &request.boundaries;
        let checkpoints: Vec<usize> =
            (0..boundaries.len()).filter(|idx| boundaries[*idx].checkpoint).collect();
        if checkpoints.is_empty() {
            return CacheUsage::default();
        }
        let caches = |idx: usize| boundaries[idx].n_prefix_tokens >= request.min_prefix_tokens;
        let key = |idx: usize| (model.to_owned(), boundaries[idx].prefix_hash);
        let looked_up = |idx: usize| {
            checkpoints
                .iter()
                .any(|&checkpoint| checkpoint >= idx && checkpoint - idx <= LOOKBACK_BLOCKS)
        };

        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.drop_expired(now);
        let hit = (0..boundaries.len())
            .rev()
            .filter(|idx| looked_up(*idx) && caches(*idx))
            .find(|idx| entries.by_key.contains_key(&key(*idx)));
        let n_read = hit.map_or(0, |idx| boundaries[idx].n_prefix_tokens);
        if let Some(idx) = hit {
            entries.insert(key(idx), now + TTL);
        }
        let mut n_cached = n_read;
        for &checkpoint in &checkpoints {
            if hit.is_some_and(|hit| checkpoint <= hit) || !caches(checkpoint) {
                continue;
            }
            entries.insert(key(checkpoint), now + TTL);
            n_cached = n_cached.max(boundaries[checkpoint].n_prefix_tokens);
        }
        CacheUsage { read: n_read, write: n_cached - n_read }
    }

    /// How many prefixes are stored, expired ones included until the store is next used.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).by_key.len()
    }
}

impl Entries {
    /// Stores `key` until `expires_at`, replacing its old expiry; when the store is full, the
    /// prefix that expires first makes room.
    fn insert(&mut self, key: Key, expires_at: Instant) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_expiry.remove(&old);
        } else if self.by_key.len() >= CAPACITY
            && let Some((_, evicted)) = self.by_expiry.pop_first()
        {
            self.by_key.remove(&evicted);
        }
        let place = (expires_at, self.next_seq);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.by_expiry.insert(place, key.clone());
        self.by_key.insert(key, place);
    }

    /// Drops every prefix whose lifetime ended at or before `now`.
    fn drop_expired(&mut self, now: Instant) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.by_key.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "anthropic.claude-3-7-sonnet-20250219-v1:0";

    /// A request whose boundaries end after each of `tokens`, checkpoints where marked.
    fn request(blocks: &[(&str, u32, bool)]) -> CacheRequest {
        let mut hasher = PrefixHasher::default();
        let mut n_tokens = 0;
        let boundaries = blocks
            .iter()
            .map(|(text, tokens, checkpoint)| {
                hasher.value(&Value::from(*text));
                n_tokens += tokens;
                CacheBoundary {
                    n_prefix_tokens: n_tokens,
                    prefix_hash: hasher.finish(),
                    checkpoint: *checkpoint,
                }
            })
            .collect();
        CacheRequest { min_prefix_tokens: 1_024, boundaries }
    }

    fn usage(read: u32, write: u32) -> CacheUsage {
        CacheUsage { read, write }
    }

    #[test]
    fn the_first_request_writes_and_the_same_prefix_reads() {
        let cache = PromptCache::default();
        let now = Instant::now();
        let first = request(&[("manual", 1_500, true), ("question", 10, false)]);
        assert_eq!(cache.apply(MODEL, &first, now), usage(0, 1_500));
        // Another question after the same manual reads it.
        let second = request(&[("manual", 1_500, true), ("another question", 12, false)]);
        assert_eq!(cache.apply(MODEL, &second, now + Duration::from_secs(1)), usage(1_500, 0));
        // Another model has a cache of its own.
        let other = "anthropic.claude-sonnet-4-20250514-v1:0";
        assert_eq!(cache.apply(other, &second, now), usage(0, 1_500));
    }

    #[test]
    fn a_longer_prefix_reads_what_is_cached_and_writes_the_rest() {
        let cache = PromptCache::default();
        let now = Instant::now();
        cache.apply(MODEL, &request(&[("manual", 1_500, true)]), now);
        let longer = request(&[("manual", 1_500, true), ("turn", 600, false), ("next", 5, true)]);
        assert_eq!(cache.apply(MODEL, &longer, now), usage(1_500, 605));
        assert_eq!(cache.apply(MODEL, &longer, now), usage(2_105, 0));
        // The breakpoint moves on a block: the prefix is looked up before it too (Claude).
        let moved = request(&[
            ("manual", 1_500, false),
            ("turn", 600, false),
            ("next", 5, false),
            ("more", 7, true),
        ]);
        assert_eq!(cache.apply(MODEL, &moved, now), usage(2_105, 7));
    }

    #[test]
    fn a_prefix_expires_five_minutes_after_its_last_use() {
        let cache = PromptCache::default();
        let start = Instant::now();
        let manual = request(&[("manual", 1_500, true)]);
        assert_eq!(cache.apply(MODEL, &manual, start), usage(0, 1_500));
        // Read at 4 minutes: the five minutes start again.
        let four_minutes = start + Duration::from_secs(240);
        assert_eq!(cache.apply(MODEL, &manual, four_minutes), usage(1_500, 0));
        let eight_minutes = start + Duration::from_secs(480);
        assert_eq!(cache.apply(MODEL, &manual, eight_minutes), usage(1_500, 0));
        // Unused for five minutes: gone, and written again.
        let later = eight_minutes + TTL;
        assert_eq!(cache.apply(MODEL, &manual, later), usage(0, 1_500));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_prefix_below_the_minimum_is_not_cached() {
        let cache = PromptCache::default();
        let now = Instant::now();
        let short = request(&[("note", 1_023, true), ("question", 10, false)]);
        assert_eq!(cache.apply(MODEL, &short, now), usage(0, 0));
        assert_eq!(cache.apply(MODEL, &short, now), usage(0, 0));
        assert_eq!(cache.len(), 0);
        // A first checkpoint below the minimum, a second above it: only the second caches.
        let two = request(&[("note", 1_000, true), ("manual", 500, true)]);
        assert_eq!(cache.apply(MODEL, &two, now), usage(0, 1_500));
        assert_eq!(cache.len(), 1);
        // No checkpoint at all: nothing is looked up or written.
        let none = request(&[("manual", 5_000, false)]);
        assert_eq!(cache.apply(MODEL, &none, now), usage(0, 0));
    }

    #[test]
    fn a_different_prefix_misses() {
        let cache = PromptCache::default();
        let now = Instant::now();
        cache.apply(MODEL, &request(&[("manual", 1_500, true)]), now);
        let edited = request(&[("manual v2", 1_500, true)]);
        assert_eq!(cache.apply(MODEL, &edited, now), usage(0, 1_500));
        // A change before the checkpoint misses too, even with the checkpoint's text equal.
        let preface = request(&[("preface", 10, false), ("manual", 1_500, true)]);
        assert_eq!(cache.apply(MODEL, &preface, now), usage(0, 1_510));
    }

    #[test]
    fn the_store_is_bounded() {
        let cache = PromptCache::default();
        let start = Instant::now();
        let numbered = |idx: usize| request(&[(&format!("manual {idx}"), 1_500, true)]);
        for idx in 0..CAPACITY + 10 {
            let now = start + Duration::from_millis(idx as u64);
            assert_eq!(cache.apply(MODEL, &numbered(idx), now), usage(0, 1_500));
        }
        assert_eq!(cache.len(), CAPACITY);
        // The first written made room; the last are still there.
        let now = start + Duration::from_secs(60);
        assert_eq!(cache.apply(MODEL, &numbered(CAPACITY + 9), now), usage(1_500, 0));
        assert_eq!(cache.apply(MODEL, &numbered(0), now), usage(0, 1_500));
        assert_eq!(cache.len(), CAPACITY);
    }

    #[test]
    fn the_hash_ignores_key_order_and_markers() {
        let hash = |value: Value| {
            let mut hasher = PrefixHasher::default();
            hasher.value(&value);
            hasher.finish()
        };
        let plain = serde_json::json!({"type": "text", "text": "manual"});
        let marked = serde_json::json!({"text": "manual", "type": "text",
            "cache_control": {"type": "ephemeral"}});
        assert_eq!(hash(plain.clone()), hash(marked));
        assert_ne!(hash(plain), hash(serde_json::json!({"type": "text", "text": "manual."})));
        assert_ne!(hash(serde_json::json!(["ab", "c"])), hash(serde_json::json!(["a", "bc"])));
    }
}
