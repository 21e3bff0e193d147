//! The listener's accept loop, with the limits `axum::serve` lacks: a
//! header-read timeout (which is also the idle timeout between two requests
//! of a kept-alive connection) and a cap on connections served at once.
//!
//! A client that opens connections and sends nothing must not take the
//! page, `/metrics` or `/healthz` away from everyone else, nor the
//! process's file descriptors. So at the cap, the connection that has been
//! silent longest is closed to make room for the new one; a silent one is
//! closed anyway once the header timeout has passed.
//!
//! A client that asks for large answers and never reads them must not pin
//! their memory either: a connection whose writes make no progress for the
//! write timeout is closed, and the bytes of large answers waiting to be
//! sent are bounded over all connections (past the bound, a large answer is
//! refused with `503` until earlier ones are sent or dropped).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, from the
    /// connection's start or from the end of its previous response.
    pub header_timeout: Duration,
    /// How long a connection's writes may make no progress (its client
    /// reads nothing) before it is closed.
    pub write_timeout: Duration,
    /// Most bytes of large answers (see [`LARGE_ANSWER`]) built and not yet
    /// sent, over all connections.
    pub max_bytes_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_bytes_in_flight: 64 << 20,
        }
    }
}

/// Answers at least this large count against
/// [`Limits::max_bytes_in_flight`]; smaller ones (`/healthz`, triage, a
/// `304`) are bounded by the connection cap alone and never refused.
pub const LARGE_ANSWER: usize = 64 << 10;

/// Connections the limits closed, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Closed at the cap to make room for a new one (the longest silent).
    pub evicted: AtomicU64,
    /// Refused at the cap when no room could be made.
    pub refused: AtomicU64,
    /// Closed because its client read nothing of an answer for the write
    /// timeout.
    pub write_timeout: AtomicU64,
    /// Answered `503` and closed because large answers waiting to be sent
    /// already held [`Limits::max_bytes_in_flight`].
    pub over_budget: AtomicU64,
}

/// Most bytes a connection buffers while reading headers: far more than
/// any request of the page needs, small enough that the cap bounds memory.
const MAX_HEADER_BUFFER: usize = 64 << 10;

/// How long a new connection waits for the room an eviction makes.
const EVICTION_WAIT: Duration = Duration::from_millis(200);

/// Pause after a failed `accept` (out of descriptors, say), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` within `limits` until `shutdown` completes;
/// then stops accepting, asks open connections to finish their current
/// request, and returns once they are all closed (the caller bounds that
/// wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let open = Arc::new(Open::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BUFFER);
    let builder = Arc::new(builder);
    let app = app.layer(axum::middleware::from_fn_with_state(
        Budget::new(limits.max_bytes_in_flight, stats.clone()),
        within_budget,
    ));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let room = if open.evict_longest_silent() {
                    tokio::time::timeout(EVICTION_WAIT, permits.clone().acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                } else {
                    None
                };
                let Some(permit) = room else {
                    stats.refused.fetch_add(1, Relaxed);
                    refuse(stream);
                    continue;
                };
                stats.evicted.fetch_add(1, Relaxed);
                permit
            }
        };
        let _ = stream.set_nodelay(true);
        let slot = open.add();
        let (builder, app, open, mut stop, stats) = (
            builder.clone(),
            app.clone(),
            open.clone(),
            stop_rx.clone(),
            stats.clone(),
        );
        tokio::spawn(async move {
            let io = TokioIo::new(Tracked {
                inner: stream,
                slot: slot.clone(),
                epoch: open.epoch,
                write_timeout: limits.write_timeout,
                stalled: None,
                stats,
            });
            let conn = builder.serve_connection(io, TowerToHyperService::new(app));
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                // Dropping the connection closes it.
                () = slot.close.notified() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        () = slot.close.notified() => {}
                    }
                }
            }
            open.remove(slot.id);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every permit back: every connection closed.
    let _ = permits.acquire_many(max as u32).await;
}

/// Tells a client over the cap so, without waiting on it, and closes.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n",
    );
}

/// One open connection, as the cap sees it.
struct Slot {
    id: u64,
    /// Milliseconds from [`Open::epoch`] to its last read of any bytes (or
    /// its start).
    last_read_ms: AtomicU64,
    /// Set once it was chosen for closing.
    closing: AtomicBool,
    close: Notify,
}

