//! What the page and the report show: flows folded into devices and their
//! destinations, traffic by purpose over time, blind spots and DNS answers.
//!
//! One `Aggregate` is fed every finished flow (the live monitor keeps one;
//! `tetherscope report` builds one from a capture); `Aggregate::view` turns
//! it, plus the flows still active, into a `View` that both the HTML
//! renderer (`crate::html`) and the page's script (through `/api/view`)
//! draw. Everything is bounded: names come from the wire and a hostile
//! phone can invent millions of them, so past each cap entries are counted,
//! not kept.

use std::collections::HashMap;

use serde::Serialize;
use tetherscope_baseline::is_randomised;
use tetherscope_classify::registrable_domain;
use tetherscope_classify::Purpose;
use tetherscope_flow::devices::format_mac;
use tetherscope_flow::{BlindSpot, Device, Flow};

use tetherscope_record::blind::BlindTally;

/// What the view needs of a flow besides its record.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// The client's MAC.
    pub client_mac: Option<[u8; 6]>,
    /// First packet, Unix nanoseconds.
    pub first_seen: u64,
    /// Last packet, Unix nanoseconds.
    pub last_seen: u64,
    /// Why nothing names it, for a flow that should have a name.
    pub blind_spot: Option<BlindSpot>,
}

impl Seen {
    /// Of a flow, with why nothing names it (see
    /// [`tetherscope_record::annotate::Annotation::blind_spot`]).
    pub fn of(flow: &Flow, blind_spot: Option<BlindSpot>) -> Self {
        Seen {
            client_mac: flow.client_mac,
            first_seen: flow.first_seen,
            last_seen: flow.last_seen,
            blind_spot,
        }
    }
}

pub use crate::timeline::{Timeline, TimelineView};
use tetherscope_record::record::{owner_text, FlowRecord};

/// Caps of an `Aggregate`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Devices kept; flows of further devices are counted in `dropped`.
    pub devices: usize,
    /// Destinations kept per device.
    pub destinations_per_device: usize,
    /// Full names kept per destination.
    pub names_per_destination: usize,
    /// Cleartext requests (method, host, path) kept per destination.
    pub requests_per_destination: usize,
    /// DNS questions kept.
    pub dns_questions: usize,
    /// Destinations listed per device in a view (the busiest); the rest
    /// are counted in `destinations_more`. Kept destinations past it still
    /// count in the device's flows and bytes.
    pub destinations_shown: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            devices: 64,
            destinations_per_device: 512,
            names_per_destination: 16,
            requests_per_destination: 8,
            dns_questions: 2000,
            destinations_shown: 512,
        }
    }
}

/// One request seen in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClearRequest {
    /// HTTP method.
    pub method: String,
    /// HTTP Host.
    pub host: String,
    /// HTTP path.
    pub path: String,
}

/// What one device did with one destination.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Destination {
    /// Registrable domain of the flows' name, or the server address when
    /// nothing named them.
    pub destination: String,
    /// Purpose from the catalog.
    pub purpose: String,
    /// Who it is: the catalog's owner, else the organisation of the
    /// network serving it (see `owner_source`).
    pub owner: Option<String>,
    /// `catalog` or `network`: where `owner` comes from.
    pub owner_source: Option<&'static str>,
    /// The AS announcing the server address (the first flow's that has one).
    pub asn: Option<u32>,
    /// That AS's organisation, from a data file: escape it when shown.
    pub as_org: Option<String>,
    /// The server address's country, ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// "AS15169 Google LLC, US": shown instead of a bare address.
    pub network: Option<String>,
    /// Who it is, in words: "Qualcomm, served by Amazon.com, Inc.",
    /// "Google LLC (network)", or "-".
    pub owner_text: String,
    /// The catalog rule's display name.
    pub service: Option<String>,
    /// `expected` or `unexpected` under the active profile; `unexpected`
    /// wins when flows disagree.
    pub verdict: String,
    /// Application protocols seen (`tls`, `http`, ...).
    pub protocols: Vec<String>,
    /// Where the names came from (`tls_sni`, `http_host`, `dns`, ...).
    pub name_sources: Vec<String>,
    /// Full names seen under it (bounded).
    pub names: Vec<String>,
    /// The CNAME chain behind a DNS-named flow (the first one seen).
    pub cname_chain: Vec<String>,
    /// Requests seen in the clear (bounded).
    pub cleartext_requests: Vec<ClearRequest>,
    /// Client software that opened its TLS/QUIC flows: a measured client's
    /// name and version with its JA4 fingerprint, or the fingerprint alone
    /// (bounded; a fingerprint is never guessed into a name).
    pub clients: Vec<String>,
    /// Bytes of cleartext flows.
    pub cleartext_bytes: u64,
    /// Flows.
    pub flows: u64,
    /// Bytes client → server.
    pub bytes_up: u64,
    /// Bytes server → client.
    pub bytes_down: u64,
    /// First packet, Unix seconds.
    pub first_seen: f64,
    /// Last packet, Unix seconds.
    pub last_seen: f64,
    /// Its state in the per-device baseline (`baseline`, `accepted`, `new`,
    /// `flagged`), when a store is in use and knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub novelty: Option<&'static str>,
}

