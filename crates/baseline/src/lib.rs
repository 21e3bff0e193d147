//! What each device normally talks to, remembered across restarts.
//!
//! A device is its MAC address. Per device, a destination is the registrable
//! domain of a flow's name (or the server address when nothing names it),
//! with its purpose, owner, first and last seen, counters and a [`State`]:
//! learned into the `baseline`, `accepted` or `flagged` by the user, or `new`
//! (first seen after learning, not yet triaged).
//!
//! * [`Baseline`]: the authoritative state, in memory. Observing a flow
//!   costs hash lookups and never touches the disk, so the capture thread
//!   never waits on I/O. Bounded: devices, destinations per device (the
//!   least recently seen go first, counted) and names per destination.
//! * Per device, the TLS clients (fingerprints) its flows came from,
//!   learned and triaged like destinations: new software on the device.
//! * [`Store`]: the SQLite file (WAL, versioned schema with migrations, an
//!   application id so a foreign file is refused, never overwritten).
//! * [`Persister`]: the one writer thread: every interval it applies triage
//!   requests other processes queued in the store, then writes what changed
//!   in one transaction, holding the in-memory lock only to copy it.
//!
//! Time is packet time throughout, so reading a capture is deterministic.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod model;
mod persister;
mod store;
mod view;

pub use model::{
    parse_mac, valid_fingerprint, Baseline, Batch, Changed, Client, ClientObservation,
    ClientOutcome, CompactString, Destination, Device, Labels, Names, Observation, Outcome, Rows,
    Settings, TriageError, MAX_CLIENT_DESTINATIONS, MAX_FINGERPRINT_LEN,
};
pub use persister::{apply_request, flush, Persister};
pub use store::{
    DnsAnswer, DnsAnswerRef, Request, Store, StoreError, APPLICATION_ID, SCHEMA_VERSION,
};
pub use view::{ClientEntry, Entry, Triage};

/// Nanoseconds per second.
pub const SECOND: u64 = 1_000_000_000;

/// What a destination is to its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Learned while the device was learning, or expected by its profile.
    Baseline,
    /// The user said it is fine.
    Accepted,
    /// First seen after learning, not yet triaged.
    New,
    /// The user said it is bad.
    Flagged,
}

impl State {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Baseline => "baseline",
            State::Accepted => "accepted",
            State::New => "new",
            State::Flagged => "flagged",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "baseline" => State::Baseline,
            "accepted" => State::Accepted,
            "new" => State::New,
            "flagged" => State::Flagged,
            _ => return None,
        })
    }
}

/// What a flow was to its device when it was seen (the flow record's
/// `novelty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Novelty {
    /// The device was still learning.
    Learning,
    /// Baseline, accepted, or expected by the profile.
    Known,
    /// A destination first seen after learning and not triaged.
    New,
    /// A destination the user flagged.
    Flagged,
}

impl Novelty {
    /// The record value.
    pub fn as_str(self) -> &'static str {
        match self {
            Novelty::Learning => "learning",
            Novelty::Known => "known",
            Novelty::New => "new",
            Novelty::Flagged => "flagged",
        }
    }
}

/// Whether a MAC address is locally administered (randomised by the phone).
pub fn is_randomised(mac: &[u8; 6]) -> bool {
    mac[0] & 0x02 != 0
}

/// The text form of a MAC, as the device table writes it: one function, so
/// a MAC stored here always matches the one the live monitor shows.
pub use tetherscope_flow::devices::format_mac;

/// Unix seconds (as shown and stored) from packet nanoseconds.
pub fn seconds(ns: u64) -> f64 {
    ns as f64 / SECOND as f64
}

/// Packet nanoseconds from Unix seconds; negative or absurd values clamp.
pub fn nanos(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * SECOND as f64).min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// An address as text, formatted on the stack: asked for every flow
/// nothing names, and for thousands of saved DNS answers at every stop.
pub struct AddressText {
    buf: [u8; 46],
    len: usize,
}

impl AddressText {
    /// `address` as text.
    pub fn of(address: std::net::IpAddr) -> Self {
        use std::fmt::Write;
        let mut text = AddressText {
            buf: [0; 46],
            len: 0,
        };
        // The longest address text, `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`, is 45 bytes.
        let _ = write!(text, "{address}");
        text
    }

    /// The text's bytes, which sort as the text does.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in.
        std::str::from_utf8(self.bytes()).unwrap_or_default()
    }
}

impl std::fmt::Write for AddressText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::AddressText;
    use std::net::IpAddr;

    #[test]
    fn address_text_is_the_display_text() {
        for a in [
            "10.42.0.23",
            "255.255.255.255",
            "2001:db8::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:192.0.2.1",
            "64:ff9b::c000:221",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(AddressText::of(ip).as_str(), ip.to_string());
        }
    }
}
