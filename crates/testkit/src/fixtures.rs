//! The recipes of the capture fixtures checked in under `tests/fixtures/`
//! (see its README for what each holds). `make-fixtures DIR` writes them;
//! a test here checks the recipes still give the checked-in bytes.
//!
//! Frames of the fixtures carry IPv4 header checksums and IPv4
//! identification 1; timestamps start at [`T0`] and step by 10 ms.

use std::net::Ipv4Addr;

use crate::dhcp;
use crate::dns;
use crate::frame::{tcp, udp, Ipv4, Link, ACK, FIN_ACK, PSH_ACK, SYN, SYN_ACK, TCP, UDP};
use crate::mdns;
use crate::pcap::PcapWriter;
use crate::tls::{ech_config, ech_config_list, ClientHello, ECH_OUTER};

/// The phone of the fixtures.
pub const PHONE: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 182);
/// The second phone of `blind-spots.pcap`.
pub const SECOND_PHONE: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 183);
/// The hotspot's resolver.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);
/// The phone's link to the hotspot.
pub const PHONE_LINK: Link = Link {
    phone: [0x02, 0x00, 0x5e, 0x00, 0x01, 0x82],
    hotspot: [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01],
};
/// The second phone's link to the hotspot.
pub const SECOND_PHONE_LINK: Link = Link {
    phone: [0x02, 0x00, 0x5e, 0x00, 0x01, 0x83],
    hotspot: PHONE_LINK.hotspot,
};
/// Unix seconds of the fixtures' first second.
pub const T0: u32 = 1_700_000_000;

/// The fixtures by file name.
pub fn all() -> [(&'static str, Capture); 6] {
    [
        ("seed-domains.pcap", seed_domains()),
        ("hostile-names.pcap", hostile_names()),
        ("blind-spots.pcap", blind_spots()),
        ("stock-phone-mix.pcap", stock_phone_mix()),
        ("owner-mix.pcap", owner_mix()),
        ("device-identity.pcap", device_identity()),
    ]
}

/// An IPv4 packet as the fixtures write them (identification 1, checksum).
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    Ipv4 {
        ident: 1,
        checksum: true,
    }
    .packet(src, dst, proto, payload)
}

fn udp_packet(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, data: &[u8]) -> Vec<u8> {
    ipv4(src, dst, UDP, &udp(sport, dport, data))
}

#[allow(clippy::too_many_arguments)] // the TCP header's fields, in order
fn tcp_packet(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    ipv4(src, dst, TCP, &tcp(sport, dport, seq, ack, flags, data))
}

/// The fixtures' ClientHello: ALPN h2 and http/1.1, zero random, and a
/// server name when given.
fn hello(sni: Option<&str>) -> ClientHello {
    let h = ClientHello::new().random([0; 32]).alpn(&["h2", "http/1.1"]);
    match sni {
        Some(name) => h.sni(name),
        None => h,
    }
}

fn addr(a: &str) -> Ipv4Addr {
    a.parse().expect("fixture address")
}

/// A capture being assembled: frames with their time since [`T0`].
#[derive(Debug, Clone, Default)]
pub struct Capture {
    records: Vec<(f64, Vec<u8>)>,
    t: f64,
}

impl Capture {
    /// Adds a frame 10 ms after the previous one.
    pub fn add(&mut self, frame: Vec<u8>) {
        self.t += 0.01;
        self.records.push((self.t, frame));
    }

    fn up(&mut self, packet: &[u8]) {
        self.add(PHONE_LINK.up(packet));
    }

    fn down(&mut self, packet: &[u8]) {
        self.add(PHONE_LINK.down(packet));
    }

    /// The phone asks the resolver for `qname` and is answered with the
    /// CNAME `chain` and `addrs`.
    fn lookup(&mut self, id: u16, qname: &str, chain: &[&str], addrs: &[&str], sport: u16) {
        let addrs: Vec<Ipv4Addr> = addrs.iter().map(|a| addr(a)).collect();
        let query = dns::query(id, qname, dns::A);
        self.up(&udp_packet(PHONE, sport, RESOLVER, 53, &query));
        let answer = dns::cname_answer(id, qname, chain, &addrs);
        self.down(&udp_packet(RESOLVER, 53, PHONE, sport, &answer));
    }

