//! The live path shared by `run` and `replay`: a packet feed → the same
//! `Pipeline::ingest` as `read` → finished flows folded into the exporter's
//! totals and the flow log, with the exporter serving on its listener until
//! SIGINT/SIGTERM. Only the feed differs between the two commands.
//!
//! main thread: tokio runtime serving HTTP.
//! capture thread: the feed and the pipeline. It never waits on the
//! exporter (which only reads shared tables) nor on disk (the flow log is
//! buffered and flushed once a second).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tetherscope_capture::Packet;
use tetherscope_exporter::Shared;
use tetherscope_flow::Pipeline;

use crate::flow_log::{FlowLog, Rotation};
use crate::UsageError;

/// What a feed produced.
pub enum Event<'a> {
    /// A packet.
    Packet(Packet<'a>),
    /// No packet for a while. With a time, flows idle at that time (in the
    /// feed's clock) may be expired.
    Idle(Option<u64>),
    /// The feed has nothing more, but the monitor keeps serving.
    Ended,
}

/// Where the capture thread's packets come from.
pub trait Feed: Send {
    /// The next event; waits at most about a tenth of a second.
    fn next(&mut self, shared: &Shared) -> Event<'_>;
    /// Once a second: publish counters and the like.
    fn housekeeping(&mut self, _shared: &Shared) {}
}

/// Opens the flow log (`-`: stdout), buffered and, for a file, rotated as
/// `rotation` says.
pub fn open_flow_log(
    path: Option<&PathBuf>,
    rotation: Rotation,
) -> anyhow::Result<Option<FlowLog>> {
    let Some(p) = path else { return Ok(None) };
    if p.as_os_str() == "-" {
        return Ok(Some(FlowLog::stdout()));
    }
    let log = FlowLog::open(p, rotation)
        .map_err(|e| UsageError(format!("flow log {}: {e}", p.display())))?;
    Ok(Some(log))
}

/// Wall-clock time, Unix nanoseconds.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Serves the exporter on `listener` while `capture` (already spawned,
/// watching `stop`) runs; on SIGINT/SIGTERM stops it and waits for its
/// summary and pipeline.
pub fn serve(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    stop: Arc<AtomicBool>,
    capture: std::thread::JoinHandle<(String, Pipeline)>,
) -> anyhow::Result<(String, Pipeline)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Requests must name this listener (Host check against DNS rebinding).
    let listen = listener.local_addr()?;
    let listener = runtime.block_on(async { tokio::net::TcpListener::from_std(listener) })?;
    let limits = tetherscope_exporter::connections::Limits {
        max_connections: connection_cap(),
        ..Default::default()
    };
    let stats = shared.connections.clone();
    let app = tetherscope_exporter::server::router_on(shared, listen);
    let signalled = Arc::new(tokio::sync::Notify::new());
    runtime.block_on(async {
        let (stop, signalled_too) = (stop.clone(), signalled.clone());
        let server =
            tetherscope_exporter::connections::serve(listener, app, limits, stats, async move {
                shutdown_signal().await;
                // The capture stops at once, whatever clients still hold open.
                stop.store(true, Relaxed);
                signalled_too.notify_one();
            });
        tokio::select! {
            () = server => {}
            () = async {
                signalled.notified().await;
                tokio::time::sleep(HTTP_DRAIN).await;
            } => {
                tracing::warn!("closing HTTP connections still open after {HTTP_DRAIN:?}");
            }
        }
    });
    stop.store(true, Relaxed);
    capture
        .join()
        .map_err(|_| anyhow::anyhow!("capture thread panicked"))
}

/// Most HTTP connections served at once, whatever the descriptor limit.
const MAX_CONNECTIONS: u64 = 512;

/// The connection cap: half the descriptors this process may open (the
/// other half stays for the capture, the store and the flow log), at most
/// [`MAX_CONNECTIONS`].
#[allow(unsafe_code)]
fn connection_cap() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    usize::try_from((soft / 2).clamp(8, MAX_CONNECTIONS)).unwrap_or(8)
}

/// How long open HTTP connections may take to finish after SIGINT/SIGTERM.
const HTTP_DRAIN: Duration = Duration::from_secs(1);