impl Destination {
    fn add(&mut self, flow: &Seen, r: &FlowRecord, limits: &Limits) {
        let first = secs(flow.first_seen);
        let last = secs(flow.last_seen);
        if self.flows == 0 {
            self.first_seen = first;
            self.last_seen = last;
            self.purpose = r.verdict.purpose.clone().unwrap_or_default();
            self.owner = r.verdict.owner.clone();
            self.service = r.verdict.rule.as_ref().and(r.verdict.site.clone());
            self.verdict = r.verdict.verdict.clone().unwrap_or_default();
            self.owner_source = r.verdict.owner_source;
        } else {
            self.first_seen = self.first_seen.min(first);
            self.last_seen = self.last_seen.max(last);
            if r.verdict.verdict.as_deref() == Some("unexpected") {
                self.verdict = "unexpected".into();
            }
        }
        let first = self.flows == 0;
        let mut named_network = false;
        if self.network.is_none() {
            if let Some(label) = r.network_label() {
                self.asn = r.asn;
                self.as_org.clone_from(&r.as_org);
                self.country = r.country.map(|c| c.to_string());
                self.network = Some(label);
                if self.owner.is_none() {
                    self.owner.clone_from(&r.verdict.owner);
                    self.owner_source = r.verdict.owner_source;
                }
                named_network = true;
            }
        }
        if first || named_network {
            self.owner_text = owner_text(
                self.owner.as_deref(),
                self.owner_source,
                self.as_org.as_deref(),
            );
        }
        self.flows += 1;
        self.bytes_up += r.bytes_up;
        self.bytes_down += r.bytes_down;
        if r.cleartext == Some(true) {
            self.cleartext_bytes += r.bytes_up + r.bytes_down;
        }
        push_unique(
            &mut self.protocols,
            r.app_protocol.unwrap_or(r.transport),
            8,
        );
        if let Some(src) = r.name_source {
            push_unique(&mut self.name_sources, src, 8);
        }
        if let Some(d) = &r.domain {
            push_unique(&mut self.names, d, limits.names_per_destination);
        }
        if let Some(ja4) = &r.ja4 {
            push_unique(&mut self.clients, &client_text(ja4), MAX_CLIENTS);
        }
        if self.cname_chain.is_empty() && !r.cname_chain.is_empty() {
            self.cname_chain = r.cname_chain.iter().take(16).cloned().collect();
        }
        if let (Some(method), Some(path)) = (&r.http_method, &r.http_path) {
            let req = ClearRequest {
                method: method.clone(),
                host: r.http_host.clone().unwrap_or_default(),
                path: path.clone(),
            };
            if self.cleartext_requests.len() < limits.requests_per_destination
                && !self.cleartext_requests.contains(&req)
            {
                self.cleartext_requests.push(req);
            }
        }
    }
}

/// Client fingerprints kept per destination.
const MAX_CLIENTS: usize = 8;