    /// A whole TCP connection from the phone: handshake, an optional
    /// request and response, and an orderly close.
    fn tcp_session(
        &mut self,
        sport: u16,
        server: &str,
        dport: u16,
        request: &[u8],
        response: &[u8],
    ) {
        let server = addr(server);
        let (mut c, mut s) = (1000u32, 5000u32);
        let up = |seq, ack, flags, data: &[u8]| {
            tcp_packet(PHONE, sport, server, dport, seq, ack, flags, data)
        };
        let down = |seq, ack, flags, data: &[u8]| {
            tcp_packet(server, dport, PHONE, sport, seq, ack, flags, data)
        };
        self.up(&up(c, 0, SYN, &[]));
        self.down(&down(s, c + 1, SYN_ACK, &[]));
        self.up(&up(c + 1, s + 1, ACK, &[]));
        if !request.is_empty() {
            self.up(&up(c + 1, s + 1, PSH_ACK, request));
            c += request.len() as u32;
        }
        if !response.is_empty() {
            self.down(&down(s + 1, c + 1, PSH_ACK, response));
            s += response.len() as u32;
        }
        self.up(&up(c + 1, s + 1, FIN_ACK, &[]));
        self.down(&down(s + 1, c + 2, FIN_ACK, &[]));
        self.up(&up(c + 2, s + 2, ACK, &[]));
    }

    /// The capture as a classic pcap file.
    pub fn to_pcap(&self) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new());
        for (t, frame) in &self.records {
            let whole = t.trunc();
            let usec = ((t - whole) * 1e6).round_ties_even() as u32;
            w.record_raw(T0 + whole as u32, usec, frame, frame.len() as u32);
        }
        w.finish()
    }
}

/// `seed-domains.pcap`.
pub fn seed_domains() -> Capture {
    let mut cap = Capture::default();
    // The xtra-daemon study's answer, with documentation addresses for the CDN.
    let chain = [
        "xtrapath3.qcomgeo2.com",
        "xp3.gpsonextra.net",
        "d3nj9ptoklgw8o.cloudfront.net",
    ];
    cap.lookup(
        0x9645,
        "xtrapath3.izatcloud.net",
        &chain,
        &["198.51.100.102", "198.51.100.26"],
        40001,
    );
    // TLS without SNI: only the DNS cache can name it (the CNAME-chain case).
    cap.tcp_session(40509, "198.51.100.102", 443, &hello(None).record(), &[]);
    // The plain-HTTP XTRA download (Android 7.1 firmware in the study).
    let get = b"GET /xtra3grc.bin HTTP/1.1\r\nHost: xtrapath3.izatcloud.net\r\nUser-Agent: Android\r\n\r\n";
    cap.tcp_session(
        58343,
        "198.51.100.26",
        80,
        get,
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nXTRA",
    );
    cap.lookup(
        0x1001,
        "release.calyxinstitute.org",
        &[],
        &["192.0.2.10"],
        40002,
    );
    cap.tcp_session(
        41000,
        "192.0.2.10",
        443,
        &hello(Some("release.calyxinstitute.org")).record(),
        &[],
    );
    cap.lookup(
        0x1002,
        "connectivitycheck.gstatic.com",
        &[],
        &["192.0.2.20"],
        40003,
    );
    let probe = b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\nConnection: close\r\n\r\n";
    cap.tcp_session(
        41001,
        "192.0.2.20",
        80,
        probe,
        b"HTTP/1.1 204 No Content\r\n\r\n",
    );
    cap.lookup(0x1003, "mtalk.google.com", &[], &["192.0.2.30"], 40004);
    cap.tcp_session(
        41002,
        "192.0.2.30",
        5228,
        &hello(Some("mtalk.google.com")).record(),
        &[],
    );
    cap.lookup(0x1004, "time.android.com", &[], &["192.0.2.40"], 40005);
    let ntp_server = addr("192.0.2.40");
    let mut ntp = [0u8; 48];
    ntp[0] = 0x23; // version 4, client
    cap.up(&udp_packet(PHONE, 41003, ntp_server, 123, &ntp));
    ntp[0] = 0x24; // version 4, server
    cap.down(&udp_packet(ntp_server, 123, PHONE, 41003, &ntp));
    // An unlisted tracker.
    cap.lookup(
        0x1005,
        "beacon.tracker.example.com",
        &[],
        &["203.0.113.7"],
        40006,
    );
    cap.tcp_session(
        41004,
        "203.0.113.7",
        443,
        &hello(Some("beacon.tracker.example.com")).record(),
        &[],
    );
    // A direct-IP connection: no lookup, no SNI.
    cap.tcp_session(41005, "203.0.113.50", 443, &hello(None).record(), &[]);
    cap
}

