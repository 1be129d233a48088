//! [`Drain`]: the signal, at the end of a shutdown's drain, that the streams still open
//! must end now, each with an error event in its API's own encoding, before the
//! connections are closed. It outlives reloads: one per gateway.

use std::sync::Arc;

use tokio::sync::watch;

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
}