/// `program version (ja4)` for a measured client, the fingerprint itself
/// otherwise.
pub fn client_text(ja4: &str) -> String {
    let labels = tetherscope_classify::ClientLabels::builtin();
    if labels.clients(ja4).is_empty() {
        ja4.to_owned()
    } else {
        format!("{} ({ja4})", labels.label(ja4))
    }
}

fn push_unique(list: &mut Vec<String>, item: &str, cap: usize) {
    if list.len() < cap && !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

/// Nanoseconds to Unix seconds.
pub fn secs(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// The destination a flow counts under.
pub fn destination_of(r: &FlowRecord) -> String {
    match &r.domain {
        Some(d) => registrable_domain(d).to_owned(),
        None => r.server_ip.clone(),
    }
}

#[derive(Debug, Default, Clone)]
struct DeviceAgg {
    destinations: HashMap<String, Destination>,
    /// Flows whose destination did not fit under the cap.
    folded_flows: u64,
}

/// What each blind spot (`tetherscope_unnamed_flows_total`'s reasons)
/// means, in label order.
pub fn explain(reason: BlindSpot) -> &'static str {
    match reason {
        BlindSpot::Ech => {
            "Encrypted Client Hello: the real server name is encrypted, only the outer name shows"
        }
        BlindSpot::EncryptedDns => {
            "the device resolves over DNS over TLS, QUIC or HTTPS, so its lookups cannot name its connections"
        }
        BlindSpot::NoDnsSeen => {
            "no server name in the connection and no DNS answer seen for the address"
        }
        BlindSpot::NoHandshakeSeen => {
            "picked up mid-stream: the handshake went before the capture started"
        }
        BlindSpot::Malformed => "the handshake or request was there but could not be parsed",
    }
}

pub use tetherscope_record::blind::BlindCount;

/// What a DNS question led to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DnsAnswer {
    /// The question.
    pub question: String,
    /// Times it was asked.
    pub asked: u64,
    /// The CNAME chain behind it, when a later flow was named by it.
    pub cname_chain: Vec<String>,
    /// Server addresses connected to under this name (bounded).
    pub addresses: Vec<String>,
}

/// Flows folded into a view.
#[derive(Debug, Clone)]
pub struct Aggregate {
    limits: Limits,
    devices: HashMap<Option<[u8; 6]>, DeviceAgg>,
    /// Flows of devices past the device cap.
    dropped_flows: u64,
    /// Blind spots by reason, refined for devices (under the device cap)
    /// seen using encrypted DNS (see [`tetherscope_record::blind`]).
    blind: BlindTally,
    timeline: Timeline,
    dns: HashMap<String, DnsAnswer>,
    dns_folded: u64,
    flows: u64,
}

/// One connection that is active now.
#[derive(Debug, Clone, Serialize)]
pub struct Active {
    /// Device display name.
    pub device: String,
    /// Destination.
    pub destination: String,
    /// The flow's name, if any.
    pub name: Option<String>,
    /// "AS15169 Google LLC, US": the network serving the server address.
    pub network: Option<String>,
    /// Server address and port.
    pub server: String,
    /// Application protocol or transport.
    pub protocol: String,
    /// Purpose.
    pub purpose: String,
    /// Bytes both ways.
    pub bytes: u64,
    /// Cleartext.
    pub cleartext: bool,
    /// Last packet, Unix seconds.
    pub last_seen: f64,
}

/// One device with its destinations, as drawn.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// Display name: DHCP host name, else the MAC.
    pub device: String,
    /// MAC address (`unknown` for flows without one).
    pub mac: String,
    /// DHCP host name.
    pub dhcp_name: Option<String>,
    /// Locally administered MAC: the phone randomised it.
    pub randomised: bool,
    /// The profile its flows' verdicts were judged by (its own, or the
    /// active one), when the drawer knows it.
    pub profile: Option<String>,
    /// What the device is: OS, vendor, announced names and model.
    pub identity: crate::identity::Identity,
    /// Flows.
    pub flows: u64,
    /// Bytes both ways.
    pub bytes: u64,
    /// Destinations, busiest first.
    pub destinations: Vec<Destination>,
    /// Flows whose destination was past the per-device cap.
    pub folded_flows: u64,
    /// Destinations kept but not listed (past `Limits::destinations_shown`).
    pub destinations_more: usize,
}

