//! Flow history: every finished flow record, with its sensor's name, into a
//! ClickHouse table (deploy/clickhouse/flows.sql; docs/flow-history.md).
//!
//! The capture thread hands each record's JSON line to [`Sink::send`], which
//! never waits: the line goes into a bounded queue (a full queue drops it and
//! counts the drop). A batcher thread turns lines into rows and closes a
//! batch by count, by age or at a UTC day's end, writing it to the on-disk
//! [`spool`]. A sender thread inserts spooled batches oldest first over the
//! server's HTTP interface, gzip-compressed, and removes each once the server
//! acknowledged it. A batch whose insert got no answer is looked up by its
//! `batch_id` before it is sent again, so an acknowledged row is stored once
//! on a plain MergeTree table (see [`sender`]).
//!
//! This crate knows the flow record only by its documented JSON keys; it
//! depends on no other tetherscope crate.

pub mod clickhouse;
pub mod row;
pub mod sender;
pub mod spool;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

pub use clickhouse::Target;

/// Rows sent and acknowledged.
pub const ROWS_SENT: &str = "tetherscope_flow_sink_rows_sent_total";
/// Rows of inserts attempted again.
pub const ROWS_RETRIED: &str = "tetherscope_flow_sink_retried_rows_total";
/// Records dropped, by reason.
pub const DROPPED: &str = "tetherscope_flow_sink_dropped_total";
/// Bytes the spool holds.
pub const SPOOL_BYTES: &str = "tetherscope_flow_sink_spool_bytes";
/// 1 when the last request to ClickHouse succeeded.
pub const UP: &str = "tetherscope_flow_sink_up";

/// Counters of the sink, read by the exporter at scrape time.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Rows the server acknowledged (or was found to hold).
    pub rows_sent: AtomicU64,
    /// Rows of batches sent again after an attempt without success.
    pub rows_retried: AtomicU64,
    /// Rows of the oldest batches removed from a full spool.
    pub dropped_spool_full: AtomicU64,
    /// Records dropped because the queue to the batcher was full.
    pub dropped_queue_full: AtomicU64,
    /// Lines that were not flow records.
    pub dropped_bad_record: AtomicU64,
    /// Rows that could not be written to the spool (disk error).
    pub dropped_spool_error: AtomicU64,
    /// Bytes in the spool.
    pub spool_bytes: AtomicU64,
    /// Rows in the spool.
    pub spool_rows: AtomicU64,
    /// Whether the last request to the server succeeded.
    pub up: AtomicBool,
}

impl SinkStats {
    /// Dropped records by reason, for `tetherscope_flow_sink_dropped_total`.
    pub fn dropped(&self) -> [(&'static str, u64); 4] {
        [
            ("spool_full", self.dropped_spool_full.load(Relaxed)),
            ("queue_full", self.dropped_queue_full.load(Relaxed)),
            ("bad_record", self.dropped_bad_record.load(Relaxed)),
            ("spool_error", self.dropped_spool_error.load(Relaxed)),
        ]
    }
}

/// Default spool size, MiB: a day of a busy phone many times over
/// (docs/flow-history.md, "Sizing").
pub const DEFAULT_SPOOL_MIB: u64 = 256;
/// Default rows per batch.
pub const DEFAULT_BATCH_ROWS: usize = 10_000;
/// Most rows per batch: well under ClickHouse's `max_insert_block_size`
/// (1,048,576), so one batch is one block, written whole or not at all.
pub const MAX_BATCH_ROWS: usize = 100_000;
/// Default longest time a row waits in an open batch.
pub const DEFAULT_BATCH_DELAY: Duration = Duration::from_secs(2);
/// Records queued between the capture thread and the batcher.
pub const QUEUE: usize = 16_384;
/// Longest uncompressed batch: with [`MAX_BATCH_ROWS`], what bounds the
/// batcher's memory whatever the records hold.
pub const MAX_BATCH_BYTES: usize = 32 << 20;

/// Everything the sink needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server and table.
    pub target: Target,
    /// The `sensor` column of every row.
    pub sensor: String,
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// Largest spool, bytes.
    pub spool_max_bytes: u64,
    /// Rows that close a batch.
    pub batch_rows: usize,
    /// Age that closes a batch.
    pub batch_delay: Duration,
    /// How long [`Sink::finish`] goes on sending what is spooled.
    pub finish_grace: Duration,
}

/// A bad sink setting, or a spool that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting.
    #[error(transparent)]
    Setting(#[from] clickhouse::BadTarget),
    /// The spool directory.
    #[error("flow history spool {0}: {1}")]
    Spool(PathBuf, std::io::Error),
}

/// The running sink.
pub struct Sink {
    queue: Option<SyncSender<Vec<u8>>>,
    stats: Arc<SinkStats>,
    threads: Option<sender::Threads>,
    finish_grace: Duration,
}

/// A sensor name: what the Prometheus agent's `sensor` label holds.
pub fn check_sensor(name: &str) -> Result<(), clickhouse::BadTarget> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(clickhouse::BadTarget(format!(
            "sensor name {:?}: give 1 to 128 printable characters",
            name.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}

impl Sink {
    /// Checks the settings, opens the spool and starts the batcher and
    /// sender threads. Batches spooled by an earlier run are sent first.
    pub fn start(config: Config) -> Result<Sink, StartError> {
        config.target.check()?;
        check_sensor(&config.sensor)?;
        let spool = spool::Spool::open(&config.spool_dir, config.spool_max_bytes)
            .map_err(|e| StartError::Spool(config.spool_dir.clone(), e))?;
        let stats = Arc::new(SinkStats::default());
        let (tx, rx) = sync_channel(QUEUE);
        let finish_grace = config.finish_grace;
        let threads = sender::spawn(config, spool, rx, stats.clone())
            .map_err(|e| StartError::Spool(PathBuf::from("(threads)"), e))?;
        Ok(Sink {
            queue: Some(tx),
            stats,
            threads: Some(threads),
            finish_grace,
        })
    }

    /// Queues one flow record's JSON line; never waits. A full queue drops
    /// the record and counts it.
    pub fn send(&self, line: &[u8]) {
        let Some(q) = &self.queue else { return };
        match q.try_send(line.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped_queue_full.fetch_add(1, Relaxed);
            }
        }
    }

    /// The sink's counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Closes the open batches into the spool and sends what the spool
    /// holds for at most the configured grace (each request then waits at
    /// most [`clickhouse::STOPPING_TIMEOUT`]); what is left stays spooled
    /// and is sent by the next start. Returns within about the grace
    /// whatever the server does: a request that was already waiting for an
    /// answer when the stop came is left to the process's exit.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.queue = None;
        let Some(threads) = self.threads.take() else {
            return;
        };
        let _ = threads.batcher.join();
        let limit = self.finish_grace + STOP_MARGIN;
        match threads.sender_done.recv_timeout(limit) {
            Err(RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    "flow history: ClickHouse did not answer within {} s of the stop; {} rows stay spooled for the next start",
                    limit.as_secs(),
                    self.stats.spool_rows.load(Relaxed)
                );
            }
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                let _ = threads.sender.join();
            }
        }
    }
}

/// How much longer than the grace a stop waits for the sender's last answer.
const STOP_MARGIN: Duration = Duration::from_millis(500);

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}
