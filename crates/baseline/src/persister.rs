//! The one writer: batches of what changed, off the capture thread.
//!
//! Every interval it applies triage requests queued in the store by other
//! processes, forgets what retention says to, copies what changed (holding
//! the baseline's lock only for that copy) and writes it in one
//! transaction. Nothing is lost when a write fails: the batch goes back
//! to the dirty set and is tried again with the next one.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::model::{Baseline, TriageError};
use crate::store::{DnsAnswerRef, Request, Store, StoreError};
use crate::view::{Entry, Triage};
use crate::{format_mac, parse_mac};

/// The running writer thread.
pub struct Persister {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<Store>,
    baseline: Arc<Mutex<Baseline>>,
}

fn lock(b: &Mutex<Baseline>) -> MutexGuard<'_, Baseline> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// Applies one queued request to the in-memory baseline.
pub fn apply_request(baseline: &mut Baseline, r: &Request) -> Result<(), TriageError> {
    if r.op == "import" {
        let entries: Vec<Entry> = serde_json::from_str(r.payload.as_deref().unwrap_or("[]"))
            .map_err(|e| TriageError::BadEntry(e.to_string()))?;
        return baseline.import(&entries).map(drop);
    }
    if let Some(op) = Triage::parse_client_op(&r.op) {
        // The client's fingerprint rides in the destination column; no MAC
        // is every device that used it.
        let device = parse_mac(&r.mac).map(|m| format_mac(&m));
        return baseline
            .triage_client(op, device.as_deref(), &r.destination)
            .map(drop);
    }
    let op = Triage::parse(&r.op).ok_or_else(|| TriageError::BadEntry(r.op.clone()))?;
    let mac = parse_mac(&r.mac).ok_or_else(|| TriageError::UnknownDevice(r.mac.clone()))?;
    baseline
        .triage(op, &format_mac(&mac), &r.destination)
        .map(drop)
}

/// Flows the baseline holds, for the debug log of what a commit makes
/// durable (the crash test reads it); 0 unless that log is on.
fn flows_for_log(b: &Baseline) -> u64 {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return 0;
    }
    b.devices()
        .values()
        .flat_map(|d| d.destinations.values())
        .map(|d| d.flows)
        .sum()
}

/// One batch: requests in, changes out. Returns destinations written.
pub fn flush(store: &mut Store, baseline: &Mutex<Baseline>) -> Result<usize, StoreError> {
    let requests = if store.has_requests()? {
        store.pending_requests()?
    } else {
        Vec::new()
    };
    let (batch, total, flows) = {
        let mut b = lock(baseline);
        for r in &requests {
            // A request for something already gone (forgotten, expired) is
            // done too: the user's intent holds.
            if let Err(e) = apply_request(&mut b, r) {
                tracing::debug!("baseline request {} {}: {e}", r.op, r.destination);
            }
        }
        b.expire();
        (b.take_dirty(), b.len(), flows_for_log(&b))
    };
    let done: Vec<i64> = requests.iter().map(|r| r.id).collect();
    if batch.is_empty() && done.is_empty() {
        return Ok(0);
    }
    match store.save(&batch, &done) {
        Ok(()) => {
            tracing::debug!(
                "baseline: committed {} destinations; {total} destinations, {flows} flows in all",
                batch.destinations.len()
            );
            Ok(batch.destinations.len())
        }
        Err(e) => {
            lock(baseline).restore_dirty(&batch);
            Err(e)
        }
    }
}

impl Persister {
    /// Starts writing `baseline` to `store` every `interval`.
    pub fn spawn(
        mut store: Store,
        baseline: Arc<Mutex<Baseline>>,
        interval: Duration,
    ) -> std::io::Result<Persister> {
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = baseline.clone();
        let handle = std::thread::Builder::new()
            .name("baseline-writer".into())
            .spawn(move || {
                let mut warned = false;
                loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        // Stopped by `finish`, which writes what is left.
                        Ok(()) => return store,
                        // Dropped without `finish` (a run ending on an
                        // error): one last try, as the process may allow.
                        Err(RecvTimeoutError::Disconnected) => {
                            if let Err(e) = flush(&mut store, &shared) {
                                tracing::warn!("baseline not saved at exit: {e}");
                            }
                            return store;
                        }
                    }
                    match flush(&mut store, &shared) {
                        Ok(_) => warned = false,
                        Err(e) => {
                            if !warned {
                                tracing::warn!("baseline not saved yet: {e}; retrying");
                                warned = true;
                            }
                        }
                    }
                }
            })?;
        Ok(Persister {
            stop,
            handle,
            baseline,
        })
    }

    /// Stops the writer and writes what is left with `answers`, the DNS
    /// answers to keep (replacing those saved before), in one transaction
    /// on the caller's thread. Nothing reads the baseline any more, so the
    /// rows are written from it without a copy. Gives the store back.
    pub fn finish(self, answers: &[DnsAnswerRef<'_>]) -> Result<Store, StoreError> {
        let _ = self.stop.send(());
        let mut store = self.handle.join().map_err(|_| StoreError::Other {
            path: Default::default(),
            detail: "baseline writer panicked".into(),
        })?;
        let requests = if store.has_requests()? {
            store.pending_requests()?
        } else {
            Vec::new()
        };
        let mut b = lock(&self.baseline);
        for r in &requests {
            if let Err(e) = apply_request(&mut b, r) {
                tracing::debug!("baseline request {} {}: {e}", r.op, r.destination);
            }
        }
        b.expire();
        let changed = b.take_changes();
        let done: Vec<i64> = requests.iter().map(|r| r.id).collect();
        store.save_last(&b.rows(&changed), &done, answers)?;
        tracing::debug!(
            "baseline: committed {} destinations at stop; {} destinations, {} flows in all",
            changed.destinations(),
            b.len(),
            flows_for_log(&b)
        );
        drop(b);
        Ok(store)
    }
}
