//! The API listener's accept loop: HTTP/1.1 connections (over TLS when configured), each
//! in its own task, with the limits a caller cannot hold past, and a shutdown that always
//! ends.
//!
//! - **Connections.** At most `max_connections` are served. Past that, a few more
//!   ([`overflow_connections`]) are accepted only to answer each request 503 with
//!   `Retry-After` (in the route's API encoding, `intake.rs`) and close; past those,
//!   the loop stops accepting and new connections wait in the kernel's backlog until a
//!   place frees. The socket count is thus bounded, and no caller hangs on us.
//! - **Timeouts.** The request head (and the TLS handshake) within `header_read_timeout`,
//!   idle kept-alive connections within `keep_alive_timeout` (`io.rs`); a body within
//!   `body_read_timeout` (`intake.rs`).
//! - **Shutdown** ([`serve`]): readiness off, accept for `shutdown_delay`, close the
//!   listener, let requests and streams finish for `drain_timeout`, then tell the open
//!   streams to end with an error event ([`Drain::end_streams`]), give them [`GRACE`] to
//!   flush, close what is left and return. One log line per step.

mod io;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::HttpConfig;
use crate::drain::Drain;
use crate::intake::{HoldsGuard, OverConnectionCap};
use crate::listener::io::{Activity, TimedIo};
use crate::runtime::Workers;

/// After the streams are told to end: how long their last events have to leave.
pub const GRACE: Duration = Duration::from_secs(2);

/// The cap's warning is logged at most this often.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// An over-cap connection must send its request within this (or `header_read_timeout`,
/// if shorter): it holds a socket only to be told 503.
const OVERFLOW_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The API listener, bound, and how it serves.
pub struct ApiListener {
    pub listener: TcpListener,
    /// TLS, if configured (see [`tls::acceptor`]).
    pub tls: Option<TlsAcceptor>,
    pub http: HttpConfig,
    /// The runtimes its connections are spawned on.
    pub workers: Workers,
}

/// What the shutdown acts on and waits for.
#[derive(Debug)]
pub struct Shutdown {
    /// `/readyz`: false from the shutdown's start.
    pub ready: Arc<AtomicBool>,
    /// Keep accepting this long after the signal.
    pub delay: Duration,
    /// The signal open streams end on.
    pub drain: Drain,
}

/// How many connections past `max_connections` are accepted only to be refused.
pub fn overflow_connections(max_connections: usize) -> usize {
    (max_connections / 16).clamp(4, 64)
}

/// Serves `router` on `api` until `signal` resolves, then shuts down as the module says.
pub async fn serve(
    api: ApiListener,
    router: Router,
    shutdown: Shutdown,
    signal: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let ApiListener { listener, tls, http, workers } = api;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accept = Accept {
        listener,
        tls,
        router,
        served: Arc::new(Semaphore::new(http.max_connections)),
        overflow: Arc::new(Semaphore::new(overflow_connections(http.max_connections))),
        connections: JoinSet::new(),
        workers,
        stop: stop_rx,
        http,
        warned: None,
        refused_since_warning: 0,
    };
    accept.run_until(signal).await;

    shutdown.ready.store(false, Ordering::Relaxed);
    tracing::info!(
        message = "shutdown: readiness off (/readyz answers 503); still accepting",
        delay_ms = shutdown.delay.as_millis() as u64,
    );
    accept.run_until(tokio::time::sleep(shutdown.delay)).await;

    let Accept { listener, mut connections, http, .. } = accept;
    drop(listener);
    reap(&mut connections);
    tracing::info!(
        message = "shutdown: listener closed; draining",
        connections = connections.len(),
        drain_timeout_ms = http.drain_timeout.as_millis() as u64,
    );
    // Idle connections close now; busy ones after their answer.
    let _ = stop_tx.send(true);
    if tokio::time::timeout(http.drain_timeout, join_all(&mut connections)).await.is_ok() {
        tracing::info!("shutdown: drained; no connection left");
        return Ok(());
    }
    tracing::warn!(
        message = "shutdown: drain timeout; ending the open streams",
        connections = connections.len(),
    );
    shutdown.drain.end_streams();
    if tokio::time::timeout(GRACE, join_all(&mut connections)).await.is_ok() {
        tracing::info!("shutdown: streams ended; no connection left");
        return Ok(());
    }
    tracing::warn!(
        message = "shutdown: closing the connections still open",
        connections = connections.len(),
    );
    connections.shutdown().await;
    Ok(())
}

/// The accept loop's state, kept across the shutdown's steps.
struct Accept {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    /// One permit per connection served.
    served: Arc<Semaphore>,
    /// One permit per connection accepted only to be refused.
    overflow: Arc<Semaphore>,
    connections: JoinSet<()>,
    workers: Workers,
    /// True once the listener closes: connections finish their request and close.
    stop: watch::Receiver<bool>,
    http: HttpConfig,
    /// When the cap was last logged, and how many connections were refused since.
    warned: Option<Instant>,
    refused_since_warning: u64,
}

/// A connection's place, held as long as it is open: among those served, or among
/// those accepted to be refused.
struct Place {
    _permit: OwnedSemaphorePermit,
    refused: bool,
}