/// The open connections.
struct Open {
    epoch: Instant,
    next_id: AtomicU64,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
}

impl Default for Open {
    fn default() -> Self {
        Open {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            slots: Mutex::default(),
        }
    }
}

impl Open {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Relaxed),
            last_read_ms: AtomicU64::new(millis_since(self.epoch)),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        self.slots().insert(slot.id, slot.clone());
        slot
    }

    fn remove(&self, id: u64) {
        self.slots().remove(&id);
    }

    /// Closes the connection that has read nothing for longest; false when
    /// none is left to close.
    fn evict_longest_silent(&self) -> bool {
        let slots = self.slots();
        let chosen = slots
            .values()
            .filter(|s| !s.closing.load(Relaxed))
            .min_by_key(|s| s.last_read_ms.load(Relaxed));
        match chosen {
            Some(slot) => {
                slot.closing.store(true, Relaxed);
                slot.close.notify_one();
                true
            }
            None => false,
        }
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A connection's stream that notes when it last read anything, and fails
/// its writes once they made no progress for the write timeout.
struct Tracked {
    inner: TcpStream,
    slot: Arc<Slot>,
    epoch: Instant,
    write_timeout: Duration,
    /// Armed when a write could not proceed; disarmed by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    stats: Arc<ConnectionStats>,
}

impl Tracked {
    /// What a write poll gives hyper: progress disarms the stall timer; no
    /// progress arms it (its wake-up makes hyper poll again), and once it
    /// fired the write fails, which closes the connection and drops the
    /// answer it held.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) if n > 0 => {
                self.stalled = None;
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                let timeout = self.write_timeout;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.stalled = None;
                self.stats.write_timeout.fetch_add(1, Relaxed);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client read nothing for the write timeout",
                )))
            }
            other => other,
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.slot
                .last_read_ms
                .store(millis_since(self.epoch), Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Answers built at once (beyond `/healthz`): what is being built is held
/// in memory too, twice (the entries, then their JSON), so it is bounded
/// like what waits to be sent. Requests past it wait their turn, which
/// costs them nothing but their headers.
const BUILDERS: usize = 2;

/// The bytes of large answers built and not yet sent, over all
/// connections, and the answers being built.
#[derive(Clone)]
struct Budget {
    bytes: Arc<Semaphore>,
    builders: Arc<Semaphore>,
    /// The semaphore's size (a permit is a byte).
    max: usize,
    stats: Arc<ConnectionStats>,
}

impl Budget {
    fn new(max: usize, stats: Arc<ConnectionStats>) -> Self {
        let max = max.clamp(LARGE_ANSWER, u32::MAX as usize);
        Budget {
            bytes: Arc::new(Semaphore::new(max)),
            builders: Arc::new(Semaphore::new(BUILDERS)),
            max,
            stats,
        }
    }
}

/// An answer's bytes with the share of the budget they hold: the share goes
/// back when hyper drops the last of them (sent, or the connection closed),
/// not when the handler returns.
struct Held {
    bytes: Bytes,
    _share: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Builds at most [`BUILDERS`] answers at once (`/healthz` never waits),
/// and lets a large answer through only with a share of the budget for its
/// length; past the budget it is dropped and the client told to come back.
async fn within_budget(
    axum::extract::State(budget): axum::extract::State<Budget>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let Ok(_building) = budget.builders.acquire().await else {
        return busy();
    };
    let response = next.run(request).await;
    let Some(len) = response.body().size_hint().exact() else {
        return response;
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len < LARGE_ANSWER {
        return response;
    }
    let share = u32::try_from(len.min(budget.max))
        .ok()
        .and_then(|n| budget.bytes.clone().try_acquire_many_owned(n).ok());
    let Some(share) = share else {
        budget.stats.over_budget.fetch_add(1, Relaxed);
        return busy();
    };
    let (parts, body) = response.into_parts();
    // The body is already in memory (its exact length is known): this
    // only takes it out of its wrapper.
    let Ok(bytes) = axum::body::to_bytes(body, len).await else {
        return busy();
    };
    let held = Bytes::from_owner(Held {
        bytes,
        _share: share,
    });
    Response::from_parts(parts, Body::from(held))
}

/// `503`, closing the connection: large answers already wait to be sent.
fn busy() -> Response {
    let mut r = Response::new(Body::from("busy: too many answers wait to be sent\n"));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
