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
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use std::io::Write;

use crate::clickhouse::{Client, RequestError};
use crate::spool::{Batch, Spool};
use crate::{row, Config, SinkStats, MAX_BATCH_BYTES, MAX_BATCH_ROWS};

/// Shortest and longest wait before trying a failed server again.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(8));

struct State {
    spool: Spool,
    /// The batch the sender is sending: a full spool never drops it.
    sending: Option<u64>,
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

/// Starts the batcher (reading `rx`) and the sender.
pub fn spawn(
    config: Config,
    spool: Spool,
    rx: Receiver<Vec<u8>>,
    stats: Arc<SinkStats>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            spool,
            sending: None,
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
    let sender = std::thread::Builder::new()
        .name("history-send".into())
        .spawn(move || sender(&config, &shared))?;
    Ok(vec![batcher, sender])
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
    let mut row = Vec::new();
    let mut warned_bad = false;
    loop {
        let wait = open
            .iter()
            .map(|o| config.batch_delay.saturating_sub(o.since.elapsed()))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            Ok(line) => {
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                // The row is made with an empty id first, to learn its day;
                // the batch's id is then put in.
                row.clear();
                match row::append_row(&mut row, line, &config.sensor, "") {
                    Ok(info) => {
                        let day = row::day(info.first_seen);
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
                        row.clear();
                        let _ = row::append_row(&mut row, line, &config.sensor, &o.id);
                        o.body.extend_from_slice(&row);
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
                if s.batcher_done && finish_by.is_none() {
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
