//! From a finished flow to its device's baseline: which destination it is,
//! and whether that destination (and the TLS client that made the flow) is
//! new to the device.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use tetherscope_baseline::{Baseline, ClientObservation, Novelty, Observation, Outcome};
use tetherscope_classify::{registrable_domain_lowercase, Classification, Profile, Verdict};
use tetherscope_flow::{DeviceTable, Flow};

use crate::facts;

/// The baseline the exporter and capture side share, and where it is kept.
#[derive(Clone)]
pub struct BaselineHandle {
    /// The in-memory baseline (the writer thread persists it).
    pub baseline: Arc<Mutex<Baseline>>,
    /// The store file, for its size.
    pub path: Option<PathBuf>,
    /// Profiles configured per device (the rest use the active profile).
    pub profiles: Arc<DeviceProfiles>,
}

/// Profiles configured for devices, by MAC or DHCP host name.
#[derive(Debug, Default)]
pub struct DeviceProfiles {
    /// By MAC address.
    pub by_mac: HashMap<[u8; 6], Profile>,
    /// By DHCP host name.
    pub by_host: HashMap<String, Profile>,
}

impl BaselineHandle {
    /// A handle on `baseline`, every device under the active profile.
    pub fn new(baseline: Baseline, path: Option<PathBuf>) -> Self {
        BaselineHandle {
            baseline: Arc::new(Mutex::new(baseline)),
            path,
            profiles: Arc::default(),
        }
    }

    /// Locks the baseline; a poisoned lock still holds valid data.
    pub fn lock(&self) -> MutexGuard<'_, Baseline> {
        self.baseline.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device's own profile, if its MAC or host name has one.
    pub fn own_profile(&self, mac: &[u8; 6], host: Option<&str>) -> Option<&Profile> {
        self.profiles
            .by_mac
            .get(mac)
            .or_else(|| host.and_then(|h| self.profiles.by_host.get(h)))
    }

    /// Whether the device's profile (its own, else the active one) expects
    /// a flow classified as `class`.
    pub fn expected(&self, mac: &[u8; 6], host: Option<&str>, class: &Classification<'_>) -> bool {
        let own = self.own_profile(mac, host);
        match own {
            Some(profile) => class.rule.is_some_and(|r| profile.expects(r)),
            None => class.verdict == Verdict::Expected,
        }
    }

    /// Records a finished flow in the baseline; `None` when the flow has
    /// no device (or its device is past the cap).
    pub fn judge(
        &self,
        flow: &Flow,
        class: &Classification<'_>,
        host_name: Option<&str>,
    ) -> Option<Outcome> {
        let mac = match device_of(flow) {
            Ok(mac) => mac,
            Err(known) => {
                return known.map(|novelty| Outcome {
                    novelty,
                    became_new: false,
                })
            }
        };
        let expected = self.expected(&mac, host_name, class);
        observe(&mut self.lock(), mac, flow, class, host_name, expected)
    }
}

/// The destination key of a flow: the registrable domain of its name, or
/// the server address when nothing names it.
pub fn destination_of(flow: &Flow) -> String {
    with_destination(
        flow.domain().map(|(name, _)| name),
        flow.server.ip(),
        str::to_owned,
    )
}

/// Calls `f` with a flow's destination key (see [`destination_of`]) given
/// its name (`flow.domain()`, which the caller has in hand) and server, without
/// allocating it: the registrable domain is borrowed from the name unless
/// it holds capitals, the address formatted on the stack (four in ten
/// flows of a phone have no name).
fn with_destination<R>(name: Option<&str>, server: IpAddr, f: impl FnOnce(&str) -> R) -> R {
    match name {
        Some(name) => f(&registrable_domain_lowercase(name)),
        None => f(tetherscope_baseline::AddressText::of(server).as_str()),
    }
}

/// The `domain` label value of a stored destination: the registrable
/// domain, or `unnamed` for a bare server address.
pub fn label_of(destination: &str) -> &str {
    if destination.parse::<std::net::IpAddr>().is_ok() {
        crate::UNNAMED
    } else {
        destination
    }
}

/// The DHCP host name of a device, if it has one.
pub fn host_name(devices: &DeviceTable, mac: &[u8; 6]) -> Option<Arc<str>> {
    // Asked for every finished flow: the name is shared, not copied, and
    // compared with the MAC without formatting the MAC.
    devices
        .host_name(mac)
        .filter(|name| tetherscope_baseline::parse_mac(name) != Some(*mac))
}

/// Flows that never enter a baseline: those without a device, and those to
/// the hotspot or the local network (the hotspot's resolver included),
/// which are always `known`.
fn device_of(flow: &Flow) -> Result<[u8; 6], Option<Novelty>> {
    let mac = flow.client_mac.ok_or(None)?;
    if facts::is_on_local_network(flow.server.ip()) {
        return Err(Some(Novelty::Known));
    }
    Ok(mac)
}

fn observe(
    baseline: &mut Baseline,
    mac: [u8; 6],
    flow: &Flow,
    class: &Classification<'_>,
    host_name: Option<&str>,
    expected: bool,
) -> Option<Outcome> {
    let bytes = flow.bytes_up + flow.bytes_down;
    let name = flow.domain().map(|(name, _)| name);
    with_destination(name, flow.server.ip(), |destination| {
        let outcome = baseline.observe(&Observation {
            mac,
            host_name,
            destination,
            name,
            purpose: class.purpose.as_str(),
            owner: class.rule.map(|r| r.owner.as_str()),
            service: class.rule.and_then(|r| r.display.as_deref()),
            expected,
            first_seen_ns: flow.first_seen,
            last_seen_ns: flow.last_seen,
            bytes_up: flow.bytes_up,
            bytes_down: flow.bytes_down,
            cleartext_bytes: if flow.cleartext() == Some(true) {
                bytes
            } else {
                0
            },
        });
        // The software behind the flow, known by its TLS ClientHello: new
        // software on the device is judged like a new destination.
        if let (Some(_), Some(ja4)) = (outcome, flow.ja4()) {
            baseline.observe_client(&ClientObservation {
                mac,
                fingerprint: ja4.as_str(),
                destination,
                first_seen_ns: flow.first_seen,
                last_seen_ns: flow.last_seen,
            });
        }
        outcome
    })
}
