//! The end-to-end tests' phone and its short TLS connections, built with
//! the test kit (`tetherscope-testkit`), written to classic pcap files.

use std::io::Write;
use std::net::Ipv4Addr;

use tetherscope_testkit::frame::{ipv4, tcp, Link, PSH_ACK, RST, SYN, SYN_ACK, TCP};
use tetherscope_testkit::tls::ClientHello;

pub use tetherscope_testkit::pcap::PcapWriter;

/// The phone's and the hotspot's MAC addresses.
const LINK: Link = Link {
    phone: [0xda, 0xa1, 0x19, 0x42, 0, 0x23],
    hotspot: [0x02, 0x42, 0, 0, 0, 1],
};
/// The phone's address on the hotspot.
pub const PHONE: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 23);

/// A TCP segment between the phone's `port` and `server`:443.
fn segment(
    from_phone: bool,
    server: Ipv4Addr,
    port: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    if from_phone {
        LINK.up(&ipv4(
            PHONE,
            server,
            TCP,
            &tcp(port, 443, seq, 0, flags, payload),
        ))
    } else {
        LINK.down(&ipv4(
            server,
            PHONE,
            TCP,
            &tcp(443, port, seq, 0, flags, payload),
        ))
    }
}

/// A whole short TLS connection from the phone to `server` named `sni`,
/// starting at `ts_us`: handshake, ClientHello, a reply, reset.
pub fn tls_connection(
    w: &mut PcapWriter<impl Write>,
    ts_us: u64,
    server: Ipv4Addr,
    port: u16,
    sni: &str,
) {
    let hello = ClientHello::new().sni(sni).record();
    w.record(ts_us, &segment(true, server, port, 1, SYN, &[]));
    w.record(
        ts_us + 20_000,
        &segment(false, server, port, 9, SYN_ACK, &[]),
    );
    w.record(
        ts_us + 40_000,
        &segment(true, server, port, 2, PSH_ACK, &hello),
    );
    w.record(
        ts_us + 60_000,
        &segment(false, server, port, 10, PSH_ACK, &[0x16; 300]),
    );
    w.record(ts_us + 80_000, &segment(true, server, port, 400, RST, &[]));
}

/// Writes a capture of phones' flows to `path`, one flow per JSON line:
/// `{"t": unix seconds, "mac": "da:a1:..", "ip": "10.42.0.23", "host":
/// "www.example.com", "server": "203.0.113.7"}` (optional `"name"`: a DHCP
/// host name, sent half a second before the flow). Each flow is a TCP
/// handshake, one HTTP GET with that Host, and a close. With `"syn": true`
/// it is a lone SYN to port 443 instead; with `"dns": NAME` it is a DNS
/// question to the hotspot resolver 10.42.0.1 and its answer: NAME is
/// `server` for `ttl` seconds (300 unless given). IPv4 headers carry
/// identification 1 and their checksum.
pub fn flows_capture(path: &std::path::Path, flows: &[String]) {
    use serde_json::Value;
    use tetherscope_testkit::dns;
    use tetherscope_testkit::frame::{udp, Ipv4, ACK, FIN_ACK, UDP};

    let ip = |src: Ipv4Addr, dst: Ipv4Addr, proto, payload: &[u8]| {
        Ipv4 {
            ident: 1,
            checksum: true,
        }
        .packet(src, dst, proto, payload)
    };
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = PcapWriter::new(file);
    let mut frame = |t: f64, packet: Vec<u8>| {
        let sec = t.trunc();
        let usec = ((t - sec) * 1e6).round_ties_even() as u32;
        w.record_raw(sec as u32, usec, &packet, packet.len() as u32);
    };
    let hotspot = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
    for (i, line) in flows.iter().enumerate() {
        let f: Value = serde_json::from_str(line).unwrap();
        let t = f["t"].as_f64().unwrap();
        let mac: Vec<u8> = f["mac"]
            .as_str()
            .unwrap()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        let link = Link {
            phone: mac.try_into().unwrap(),
            hotspot,
        };
        let phone: Ipv4Addr = f["ip"].as_str().unwrap().parse().unwrap();
        let server: Ipv4Addr = f["server"].as_str().unwrap().parse().unwrap();
        if let Some(name) = f["name"].as_str().filter(|n| !n.is_empty()) {
            frame(
                t - 0.5,
                tetherscope_testkit::dhcp::request(link.phone, name.as_bytes()),
            );
        }
        let sport = 20_000 + (i % 40_000) as u16;
        if let Some(qname) = f["dns"].as_str().filter(|n| !n.is_empty()) {
            let resolver = Ipv4Addr::new(10, 42, 0, 1);
            let id = i as u16;
            let query = dns::query(id, qname, dns::A);
            frame(
                t,
                link.up(&ip(phone, resolver, UDP, &udp(sport, 53, &query))),
            );
            let ttl = f["ttl"].as_u64().unwrap_or(300) as u32;
            let mut answer = dns::Response::new(id, &dns::name(qname), dns::A).ttl(ttl);
            answer.record(&dns::pointer(dns::QUESTION_AT), dns::A, &server.octets());
            let answer = answer.finish();
            frame(
                t + 0.001,
                link.down(&ip(resolver, phone, UDP, &udp(53, sport, &answer))),
            );
            continue;
        }
        let up = |seq, ack, flags, data: &[u8]| {
            link.up(&ip(
                phone,
                server,
                TCP,
                &tcp(sport, 80, seq, ack, flags, data),
            ))
        };
        let down = |seq, ack, flags, data: &[u8]| {
            link.down(&ip(
                server,
                phone,
                TCP,
                &tcp(80, sport, seq, ack, flags, data),
            ))
        };
        if f["syn"].as_bool().unwrap_or(false) {
            frame(
                t,
                link.up(&ip(phone, server, TCP, &tcp(sport, 443, 1000, 0, SYN, &[]))),
            );
            continue;
        }
        let host = f["host"].as_str().unwrap();
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
        let sent = 1001 + req.len() as u32;
        let steps = [
            up(1000, 0, SYN, &[]),
            down(5000, 1001, SYN_ACK, &[]),
            up(1001, 5001, ACK, &[]),
            up(1001, 5001, PSH_ACK, &req),
            down(5001, sent, PSH_ACK, b"HTTP/1.1 204 No Content\r\n\r\n"),
            up(sent, 5029, FIN_ACK, &[]),
            down(5029, sent + 1, FIN_ACK, &[]),
            up(sent + 1, 5030, ACK, &[]),
        ];
        for (k, packet) in steps.into_iter().enumerate() {
            frame(t + k as f64 * 0.001, packet);
        }
    }
    w.finish();
}
