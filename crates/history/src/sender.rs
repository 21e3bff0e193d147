//! The sink's two threads.
//!
//! The batcher turns queued lines into rows, one open batch per UTC day of
//! `first_seen`, and closes a batch into the spool when it has `batch_rows`
//! rows or its first row is `batch_delay` old. A batch lies in one partition
//! of the day-partitioned table, so ClickHouse writes it as one part, whole
//! or not at all.
//!
//! The sender inserts the oldest spooled batch and removes it once the
//! server answered 200. Exactly-once on a plain MergeTree table (18.16
//! deduplicates inserts only on replicated tables): every row carries its
//! batch's `batch_id`; a batch whose insert got no answer (a timeout, a
//! reset, a crash between the insert and the removal) is *uncertain*, and
//! before sending it again the sender counts its rows in the table. Found:
//! it was stored, and is removed unsent. Not found: it is sent. The
//! sender is the only writer of its sensor's batches, so nothing can store
//! the batch between the count and the insert.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use std::io::Write;

use crate::clickhouse::{Client, RequestError, STOPPING_TIMEOUT};
use crate::spool::{Batch, Spool};
use crate::{row, Config, SinkStats, MAX_BATCH_BYTES, MAX_BATCH_ROWS};

/// Shortest and longest wait before trying a failed server again.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(8));

struct State {
    spool: Spool,
    /// The batch the sender is sending: a full spool never drops it.
    sending: Option<u64>,
    /// The queue is closed: the sink is stopping.
    stopping: bool,
    /// The batcher has closed its last batch.
    batcher_done: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    stats: Arc<SinkStats>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, s: &State) {
        self.stats.spool_bytes.store(s.spool.bytes(), Relaxed);
    }
}

/// The sink's running threads.
pub struct Threads {
    /// The batcher: ends once the queue is closed and its batches spooled.
    pub batcher: std::thread::JoinHandle<()>,
    /// The sender: ends once the spool is sent, or the grace is over.
    pub sender: std::thread::JoinHandle<()>,
    /// Disconnected when the sender ends.
    pub sender_done: Receiver<()>,
}

/// Starts the batcher (reading `rx`) and the sender.
pub fn spawn(
    config: Config,
    spool: Spool,
    rx: Receiver<Vec<u8>>,
    stats: Arc<SinkStats>,
) -> std::io::Result<Threads> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            spool,
            sending: None,
            stopping: false,
            batcher_done: false,
        }),
        wake: Condvar::new(),
        stats,
    });
    {
        let s = shared.lock();
        shared.publish(&s);
    }
    let batcher = {
        let (shared, config) = (shared.clone(), config.clone());
        std::thread::Builder::new()
            .name("history-batch".into())
            .spawn(move || batcher(&config, &shared, &rx))?
    };
    let (done_tx, sender_done) = std::sync::mpsc::sync_channel::<()>(0);
    let sender = std::thread::Builder::new()
        .name("history-send".into())
        .spawn(move || {
            let _done = done_tx;
            sender(&config, &shared);
        })?;
    Ok(Threads {
        batcher,
        sender,
        sender_done,
    })
}

/// The batch being filled.
struct Open {
    body: Vec<u8>,
    rows: u64,
    day: u64,
    since: Instant,
    seq: u64,
    id: String,
}

