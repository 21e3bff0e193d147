//! One bidirectional flow: counters, TCP state and what names it.

use std::net::SocketAddr;

use crate::key::Endpoint;
use std::sync::Arc;

use crate::dissect::Dissector;
use crate::dns_cache::Resolution;
use crate::key::Transport;
use crate::Nanos;
use tetherscope_wire::ja4::Ja4;

/// TCP connection state, as far as a passive observer can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    /// Not TCP.
    None,
    /// SYN seen, handshake not complete.
    SynSent,
    /// SYN-ACK seen.
    SynReceived,
    /// Data or the final ACK seen.
    Established,
    /// One side sent FIN.
    Closing,
    /// Both sides sent FIN.
    Closed,
    /// A RST was seen.
    Reset,
}

impl TcpState {
    /// Name used in output.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynReceived => "syn_received",
            TcpState::Established => "established",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
            TcpState::Reset => "reset",
        }
    }
}

/// The application protocol recognised in a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppProto {
    /// Not (yet) recognised.
    Unknown,
    /// DNS over UDP or TCP.
    Dns,
    /// TLS over TCP.
    Tls,
    /// IETF QUIC.
    Quic,
    /// Google QUIC.
    Gquic,
    /// HTTP/1.x.
    Http,
    /// NTP.
    Ntp,
    /// DHCP.
    Dhcp,
    /// Multicast DNS / LLMNR (local names, not internet domains).
    Mdns,
}

impl AppProto {
    /// Name used in output; `None` when unknown.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            AppProto::Unknown => return None,
            AppProto::Dns => "dns",
            AppProto::Tls => "tls",
            AppProto::Quic => "quic",
            AppProto::Gquic => "gquic",
            AppProto::Http => "http",
            AppProto::Ntp => "ntp",
            AppProto::Dhcp => "dhcp",
            AppProto::Mdns => "mdns",
        })
    }

    /// Whether the payload is readable by anyone on the path.
    pub fn cleartext(self) -> Option<bool> {
        match self {
            AppProto::Http | AppProto::Dns | AppProto::Ntp | AppProto::Dhcp | AppProto::Mdns => {
                Some(true)
            }
            AppProto::Tls | AppProto::Quic | AppProto::Gquic => Some(false),
            AppProto::Unknown => None,
        }
    }
}

/// Everything a flow learned that names it. Allocated once, when the first
/// name arrives, so unnamed flows stay small.
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// TLS or QUIC server_name (outer name with ECH), lowercased.
    pub sni: Option<Box<str>>,
    /// Offered ALPN protocols.
    pub alpn: Vec<Box<str>>,
    /// What the encrypted_client_hello extension was, when present.
    pub ech: Option<Ech>,
    /// QUIC version of the Initial that named the flow.
    pub quic_version: Option<u32>,
    /// JA4 fingerprint of the client's first complete ClientHello (TLS over
    /// TCP or QUIC): which client software opened the flow.
    pub ja4: Option<Ja4>,
    /// HTTP Host, port stripped, lowercased.
    pub http_host: Option<Box<str>>,
    /// HTTP method.
    pub http_method: Option<Box<str>>,
    /// HTTP request path.
    pub http_path: Option<Box<str>>,
    /// First question of a DNS flow.
    pub dns_query: Option<Box<str>>,
    /// DNS flows: queries the client sent.
    pub dns_questions: u16,
    /// DNS flows: the response code of the first response seen.
    pub dns_rcode: Option<u8>,
    /// What the client's resolver said about the server address.
    pub resolution: Option<Arc<Resolution>>,
}

/// An encrypted_client_hello extension, real or GREASE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ech {
    /// Browsers send a random payload shaped like ECH on every connection
    /// (draft-ietf-tls-esni §6.2); the outer SNI is then the destination.
    Grease,
    /// The outer SNI is the public name of an ECH configuration the client
    /// was given: the destination is inside, encrypted.
    Real,
}

impl Ech {
    /// Name used in output.
    pub fn name(self) -> &'static str {
        match self {
            Ech::Grease => "grease",
            Ech::Real => "real",
        }
    }
}

/// Why nothing names a flow, as far as the flow itself can tell. Whether
/// its device resolves over encrypted DNS is known only across flows, so
/// [`BlindSpot::NoDnsSeen`] is refined by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlindSpot {
    /// Real ECH: the destination is inside the encrypted ClientHello and no
    /// DNS answer for the address was seen.
    Ech,
    /// The device resolves over DoT/DoH/DoQ, so only SNI can name its flows.
    EncryptedDns,
    /// No name in the flow and no DNS answer for its address: a direct-IP
    /// connection, or the answer predates the capture.
    NoDnsSeen,
    /// The flow was picked up mid-stream: its handshake was never seen.
    NoHandshakeSeen,
    /// The handshake or request was there but could not be parsed.
    Malformed,
}

