//! [`TimedIo`]: a connection's socket with the deadlines hyper does not keep, and a
//! lingering close.
//!
//! A connection is in one [`Phase`] at a time. Waiting for a request's head (from the
//! connection's start, or from the first byte after an idle spell) it has
//! `header_read_timeout`; idle between two requests, `keep_alive_timeout`; while a request
//! is handled, none here (its body has its own deadline, `intake.rs`). A read that waits
//! past the phase's deadline fails, and hyper closes the connection. The service marks
//! the phases: a request's start, its response's end.
//!
//! At a graceful close the write side is shut first, then what the caller still sends is
//! read and thrown away for up to [`LINGER`]: a caller that was still sending a body
//! refused early (413) reads its answer instead of a reset.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The longest a closing connection reads and discards what its caller still sends.
pub const LINGER: Duration = Duration::from_secs(2);

/// Where a connection is between its requests, shared by its socket and its service.
#[derive(Debug)]
pub struct Activity(Mutex<Phase>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request's head, since then.
    Head(Instant),
    /// A request is being handled.
    Busy,
    /// The last answer ended then; no byte of the next request yet.
    Idle(Instant),
}

impl Activity {
    /// A new connection, accepted at `accepted`: its first head is due.
    pub fn new(accepted: Instant) -> Arc<Activity> {
        Arc::new(Activity(Mutex::new(Phase::Head(accepted))))
    }

    /// A request's head has been read.
    pub fn request_started(&self) {
        self.set(Phase::Busy);
    }

    /// The answer has been written (or dropped).
    pub fn response_done(&self) {
        self.set(Phase::Idle(Instant::now()));
    }

    fn set(&self, phase: Phase) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = phase;
    }

    /// Bytes arrived: an idle connection starts its next head.
    fn bytes_arrived(&self) {
        let mut phase = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
        }
    }

    fn phase(&self) -> Phase {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A socket with the phase deadlines and the lingering close.
pub struct TimedIo<IO> {
    inner: IO,
    activity: Arc<Activity>,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    /// The deadline `sleep` is set to.
    armed: Option<Instant>,
    /// Set once the write side is shut: until when to read and discard.
    lingering: Option<Instant>,
}

impl<IO> TimedIo<IO> {
    pub fn new(
        inner: IO,
        activity: Arc<Activity>,
        header_read_timeout: Duration,
        keep_alive_timeout: Duration,
    ) -> TimedIo<IO> {
        TimedIo {
            inner,
            activity,
            header_read_timeout,
            keep_alive_timeout,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
            lingering: None,
        }
    }

    /// Whether `deadline` has passed; if not, the task is woken when it does.
    fn expired(&mut self, deadline: Instant, cx: &mut Context<'_>) -> bool {
        if self.armed != Some(deadline) {
            self.sleep.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        self.sleep.as_mut().poll(cx).is_ready()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for TimedIo<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.activity.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let (deadline, what) = match this.activity.phase() {
                    Phase::Head(since) => (since + this.header_read_timeout, "request head"),
                    Phase::Idle(since) => (since + this.keep_alive_timeout, "next request"),
                    Phase::Busy => return Poll::Pending,
                };
                if this.expired(deadline, cx) {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no {what} in time"),
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TimedIo<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    /// Shuts the write side, then reads and discards until the caller closes its side,
    /// an error, or [`LINGER`] has passed.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let until = match this.lingering {
            Some(until) => until,
            None => {
                ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                let until = Instant::now() + LINGER;
                this.lingering = Some(until);
                until
            }
        };
        let mut scratch = [0_u8; 4096];
        loop {
            let mut discard = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut discard) {
                Poll::Ready(Ok(())) if discard.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) if Instant::now() >= until => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending if this.expired(until, cx) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(75);

    #[tokio::test(start_paused = true)]
    async fn a_head_that_does_not_come_whole_in_time_fails_the_read() {
        let (client, server) = tokio::io::duplex(1024);
        let activity = Activity::new(Instant::now());
        let mut io = TimedIo::new(server, activity, HEAD, IDLE);
        let mut client = client;
        client.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0_u8; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), 8);
        let started = Instant::now();
        let error = io.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        // The head's deadline counts from the connection's start, not from the last byte.
        assert_eq!(started.elapsed(), HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_has_the_keep_alive_timeout_then_the_head_timeout() {
        let (mut client, server) = tokio::io::duplex(1024);
        let activity = Activity::new(Instant::now());
        let mut io = TimedIo::new(server, activity.clone(), HEAD, IDLE);
        activity.request_started();
        let mut buf = [0_u8; 64];
        // While a request is handled, no deadline of this layer applies.
        let busy = tokio::time::timeout(IDLE * 2, io.read(&mut buf)).await;
        assert!(busy.is_err(), "{busy:?}");
        activity.response_done();
        tokio::time::sleep(IDLE - Duration::from_secs(1)).await;
        client.write_all(b"G").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        let started = Instant::now();
        let error = io.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), HEAD);

        let (_client, server) = tokio::io::duplex(1024);
        let activity = Activity::new(Instant::now());
        let mut io = TimedIo::new(server, activity.clone(), HEAD, IDLE);
        activity.response_done();
        let started = Instant::now();
        assert_eq!(io.read(&mut buf).await.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_discards_what_the_caller_still_sends_for_a_while_at_most() {
        let (mut client, server) = tokio::io::duplex(1024);
        let activity = Activity::new(Instant::now());
        let mut io = TimedIo::new(server, activity, HEAD, IDLE);
        client.write_all(&[b'x'; 1000]).await.unwrap();
        let started = Instant::now();
        io.shutdown().await.unwrap();
        // The caller never closed: the linger ran out.
        assert_eq!(started.elapsed(), LINGER);
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0, "the write side is shut");

        let (client, server) = tokio::io::duplex(1024);
        let mut io = TimedIo::new(server, Activity::new(Instant::now()), HEAD, IDLE);
        drop(client);
        let started = Instant::now();
        io.shutdown().await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO, "a caller that closed ends it at once");
    }
}
