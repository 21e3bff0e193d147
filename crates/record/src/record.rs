//! The JSON object that describes one flow. Its keys are the documented
//! schema (docs/reading.md, "Flow records"): keep them stable.

use serde::Serialize;
use tetherscope_flow::devices::format_mac;
use tetherscope_flow::Flow;
use tetherscope_netinfo::{CountryCode, Network};

/// Classification fields, filled by the classifier.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// Purpose from the catalog (`unknown` when no rule matched).
    pub purpose: Option<String>,
    /// Who the destination is: the matching catalog rule's or list's
    /// entity, else (for a flow nothing in the catalog names, such as a
    /// direct-IP one) the organisation of the network serving it; which of
    /// the two is in `owner_source`.
    pub owner: Option<String>,
    /// `catalog` (a rule or list named the owner) or `network` (the AS
    /// organisation stands in); null when there is no owner.
    pub owner_source: Option<&'static str>,
    /// The rule that matched.
    pub rule: Option<String>,
    /// `expected` or `unexpected` under the active profile.
    pub verdict: Option<String>,
    /// Bounded display name: the rule's name or the registrable domain.
    pub site: Option<String>,
    /// The catalog documents this flow's cleartext as known.
    pub cleartext_known: Option<bool>,
}

/// One flow, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRecord {
    /// "tcp", "udp", "icmp", "other".
    pub transport: &'static str,
    /// Initiator address.
    pub client_ip: String,
    /// Initiator port (null for transports without ports).
    pub client_port: Option<u16>,
    /// Responder address.
    pub server_ip: String,
    /// Responder port.
    pub server_port: Option<u16>,
    /// Initiator MAC.
    pub client_mac: Option<String>,
    /// First packet, RFC 3339.
    pub first_seen: String,
    /// Last packet, RFC 3339.
    pub last_seen: String,
    /// Packets client → server.
    pub packets_up: u64,
    /// Packets server → client.
    pub packets_down: u64,
    /// Wire bytes client → server.
    pub bytes_up: u64,
    /// Wire bytes server → client.
    pub bytes_down: u64,
    /// TCP state at the end.
    pub tcp_state: Option<&'static str>,
    /// "dns", "tls", "quic", "gquic", "http", "ntp", "dhcp", "mdns".
    pub app_protocol: Option<&'static str>,
    /// The domain the flow talks to.
    pub domain: Option<String>,
    /// Where `domain` came from.
    pub name_source: Option<&'static str>,
    /// TLS/QUIC server name.
    pub sni: Option<String>,
    /// Offered ALPN ids.
    pub alpn: Option<Vec<String>>,
    /// `"real"` (outer SNI is an ECH public name the client was given),
    /// `"grease"` (the extension is there otherwise), null when absent.
    pub ech: Option<&'static str>,
    /// QUIC version, hex.
    pub quic_version: Option<String>,
    /// JA4 fingerprint of the client's ClientHello (TLS or QUIC).
    pub ja4: Option<String>,
    /// HTTP Host.
    pub http_host: Option<String>,
    /// HTTP method.
    pub http_method: Option<String>,
    /// HTTP path.
    pub http_path: Option<String>,
    /// First question of a DNS flow.
    pub dns_query: Option<String>,
    /// CNAME chain behind the DNS-derived name.
    pub cname_chain: Vec<String>,
    /// Cleartext payload.
    pub cleartext: Option<bool>,
    /// Packets cut short by the snap length.
    pub truncated_packets: u32,
    /// What the destination was to the device when the flow was seen:
    /// `learning`, `known`, `new` or `flagged` (null without a baseline or
    /// a device).
    pub novelty: Option<&'static str>,
    /// The autonomous system announcing the server address (public
    /// addresses only, from the offline network tables).
    pub asn: Option<u32>,
    /// The organisation holding that AS, as the tables spell it: a name
    /// from a data file, escaped wherever it is shown.
    pub as_org: Option<String>,
    /// The server address's country, ISO 3166-1 alpha-2.
    pub country: Option<CountryCode>,
    /// Classification.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Formats packet time as RFC 3339 with microseconds, UTC.
pub fn rfc3339(nanos: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s, us) = (t.hour(), t.minute(), t.second(), t.microsecond());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

impl FlowRecord {
    /// Describes `flow` with its classification.
    pub fn new(flow: &Flow, verdict: Verdict) -> Self {
        let has_ports = matches!(
            flow.transport,
            tetherscope_flow::Transport::Tcp | tetherscope_flow::Transport::Udp
        );
        let names = flow.names.as_deref();
        let s = |v: Option<&str>| v.map(str::to_owned);
        let domain = flow.domain();
        FlowRecord {
            transport: flow.transport.name(),
            client_ip: flow.client.ip().to_string(),
            client_port: has_ports.then_some(flow.client.port()),
            server_ip: flow.server.ip().to_string(),
            server_port: has_ports.then_some(flow.server.port()),
            client_mac: flow.client_mac.as_ref().map(format_mac),
            first_seen: rfc3339(flow.first_seen),
            last_seen: rfc3339(flow.last_seen),
            packets_up: flow.packets_up,
            packets_down: flow.packets_down,
            bytes_up: flow.bytes_up,
            bytes_down: flow.bytes_down,
            tcp_state: (flow.transport == tetherscope_flow::Transport::Tcp)
                .then(|| flow.tcp.name()),
            app_protocol: flow.app.name(),
            domain: domain.map(|(d, _)| d.to_owned()),
            name_source: domain.map(|(_, src)| src.name()),
            sni: s(names.and_then(|n| n.sni.as_deref())),
            alpn: names
                .filter(|n| !n.alpn.is_empty())
                .map(|n| n.alpn.iter().map(|a| a.to_string()).collect()),
            ech: names.and_then(|n| n.ech).map(|e| e.name()),
            quic_version: names
                .and_then(|n| n.quic_version)
                .map(|v| format!("{v:#010x}")),
            ja4: flow.ja4().map(|j| j.as_str().to_owned()),
            http_host: s(names.and_then(|n| n.http_host.as_deref())),
            http_method: s(names.and_then(|n| n.http_method.as_deref())),
            http_path: s(names.and_then(|n| n.http_path.as_deref())),
            dns_query: s(names.and_then(|n| n.dns_query.as_deref())),
            cname_chain: match domain {
                Some((_, tetherscope_flow::flow::NameSource::Dns)) => names
                    .and_then(|n| n.resolution.as_deref())
                    .map(|r| r.cname_chain.iter().map(|c| c.to_string()).collect())
                    .unwrap_or_default(),
                _ => names
                    .and_then(|n| n.resolution.as_deref())
                    .filter(|r| domain.is_some_and(|(d, _)| *d == *r.query))
                    .map(|r| r.cname_chain.iter().map(|c| c.to_string()).collect())
                    .unwrap_or_default(),
            },
            cleartext: flow.cleartext(),
            truncated_packets: flow.truncated_packets,
            novelty: None,
            asn: None,
            as_org: None,
            country: None,
            verdict,
        }
    }
}