/// Markup, quotes and terminal escapes the page and report must show as text.
const HOSTILE: &[u8] = b"<script>window.__pwned=1</script>\"'\x1b[31m\x07";

/// `hostile-names.pcap`.
pub fn hostile_names() -> Capture {
    let mut cap = Capture::default();
    cap.add(dhcp::request(
        PHONE_LINK.phone,
        &[b"<b>phone</b>".as_slice(), HOSTILE].concat(),
    ));
    // SNI with markup, quotes and an escape sequence.
    let sni = "\"><img src=x onerror=window.__pwned=2>.<script>window.__pwned=3</script>'\x1b.evil.example";
    cap.tcp_session(42000, "203.0.113.66", 443, &hello(Some(sni)).record(), &[]);
    let req = b"GET /\"'><script>window.__pwned=4</script>\x1b[0m HTTP/1.1\r\nHost: <svg onload=window.__pwned=5>\x07.example\r\n\r\n";
    cap.tcp_session(
        42001,
        "203.0.113.67",
        80,
        req,
        b"HTTP/1.1 204 No Content\r\n\r\n",
    );
    cap
}

/// `blind-spots.pcap`: one unnamed flow per reason a passive monitor can be
/// blind.
pub fn blind_spots() -> Capture {
    let mut cap = Capture::default();
    // ech: the phone was given an ECH configuration (public name
    // cover.example.net) for private.example.com, then reaches an address
    // it resolved before the capture with that public name as outer SNI.
    let list = ech_config_list(&[ech_config(0x2a, "cover.example.net")]);
    let rdata = dns::https_rdata(
        1,
        ".",
        &[dns::svc_ipv4hint(addr("203.0.113.80")), dns::svc_ech(&list)],
    );
    let qname = "private.example.com";
    cap.up(&udp_packet(
        PHONE,
        40010,
        RESOLVER,
        53,
        &dns::query(0x2001, qname, dns::HTTPS),
    ));
    let answer = dns::response(0x2001, qname, dns::HTTPS, &[(dns::HTTPS, rdata)]);
    cap.down(&udp_packet(RESOLVER, 53, PHONE, 40010, &answer));
    let outer = hello(Some("cover.example.net")).ech(&ECH_OUTER);
    cap.tcp_session(42000, "203.0.113.99", 443, &outer.record(), &[]);
    // no_dns_seen: a direct-IP connection with no name in it.
    cap.tcp_session(42001, "203.0.113.50", 443, &hello(None).record(), &[]);
    // no_handshake_seen: a TLS connection picked up mid-stream.
    let server = addr("198.51.100.60");
    let (mut c, s) = (7000u32, 9000u32);
    for _ in 0..3 {
        let mut data = vec![0x17, 0x03, 0x03, 0x00, 0x20];
        data.extend_from_slice(&[0; 32]);
        cap.up(&tcp_packet(PHONE, 42002, server, 443, c, s, PSH_ACK, &data));
        cap.down(&tcp_packet(
            server,
            443,
            PHONE,
            42002,
            s,
            c + data.len() as u32,
            ACK,
            &[],
        ));
        c += data.len() as u32;
    }
    // malformed: a handshake record whose ClientHello lies about its length.
    let bad = b"\x16\x03\x01\x00\x0a\x01\x00\x00\x06\x03\x03\xff\xff\xff\xff";
    cap.tcp_session(42003, "198.51.100.70", 443, bad, &[]);
    // encrypted_dns: a second phone uses DNS over TLS, then connects to an
    // address without a name in the handshake.
    for (sport, server, dport) in [(43000, "192.0.2.53", 853), (43001, "203.0.113.51", 443)] {
        let server = addr(server);
        let up = |seq, ack, flags, data: &[u8]| {
            SECOND_PHONE_LINK.up(&tcp_packet(
                SECOND_PHONE,
                sport,
                server,
                dport,
                seq,
                ack,
                flags,
                data,
            ))
        };
        cap.add(up(1000, 0, SYN, &[]));
        let syn_ack = tcp_packet(server, dport, SECOND_PHONE, sport, 5000, 1001, SYN_ACK, &[]);
        cap.add(SECOND_PHONE_LINK.down(&syn_ack));
        cap.add(up(1001, 5001, ACK, &[]));
        cap.add(up(1001, 5001, PSH_ACK, &hello(None).record()));
    }
    cap
}

