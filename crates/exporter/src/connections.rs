//! The listener's accept loop, with the limits `axum::serve` lacks: a
//! header-read timeout (which is also the idle timeout between two requests
//! of a kept-alive connection) and a cap on connections served at once.
//!
//! A client that opens connections and sends nothing must not take the
//! page, `/metrics` or `/healthz` away from everyone else, nor the
//! process's file descriptors. So at the cap, the connection that has been
//! silent longest is closed to make room for the new one; a silent one is
//! closed anyway once the header timeout has passed.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, from the
    /// connection's start or from the end of its previous response.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Connections the limits closed, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Closed at the cap to make room for a new one (the longest silent).
    pub evicted: AtomicU64,
    /// Refused at the cap when no room could be made.
    pub refused: AtomicU64,
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
        let (builder, app, open, mut stop) =
            (builder.clone(), app.clone(), open.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let io = TokioIo::new(Tracked {
                inner: stream,
                slot: slot.clone(),
                epoch: open.epoch,
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

/// A connection's stream that notes when it last read anything.
struct Tracked {
    inner: TcpStream,
    slot: Arc<Slot>,
    epoch: Instant,
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
        Pin::new(&mut self.inner).poll_write(cx, buf)
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
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