/// A blind spot as drawn.
#[derive(Debug, Clone, Serialize)]
pub struct BlindSpotView {
    /// Short reason id.
    pub reason: &'static str,
    /// What it means.
    pub explanation: &'static str,
    /// Flows and bytes.
    #[serde(flatten)]
    pub count: BlindCount,
}

/// Bytes per destination, across devices.
#[derive(Debug, Clone, Serialize)]
pub struct TopDomain {
    /// Destination.
    pub destination: String,
    /// Purpose of its busiest device entry.
    pub purpose: String,
    /// Bytes both ways.
    pub bytes: u64,
}

/// Everything the page and the report draw.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// Flows folded in (finished and active).
    pub flows: u64,
    /// Devices, busiest first.
    pub devices: Vec<DeviceView>,
    /// Connections active now (live only), most recent first.
    pub active: Vec<Active>,
    /// Active connections not listed.
    pub active_more: usize,
    /// Traffic by purpose over time.
    pub timeline: TimelineView,
    /// Busiest destinations.
    pub top_destinations: Vec<TopDomain>,
    /// Blind spots by reason.
    pub blind_spots: Vec<BlindSpotView>,
    /// DNS questions, most asked first.
    pub dns: Vec<DnsAnswer>,
    /// DNS questions past the cap.
    pub dns_folded: u64,
    /// Flows of devices past the device cap.
    pub dropped_flows: u64,
}

/// Active connections listed on the page.
const ACTIVE_SHOWN: usize = 200;
/// Entries of the top-destinations chart.
const TOP_SHOWN: usize = 10;
/// Destinations listed per device on the live page.
pub const LIVE_DESTINATIONS_SHOWN: usize = 256;

impl Aggregate {
    /// An empty aggregate with the given caps and timeline.
    pub fn new(limits: Limits, timeline: Timeline) -> Self {
        Aggregate {
            limits,
            devices: HashMap::new(),
            dropped_flows: 0,
            blind: BlindTally::new(limits.devices),
            timeline,
            dns: HashMap::new(),
            dns_folded: 0,
            flows: 0,
        }
    }

    /// The live page's: the last hour in one-minute buckets, and the 256
    /// busiest destinations of each device listed (a phone's hour rarely
    /// reaches a hundred registrable domains).
    pub fn live() -> Self {
        Aggregate::new(
            Limits {
                destinations_shown: LIVE_DESTINATIONS_SHOWN,
                ..Limits::default()
            },
            Timeline::sliding(60 * tetherscope_flow::SECOND, 60),
        )
    }

    /// Folds in one flow and its record.
    pub fn add(&mut self, flow: &Seen, record: &FlowRecord) {
        self.flows += 1;
        let bytes = record.bytes_up + record.bytes_down;
        let purpose = record.verdict.purpose.as_deref().unwrap_or("unknown");
        let at = if self.timeline.is_sliding() {
            flow.last_seen
        } else {
            flow.first_seen
        };
        self.timeline.add(at, purpose, bytes);
        self.add_dns(record);
        let devices_full = self.devices.len() >= self.limits.devices;
        let tracked = !devices_full || self.devices.contains_key(&flow.client_mac);
        self.blind.add(
            flow.client_mac,
            flow.blind_spot,
            bytes,
            purpose == Purpose::EncryptedDns.as_str(),
            tracked,
        );
        let device = match self.devices.get_mut(&flow.client_mac) {
            Some(d) => d,
            None if devices_full => {
                self.dropped_flows += 1;
                return;
            }
            None => self.devices.entry(flow.client_mac).or_default(),
        };
        let key = destination_of(record);
        let full = device.destinations.len() >= self.limits.destinations_per_device;
        match device.destinations.get_mut(&key) {
            Some(d) => d.add(flow, record, &self.limits),
            None if full => device.folded_flows += 1,
            None => {
                let mut d = Destination {
                    destination: key.clone(),
                    ..Destination::default()
                };
                d.add(flow, record, &self.limits);
                device.destinations.insert(key, d);
            }
        }
    }

