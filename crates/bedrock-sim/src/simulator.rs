//! [`Simulator`]: the shared state (behaviors, quotas, prompt cache, request counter), the
//! router and `serve`. The quota methods live in `quota.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{delete, get, post, put};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::auth::{Auth, Verifier};
use crate::behavior::{Behavior, Fault};
use crate::model_id::base_model_id;
use crate::prompt_cache::PromptCache;
use crate::quota::QuotaBook;
use crate::{control, invoke};

/// The behavior key that applies to every model without an entry of its own.
pub const EVERY_MODEL: &str = "*";

/// A simulated Bedrock runtime. Clones share state, so a test keeps one clone to steer the
/// server that another clone runs.
#[derive(Clone, Default)]
pub struct Simulator {
    shared: Arc<SharedState>,
}

#[derive(Default)]
struct SharedState {
    /// Who may call (see `auth.rs`): the test credentials unless built with
    /// [`Simulator::with_auth`].
    auth: Verifier,
    /// Keyed by base model id (see [`Simulator::set_behavior`]) or [`EVERY_MODEL`].
    behaviors: Mutex<HashMap<String, BehaviorEntry>>,
    /// The token quotas and per-model counters (see `quota.rs`).
    quotas: Mutex<QuotaBook>,
    /// The prompt prefixes cached (see `prompt_cache.rs`).
    prompt_cache: PromptCache,
    n_requests: AtomicU64,
    /// Invocations whose answer is not over (see [`Simulator::in_flight`]).
    n_in_flight: AtomicU64,
    /// The held streams' release (see [`Simulator::release_held`]).
    releases: Releases,
    /// Streams holding now (see [`Simulator::held`]).
    n_held: AtomicU64,
}

/// How many times the held streams were released: a stream holds until the count is past
/// the one it saw when it started.
struct Releases(tokio::sync::watch::Sender<u64>);

impl Default for Releases {
    fn default() -> Releases {
        Releases(tokio::sync::watch::Sender::new(0))
    }
}

/// Where a stream of behavior `hold_after_chunks` holds, and what releases it.
pub(crate) struct Hold {
    /// The chunks sent before the stream holds.
    pub(crate) after_chunks: usize,
    released: tokio::sync::watch::Receiver<u64>,
    simulator: Simulator,
}

impl Hold {
    /// Waits until the simulator releases the streams started before now (at once if it
    /// has since this stream started); counted in [`Simulator::held`] meanwhile.
    pub(crate) async fn wait(mut self) {
        let shared = &self.simulator.shared;
        shared.n_held.fetch_add(1, Ordering::Relaxed);
        let _held = Held(&shared.n_held);
        // The sender lives as long as the simulator: an error cannot happen, and would
        // release the stream.
        let _ = self.released.changed().await;
    }
}

/// Counts a stream as held until it is dropped: released, or its client went away.
struct Held<'a>(&'a AtomicU64);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One invocation in flight, counted until it is dropped: when its handler returns with a
/// whole answer, or when its streamed body ends or its client goes away.
pub(crate) struct InFlight(Simulator);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.shared.n_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl InFlight {
    /// `body`, with this invocation counted in flight until the body is dropped: sent
    /// whole, or given up by the server when its client went away.
    pub(crate) fn around(self, body: Body) -> CountedBody {
        CountedBody { body, _in_flight: self }
    }
}

/// An answer's body that keeps its invocation counted in flight; its length (and so
/// `Content-Length`) is the body's own.
pub(crate) struct CountedBody {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

struct BehaviorEntry {
    behavior: Behavior,
    /// How many more requests the fault hits; `None` for every request.
    n_faults_left: Option<u32>,
}

/// The part of a [`Behavior`] that applies to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RequestBehavior {
    pub(crate) first_byte_latency: Duration,
    pub(crate) token_latency: Duration,
    /// The fault, if it still hits this request.
    pub(crate) fault: Option<Fault>,
    pub(crate) hold_after_chunks: Option<u32>,
}

impl Simulator {
    /// A simulator with no behaviors set and a request count of zero, that serves the
    /// requests signed with the test key ([`crate::TEST_ACCESS_KEY_ID`]) or carrying the
    /// test bearer token ([`crate::TEST_BEARER_TOKEN`]): [`Auth::default`].
    pub fn new() -> Simulator {
        Simulator::default()
    }

    /// [`Simulator::new`], serving the requests that `auth` accepts.
    pub fn with_auth(auth: Auth) -> Simulator {
        let shared = SharedState { auth: Verifier::new(auth), ..SharedState::default() };
        Simulator { shared: Arc::new(shared) }
    }

    /// Invoke requests refused for their authentication (`Authorization`, signature,
    /// credentials, clock), counted in [`Simulator::request_count`] too.
    pub fn auth_refusals(&self) -> u64 {
        self.shared.auth.n_refused()
    }

    pub(crate) fn auth(&self) -> &Verifier {
        &self.shared.auth
    }

    /// The axum router: the two Bedrock invoke operations and the `/_sim` control API.
    pub fn router(&self) -> Router {
        Router::new()
            // The control API has its own prefix, so it can never shadow a Bedrock path.
            .route("/_sim/behavior/{model_id}", put(control::put_behavior))
            .route("/_sim/behavior", delete(control::delete_behaviors))
            .route("/_sim/quota/{model_id}", put(control::put_quota))
            .route("/_sim/quota", delete(control::delete_quotas))
            .route("/_sim/release", post(control::release_held))
            .route("/_sim/stats", get(control::get_stats))
            // Bedrock operations are matched on the raw path by hand: an ARN model id carries
            // `%2F`, which must not split the path before the id is decoded.
            .fallback(invoke::handle)
            .with_state(self.clone())
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Each event-stream frame is its own small write: without TCP_NODELAY, Nagle's
        // algorithm holds the second one back until the first is acknowledged.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await
    }

