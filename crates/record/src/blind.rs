//! Why flows went unnamed, counted per reason, and the one refinement of
//! a reason every reader applies: a device seen resolving over DoT, DoQ or
//! DoH hides its lookups, so its flows that no DNS answer names are blind
//! for its encrypted DNS (`encrypted_dns`), not for want of a lookup
//! (`no_dns_seen`).
//!
//! The refinement is decided with what is known when the count is
//! reported. `read`'s summary, the report and the page report once
//! everything they hold is known, so a device's encrypted DNS counts for
//! all its flows ([`BlindTally`]); the Prometheus counters report each flow
//! once, when it is measured, and never move a count from one reason to
//! another afterwards (a counter never goes backwards).

use std::collections::HashMap;

use serde::Serialize;
use tetherscope_flow::BlindSpot;

/// The reason a flow of a device is reported under, given whether that
/// device is known to resolve over encrypted DNS.
pub fn refine(reason: BlindSpot, private_dns: bool) -> BlindSpot {
    match reason {
        BlindSpot::NoDnsSeen if private_dns => BlindSpot::EncryptedDns,
        r => r,
    }
}

/// Flows and bytes that fell into one blind spot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlindCount {
    /// Flows.
    pub flows: u64,
    /// Bytes.
    pub bytes: u64,
}

impl BlindCount {
    /// Adds another count to this one.
    pub fn add(&mut self, o: BlindCount) {
        self.flows += o.flows;
        self.bytes += o.bytes;
    }
}

/// A client MAC, when the link layer had one.
type ClientMac = Option<[u8; 6]>;

/// Unnamed flows by reason over a whole history, with the refinement
/// applied when they are reported ([`BlindTally::by_reason`]). At most
/// `devices` devices are remembered (the first ones seen); flows of the
/// others count under their own reason.
#[derive(Debug, Clone)]
pub struct BlindTally {
    cap: usize,
    /// By reason, all devices, unrefined.
    by_reason: [BlindCount; BlindSpot::ALL.len()],
    /// Per remembered device: its `no_dns_seen`, and whether it was seen
    /// using encrypted DNS.
    devices: HashMap<ClientMac, (BlindCount, bool)>,
}

impl BlindTally {
    /// An empty tally remembering at most `devices` devices.
    pub fn new(devices: usize) -> Self {
        BlindTally {
            cap: devices,
            by_reason: [BlindCount::default(); BlindSpot::ALL.len()],
            devices: HashMap::new(),
        }
    }

    /// Counts one flow of the device behind `mac`: `reason` is why nothing
    /// names it (unrefined; `None` when it is named or needs no name),
    /// `encrypted_dns` whether the flow itself is a lookup over encrypted
    /// DNS, and `tracked` whether the caller keeps the device (a caller
    /// with its own device cap says no past it).
    pub fn add(
        &mut self,
        mac: ClientMac,
        reason: Option<BlindSpot>,
        bytes: u64,
        encrypted_dns: bool,
        tracked: bool,
    ) {
        let count = BlindCount { flows: 1, bytes };
        if let Some(reason) = reason {
            self.by_reason[reason as usize].add(count);
        }
        let no_dns_seen = reason == Some(BlindSpot::NoDnsSeen);
        if !tracked || !(no_dns_seen || encrypted_dns) {
            return;
        }
        let room = self.devices.len() < self.cap;
        let device = match self.devices.get_mut(&mac) {
            Some(d) => d,
            None if room => self.devices.entry(mac).or_default(),
            None => return,
        };
        if no_dns_seen {
            device.0.add(count);
        }
        device.1 |= encrypted_dns;
    }

    /// Flows and bytes per reason, in [`BlindSpot::ALL`] order, refined.
    pub fn by_reason(&self) -> [BlindCount; BlindSpot::ALL.len()] {
        let mut counts = self.by_reason;
        for (c, _) in self.devices.values().filter(|(_, private)| *private) {
            let moved = &mut counts[BlindSpot::NoDnsSeen as usize];
            moved.flows -= c.flows.min(moved.flows);
            moved.bytes -= c.bytes.min(moved.bytes);
            counts[refine(BlindSpot::NoDnsSeen, true) as usize].add(*c);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: ClientMac = Some([2, 0, 0, 0, 0, 1]);
    const OTHER: ClientMac = Some([2, 0, 0, 0, 0, 2]);

    fn count(t: &BlindTally, r: BlindSpot) -> (u64, u64) {
        let c = t.by_reason()[r as usize];
        (c.flows, c.bytes)
    }

    #[test]
    fn only_no_dns_seen_of_a_private_dns_device_is_refined() {
        assert_eq!(refine(BlindSpot::NoDnsSeen, true), BlindSpot::EncryptedDns);
        assert_eq!(refine(BlindSpot::NoDnsSeen, false), BlindSpot::NoDnsSeen);
        assert_eq!(refine(BlindSpot::Ech, true), BlindSpot::Ech);
        assert_eq!(refine(BlindSpot::Malformed, true), BlindSpot::Malformed);
    }

    #[test]
    fn a_devices_encrypted_dns_counts_for_all_its_flows_seen_before_or_after() {
        let mut t = BlindTally::new(64);
        t.add(PHONE, Some(BlindSpot::NoDnsSeen), 100, false, true);
        t.add(OTHER, Some(BlindSpot::NoDnsSeen), 10, false, true);
        t.add(PHONE, None, 500, true, true);
        t.add(PHONE, Some(BlindSpot::NoDnsSeen), 200, false, true);
        t.add(PHONE, Some(BlindSpot::Ech), 7, false, true);
        assert_eq!(count(&t, BlindSpot::EncryptedDns), (2, 300));
        assert_eq!(count(&t, BlindSpot::NoDnsSeen), (1, 10));
        assert_eq!(count(&t, BlindSpot::Ech), (1, 7));
    }

    #[test]
    fn devices_past_the_cap_or_untracked_keep_their_own_reason() {
        let mut t = BlindTally::new(1);
        t.add(PHONE, Some(BlindSpot::NoDnsSeen), 1, false, true);
        // Past the cap: neither its flows nor its encrypted DNS remembered.
        t.add(OTHER, Some(BlindSpot::NoDnsSeen), 2, false, true);
        t.add(OTHER, None, 5, true, true);
        // The caller's own cap.
        t.add(PHONE, None, 5, true, false);
        assert_eq!(count(&t, BlindSpot::NoDnsSeen), (2, 3));
        assert_eq!(count(&t, BlindSpot::EncryptedDns), (0, 0));
        t.add(PHONE, None, 5, true, true);
        assert_eq!(count(&t, BlindSpot::NoDnsSeen), (1, 2));
        assert_eq!(count(&t, BlindSpot::EncryptedDns), (1, 1));
    }
}
