//! The Responses API's store: a bounded in-memory LRU of finished responses, so that a
//! caller may continue one (`previous_response_id`), retrieve it (`GET
//! /v1/responses/{response_id}`) or delete it (`DELETE`). Off by default
//! (`[responses] store_max_entries = 0`); `routes/responses.rs` says what the API does
//! with it on and off.
//!
//! - **What an entry holds.** What a follow-up needs: the conversation as unified messages
//!   (the request's input as it was read, an earlier stored conversation it continued
//!   included, but not its `instructions`, which OpenAI does not carry over to the next
//!   response; then the answer's output as one assistant message of text and tool-use
//!   parts), and the response object as it was sent, as JSON text, for `GET`. Its size is
//!   the sum of the messages' text and data lengths ([`Content::byte_len`]), the object's
//!   length and [`ENTRY_OVERHEAD`]. A continued conversation is copied into the new entry,
//!   not linked, so that evicting an old response never breaks a newer one.
//! - **Who sees it.** The caller's API key name it was made with
//!   ([`Caller::key`](crate::auth::Caller::key)): another key finds nothing, as if the id
//!   were unknown. With no keys configured every caller is the same caller.
//! - **Bounds.** At most `store_max_entries` entries and `store_max_bytes` bytes: past
//!   either, the least recently used entries (stored, read or continued) are evicted. An
//!   entry lives `store_ttl_secs` from its creation, whatever its use; expired entries are
//!   dropped when they are looked up and at every insertion (oldest first: one TTL for all,
//!   so creation order is expiry order). A response larger than `store_max_bytes` alone is
//!   not stored (its answer says `store: false`).
//! - **Threads.** One `std::sync::Mutex` around the maps, held for a map operation only,
//!   never across an `await`; entries are shared out as `Arc`s, so that a reader copies
//!   nothing under the lock.
//! - **Replicas and reloads.** The store is one process's memory: behind a load balancer a
//!   follow-up must reach the replica that stored its response (sticky sessions), and a
//!   restart loses every entry. A reload keeps the store when `[responses]` is unchanged
//!   and starts an empty one when it changed (`app.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use translator::Message;

/// `store_max_bytes` when the config leaves it out: 64 MiB.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The largest `store_max_bytes` the config takes: 1 GiB.
pub const MAX_MAX_BYTES: usize = 1024 * 1024 * 1024;

/// The largest `store_max_entries` the config takes.
pub const MAX_MAX_ENTRIES: usize = 100_000;

/// `store_ttl_secs` when the config leaves it out: an hour.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The longest `store_ttl_secs` the config takes: a day.
pub const MAX_TTL: Duration = Duration::from_secs(86_400);

/// What an entry costs beyond its texts: its maps' nodes, the id twice, the message
/// headers (an estimate, so that many tiny responses still count).
pub const ENTRY_OVERHEAD: usize = 256;

/// `[responses]`: the store's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Most entries; 0: the store is off.
    pub max_entries: usize,
    /// Most bytes of all entries together (see the module docs).
    pub max_bytes: usize,
    /// How long an entry lives from its creation.
    pub ttl: Duration,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig { max_entries: 0, max_bytes: DEFAULT_MAX_BYTES, ttl: DEFAULT_TTL }
    }
}

/// One stored response.
#[derive(Debug)]
pub struct StoredResponse {
    /// The API key name of the caller that made it; `None` when no keys are configured.
    pub owner: Option<String>,
    /// The conversation a follow-up continues (see the module docs).
    pub conversation: Vec<Message>,
    /// The response object as sent, JSON text.
    pub object: String,
    /// The entry's size, as the bound counts it.
    pub bytes: usize,
    pub created: Instant,
}

impl StoredResponse {
    pub fn new(
        owner: Option<String>,
        conversation: Vec<Message>,
        object: String,
        created: Instant,
    ) -> StoredResponse {
        let texts: usize = conversation.iter().map(|message| message.content.byte_len()).sum();
        let bytes = texts + object.len() + ENTRY_OVERHEAD;
        StoredResponse { owner, conversation, object, bytes, created }
    }
}

/// The store. Cheap to share (`Arc`), safe from any thread.
#[derive(Debug)]
pub struct ResponseStore {
    config: StoreConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Recency tick → id: the first is the least recently used.
    by_use: BTreeMap<u64, String>,
    /// Insertion sequence → id: the first is the oldest, the first to expire.
    by_age: BTreeMap<u64, String>,
    /// The next tick or sequence number.
    clock: u64,
    /// The sum of the entries' sizes.
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    response: Arc<StoredResponse>,
    used: u64,
    inserted: u64,
}