impl BlindSpot {
    /// Every reason, in label order.
    pub const ALL: [BlindSpot; 5] = [
        BlindSpot::Ech,
        BlindSpot::EncryptedDns,
        BlindSpot::NoDnsSeen,
        BlindSpot::NoHandshakeSeen,
        BlindSpot::Malformed,
    ];

    /// Label value.
    pub fn name(self) -> &'static str {
        match self {
            BlindSpot::Ech => "ech",
            BlindSpot::EncryptedDns => "encrypted_dns",
            BlindSpot::NoDnsSeen => "no_dns_seen",
            BlindSpot::NoHandshakeSeen => "no_handshake_seen",
            BlindSpot::Malformed => "malformed",
        }
    }
}

/// Where a flow's `domain` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// TLS ClientHello SNI.
    TlsSni,
    /// QUIC Initial SNI.
    QuicSni,
    /// HTTP Host header.
    HttpHost,
    /// DNS answer cache.
    Dns,
}

impl NameSource {
    /// Name used in output.
    pub fn name(self) -> &'static str {
        match self {
            NameSource::TlsSni => "tls_sni",
            NameSource::QuicSni => "quic_sni",
            NameSource::HttpHost => "http_host",
            NameSource::Dns => "dns",
        }
    }
}

/// A bidirectional flow.
#[derive(Debug)]
pub struct Flow {
    /// Transport.
    pub transport: Transport,
    /// The initiator.
    pub client: Endpoint,
    /// The responder.
    pub server: Endpoint,
    /// The client's MAC address, when the link layer has one.
    pub client_mac: Option<[u8; 6]>,
    /// First packet.
    pub first_seen: Nanos,
    /// Last packet.
    pub last_seen: Nanos,
    /// Packets client → server.
    pub packets_up: u64,
    /// Packets server → client.
    pub packets_down: u64,
    /// Wire bytes client → server.
    pub bytes_up: u64,
    /// Wire bytes server → client.
    pub bytes_down: u64,
    /// TCP state.
    pub tcp: TcpState,
    /// Recognised application protocol.
    pub app: AppProto,
    /// Names, once any is known.
    pub names: Option<Box<Names>>,
    /// Packets of this flow that were cut short by the snap length.
    pub truncated_packets: u32,
    /// Dissection state; dropped once there is nothing more to learn.
    pub(crate) dissector: Option<Box<Dissector>>,
    /// FIN seen from client / server.
    pub(crate) fin: [bool; 2],
    /// Set once the client direction is known for sure (SYN, Initial, query).
    pub(crate) client_confirmed: bool,
    /// Dissection wanted but no state allocated yet (no payload so far).
    pub(crate) probing: bool,
    /// Payloads tried without recognising a protocol.
    pub(crate) tries: u8,
    /// Whether a SYN was seen from client / server.
    pub(crate) syn_seen: [bool; 2],
    /// Sequence numbers of those SYNs.
    pub(crate) syn_seq: [u32; 2],
    /// The flow's handshake or request could not be parsed.
    pub(crate) malformed: bool,
}

/// Whether a name is an IP literal (never a domain).
pub fn is_ip_literal(name: &str) -> bool {
    // Address literals are made of hex digits, ':', '.', brackets and an
    // IPv6 zone's '%'; nearly every domain name has a letter past 'f'
    // early on. Checked first: this runs for every flow at every scrape.
    let literal_byte =
        |b: &u8| b.is_ascii_hexdigit() || matches!(b, b':' | b'.' | b'[' | b']' | b'%');
    if !name.as_bytes().iter().all(literal_byte) {
        return false;
    }
    name.parse::<std::net::IpAddr>().is_ok()
        || name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .is_some_and(|n| n.parse::<std::net::IpAddr>().is_ok())
}

impl Flow {
    /// A flow with no packets yet (the pipeline counts them in).
    pub fn new(transport: Transport, client: SocketAddr, server: SocketAddr, ts: Nanos) -> Self {
        Flow {
            transport,
            client: client.into(),
            server: server.into(),
            client_mac: None,
            first_seen: ts,
            last_seen: ts,
            packets_up: 0,
            packets_down: 0,
            bytes_up: 0,
            bytes_down: 0,
            tcp: if transport == Transport::Tcp {
                TcpState::SynSent
            } else {
                TcpState::None
            },
            app: AppProto::Unknown,
            names: None,
            truncated_packets: 0,
            dissector: None,
            fin: [false; 2],
            client_confirmed: false,
            probing: false,
            tries: 0,
            syn_seen: [false; 2],
            syn_seq: [0; 2],
            malformed: false,
        }
    }

    /// JA4 fingerprint of the client's first complete ClientHello, when the
    /// flow carried one (TLS over TCP or QUIC).
    pub fn ja4(&self) -> Option<&Ja4> {
        self.names.as_deref()?.ja4.as_ref()
    }

