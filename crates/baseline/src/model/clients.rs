//! The software each device runs, told by the TLS client fingerprints of
//! its connections, learned like its destinations.
//!
//! A fingerprint is an opaque string to the baseline (the flow layer gives
//! the JA4 of a ClientHello). One first seen while its device learns enters
//! the baseline; one first seen after is `new` software until the user
//! accepts or flags it. Each client remembers the first destinations it
//! contacted, so the user can tell what the new software talked to.
//!
//! Bounded like destinations, since a ClientHello is whatever the phone
//! sends: at most [`Settings::max_clients`](super::Settings::max_clients)
//! per device (a device that makes up fingerprints evicts its own least
//! recently seen untriaged ones first, counted in
//! [`Baseline::clients_evicted`]), [`MAX_CLIENT_DESTINATIONS`] per client,
//! retention, and a fingerprint that is not short printable ASCII is
//! refused (counted in [`Baseline::clients_refused`]).

use super::{clip, Baseline, CompactString, Device, TriageError};
use crate::model::changes::Changes;
use crate::view::{ClientEntry, Triage};
use crate::{format_mac, is_randomised, Novelty, State};

/// Destinations remembered per client, the first it contacted.
pub const MAX_CLIENT_DESTINATIONS: usize = 16;
/// Longest fingerprint kept, in bytes (a JA4 is 36; its raw form, with
/// every cipher and extension listed, stays well under this).
pub const MAX_FINGERPRINT_LEN: usize = 512;

/// One TLS client (one fingerprint) of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// Triage state.
    pub state: State,
    /// First flow, packet time.
    pub first_seen_ns: u64,
    /// Latest flow, packet time.
    pub last_seen_ns: u64,
    /// Flows seen.
    pub flows: u64,
    /// The first destinations it contacted (bounded), in the order seen.
    pub destinations: Vec<CompactString>,
    /// Changed since the writer last took it.
    pub(crate) unsaved: bool,
}

/// One finished flow's client, as the baseline sees it.
#[derive(Debug, Clone, Copy)]
pub struct ClientObservation<'a> {
    /// The device's MAC address.
    pub mac: [u8; 6],
    /// The client fingerprint (JA4).
    pub fingerprint: &'a str,
    /// The flow's destination (as [`super::Observation::destination`]).
    pub destination: &'a str,
    /// Packet time of the flow's first packet, Unix nanoseconds.
    pub first_seen_ns: u64,
    /// Packet time of its last packet.
    pub last_seen_ns: u64,
}

/// What observing a flow's client decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOutcome {
    /// What the client is to its device.
    pub novelty: Novelty,
    /// This flow made the client `new` (counted once).
    pub became_new: bool,
}

