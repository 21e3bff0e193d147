//! The shown form of a destination: the JSON of `/api/baseline`,
//! `baseline list --format json` and `baseline export`.

use serde::{Deserialize, Serialize};

use crate::model::{Client, Destination};
use crate::{format_mac, seconds};

/// A triage operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triage {
    /// The destination is fine: never alert on it again.
    Accept,
    /// The destination is bad: every new flow to it alerts.
    Flag,
    /// Forget it: the next flow to it is judged afresh.
    Forget,
}

impl Triage {
    /// The operation's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Triage::Accept => "accept",
            Triage::Flag => "flag",
            Triage::Forget => "forget",
        }
    }

    /// The queued request's name of the operation on a client
    /// fingerprint: `accept_client`, `flag_client`, `forget_client`.
    pub fn client_op(self) -> &'static str {
        match self {
            Triage::Accept => "accept_client",
            Triage::Flag => "flag_client",
            Triage::Forget => "forget_client",
        }
    }

    /// Parses a [`Triage::client_op`] name.
    pub fn parse_client_op(s: &str) -> Option<Triage> {
        Triage::parse(s.strip_suffix("_client")?)
    }

    /// Parses an operation's name.
    pub fn parse(s: &str) -> Option<Triage> {
        Some(match s {
            "accept" => Triage::Accept,
            "flag" => Triage::Flag,
            "forget" => Triage::Forget,
            _ => return None,
        })
    }
}

/// One (device, destination).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Display name: configured label, else DHCP name, else MAC.
    pub device: String,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Locally administered (randomised) MAC.
    #[serde(default)]
    pub randomised: bool,
    /// Registrable domain, or the server address.
    pub destination: String,
    /// `baseline`, `accepted`, `new` or `flagged`.
    pub state: String,
    /// Purpose.
    #[serde(default)]
    pub purpose: String,
    /// Owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Catalog display name.
    #[serde(default)]
    pub service: Option<String>,
    /// Unix seconds.
    pub first_seen: f64,
    /// Unix seconds.
    pub last_seen: f64,
    /// Flows.
    #[serde(default)]
    pub flows: u64,
    /// Bytes from the device.
    #[serde(default)]
    pub bytes_up: u64,
    /// Bytes to the device.
    #[serde(default)]
    pub bytes_down: u64,
    /// Bytes of cleartext flows.
    #[serde(default)]
    pub cleartext_bytes: u64,
    /// Full names seen under the destination.
    #[serde(default)]
    pub names: Vec<String>,
}

impl Entry {
    /// Describes one destination of a device.
    pub fn new(
        device: String,
        mac: &[u8; 6],
        randomised: bool,
        destination: &str,
        d: &Destination,
    ) -> Self {
        Entry {
            device,
            mac: format_mac(mac),
            randomised,
            destination: destination.to_owned(),
            state: d.state.as_str().to_owned(),
            purpose: d.labels.purpose.to_string(),
            owner: d.labels.owner.as_deref().map(str::to_owned),
            service: d.labels.service.as_deref().map(str::to_owned),
            first_seen: seconds(d.first_seen_ns),
            last_seen: seconds(d.last_seen_ns),
            flows: d.flows,
            bytes_up: d.bytes_up,
            bytes_down: d.bytes_down,
            cleartext_bytes: d.cleartext_bytes,
            names: d.names.iter().map(|n| n.to_string()).collect(),
        }
    }
}

/// One (device, client fingerprint): the JSON of `/api/clients` and
/// `baseline list --clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientEntry {
    /// Display name: configured label, else DHCP name, else MAC.
    pub device: String,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Locally administered (randomised) MAC.
    #[serde(default)]
    pub randomised: bool,
    /// The client fingerprint (JA4).
    pub client: String,
    /// `baseline`, `accepted`, `new` or `flagged`.
    pub state: String,
    /// Unix seconds.
    pub first_seen: f64,
    /// Unix seconds.
    pub last_seen: f64,
    /// Flows.
    #[serde(default)]
    pub flows: u64,
    /// The first destinations it contacted (bounded).
    #[serde(default)]
    pub destinations: Vec<String>,
}

impl ClientEntry {
    /// Describes one client of a device.
    pub fn new(
        device: String,
        mac: &[u8; 6],
        randomised: bool,
        fingerprint: &str,
        c: &Client,
    ) -> Self {
        ClientEntry {
            device,
            mac: format_mac(mac),
            randomised,
            client: fingerprint.to_owned(),
            state: c.state.as_str().to_owned(),
            first_seen: seconds(c.first_seen_ns),
            last_seen: seconds(c.last_seen_ns),
            flows: c.flows,
            destinations: c.destinations.iter().map(|d| d.to_string()).collect(),
        }
    }
}