/// `stock-phone-mix.pcap`: a stock phone's vendor telemetry, SDK traffic,
/// Google services and GNSS assistance (each a lookup and a TLS connection
/// whose response has a realistic relative size), and three direct-IP
/// connections without a name.
pub fn stock_phone_mix() -> Capture {
    let mut cap = Capture::default();
    // (name, bytes the server sends back)
    let named: [(&str, u16); 14] = [
        ("dc.di.atlas.samsung.com", 1800),     // Samsung diagnostics
        ("tracking.intl.miui.com", 1500),      // Xiaomi telemetry
        ("metrics1.data.hicloud.com", 1500),   // Huawei HiAnalytics
        ("fota-cloud-dn.ospserver.net", 9000), // Samsung firmware update check
        ("app-measurement.com", 1200),         // Firebase Analytics SDK
        ("graph.facebook.com", 1400),          // Facebook SDK
        ("launches.appsflyersdk.com", 900),    // AppsFlyer SDK
        ("o1234.ingest.sentry.io", 700),       // Sentry SDK
        ("googleads.g.doubleclick.net", 6000), // AdMob
        ("firebaseinstallations.googleapis.com", 800),
        ("accounts.google.com", 2500),
        ("play.googleapis.com", 3000),
        ("path1.xtracloud.net", 8000), // Qualcomm XTRA
        ("gllto.glpals.com", 8000),    // Broadcom LTO
    ];
    let application_data = |size: u16| {
        let mut record = vec![0x17, 0x03, 0x03];
        record.extend_from_slice(&size.to_be_bytes());
        record.resize(5 + usize::from(size), 0);
        record
    };
    for (i, (qname, size)) in (0u16..).zip(named) {
        let server = format!("198.51.100.{}", 120 + i);
        cap.lookup(0x2000 + i, qname, &[], &[&server], 44000 + i);
        let hello = hello(Some(qname)).record();
        cap.tcp_session(45000 + i, &server, 443, &hello, &application_data(size));
    }
    // Direct-IP connections: no lookup, no SNI; small keep-alives.
    for i in 0u16..3 {
        let server = format!("203.0.113.{}", 60 + i);
        let hello = hello(None).record();
        cap.tcp_session(46000 + i, &server, 443, &hello, &application_data(300));
    }
    cap
}

/// The networks `owner-mix.pcap`'s servers are in: `(network, AS number,
/// AS organisation, country)`, from the public registries' allocations
/// (RIR WHOIS). Tests build their network tables from it: the fixture only
/// holds these addresses as packet contents, nothing is ever sent to them.
pub const OWNER_MIX_NETWORKS: [(&str, u32, &str, &str); 7] = [
    ("142.250.0.0/15", 15169, "Google LLC", "US"),
    ("34.64.0.0/10", 396982, "Google LLC", "US"),
    ("52.28.0.0/16", 16509, "Amazon.com, Inc.", "DE"),
    ("157.240.0.0/16", 32934, "Facebook, Inc.", "US"),
    (
        "47.88.0.0/14",
        45102,
        "Alibaba (US) Technology Co., Ltd.",
        "US",
    ),
    ("159.138.0.0/16", 136907, "HUAWEI CLOUDS", "SG"),
    ("104.16.0.0/13", 13335, "Cloudflare, Inc.", "US"),
];