impl Accept {
    /// Accepts connections until `until` resolves.
    async fn run_until(&mut self, until: impl Future<Output = ()>) {
        let mut until = pin!(until);
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut until => return,
                Some(_) = self.connections.join_next(), if !self.connections.is_empty() => continue,
                accepted = accept_one(&self.listener, &self.served, &self.overflow) => accepted,
            };
            match accepted {
                Ok((tcp, place)) => self.spawn(tcp, place),
                Err(error) if is_per_connection(&error) => {
                    tracing::debug!(message = "accept failed", %error);
                }
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(message = "accept failed; retrying in 1 s", %error);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn spawn(&mut self, tcp: TcpStream, place: Place) {
        let accepted = Instant::now();
        // SSE events are small writes that must leave at once: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        let refused = place.refused;
        if refused {
            self.refused_since_warning += 1;
            if self.warned.is_none_or(|at| at.elapsed() >= CAP_WARNING_INTERVAL) {
                tracing::warn!(
                    message = "max_connections reached: new connections are answered 503",
                    max_connections = self.http.max_connections,
                    refused = self.refused_since_warning,
                );
                self.warned = Some(accepted);
                self.refused_since_warning = 0;
            }
        }
        let header_read_timeout = if refused {
            self.http.header_read_timeout.min(OVERFLOW_HEADER_READ_TIMEOUT)
        } else {
            self.http.header_read_timeout
        };
        let connection = Connection {
            router: self.router.clone(),
            activity: Activity::new(accepted),
            header_read_timeout,
            keep_alive_timeout: self.http.keep_alive_timeout,
            refused,
            stop: self.stop.clone(),
        };
        let tls = self.tls.clone();
        self.workers.spawn(&mut self.connections, tcp, move |tcp| async move {
            let _place = place;
            match tls {
                None => connection.serve(tcp).await,
                // Boxed: a TLS connection's state (its handshake, then its stream) is a few
                // KiB that the task of every plain connection would otherwise hold too.
                Some(tls) => {
                    let deadline = accepted + header_read_timeout;
                    Box::pin(serve_tls(connection, &tls, tcp, deadline)).await;
                }
            }
        });
    }
}

/// Serves a TLS connection once its handshake is done, by `deadline`.
async fn serve_tls(connection: Connection, tls: &TlsAcceptor, tcp: TcpStream, deadline: Instant) {
    match tokio::time::timeout_at(deadline, tls.accept(tcp)).await {
        Ok(Ok(stream)) => connection.serve(stream).await,
        Ok(Err(error)) => tracing::debug!(message = "TLS handshake failed", %error),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

/// Waits for a place, then for a connection. Cancel-safe: a place is given back, and
/// no accepted connection is lost.
async fn accept_one(
    listener: &TcpListener,
    served: &Arc<Semaphore>,
    overflow: &Arc<Semaphore>,
) -> std::io::Result<(TcpStream, Place)> {
    let place = tokio::select! {
        biased;
        Ok(permit) = served.clone().acquire_owned() => Place { _permit: permit, refused: false },
        Ok(permit) = overflow.clone().acquire_owned() => Place { _permit: permit, refused: true },
        else => return Err(std::io::Error::other("the connection places are closed")),
    };
    let (tcp, _) = listener.accept().await?;
    // A place may have freed while we waited for the connection.
    if place.refused
        && let Ok(permit) = served.clone().try_acquire_owned()
    {
        return Ok((tcp, Place { _permit: permit, refused: false }));
    }
    Ok((tcp, place))
}

/// Errors of one incoming connection (it was reset before we took it), not of the
/// listener.
fn is_per_connection(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

fn reap(connections: &mut JoinSet<()>) {
    while connections.try_join_next().is_some() {}
}

async fn join_all(connections: &mut JoinSet<()>) {
    while connections.join_next().await.is_some() {}
}

/// One connection's settings and service.
struct Connection {
    router: Router,
    activity: Arc<Activity>,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    /// Over the cap: every request is answered 503 and the connection closes.
    refused: bool,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn serve<IO>(self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            router,
            activity,
            header_read_timeout,
            keep_alive_timeout,
            refused,
            mut stop,
        } = self;
        let io = TimedIo::new(io, activity.clone(), header_read_timeout, keep_alive_timeout);
        let service = ConnectionService { router, activity, refused };
        let mut builder = hyper::server::conn::http1::Builder::new();
        // The head's deadline is `TimedIo`'s, which also knows idle from reading.
        builder.header_read_timeout(None).keep_alive(!refused && !keep_alive_timeout.is_zero());
        let mut connection = pin!(builder.serve_connection(TokioIo::new(io), service));
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!(message = "connection closed", %error);
        }
    }
}

/// The router as a hyper service for one connection: marks the connection busy and
/// idle, and tags the requests of a refused connection.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    activity: Arc<Activity>,
    refused: bool,
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<Response<HoldsGuard<ResponseDone>>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<HoldsGuard<ResponseDone>>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: Request<Incoming>) -> ServiceFuture {
        self.activity.request_started();
        let mut request = request.map(Body::new);
        if self.refused {
            request.extensions_mut().insert(OverConnectionCap);
        }
        let router = self.router.clone();
        let activity = self.activity.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            Ok(response.map(|inner| HoldsGuard::new(inner, ResponseDone(activity))))
        })
    }
}

/// Marks its connection idle when its response body is done (or dropped).
struct ResponseDone(Arc<Activity>);

impl Drop for ResponseDone {
    fn drop(&mut self) {
        self.0.response_done();
    }
}
