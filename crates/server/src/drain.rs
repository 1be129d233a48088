//! [`Drain`]: the signal, at the end of a shutdown's drain, that the streams still open
//! must end now, each with an error event in its API's own encoding, before the
//! connections are closed. It outlives reloads: one per gateway.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::watch;

/// A stream's [`Drain::waiter`]: a future that resolves (and then stays resolved) when
/// the drain runs out, and a cheap check of whether it has.
pub struct Waiter {
    drain: Drain,
    /// `None` once resolved.
    wait: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
}

impl Waiter {
    /// Whether the drain has run out: a flag, for a stream to check at each item while it
    /// waits on the future only when it has nothing else to wait on.
    pub fn ended(&self) -> bool {
        self.wait.is_none() || self.drain.ended()
    }
}

impl Future for Waiter {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(wait) = self.wait.as_mut() else {
            return Poll::Ready(());
        };
        std::task::ready!(wait.as_mut().poll(cx));
        self.wait = None;
        Poll::Ready(())
    }
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter").field("ended", &self.ended()).finish()
    }
}

/// Cheap to clone; every clone sees the one signal.
#[derive(Clone, Debug)]
pub struct Drain(Arc<watch::Sender<bool>>);

impl Default for Drain {
    fn default() -> Drain {
        Drain(Arc::new(watch::channel(false).0))
    }
}

impl Drain {
    pub fn new() -> Drain {
        Drain::default()
    }

    /// Tells every open stream to end now. Idempotent.
    pub fn end_streams(&self) {
        self.0.send_replace(true);
    }

    /// Whether [`Drain::end_streams`] was called.
    pub fn ended(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once [`Drain::end_streams`] is called (at once if it was).
    pub async fn wait(&self) {
        let mut receiver = self.0.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail while we wait.
        let _ = receiver.wait_for(|ended| *ended).await;
    }

    /// [`Drain::wait`] as a future that owns its clone of the signal: a stream keeps one
    /// across its items, registered with the signal once rather than once per item.
    pub fn waiter(&self) -> Waiter {
        let drain = self.clone();
        Waiter { drain: self.clone(), wait: Some(Box::pin(async move { drain.wait().await })) }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Drain;

    #[tokio::test]
    async fn every_clone_sees_the_signal_and_late_waiters_return_at_once() {
        let drain = Drain::new();
        let waiter = tokio::spawn({
            let drain = drain.clone();
            async move { drain.wait().await }
        });
        assert!(!drain.ended());
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        drain.clone().end_streams();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert!(drain.ended());
        tokio::time::timeout(Duration::from_secs(5), drain.wait()).await.unwrap();
    }

    #[tokio::test]
    async fn a_waiter_resolves_once_the_drain_ends_and_stays_resolved() {
        use futures_util::FutureExt;

        let drain = Drain::new();
        let mut waiter = drain.waiter();
        assert!((&mut waiter).now_or_never().is_none());
        assert!(!waiter.ended());
        drain.end_streams();
        assert!(waiter.ended());
        tokio::time::timeout(Duration::from_secs(5), &mut waiter).await.unwrap();
        assert!((&mut waiter).now_or_never().is_some(), "a resolved waiter stays resolved");
    }
}