    /// Blind spots by reason, refined (see [`tetherscope_record::blind`]).
    fn blind_spots(&self) -> Vec<BlindSpotView> {
        let counts = self.blind.by_reason();
        BlindSpot::ALL
            .iter()
            .map(|&r| BlindSpotView {
                reason: r.name(),
                explanation: explain(r),
                count: counts[r as usize],
            })
            .collect()
    }

    fn add_dns(&mut self, r: &FlowRecord) {
        let (question, server) = match (&r.dns_query, &r.domain, r.name_source) {
            (Some(q), _, _) => (q, None),
            (None, Some(d), Some("dns")) => (d, Some(&r.server_ip)),
            _ => return,
        };
        let full = self.dns.len() >= self.limits.dns_questions;
        let entry = match self.dns.get_mut(question.as_str()) {
            Some(e) => e,
            None if full => {
                self.dns_folded += 1;
                return;
            }
            None => self
                .dns
                .entry(question.clone())
                .or_insert_with(|| DnsAnswer {
                    question: question.clone(),
                    ..DnsAnswer::default()
                }),
        };
        match server {
            None => entry.asked += 1,
            Some(ip) => {
                if entry.cname_chain.is_empty() {
                    entry.cname_chain = r.cname_chain.iter().take(16).cloned().collect();
                }
                push_unique(&mut entry.addresses, ip, 8);
            }
        }
    }

    /// The view of what was folded in plus `active` flows (with their
    /// records), naming devices from `devices`.
    pub fn view(&self, active: &[(Seen, FlowRecord)], devices: &[Device]) -> View {
        let mut builder = self.builder();
        for (flow, record) in active {
            builder.add_active(flow, record);
        }
        builder.finish(devices)
    }

    /// A view under construction from this aggregate: active flows are
    /// added one at a time, so a table of any size costs one flow's record
    /// at a time plus the bounded aggregate, never a list of every flow.
    pub fn builder(&self) -> ViewBuilder {
        ViewBuilder {
            agg: self.clone(),
            active: Vec::new(),
            active_total: 0,
            floor: 0,
        }
    }
}

/// Builds a `View`: see [`Aggregate::builder`].
#[derive(Debug)]
pub struct ViewBuilder {
    agg: Aggregate,
    /// The most recent active flows seen so far (at most twice
    /// `ACTIVE_SHOWN`, trimmed back to it when full).
    active: Vec<(Seen, Active)>,
    active_total: usize,
    /// The oldest last packet kept by the last trim that found the list
    /// full: older flows cannot make the list.
    floor: u64,
}

impl ViewBuilder {
    /// Folds in one active flow.
    pub fn add_active(&mut self, flow: &Seen, r: &FlowRecord) {
        self.agg.add(flow, r);
        self.active_total += 1;
        if self.active.len() >= 2 * ACTIVE_SHOWN {
            self.trim_active();
        }
        // Older than every one kept after the last trim: never shown.
        if flow.last_seen < self.floor {
            return;
        }
        let entry = Active {
            device: String::new(),
            destination: destination_of(r),
            name: r.domain.clone(),
            network: r.network_label(),
            server: match r.server_port {
                Some(p) if r.server_ip.contains(':') => format!("[{}]:{p}", r.server_ip),
                Some(p) => format!("{}:{p}", r.server_ip),
                None => r.server_ip.clone(),
            },
            protocol: r.app_protocol.unwrap_or(r.transport).to_owned(),
            purpose: r.verdict.purpose.clone().unwrap_or_default(),
            bytes: r.bytes_up + r.bytes_down,
            cleartext: r.cleartext == Some(true),
            last_seen: secs(flow.last_seen),
        };
        self.active.push((*flow, entry));
    }

    /// Keeps the `ACTIVE_SHOWN` most recent, most recent first.
    fn trim_active(&mut self) {
        self.active
            .sort_by_key(|(f, _)| std::cmp::Reverse(f.last_seen));
        self.active.truncate(ACTIVE_SHOWN);
        if self.active.len() == ACTIVE_SHOWN {
            self.floor = self.active.last().map_or(0, |(f, _)| f.last_seen);
        }
    }

