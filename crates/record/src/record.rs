//! The JSON object that describes one flow. Its keys are the documented
//! schema (docs/reading.md, "Flow records"): keep them stable.

use serde::Serialize;
use tetherscope_flow::devices::format_mac;
use tetherscope_flow::Flow;

/// Classification fields, filled by the classifier.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// Purpose from the catalog (`unknown` when no rule matched).
    pub purpose: Option<String>,
    /// Who runs the destination.
    pub owner: Option<String>,
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
            verdict,
        }
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
}
