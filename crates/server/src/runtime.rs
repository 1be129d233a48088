//! The runtime layout: `workers` single-threaded tokio runtimes, each on a thread of its
//! own ([`Runtimes`]), and the API listener's connections spread over them ([`Workers`]).
//!
//! A connection lives on one worker from its accept to its close: its requests, their
//! calls to Bedrock and their streams run on that thread, with none of a work-stealing
//! scheduler's cross-thread wake-ups (ARCHITECTURE.md, "Runtime, allocator and layers,
//! by measurement"). A new connection goes to the worker with the fewest open ones, so
//! that long streams do not pile up on one thread. The first worker is the main
//! thread's runtime, which also runs the accept loop, the admin listener, reloads and
//! the embedded simulator. Calls to Bedrock go out on a pool of the worker's own
//! ([`current_worker`], `upstream/thin.rs`), so that their answers wake it too.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinSet;

/// How many workers this process serves on (1 until [`Runtimes::new`]): the pools a
/// client keeps, one per worker.
pub fn worker_slots() -> usize {
    WORKER_SLOTS.load(Ordering::Relaxed).max(1)
}

/// The index of the worker running on this thread (0 on any other thread), below
/// [`worker_slots`].
pub fn current_worker() -> usize {
    WORKER_INDEX.get()
}

static WORKER_SLOTS: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    static WORKER_INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The workers of `configured` (the config's `workers`), else one per CPU the process
/// may use (its CPU affinity and cgroup quota, as `available_parallelism` reads them).
pub fn worker_count(configured: Option<usize>) -> usize {
    configured.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    })
}

/// The runtimes the gateway serves on: the main thread's, and `workers - 1` more, each
/// on its own thread until [`Runtimes::shutdown`].
pub struct Runtimes {
    main: Runtime,
    others: Vec<OtherWorker>,
    workers: Workers,
}

struct OtherWorker {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Runtimes {
    /// `workers` single-threaded runtimes (at least one).
    pub fn new(workers: usize) -> std::io::Result<Runtimes> {
        let workers = workers.max(1);
        WORKER_SLOTS.store(workers, Ordering::Relaxed);
        let main = single_threaded()?;
        let mut handles = vec![main.handle().clone()];
        let mut others = Vec::new();
        for index in 1..workers {
            let runtime = single_threaded()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("gateway-worker-{index}"))
                .spawn(move || {
                    WORKER_INDEX.set(index);
                    let _ = runtime.block_on(stopped);
                    // Whatever a connection left (a stream cut by the shutdown) is dropped.
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })?;
            others.push(OtherWorker { stop, thread });
        }
        Ok(Runtimes { main, others, workers: Workers::on(handles) })
    }

    /// Where the API listener's connections are spawned.
    pub fn workers(&self) -> Workers {
        self.workers.clone()
    }

    /// Runs `future` on the main thread's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.main.block_on(future)
    }

    /// Stops every runtime: what is left on them (a blocking task stuck on a DNS lookup,
    /// say) gets a second, then does not hold the exit.
    pub fn shutdown(self) {
        for other in self.others {
            let _ = other.stop.send(());
            let _ = other.thread.join();
        }
        self.main.shutdown_timeout(Duration::from_secs(1));
    }
}

fn single_threaded() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// The runtimes connections are spawned on; none: the caller's own (tests, and
/// [`crate::run`]). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Workers(Arc<[Worker]>);

#[derive(Debug)]
struct Worker {
    handle: Handle,
    /// Connections open on it.
    open: Arc<AtomicUsize>,
}

impl Workers {
    /// Connections go to the caller's runtime.
    pub fn local() -> Workers {
        Workers::default()
    }

    /// The threads serving connections (1: the caller's own).
    pub fn count(&self) -> usize {
        self.0.len().max(1)
    }

    fn on(handles: Vec<Handle>) -> Workers {
        Workers(
            handles
                .into_iter()
                .map(|handle| Worker { handle, open: Arc::new(AtomicUsize::new(0)) })
                .collect(),
        )
    }