    /// The view, naming devices from `devices`.
    pub fn finish(mut self, devices: &[Device]) -> View {
        self.trim_active();
        let agg = self.agg;
        let shown = agg.limits.destinations_shown;
        let names: HashMap<[u8; 6], &Device> = devices.iter().map(|d| (d.mac, d)).collect();
        let display = |mac: Option<[u8; 6]>| -> (String, String, Option<String>) {
            match mac {
                None => ("unknown".into(), "unknown".into(), None),
                Some(m) => {
                    let name = names
                        .get(&m)
                        .and_then(|d| d.name.as_deref().map(str::to_owned));
                    let mac = format_mac(&m);
                    (name.clone().unwrap_or_else(|| mac.clone()), mac, name)
                }
            }
        };
        let mut device_views: Vec<DeviceView> = agg
            .devices
            .iter()
            .map(|(mac, d)| {
                let (device, mac_text, dhcp_name) = display(*mac);
                let mut destinations: Vec<Destination> = d.destinations.values().cloned().collect();
                destinations.sort_by(|a, b| {
                    (b.bytes_up + b.bytes_down)
                        .cmp(&(a.bytes_up + a.bytes_down))
                        .then_with(|| a.destination.cmp(&b.destination))
                });
                DeviceView {
                    device,
                    mac: mac_text,
                    dhcp_name,
                    randomised: mac.is_some_and(|m| is_randomised(&m)),
                    profile: None,
                    identity: mac
                        .and_then(|m| names.get(&m))
                        .map(|d| crate::identity::Identity::of_installed(d))
                        .unwrap_or_default(),
                    flows: destinations.iter().map(|x| x.flows).sum::<u64>() + d.folded_flows,
                    bytes: destinations.iter().map(|x| x.bytes_up + x.bytes_down).sum(),
                    destinations_more: destinations.len().saturating_sub(shown),
                    destinations,
                    folded_flows: d.folded_flows,
                }
            })
            .collect();
        device_views.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.mac.cmp(&b.mac)));

        let mut top: HashMap<&str, (u64, u64, &str)> = HashMap::new();
        for d in &device_views {
            for x in &d.destinations {
                let b = x.bytes_up + x.bytes_down;
                let e = top.entry(&x.destination).or_insert((0, 0, &x.purpose));
                e.0 += b;
                if b > e.1 {
                    e.1 = b;
                    e.2 = &x.purpose;
                }
            }
        }
        let mut top: Vec<TopDomain> = top
            .into_iter()
            .map(|(d, (bytes, _, purpose))| TopDomain {
                destination: d.to_owned(),
                purpose: purpose.to_owned(),
                bytes,
            })
            .collect();
        top.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then_with(|| a.destination.cmp(&b.destination))
        });
        top.truncate(TOP_SHOWN);
        // After the chart took its totals from every kept destination.
        for d in &mut device_views {
            d.destinations.truncate(shown);
        }

        let active_more = self.active_total - self.active.len();
        let active_list: Vec<Active> = self
            .active
            .into_iter()
            .map(|(flow, mut a)| {
                a.device = display(flow.client_mac).0;
                a
            })
            .collect();

        let mut dns: Vec<DnsAnswer> = agg.dns.values().cloned().collect();
        dns.sort_by(|a, b| {
            b.asked
                .cmp(&a.asked)
                .then_with(|| a.question.cmp(&b.question))
        });

        View {
            flows: agg.flows,
            devices: device_views,
            active: active_list,
            active_more,
            timeline: agg.timeline.view(),
            top_destinations: top,
            blind_spots: agg.blind_spots(),
            dns,
            dns_folded: agg.dns_folded,
            dropped_flows: agg.dropped_flows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn randomised_macs() {
        assert!(is_randomised(&[0xda, 0xa1, 0x19, 0x42, 0, 0x23]));
        assert!(!is_randomised(&[0x00, 0x1a, 0x11, 0, 0, 1]));
    }
}