fn batcher(config: &Config, shared: &Shared, rx: &Receiver<Vec<u8>>) {
    let max_rows = config.batch_rows.clamp(1, MAX_BATCH_ROWS) as u64;
    // One open batch per day: around midnight, flows that began before it
    // still finish among those that began after.
    let mut open: Vec<Open> = Vec::with_capacity(MAX_OPEN_DAYS);
    let mut warned_bad = false;
    loop {
        let wait = open
            .iter()
            .map(|o| config.batch_delay.saturating_sub(o.since.elapsed()))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        match next_line(rx, wait) {
            Ok(line) => {
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                // Parsed once: the day picks the batch, whose id the row
                // then carries.
                match row::parse(line) {
                    Ok(parsed) => {
                        let day = row::day(parsed.info().first_seen);
                        let i = match open.iter().position(|o| o.day == day) {
                            Some(i) => i,
                            None => {
                                if open.len() >= MAX_OPEN_DAYS {
                                    let oldest = open.remove(0);
                                    close(shared, oldest);
                                }
                                let (seq, id) = shared.lock().spool.next_batch();
                                open.push(Open {
                                    body: Vec::new(),
                                    rows: 0,
                                    day,
                                    since: Instant::now(),
                                    seq,
                                    id,
                                });
                                open.len() - 1
                            }
                        };
                        let o = &mut open[i];
                        parsed.write(&mut o.body, &config.sensor, &o.id);
                        o.rows += 1;
                        if o.rows >= max_rows || o.body.len() >= MAX_BATCH_BYTES {
                            let full = open.remove(i);
                            close(shared, full);
                        }
                    }
                    Err(e) => {
                        shared.stats.dropped_bad_record.fetch_add(1, Relaxed);
                        if !std::mem::replace(&mut warned_bad, true) {
                            tracing::warn!("flow history: a record was dropped: {e}");
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // Said before the last batches are spooled, so that the
                // sender sends them with its stopping limits.
                shared.lock().stopping = true;
                for o in open.drain(..) {
                    close(shared, o);
                }
                shared.lock().batcher_done = true;
                shared.wake.notify_all();
                return;
            }
        }
        while let Some(i) = open
            .iter()
            .position(|o| o.since.elapsed() >= config.batch_delay)
        {
            let due = open.remove(i);
            close(shared, due);
        }
    }
}

/// How long the batcher lets records gather once the queue is empty.
const GATHER: Duration = Duration::from_millis(20);

/// The next queued line, waiting at most about `wait`. An empty queue is
/// first left to fill for [`GATHER`] before the thread blocks on it: the
/// batcher then takes records in bulk, and the capture thread, whose
/// `try_send` wakes a blocked receiver with a system call, seldom finds one
/// (16,384 records in 20 ms is far beyond a busy hotspot).
fn next_line(rx: &Receiver<Vec<u8>>, wait: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
    match rx.try_recv() {
        Ok(line) => Ok(line),
        Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
        Err(TryRecvError::Empty) => {
            std::thread::sleep(GATHER.min(wait));
            rx.recv_timeout(wait.saturating_sub(GATHER))
        }
    }
}

/// Most batches open at once, one per UTC day.
const MAX_OPEN_DAYS: usize = 4;

/// Compresses a batch and spools it.
fn close(shared: &Shared, o: Open) {
    let mut gz = GzEncoder::new(
        Vec::with_capacity(o.body.len() / 8),
        flate2::Compression::fast(),
    );
    let body = gz.write_all(&o.body).and_then(|()| gz.finish());
    let mut s = shared.lock();
    let busy = s.sending;
    let result = body.and_then(|b| s.spool.push(o.seq, &o.id, o.rows, o.day, &b, busy));
    match result {
        Ok(dropped) => {
            if dropped.rows > 0 {
                shared
                    .stats
                    .dropped_spool_full
                    .fetch_add(dropped.rows, Relaxed);
                tracing::warn!(
                    "flow history: spool full; dropped its {} oldest batches ({} rows)",
                    dropped.batches,
                    dropped.rows
                );
            }
            shared.stats.spool_rows.fetch_add(o.rows, Relaxed);
            shared.stats.spool_rows.fetch_sub(dropped.rows, Relaxed);
        }
        Err(e) => {
            shared.stats.dropped_spool_error.fetch_add(o.rows, Relaxed);
            tracing::warn!("flow history: cannot spool a batch of {} rows: {e}", o.rows);
        }
    }
    shared.publish(&s);
    drop(s);
    shared.wake.notify_all();
}

/// What one look at the oldest batch did.
enum Step {
    /// Stored (now or earlier) and removed.
    Stored,
    /// The server refused or did not answer.
    Failed(RequestError),
}

fn sender(config: &Config, shared: &Shared) {
    let client = Client::new(config.target.clone());
    let mut backoff = BACKOFF.0;
    let mut retry_at: Option<Instant> = None;
    let mut finish_by: Option<Instant> = None;
    let mut logged_failure: Option<String> = None;
    loop {
        let batch = {
            let mut s = shared.lock();
            loop {
                if s.stopping && finish_by.is_none() {
                    finish_by = Some(Instant::now() + config.finish_grace);
                    // Stopping is worth one more try at once, whatever the
                    // backoff says: the server may be back since the last
                    // failure, and the batch the stop itself spooled should
                    // not wait for the next start. A failure now ends it.
                    retry_at = None;
                }
                let done = s.batcher_done
                    && (s.spool.is_empty()
                        || retry_at.is_some()
                        || finish_by.is_some_and(|t| Instant::now() >= t));
                if done {
                    return;
                }
                let waiting = retry_at.map(|t| t.saturating_duration_since(Instant::now()));
                match (s.spool.oldest(), waiting) {
                    (Some(b), None | Some(Duration::ZERO)) => {
                        retry_at = None;
                        break b.clone();
                    }
                    (_, w) => {
                        let w = w.unwrap_or(Duration::from_secs(3600));
                        s = shared
                            .wake
                            .wait_timeout(s, w)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                        if retry_at.is_some_and(|t| Instant::now() >= t) {
                            retry_at = None;
                        }
                    }
                }
            }
        };
        if let Some(end) = finish_by {
            // Stopping: a server that accepts and never answers gets a few
            // seconds, not the usual half minute, and never past the grace.
            // What is not sent stays spooled for the next start.
            let left = end.saturating_duration_since(Instant::now());
            client.limit_requests(left.min(STOPPING_TIMEOUT).max(Duration::from_millis(100)));
        }
        shared.lock().sending = Some(batch.seq);
        let step = attempt(config, shared, &client, &batch);
        let mut s = shared.lock();
        s.sending = None;
        match step {
            Step::Stored => {
                let _ = s.spool.remove(batch.seq);
                shared.stats.spool_rows.fetch_sub(batch.rows, Relaxed);
                shared.stats.rows_sent.fetch_add(batch.rows, Relaxed);
                shared.stats.up.store(true, Relaxed);
                backoff = BACKOFF.0;
                if logged_failure.take().is_some() {
                    tracing::info!(
                        "flow history: ClickHouse at {} answers again; sending the spool",
                        config.target.url
                    );
                }
            }
            Step::Failed(e) => {
                shared.stats.up.store(false, Relaxed);
                let what = e.to_string();
                // One line per failure, not per retry.
                if logged_failure.as_deref() != Some(&what) {
                    tracing::warn!(
                        "flow history: batch {} ({} rows) to {} at {}: {what}; kept in the spool, retrying",
                        batch.id,
                        batch.rows,
                        client.table(),
                        config.target.url
                    );
                    logged_failure = Some(what);
                }
                retry_at = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
        shared.publish(&s);
    }
}

/// Sends `batch` once, first checking whether an earlier attempt stored it.
fn attempt(config: &Config, shared: &Shared, client: &Client, batch: &Batch) -> Step {
    if batch.uncertain {
        match client.stored_rows(&config.sensor, &batch.id, batch.day) {
            Ok(0) => {}
            Ok(n) => {
                if n != batch.rows {
                    tracing::warn!(
                        "flow history: batch {} holds {n} of its {} rows in ClickHouse; not sent again",
                        batch.id,
                        batch.rows
                    );
                }
                return Step::Stored;
            }
            Err(e) => return Step::Failed(e),
        }
        shared.stats.rows_retried.fetch_add(batch.rows, Relaxed);
    }
    let body = match shared.lock().spool.read(batch) {
        Ok(b) => b,
        Err(e) => return Step::Failed(RequestError::NoAnswer(format!("reading the spool: {e}"))),
    };
    // From here until an answer, the batch may get stored.
    shared.lock().spool.set_uncertain(batch.seq);
    match client.insert(&body) {
        Ok(()) => Step::Stored,
        Err(e) => Step::Failed(e),
    }
}
