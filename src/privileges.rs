//! Capabilities after start-up: the capture thread keeps the two libpcap
//! needs (it re-opens the interface when the hotspot comes back); every
//! other thread, the HTTP server's and the baseline writer's included, holds
//! none.
//!
//! Capabilities are per thread on Linux and inherited by threads created
//! later. So the thread that will start the capture thread is created
//! first, while the main thread still holds everything; then the main thread
//! drops all of its own, and only after that opens the store and starts any
//! other thread, which therefore inherit nothing.

use std::sync::mpsc;
use std::thread::JoinHandle;

use caps::{CapSet, Capability, CapsHashSet};

/// What capture needs: a packet socket, and the interface's settings.
const CAPTURE: [Capability; 2] = [Capability::CAP_NET_RAW, Capability::CAP_NET_ADMIN];

/// Name of the only thread that keeps capabilities after start-up.
pub const CAPTURE_THREAD: &str = "capture";

fn limit_to(keep: &CapsHashSet) -> Result<(), caps::errors::CapsError> {
    let permitted = caps::read(None, CapSet::Permitted)?;
    let keep: CapsHashSet = keep.intersection(&permitted).copied().collect();
    caps::clear(None, CapSet::Ambient)?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new())?;
    // Effective must stay a subset of permitted: lower it first.
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)
}

/// Limits the calling thread to the capture capabilities.
fn keep_capture_only() {
    if let Err(e) = limit_to(&CAPTURE.into_iter().collect()) {
        tracing::warn!("could not drop capabilities of the capture thread: {e}");
    }
}

/// Drops every capability of the calling thread, and so of the threads it
/// starts afterwards.
pub fn drop_all() {
    match limit_to(&CapsHashSet::new()) {
        Ok(()) => tracing::info!("capabilities dropped: threads started from now on hold none"),
        Err(e) => tracing::warn!("could not drop capabilities: {e}"),
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread created before the caller drops its capabilities, holding only
/// the capture ones, whose one task is to start the capture thread once the
/// rest of start-up (done without capabilities) has produced what that
/// thread runs on. Dropped unused, it ends without starting anything.
pub struct CaptureSpawner {
    jobs: mpsc::Sender<Job>,
    thread: JoinHandle<()>,
}

impl CaptureSpawner {
    /// Starts the spawner; call it before [`drop_all`].
    pub fn start() -> std::io::Result<CaptureSpawner> {
        let (jobs, next) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("capture-start".into())
            .spawn(move || {
                keep_capture_only();
                if let Ok(job) = next.recv() {
                    job();
                }
            })?;
        Ok(CaptureSpawner { jobs, thread })
    }

    /// Starts the capture thread running `work`, and waits for the spawner
    /// to end, so that from then on the capture thread is the only one
    /// holding capabilities.
    pub fn spawn<R: Send + 'static>(
        self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> anyhow::Result<JoinHandle<R>> {
        let (handle, started) = mpsc::channel();
        let job: Job = Box::new(move || {
            let spawned = std::thread::Builder::new()
                .name(CAPTURE_THREAD.into())
                .spawn(work);
            let _ = handle.send(spawned);
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("the capture thread's starter has ended"))?;
        let spawned = started
            .recv()
            .map_err(|_| anyhow::anyhow!("the capture thread's starter has ended"))?;
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the capture thread's starter panicked"))?;
        Ok(spawned?)
    }
}