impl ResponseStore {
    pub fn new(config: StoreConfig) -> ResponseStore {
        ResponseStore { config, inner: Mutex::new(Inner::default()) }
    }

    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// Whether the operator turned the store on.
    pub fn is_on(&self) -> bool {
        self.config.max_entries > 0
    }

    /// Stores `response` under `id` (replacing an entry of that id); `false` when the store
    /// is off or the response alone is larger than `max_bytes` (then nothing is stored).
    pub fn insert(&self, id: &str, response: StoredResponse) -> bool {
        self.insert_at(id, response, Instant::now())
    }

    /// The response `id` if `owner` made it and it has not expired; a hit counts as a use.
    pub fn get(&self, id: &str, owner: Option<&str>) -> Option<Arc<StoredResponse>> {
        self.get_at(id, owner, Instant::now())
    }

    /// Deletes the response `id` if `owner` made it (and it has not expired); whether it did.
    pub fn remove(&self, id: &str, owner: Option<&str>) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.live(id, owner, now, self.config.ttl).is_none() {
            return false;
        }
        inner.take(id);
        true
    }

    /// How many entries and bytes the store holds now.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.bytes)
    }

    fn insert_at(&self, id: &str, response: StoredResponse, now: Instant) -> bool {
        if !self.is_on() || response.bytes > self.config.max_bytes {
            return false;
        }
        let mut inner = self.lock();
        inner.take(id);
        inner.expire(now, self.config.ttl);
        while !inner.entries.is_empty()
            && (inner.entries.len() >= self.config.max_entries
                || inner.bytes + response.bytes > self.config.max_bytes)
        {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            inner.take(&oldest);
        }
        let (used, inserted) = (inner.tick(), inner.tick());
        inner.bytes += response.bytes;
        inner.by_use.insert(used, id.to_owned());
        inner.by_age.insert(inserted, id.to_owned());
        inner.entries.insert(id.to_owned(), Entry { response: Arc::new(response), used, inserted });
        true
    }

    fn get_at(&self, id: &str, owner: Option<&str>, now: Instant) -> Option<Arc<StoredResponse>> {
        let mut inner = self.lock();
        inner.live(id, owner, now, self.config.ttl)?;
        let tick = inner.tick();
        let entry = inner.entries.get_mut(id)?;
        let last = std::mem::replace(&mut entry.used, tick);
        let response = entry.response.clone();
        inner.by_use.remove(&last);
        inner.by_use.insert(tick, id.to_owned());
        Some(response)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Whether `id` is there for `owner`: an expired entry is dropped on the way.
    fn live(&mut self, id: &str, owner: Option<&str>, now: Instant, ttl: Duration) -> Option<()> {
        let entry = self.entries.get(id)?;
        if now.saturating_duration_since(entry.response.created) >= ttl {
            self.take(id);
            return None;
        }
        (entry.response.owner.as_deref() == owner).then_some(())
    }

    /// Drops the expired entries, oldest first.
    fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some((&inserted, id)) = self.by_age.first_key_value() {
            match self.entries.get(id) {
                Some(entry) if now.saturating_duration_since(entry.response.created) < ttl => {
                    return;
                }
                Some(_) => {
                    let id = id.clone();
                    self.take(&id);
                }
                // An order entry without its entry (`take` leaves none behind).
                None => {
                    self.by_age.remove(&inserted);
                }
            }
        }
    }

    /// Removes `id` and its order entries.
    fn take(&mut self, id: &str) {
        if let Some(entry) = self.entries.remove(id) {
            self.by_use.remove(&entry.used);
            self.by_age.remove(&entry.inserted);
            self.bytes -= entry.response.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use translator::Role;

    use super::*;

    fn store(max_entries: usize, max_bytes: usize, ttl_secs: u64) -> ResponseStore {
        ResponseStore::new(StoreConfig {
            max_entries,
            max_bytes,
            ttl: Duration::from_secs(ttl_secs),
        })
    }

    /// A response of `owner` whose size is `ENTRY_OVERHEAD + text_len + 2`.
    fn response(owner: Option<&str>, text_len: usize, created: Instant) -> StoredResponse {
        let conversation = vec![Message::text(Role::User, "x".repeat(text_len))];
        StoredResponse::new(owner.map(str::to_owned), conversation, "{}".to_owned(), created)
    }

    fn ids(store: &ResponseStore, at: Instant) -> Vec<&'static str> {
        ["a", "b", "c", "d"].into_iter().filter(|id| store.get_at(id, None, at).is_some()).collect()
    }

    #[test]
    fn the_least_recently_used_goes_past_max_entries() {
        let now = Instant::now();
        let store = store(3, DEFAULT_MAX_BYTES, 60);
        for id in ["a", "b", "c"] {
            assert!(store.insert_at(id, response(None, 1, now), now));
        }
        // `a` is used, so `b` is now the least recently used.
        assert!(store.get_at("a", None, now).is_some());
        assert!(store.insert_at("d", response(None, 1, now), now));
        assert_eq!(store.usage(), (3, 3 * (ENTRY_OVERHEAD + 3)));
        assert_eq!(store.get_at("b", None, now).map(|r| r.bytes), None);
        assert_eq!(ids(&store, now), ["a", "c", "d"]);
    }

    #[test]
    fn the_least_recently_used_go_past_max_bytes_and_a_too_large_one_is_not_stored() {
        let now = Instant::now();
        let entry = ENTRY_OVERHEAD + 100 + 2;
        let store = store(100, 3 * entry, 60);
        for id in ["a", "b", "c"] {
            assert!(store.insert_at(id, response(None, 100, now), now));
        }
        assert_eq!(store.usage(), (3, 3 * entry));
        // Twice an entry's size: the two least recently used go.
        store.get_at("a", None, now).unwrap();
        assert!(store.insert_at("d", response(None, 100 + entry, now), now));
        assert_eq!(ids(&store, now), ["a", "d"]);
        assert_eq!(store.usage(), (2, 3 * entry));
        // Larger than the whole store: refused, and nothing is evicted for it.
        assert!(!store.insert_at("e", response(None, 3 * entry, now), now));
        assert_eq!(ids(&store, now), ["a", "d"]);
    }

    #[test]
    fn entries_expire_on_access_and_on_insertion() {
        let start = Instant::now();
        let store = store(10, DEFAULT_MAX_BYTES, 60);
        store.insert_at("a", response(None, 1, start), start);
        let later = start + Duration::from_secs(30);
        store.insert_at("b", response(None, 1, later), later);
        // Used or not, `a` lives 60 s from its creation.
        assert!(store.get_at("a", None, start + Duration::from_secs(59)).is_some());
        assert!(store.get_at("a", None, start + Duration::from_secs(60)).is_none());
        assert_eq!(store.usage().0, 1);
        // An insertion drops the expired ones first.
        let at = start + Duration::from_secs(95);
        store.insert_at("c", response(None, 1, start), start);
        store.insert_at("d", response(None, 1, at), at);
        assert_eq!(ids(&store, at), ["d"]);
        assert_eq!(store.usage(), (1, ENTRY_OVERHEAD + 3));
    }

    #[test]
    fn a_response_is_seen_and_deleted_only_by_its_caller() {
        let now = Instant::now();
        let store = store(10, DEFAULT_MAX_BYTES, 60);
        store.insert_at("a", response(Some("team-a"), 1, now), now);
        store.insert_at("open", response(None, 1, now), now);
        assert!(store.get_at("a", Some("team-b"), now).is_none());
        assert!(store.get_at("a", None, now).is_none());
        assert!(store.get_at("open", Some("team-a"), now).is_none());
        assert!(!store.remove("a", Some("team-b")));
        assert_eq!(
            store.get_at("a", Some("team-a"), now).unwrap().owner.as_deref(),
            Some("team-a")
        );
        assert!(store.remove("a", Some("team-a")));
        assert!(!store.remove("a", Some("team-a")));
        assert_eq!(store.usage(), (1, ENTRY_OVERHEAD + 3));
    }

    #[test]
    fn an_off_store_keeps_nothing_and_a_replaced_id_is_counted_once() {
        let now = Instant::now();
        let off = ResponseStore::new(StoreConfig::default());
        assert!(!off.is_on());
        assert!(!off.insert_at("a", response(None, 1, now), now));
        assert_eq!(off.usage(), (0, 0));
        let store = store(2, DEFAULT_MAX_BYTES, 60);
        store.insert_at("a", response(None, 1, now), now);
        store.insert_at("a", response(None, 5, now), now);
        store.insert_at("b", response(None, 1, now), now);
        assert_eq!(store.usage(), (2, 2 * ENTRY_OVERHEAD + 7 + 3));
        assert_eq!(store.get_at("a", None, now).unwrap().bytes, ENTRY_OVERHEAD + 7);
    }
}