/// `owner-mix.pcap`: a stock phone's OEM telemetry (Samsung, Xiaomi,
/// Huawei, Qualcomm XTRA), SDK traffic (Firebase, Facebook, AppsFlyer,
/// Sentry, AdMob), Google services, each a lookup and a TLS connection to
/// a public address in [`OWNER_MIX_NETWORKS`], and five direct-IP TLS
/// connections without a name to Google, Facebook and Cloudflare.
pub fn owner_mix() -> Capture {
    let mut cap = Capture::default();
    // (name, server, bytes the server sends back)
    let named: [(&str, &str, u16); 13] = [
        ("dc.di.atlas.samsung.com", "52.28.14.3", 1800),
        ("tracking.intl.miui.com", "47.88.4.20", 1500),
        ("metrics1.data.hicloud.com", "159.138.20.7", 1500),
        ("xtrapath3.izatcloud.net", "52.28.200.9", 8000),
        ("app-measurement.com", "142.250.74.46", 1200),
        ("graph.facebook.com", "157.240.17.15", 1400),
        ("launches.appsflyersdk.com", "52.28.60.11", 900),
        ("o1234.ingest.sentry.io", "34.120.195.249", 700),
        ("googleads.g.doubleclick.net", "142.250.74.98", 6000),
        ("firebaseinstallations.googleapis.com", "142.250.74.10", 800),
        ("accounts.google.com", "142.250.74.77", 2500),
        ("play.googleapis.com", "142.250.74.106", 3000),
        ("fota-cloud-dn.ospserver.net", "104.18.6.30", 9000),
    ];
    let application_data = |size: u16| {
        let mut record = vec![0x17, 0x03, 0x03];
        record.extend_from_slice(&size.to_be_bytes());
        record.resize(5 + usize::from(size), 0);
        record
    };
    for (i, (qname, server, size)) in (0u16..).zip(named) {
        cap.lookup(0x3000 + i, qname, &[], &[server], 47000 + i);
        let hello = hello(Some(qname)).record();
        cap.tcp_session(48000 + i, server, 443, &hello, &application_data(size));
    }
    // Direct-IP connections: no lookup, no SNI; small keep-alives.
    for (i, server) in (0u16..).zip([
        "142.250.74.14",
        "142.250.75.1",
        "157.240.17.35",
        "104.16.132.229",
        "34.107.221.82",
    ]) {
        let hello = hello(None).record();
        cap.tcp_session(49000 + i, server, 443, &hello, &application_data(300));
    }
    cap
}

/// `device-identity.pcap`: the phone asks for its lease as AOSP's DHCP
/// client does (vendor class `android-dhcp-14`, its parameter list),
/// announces itself over mDNS (host `Pixel-7a.local`, device-info
/// `model=Pixel 7a`), then makes one named connection. A second station
/// sends a request claiming the phone's hardware address with another
/// name and vendor class, which must change nothing.
pub fn device_identity() -> Capture {
    let mut cap = Capture::default();
    cap.add(dhcp::Request::android(PHONE_LINK.phone, b"pixel-7a", b"android-dhcp-14").frame());
    cap.add(
        mdns::Announcement {
            host: b"Pixel-7a",
            address: PHONE,
            device_info: Some((b"Pixel 7a", b"Pixel 7a")),
        }
        .frame(PHONE_LINK.phone),
    );
    let forged = dhcp::Request {
        vendor_class: Some(b"MSFT 5.0"),
        ..dhcp::Request::named(PHONE_LINK.phone, b"impostor")
    };
    cap.add(forged.frame_from(SECOND_PHONE_LINK.phone));
    cap.lookup(0x3000, "www.example.com", &[], &["198.51.100.40"], 47000);
    let hello = hello(Some("www.example.com")).record();
    cap.tcp_session(47001, "198.51.100.40", 443, &hello, &[]);
    cap
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_recipes_give_the_checked_in_fixtures() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        for (name, capture) in super::all() {
            let checked_in = std::fs::read(dir.join(name)).unwrap();
            assert!(
                capture.to_pcap() == checked_in,
                "{name} differs from its recipe: run `cargo run -p tetherscope-testkit --bin make-fixtures tests/fixtures`"
            );
        }
    }
}