/// Binds the exporter's listener (before privileges are dropped).
pub fn bind(listen: std::net::SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    if !listen.ip().is_loopback() {
        tracing::warn!(
            "exporter listens on {listen}: anyone who can reach it (phones on the hotspot included) can read what your devices do",
        );
    }
    Ok(std::net::TcpListener::bind(listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| UsageError(format!("cannot listen on {listen}: {e}")))?)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Events between two looks at the clock on a busy feed.
const CLOCK_EVERY: u32 = 256;

/// The capture thread: feed → pipeline → exporter totals and flow log, until
/// `stop`; then every active flow is finished and logged, and the log
/// flushed. Returns a one-line summary, and the pipeline (its DNS answers
/// outlive the process in the state store).
pub fn capture_loop(
    mut pipeline: Pipeline,
    shared: &Shared,
    feed: &mut dyn Feed,
    mut flow_log: Option<FlowLog>,
    history: Option<tetherscope_history::Sink>,
    stop: &AtomicBool,
) -> (String, Pipeline) {
    let mut line = Vec::new();
    let mut finish = |pipeline: &mut Pipeline, log: &mut Option<FlowLog>| {
        for (flow, _) in pipeline.take_finished() {
            let record = shared.retire(&flow);
            let mut logged = false;
            if let Some(w) = log.as_mut() {
                match w.write_line(&record) {
                    Ok(written) => {
                        logged = true;
                        let counters = &shared.capture;
                        counters.flow_log_bytes.fetch_add(written.bytes, Relaxed);
                        if written.rotated {
                            counters.flow_log_rotations.fetch_add(1, Relaxed);
                        }
                    }
                    Err(e) => {
                        tracing::warn!("flow log write failed: {e}; disabling it");
                        *log = None;
                    }
                }
            }
            // The flow history gets the flow log's line, made once.
            if let Some(h) = &history {
                match (logged, log.as_ref()) {
                    (true, Some(w)) => h.send(w.last_line()),
                    _ => {
                        line.clear();
                        if serde_json::to_writer(&mut line, &record).is_ok() {
                            h.send(&line);
                        }
                    }
                }
            }
        }
    };
    let mut last_housekeeping = Instant::now() - Duration::from_secs(60);
    let mut since_clock = 0u32;
    let mut seen_packet = false;
    while !stop.load(Relaxed) {
        let busy = match feed.next(shared) {
            Event::Packet(p) => {
                pipeline.ingest(p.ts_nanos, p.link_type, p.wire_len, p.data);
                seen_packet = true;
                true
            }
            Event::Idle(now) => {
                if let Some(now) = now {
                    pipeline.tick(now);
                }
                false
            }
            Event::Ended => false,
        };
        finish(&mut pipeline, &mut flow_log);
        since_clock += 1;
        if busy && since_clock < CLOCK_EVERY {
            continue;
        }
        since_clock = 0;
        if std::mem::take(&mut seen_packet) {
            shared
                .capture
                .last_packet_unix_ns
                .store(unix_nanos(), Relaxed);
        }
        if last_housekeeping.elapsed() >= Duration::from_secs(1) {
            last_housekeeping = Instant::now();
            feed.housekeeping(shared);
            if let Some(w) = flow_log.as_mut() {
                let _ = w.flush();
            }
        }
    }
    // Drain: every active flow is finished and logged.
    feed.housekeeping(shared);
    pipeline.finish();
    finish(&mut pipeline, &mut flow_log);
    if let Some(w) = flow_log.as_mut() {
        let _ = w.flush();
    }
    if let Some(h) = history {
        // Spools the last batch and sends what it can for a few seconds.
        h.finish();
    }
    let summary = format!(
        "{} packets, {} flows",
        tetherscope_flow::Stats::get(&pipeline.stats.packets),
        tetherscope_flow::Stats::get(&pipeline.stats.flows_created)
    );
    (summary, pipeline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tetherscope_capture::file::FileSource;
    use tetherscope_classify::Catalog;
    use tetherscope_flow::PipelineConfig;

    /// A capture file, then the end: stops the loop, which drains.
    struct FileThenStop {
        source: FileSource,
        stop: Arc<AtomicBool>,
    }

    impl Feed for FileThenStop {
        fn next(&mut self, _shared: &Shared) -> Event<'_> {
            match self.source.next_packet() {
                Ok(Some(p)) => Event::Packet(p),
                _ => {
                    self.stop.store(true, Relaxed);
                    Event::Ended
                }
            }
        }
    }

    #[test]
    fn flow_log_bytes_and_rotations_are_counted() {
        let dir = std::env::temp_dir().join(format!("tetherscope-loop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flows.jsonl");
        let log = FlowLog::open(
            &path,
            Rotation {
                max_bytes: 2048,
                keep: 100,
            },
        )
        .unwrap();
        let pipeline = Pipeline::new(&PipelineConfig::default());
        let shared = Shared::new(&pipeline, Arc::new(Catalog::builtin()), 100);
        let stop = Arc::new(AtomicBool::new(false));
        let capture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/seed-domains.pcap"
        );
        let mut feed = FileThenStop {
            source: FileSource::open(std::path::Path::new(capture)).unwrap(),
            stop: stop.clone(),
        };
        capture_loop(pipeline, &shared, &mut feed, Some(log), None, &stop);
        let mut on_disk = 0;
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            on_disk += entry.metadata().unwrap().len();
            files += 1;
        }
        assert!(files > 1, "the log was never rotated");
        assert_eq!(shared.capture.flow_log_bytes.load(Relaxed), on_disk);
        assert_eq!(shared.capture.flow_log_rotations.load(Relaxed), files - 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
