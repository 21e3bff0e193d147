//! Capabilities after start-up: the capture thread keeps the two libpcap
//! needs (it re-opens the interface when the hotspot comes back); every
//! other thread, the HTTP server's included, holds none.
//!
//! Capabilities are per thread on Linux and inherited by threads created
//! later, so the main thread drops its own before starting the runtime.

use caps::{CapSet, Capability, CapsHashSet};

/// What capture needs: a packet socket, and the interface's settings.
const CAPTURE: [Capability; 2] = [Capability::CAP_NET_RAW, Capability::CAP_NET_ADMIN];

fn limit_to(keep: &CapsHashSet) -> Result<(), caps::errors::CapsError> {
    let permitted = caps::read(None, CapSet::Permitted)?;
    let keep: CapsHashSet = keep.intersection(&permitted).copied().collect();
    caps::clear(None, CapSet::Ambient)?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new())?;
    // Effective must stay a subset of permitted: lower it first.
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)
}

/// Limits the calling (capture) thread to the capture capabilities.
pub fn keep_capture_only() {
    if let Err(e) = limit_to(&CAPTURE.into_iter().collect()) {
        tracing::warn!("could not drop capabilities of the capture thread: {e}");
    }
}

/// Drops every capability of the calling thread, and so of the threads it
/// starts afterwards.
pub fn drop_all() {
    match limit_to(&CapsHashSet::new()) {
        Ok(()) => tracing::info!(
            "capabilities dropped: only the capture thread keeps CAP_NET_RAW and CAP_NET_ADMIN"
        ),
        Err(e) => tracing::warn!("could not drop capabilities: {e}"),
    }
}