/// Whether `s` can be a fingerprint: 1 to [`MAX_FINGERPRINT_LEN`] bytes of
/// printable ASCII (space included: a JA4 shows the ends of the first ALPN
/// as they are), so it is a safe key, row and label of its own.
pub fn valid_fingerprint(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_FINGERPRINT_LEN && s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

impl Baseline {
    /// Records the client of a finished flow whose destination
    /// [`Baseline::observe`] recorded just before (that made the device);
    /// `None` for a device the baseline does not track or a fingerprint
    /// that is not one (counted).
    pub fn observe_client(&mut self, o: &ClientObservation<'_>) -> Option<ClientOutcome> {
        if !valid_fingerprint(o.fingerprint) {
            self.clients_refused += 1;
            return None;
        }
        let first_seen_ns = self.trusted_time(o.first_seen_ns);
        let last_seen_ns = self.trusted_time(o.last_seen_ns);
        let s = self.settings;
        let device = self.devices.get_mut(&o.mac)?;
        let learning = s.learn_for_ns > 0 && first_seen_ns < device.first_seen_ns + s.learn_for_ns;
        let mut became_new = false;
        if !device.clients.contains_key(o.fingerprint) {
            let state = if learning {
                State::Baseline
            } else {
                became_new = true;
                device.new_clients += 1;
                State::New
            };
            if device.clients.len() >= s.max_clients.max(1) {
                self.clients_evicted += evict_oldest_clients(device, o.mac, &mut self.changes);
            }
            self.changes.removed_clients.remove(o.mac, o.fingerprint);
            device.clients.insert(
                CompactString::from(o.fingerprint),
                Client {
                    state,
                    first_seen_ns,
                    last_seen_ns,
                    flows: 0,
                    destinations: Vec::new(),
                    unsaved: false,
                },
            );
        }
        let client = device.clients.get_mut(o.fingerprint)?;
        client.first_seen_ns = client.first_seen_ns.min(first_seen_ns);
        client.last_seen_ns = client.last_seen_ns.max(last_seen_ns);
        client.flows += 1;
        let destination = clip(o.destination);
        if client.destinations.len() < MAX_CLIENT_DESTINATIONS
            && !client.destinations.iter().any(|d| *d == *destination)
        {
            client.destinations.push(destination.as_ref().into());
        }
        let novelty = match client.state {
            State::Flagged => Novelty::Flagged,
            _ if learning => Novelty::Learning,
            State::New => Novelty::New,
            State::Baseline | State::Accepted => Novelty::Known,
        };
        self.changes.client(o.mac, o.fingerprint, client);
        Some(ClientOutcome {
            novelty,
            became_new,
        })
    }

    /// Accepts, flags or forgets a client fingerprint of one device, or of
    /// every device that used it when `device` is `None`. Returns the
    /// clients as they are now (as they were, for `Forget`).
    pub fn triage_client(
        &mut self,
        op: Triage,
        device: Option<&str>,
        fingerprint: &str,
    ) -> Result<Vec<ClientEntry>, TriageError> {
        let macs: Vec<[u8; 6]> = match device {
            Some(d) => vec![self.resolve(d)?],
            None => {
                let mut macs: Vec<[u8; 6]> = self
                    .devices
                    .iter()
                    .filter(|(_, d)| d.clients.contains_key(fingerprint))
                    .map(|(m, _)| *m)
                    .collect();
                macs.sort();
                macs
            }
        };
        let unknown = || TriageError::UnknownClient {
            device: device.unwrap_or("any device").to_owned(),
            client: fingerprint.to_owned(),
        };
        if macs.is_empty() {
            return Err(unknown());
        }
        let mut done = Vec::with_capacity(macs.len());
        for mac in macs {
            let dev = self
                .devices
                .get_mut(&mac)
                .ok_or_else(|| TriageError::UnknownDevice(format_mac(&mac)))?;
            match op {
                Triage::Forget => {
                    let old = dev.clients.remove(fingerprint).ok_or_else(unknown)?;
                    self.changes.client_removed(mac, fingerprint);
                    done.push(self.client_entry(&mac, fingerprint, &old));
                }
                Triage::Accept | Triage::Flag => {
                    let client = dev.clients.get_mut(fingerprint).ok_or_else(unknown)?;
                    client.state = if op == Triage::Accept {
                        State::Accepted
                    } else {
                        State::Flagged
                    };
                    self.changes.client(mac, fingerprint, client);
                    let client = client.clone();
                    done.push(self.client_entry(&mac, fingerprint, &client));
                }
            }
        }
        Ok(done)
    }

    /// The state of one client of one device, if the baseline has it.
    pub fn client_state(&self, mac: &[u8; 6], fingerprint: &str) -> Option<State> {
        Some(self.devices.get(mac)?.clients.get(fingerprint)?.state)
    }

    /// Every client (of one device, if given), sorted by device, then first
    /// seen, then fingerprint.
    pub fn client_entries(&self, device: Option<&str>) -> Result<Vec<ClientEntry>, TriageError> {
        let only = device.map(|d| self.resolve(d)).transpose()?;
        let mut out: Vec<ClientEntry> = self
            .devices
            .iter()
            .filter(|(mac, _)| only.is_none_or(|m| m == **mac))
            .flat_map(|(mac, dev)| {
                let shown = self.display_name(mac);
                dev.clients.iter().map(move |(fp, c)| {
                    ClientEntry::new(shown.clone(), mac, is_randomised(mac), fp, c)
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.mac.as_str(), a.first_seen, a.client.as_str())
                .partial_cmp(&(b.mac.as_str(), b.first_seen, b.client.as_str()))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Ok(out)
    }

    fn client_entry(&self, mac: &[u8; 6], fingerprint: &str, c: &Client) -> ClientEntry {
        ClientEntry::new(
            self.display_name(mac),
            mac,
            is_randomised(mac),
            fingerprint,
            c,
        )
    }

    /// Forgets clients not seen since `cutoff` that the user did not
    /// accept or flag (part of [`Baseline::expire`]).
    pub(super) fn expire_clients(&mut self, cutoff: u64) {
        for (mac, device) in &mut self.devices {
            let before = device.clients.len();
            device.clients.retain(|fp, c| {
                let keep =
                    c.last_seen_ns >= cutoff || matches!(c.state, State::Accepted | State::Flagged);
                if !keep {
                    self.changes.client_removed(*mac, fp);
                }
                keep
            });
            self.clients_expired += (before - device.clients.len()) as u64;
        }
    }
}

/// Drops the least recently seen sixteenth (at least one) of a full
/// device's clients, untriaged first (as [`super::evict_oldest`] does for
/// destinations); returns how many.
fn evict_oldest_clients(device: &mut Device, mac: [u8; 6], changes: &mut Changes) -> u64 {
    let n = (device.clients.len() / 16).max(1);
    let mut by_age: Vec<((bool, u64), &CompactString)> = device
        .clients
        .iter()
        .map(|(fp, c)| {
            let triaged = matches!(c.state, State::Accepted | State::Flagged);
            ((triaged, c.last_seen_ns), fp)
        })
        .collect();
    if n < by_age.len() {
        by_age.select_nth_unstable(n);
    }
    let oldest: Vec<CompactString> = by_age
        .into_iter()
        .take(n)
        .map(|(_, fp)| fp.clone())
        .collect();
    for fp in &oldest {
        device.clients.remove(fp.as_str());
        changes.client_removed(mac, fp);
    }
    oldest.len() as u64
}

#[cfg(test)]
mod tests {
    use super::super::tests::{obs, HOUR, MAC};
    use super::super::Settings;
    use super::*;
    use crate::SECOND;

    const CHROME: &str = "t13d1516h2_8daaf6152771_e5627efa2ab1";
    const OKHTTP: &str = "t13d1715h2_5b57614c22b0_3d5424432f57";

    fn client<'a>(fingerprint: &'a str, destination: &'a str, t: u64) -> ClientObservation<'a> {
        ClientObservation {
            mac: MAC,
            fingerprint,
            destination,
            first_seen_ns: t,
            last_seen_ns: t + SECOND,
        }
    }

    /// A flow of `fingerprint` to `destination` at `t`, both recorded.
    fn flow(b: &mut Baseline, fingerprint: &str, destination: &str, t: u64) -> ClientOutcome {
        b.observe(&obs(destination, t)).unwrap();
        b.observe_client(&client(fingerprint, destination, t))
            .unwrap()
    }

    #[test]
    fn a_client_first_seen_after_learning_is_new_once_with_its_destinations() {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 48 * HOUR,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        let o = flow(&mut b, CHROME, "a.example", t0);
        assert_eq!((o.novelty, o.became_new), (Novelty::Learning, false));
        let o = flow(&mut b, CHROME, "b.example", t0 + 50 * HOUR);
        assert_eq!((o.novelty, o.became_new), (Novelty::Known, false));
        let o = flow(&mut b, OKHTTP, "a.example", t0 + 50 * HOUR);
        assert_eq!((o.novelty, o.became_new), (Novelty::New, true));
        let o = flow(&mut b, OKHTTP, "tracker.example", t0 + 51 * HOUR);
        assert_eq!((o.novelty, o.became_new), (Novelty::New, false));
        let device = &b.devices()[&MAC];
        assert_eq!(device.new_clients, 1);
        assert_eq!(device.clients[CHROME].state, State::Baseline);
        assert_eq!(device.clients[OKHTTP].state, State::New);
        assert_eq!(
            device.clients[OKHTTP].destinations,
            ["a.example", "tracker.example"]
        );
        assert_eq!(device.clients[OKHTTP].flows, 2);
        // Shown with its destinations, device and state.
        let shown = b.client_entries(Some("pixel-7a")).unwrap();
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[1].client, OKHTTP);
        assert_eq!(shown[1].state, "new");
        assert_eq!(shown[1].device, "pixel-7a");
        assert_eq!(shown[1].destinations, ["a.example", "tracker.example"]);
    }

    #[test]
    fn triage_accepts_flags_and_forgets_a_client() {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 0,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        flow(&mut b, OKHTTP, "a.example", t0);
        let done = b
            .triage_client(Triage::Accept, Some("pixel-7a"), OKHTTP)
            .unwrap();
        assert_eq!(done[0].state, "accepted");
        assert_eq!(
            flow(&mut b, OKHTTP, "a.example", t0 + HOUR).novelty,
            Novelty::Known
        );
        // Without a device: every device that used it.
        const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 7];
        b.observe(&crate::Observation {
            mac: OTHER,
            host_name: None,
            ..obs("a.example", t0)
        })
        .unwrap();
        b.observe_client(&ClientObservation {
            mac: OTHER,
            ..client(OKHTTP, "a.example", t0)
        })
        .unwrap();
        let done = b.triage_client(Triage::Flag, None, OKHTTP).unwrap();
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|e| e.state == "flagged"));
        assert_eq!(
            flow(&mut b, OKHTTP, "b.example", t0 + 2 * HOUR).novelty,
            Novelty::Flagged
        );
        assert!(matches!(
            b.triage_client(Triage::Accept, Some("pixel-7a"), CHROME),
            Err(TriageError::UnknownClient { .. })
        ));
        assert!(matches!(
            b.triage_client(Triage::Accept, None, CHROME),
            Err(TriageError::UnknownClient { .. })
        ));
        assert!(matches!(
            b.triage_client(Triage::Accept, Some("nobody"), OKHTTP),
            Err(TriageError::UnknownDevice(_))
        ));
        b.triage_client(Triage::Forget, Some("pixel-7a"), OKHTTP)
            .unwrap();
        assert_eq!(b.client_state(&MAC, OKHTTP), None);
        let o = flow(&mut b, OKHTTP, "a.example", t0 + 3 * HOUR);
        assert_eq!((o.novelty, o.became_new), (Novelty::New, true));
        assert_eq!(b.client_state(&OTHER, OKHTTP), Some(State::Flagged));
    }

    #[test]
    fn a_flood_of_made_up_fingerprints_stays_within_the_cap_and_keeps_triage() {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 0,
            max_clients: 8,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        flow(&mut b, OKHTTP, "a.example", t0);
        b.triage_client(Triage::Flag, Some("pixel-7a"), OKHTTP)
            .unwrap();
        for i in 0..10_000u64 {
            let fp = format!("t13d{i:04}h2_000000000000_000000000000");
            flow(&mut b, &fp, &format!("d{}.example", i % 50), t0 + i);
        }
        let device = &b.devices()[&MAC];
        assert!(device.clients.len() <= 8, "{}", device.clients.len());
        assert_eq!(device.clients[OKHTTP].state, State::Flagged);
        assert_eq!(b.clients_evicted, 10_001 - 8);
        // Destinations per client are bounded too.
        for i in 0..100 {
            flow(&mut b, OKHTTP, &format!("spread{i}.example"), t0 + HOUR);
        }
        let kept = &b.devices()[&MAC].clients[OKHTTP].destinations;
        assert_eq!(kept.len(), MAX_CLIENT_DESTINATIONS);
        // What is not a fingerprint is refused and counted, never kept.
        let long = "a".repeat(MAX_FINGERPRINT_LEN + 1);
        for bad in ["", "t13d\u{1b}[31m", "t13d\t1516", long.as_str(), "é"] {
            assert_eq!(b.observe_client(&client(bad, "a.example", t0)), None);
        }
        assert_eq!(b.clients_refused, 5);
        assert!(b.devices()[&MAC].clients.len() <= 8);
    }

    #[test]
    fn retention_forgets_untriaged_clients_only() {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 0,
            retain_ns: 10 * HOUR,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        flow(&mut b, CHROME, "a.example", t0);
        flow(&mut b, OKHTTP, "a.example", t0);
        b.triage_client(Triage::Accept, Some("pixel-7a"), OKHTTP)
            .unwrap();
        flow(
            &mut b,
            "t13d0000h2_aaaaaaaaaaaa_bbbbbbbbbbbb",
            "b.example",
            t0 + 20 * HOUR,
        );
        b.expire();
        let kept: Vec<&str> = {
            let mut v: Vec<&str> = b.devices()[&MAC]
                .clients
                .keys()
                .map(|k| k.as_str())
                .collect();
            v.sort();
            v
        };
        assert_eq!(kept, ["t13d0000h2_aaaaaaaaaaaa_bbbbbbbbbbbb", OKHTTP]);
        assert_eq!(b.clients_expired, 1);
        let batch = b.take_dirty();
        assert!(batch.removed_clients.contains(&(MAC, CHROME.to_owned())));
    }
}