    /// Spawns the task that serves `tcp` into `set`, on the worker with the fewest open
    /// connections. The socket moves to that worker's reactor, so that its reads and
    /// writes wake that worker and no other thread.
    pub fn spawn<F, Serve>(&self, set: &mut JoinSet<()>, tcp: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Serve + Send + 'static,
        Serve: Future<Output = ()> + Send + 'static,
    {
        let Some(worker) = self.0.iter().min_by_key(|worker| worker.open.load(Ordering::Relaxed))
        else {
            set.spawn(serve(tcp));
            return;
        };
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(error) => {
                tracing::debug!(message = "connection lost before it was served", %error);
                return;
            }
        };
        let open = Open::new(worker.open.clone());
        set.spawn_on(
            async move {
                let _open = open;
                match TcpStream::from_std(tcp) {
                    Ok(tcp) => serve(tcp).await,
                    Err(error) => {
                        tracing::debug!(message = "connection lost before it was served", %error)
                    }
                }
            },
            &worker.handle,
        );
    }
}

/// One open connection of a worker's count, given back when it closes.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(count: Arc<AtomicUsize>) -> Open {
        count.fetch_add(1, Ordering::Relaxed);
        Open(count)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn connections_go_to_the_worker_with_the_fewest_open_and_are_served_there() {
        let runtimes = Runtimes::new(3).unwrap();
        let workers = runtimes.workers();
        assert_eq!(workers.count(), 3);
        let main_thread = std::thread::current().id();
        let threads = runtimes.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let mut connections = JoinSet::new();
            let mut callers = Vec::new();
            let mut threads = Vec::new();
            for _ in 0..6 {
                let mut caller = tokio::net::TcpStream::connect(address).await.unwrap();
                let (tcp, _) = listener.accept().await.unwrap();
                let (thread_tx, thread_rx) = tokio::sync::oneshot::channel();
                // An echo of one byte, then open until the caller closes.
                workers.spawn(&mut connections, tcp, move |mut tcp| async move {
                    let _ = thread_tx.send((std::thread::current().id(), current_worker()));
                    let mut byte = [0u8; 1];
                    if tcp.read_exact(&mut byte).await.is_ok() {
                        let _ = tcp.write_all(&byte).await;
                    }
                    let _ = tcp.read(&mut byte).await;
                });
                threads.push(thread_rx.await.unwrap());
                caller.write_all(b"x").await.unwrap();
                let mut echoed = [0u8; 1];
                caller.read_exact(&mut echoed).await.unwrap();
                assert_eq!(&echoed, b"x", "the socket works on its worker's reactor");
                callers.push(caller);
            }
            assert!(workers.0.iter().all(|worker| worker.open.load(Ordering::Relaxed) == 2));
            drop(callers);
            while connections.join_next().await.is_some() {}
            assert!(workers.0.iter().all(|worker| worker.open.load(Ordering::Relaxed) == 0));
            threads
        });
        // Round and round: each worker's thread (the first is this one) twice, each
        // knowing its index.
        assert_eq!(worker_slots(), 3);
        assert_eq!(threads[0].0, main_thread);
        for (index, (thread, worker)) in threads.iter().enumerate() {
            assert_eq!(*thread, threads[index % 3].0, "connection {index}");
            assert_eq!(*worker, index % 3, "connection {index}");
        }
        assert!(threads[0] != threads[1] && threads[1] != threads[2] && threads[0] != threads[2]);
        runtimes.shutdown();
    }

    #[tokio::test]
    async fn without_workers_a_connection_stays_on_the_callers_runtime() {
        let workers = Workers::local();
        assert_eq!(workers.count(), 1);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _caller = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connections = JoinSet::new();
        let (thread_tx, thread_rx) = tokio::sync::oneshot::channel();
        workers.spawn(&mut connections, tcp, move |_tcp| async move {
            let _ = thread_tx.send((std::thread::current().id(), current_worker()));
        });
        assert_eq!(thread_rx.await.unwrap(), (std::thread::current().id(), 0));
    }

    #[test]
    fn the_workers_are_the_configured_number_else_one_per_cpu() {
        assert_eq!(worker_count(Some(3)), 3);
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(worker_count(None), cpus);
    }
}