impl FlowRecord {
    /// Adds what the network tables say of the server address; the AS
    /// organisation becomes the owner of a flow the catalog gives none.
    pub fn set_network(&mut self, network: &Network) {
        self.asn = network.asn;
        self.as_org = network.as_org.as_deref().map(str::to_owned);
        self.country = network.country;
        if self.verdict.owner.is_none() {
            if let Some(org) = &self.as_org {
                self.verdict.owner = Some(org.clone());
                self.verdict.owner_source = Some(OWNER_FROM_NETWORK);
            }
        }
    }

    /// "AS15169 Google LLC, US": the network serving the server address,
    /// for where the bare address would otherwise be shown.
    pub fn network_label(&self) -> Option<String> {
        network_label(self.asn, self.as_org.as_deref(), self.country)
    }
}

/// `owner_source` of an owner a catalog rule or list gives.
pub const OWNER_FROM_CATALOG: &str = "catalog";
/// `owner_source` of an owner taken from the AS organisation.
pub const OWNER_FROM_NETWORK: &str = "network";

/// "AS15169 Google LLC, US" from what is known of it ("AS15169, US",
/// "Google LLC", "US"); `None` when nothing is.
pub fn network_label(
    asn: Option<u32>,
    as_org: Option<&str>,
    country: Option<CountryCode>,
) -> Option<String> {
    let mut label = String::new();
    if let Some(n) = asn {
        label.push_str(&format!("AS{n}"));
    }
    if let Some(org) = as_org.filter(|o| !o.is_empty()) {
        if !label.is_empty() {
            label.push(' ');
        }
        label.push_str(org);
    }
    if let Some(c) = country {
        if !label.is_empty() {
            label.push_str(", ");
        }
        label.push_str(c.as_str());
    }
    (!label.is_empty()).then_some(label)
}

/// Whether a catalog owner ("Google") and an AS organisation ("Google
/// LLC") name the same entity: the owner's first word, ignoring case and
/// punctuation, is one of the organisation's words.
pub fn same_entity(owner: &str, as_org: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let org = words(as_org);
    words(owner)
        .first()
        .is_some_and(|first| org.iter().any(|w| w == first))
}

/// Who a destination is, in words: "Qualcomm, served by Amazon.com, Inc."
/// when the catalog's owner and the network's organisation differ, the
/// owner alone when they agree, "Google LLC (network)" when only the
/// network is known.
pub fn owner_text(owner: Option<&str>, source: Option<&str>, as_org: Option<&str>) -> String {
    match (owner, source, as_org.filter(|o| !o.is_empty())) {
        (Some(o), Some(OWNER_FROM_NETWORK), _) => format!("{o} (network)"),
        (Some(o), _, Some(org)) if !same_entity(o, org) => format!("{o}, served by {org}"),
        (Some(o), _, _) => o.to_owned(),
        (None, _, Some(org)) => format!("{org} (network)"),
        (None, _, None) => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn network_labels_say_what_is_known() {
        let us = CountryCode::new("US");
        assert_eq!(
            network_label(Some(15169), Some("Google LLC"), us).as_deref(),
            Some("AS15169 Google LLC, US")
        );
        assert_eq!(
            network_label(Some(15169), None, us).as_deref(),
            Some("AS15169, US")
        );
        assert_eq!(network_label(None, Some(""), us).as_deref(), Some("US"));
        assert_eq!(network_label(None, None, None), None);
    }

    #[test]
    fn owner_text_names_the_network_serving_another_owner() {
        let amazon = Some("Amazon.com, Inc.");
        assert_eq!(
            owner_text(Some("Qualcomm"), Some(OWNER_FROM_CATALOG), amazon),
            "Qualcomm, served by Amazon.com, Inc."
        );
        assert_eq!(
            owner_text(Some("Google"), Some(OWNER_FROM_CATALOG), Some("Google LLC")),
            "Google"
        );
        assert_eq!(
            owner_text(
                Some("Google LLC"),
                Some(OWNER_FROM_NETWORK),
                Some("Google LLC")
            ),
            "Google LLC (network)"
        );
        assert_eq!(
            owner_text(Some("Qualcomm"), Some(OWNER_FROM_CATALOG), None),
            "Qualcomm"
        );
        assert_eq!(owner_text(None, None, None), "-");
        assert!(!same_entity("", "Google LLC"));
    }
}