    /// The names, creating them on first use.
    pub(crate) fn names_mut(&mut self) -> &mut Names {
        self.names.get_or_insert_with(Box::default)
    }

    /// The domain this flow talks to, and where that came from: SNI, then
    /// HTTP Host, then the DNS cache; with real ECH only the DNS cache. IP literals never count; DNS flows
    /// themselves have no domain (their question is `dns_query`).
    pub fn domain(&self) -> Option<(&str, NameSource)> {
        let n = self.names.as_deref()?;
        if n.ech == Some(Ech::Real) {
            // The outer SNI names the ECH provider, not the destination: only
            // the name the client resolved does.
            return n
                .resolution
                .as_deref()
                .map(|r| (&*r.query, NameSource::Dns));
        }
        if let Some(sni) = n.sni.as_deref().filter(|s| !is_ip_literal(s)) {
            let src = if matches!(self.app, AppProto::Quic | AppProto::Gquic) {
                NameSource::QuicSni
            } else {
                NameSource::TlsSni
            };
            return Some((sni, src));
        }
        if let Some(host) = n.http_host.as_deref().filter(|s| !is_ip_literal(s)) {
            return Some((host, NameSource::HttpHost));
        }
        if self.app == AppProto::Dns {
            return None;
        }
        n.resolution
            .as_deref()
            .map(|r| (&*r.query, NameSource::Dns))
    }

    /// Why nothing names this flow; `None` when something does (DNS flows
    /// have their question instead of a domain and are never blind).
    pub fn blind_spot(&self) -> Option<BlindSpot> {
        if self.domain().is_some() || self.app == AppProto::Dns {
            return None;
        }
        let names = self.names.as_deref();
        if names.is_some_and(|n| n.ech == Some(Ech::Real)) {
            return Some(BlindSpot::Ech);
        }
        if self.malformed {
            return Some(BlindSpot::Malformed);
        }
        let handshake_missed = match self.transport {
            // A connection whose client SYN was never seen, and whose first
            // payload was not a handshake either.
            Transport::Tcp => !self.syn_seen[0] && self.app == AppProto::Unknown,
            // QUIC short-header packets only: the Initials went before.
            Transport::Udp => self.app == AppProto::Unknown && self.server.port() == 443,
            _ => false,
        };
        Some(if handshake_missed {
            BlindSpot::NoHandshakeSeen
        } else {
            BlindSpot::NoDnsSeen
        })
    }

    /// Whether the flow's payload is cleartext (see [`AppProto::cleartext`]).
    pub fn cleartext(&self) -> Option<bool> {
        self.app.cleartext()
    }

    /// Whether the flow is still being dissected.
    pub fn dissecting(&self) -> bool {
        self.probing || self.dissector.is_some()
    }

    /// Nothing more to learn: frees the dissection state.
    pub(crate) fn stop_dissecting(&mut self) {
        self.probing = false;
        self.dissector = None;
    }
}

/// Lowercases a name read from the wire into an owned string, dropping a
/// trailing dot. See [`printable`] for what happens to hostile bytes.
pub fn normalise_name(raw: &[u8]) -> Box<str> {
    let raw = raw.strip_suffix(b".").unwrap_or(raw);
    let mut s = printable(raw);
    s.make_ascii_lowercase();
    s.into_boxed_str()
}

/// Text read from the wire, made safe to show and to store: bytes that are
/// not UTF-8 and every control character become U+FFFD, so that no NUL,
/// escape sequence or line break read off the network reaches a log line, a
/// JSON record or a metric label.
pub fn printable(raw: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(raw);
    if lossy.chars().any(char::is_control) {
        lossy
            .chars()
            .map(|c| {
                if c.is_control() {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            })
            .collect()
    } else {
        lossy.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_literals_are_told_from_names() {
        for literal in [
            "192.0.2.1",
            "2001:db8::1",
            "[2001:db8::a]",
            "::ffff:192.0.2.1",
        ] {
            assert!(is_ip_literal(literal), "{literal}");
        }
        for name in [
            "izatcloud.net",
            "cafe.de",
            "deadbeef",
            "1.2.3.4.in-addr.arpa",
            "fe80::1%wlan0",
            "",
            "[",
            "::::",
        ] {
            assert!(!is_ip_literal(name), "{name}");
        }
    }

    #[test]
    fn hostile_bytes_never_survive_normalising() {
        assert_eq!(&*normalise_name(b"WWW.Example.COM."), "www.example.com");
        let hostile = normalise_name(b"a\0b\x1b[31m\r\n\"q\xff.example");
        assert!(!hostile.chars().any(char::is_control), "{hostile:?}");
        assert_eq!(
            &*hostile,
            "a\u{fffd}b\u{fffd}[31m\u{fffd}\u{fffd}\"q\u{fffd}.example"
        );
        // C1 controls arrive as valid UTF-8 and are replaced too.
        assert_eq!(printable("x\u{85}y".as_bytes()), "x\u{fffd}y");
    }
}