    /// Sets the behavior of one model. `model_id` is matched after ARN/geography stripping,
    /// or "*" for every model; a model's own entry wins over "*". Setting a behavior again
    /// replaces it and restarts its `fault_times` count.
    pub fn set_behavior(&self, model_id: &str, behavior: Behavior) {
        let key = behavior_key(model_id);
        let entry = BehaviorEntry { n_faults_left: behavior.fault_times, behavior };
        self.lock_behaviors().insert(key, entry);
    }

    /// Removes every behavior.
    pub fn clear_behaviors(&self) {
        self.lock_behaviors().clear();
    }

    /// Requests received on the two invoke routes, whatever their outcome.
    pub fn request_count(&self) -> u64 {
        self.shared.n_requests.load(Ordering::Relaxed)
    }

    pub(crate) fn count_request(&self) {
        self.shared.n_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Invocations on the two invoke routes whose answer is not over: handlers still
    /// running (waiting out a latency, say) and streamed bodies not yet ended. A client that
    /// goes away ends its invocation as soon as the server notices, so after a caller of the
    /// gateway has gone and the gateway has dropped its calls, this returns to 0.
    pub fn in_flight(&self) -> u64 {
        self.shared.n_in_flight.load(Ordering::Relaxed)
    }

    /// Counts one invocation in flight until the guard is dropped.
    pub(crate) fn enter(&self) -> InFlight {
        self.shared.n_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// The behavior for one request to `base_model_id`; using the fault counts against
    /// `fault_times`.
    pub(crate) fn take_behavior(&self, base_model_id: &str) -> RequestBehavior {
        let mut behaviors = self.lock_behaviors();
        let key = if behaviors.contains_key(base_model_id) { base_model_id } else { EVERY_MODEL };
        let Some(entry) = behaviors.get_mut(key) else {
            return RequestBehavior::default();
        };
        let fault = match (&entry.behavior.fault, &mut entry.n_faults_left) {
            (None, _) | (Some(_), Some(0)) => None,
            (Some(fault), None) => Some(fault.clone()),
            (Some(fault), Some(n_left)) => {
                *n_left -= 1;
                Some(fault.clone())
            }
        };
        RequestBehavior {
            first_byte_latency: entry.behavior.first_byte_latency,
            token_latency: entry.behavior.token_latency,
            fault,
            hold_after_chunks: entry.behavior.hold_after_chunks,
        }
    }

    /// Releases every stream started before this call that holds or will hold (behavior
    /// `hold_after_chunks`): each sends the rest of its chunks. A stream started later
    /// holds until the next release.
    pub fn release_held(&self) {
        self.shared.releases.0.send_modify(|n_releases| *n_releases += 1);
    }

    /// Streams holding now (behavior `hold_after_chunks`), their connections open.
    pub fn held(&self) -> u64 {
        self.shared.n_held.load(Ordering::Relaxed)
    }

    /// Where a stream starting now holds, for a behavior's `hold_after_chunks`.
    pub(crate) fn hold(&self, hold_after_chunks: Option<u32>) -> Option<Hold> {
        let after_chunks = usize::try_from(hold_after_chunks?).unwrap_or(usize::MAX);
        let released = self.shared.releases.0.subscribe();
        Some(Hold { after_chunks, released, simulator: self.clone() })
    }

    fn lock_behaviors(&self) -> std::sync::MutexGuard<'_, HashMap<String, BehaviorEntry>> {
        // The map stays consistent even if a holder panicked, so a poisoned lock is usable.
        self.shared.behaviors.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn prompt_cache(&self) -> &PromptCache {
        &self.shared.prompt_cache
    }

    pub(crate) fn lock_quotas(&self) -> std::sync::MutexGuard<'_, QuotaBook> {
        // No holder panics halfway through an update, so a poisoned lock is usable.
        self.shared.quotas.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The key a behavior (or a quota) is stored under: the base model id, or the id as given
/// when it embeds none (`"*"`, a provisioned-model ARN).
pub(crate) fn behavior_key(model_id: &str) -> String {
    base_model_id(model_id).unwrap_or(model_id).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behavior::ErrorKind;

    fn faulty(fault_times: Option<u32>) -> Behavior {
        Behavior {
            token_latency: Duration::from_millis(3),
            fault: Some(Fault::Error(ErrorKind::Throttling)),
            fault_times,
            ..Behavior::default()
        }
    }

    #[test]
    fn own_entry_wins_over_every_model() {
        let simulator = Simulator::new();
        assert_eq!(simulator.take_behavior("anthropic.claude-v2"), RequestBehavior::default());
        simulator.set_behavior("*", faulty(None));
        simulator.set_behavior("us.anthropic.claude-v2:1", Behavior::default());
        assert_eq!(simulator.take_behavior("anthropic.claude-v2:1"), RequestBehavior::default());
        assert!(simulator.take_behavior("anthropic.claude-v2").fault.is_some());
        simulator.clear_behaviors();
        assert_eq!(simulator.take_behavior("anthropic.claude-v2"), RequestBehavior::default());
    }

    #[test]
    fn fault_times_counts_down() {
        let simulator = Simulator::new();
        simulator.set_behavior(
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1",
            faulty(Some(2)),
        );
        let model = "amazon.titan-text-lite-v1";
        assert!(simulator.take_behavior(model).fault.is_some());
        assert!(simulator.take_behavior(model).fault.is_some());
        let third = simulator.take_behavior(model);
        assert_eq!(third.fault, None);
        assert_eq!(third.token_latency, Duration::from_millis(3));
    }
}
