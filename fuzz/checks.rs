//! The invariants each fuzz target checks, one function per target. The
//! fuzz targets call them, and the workspace's regression test replays every
//! input kept in `fuzz/regressions/<target>/` through the same function, so a
//! crash once found stays fixed.
#![allow(dead_code)]

use tetherscope_capture::file::{FileSource, MAX_RECORD};
use tetherscope_flow::reassembly::Reassembler;
use tetherscope_flow::{Pipeline, PipelineConfig};
use tetherscope_wire::dns::Message;
use tetherscope_wire::http;
use tetherscope_wire::ip;
use tetherscope_wire::link::NetProto;
use tetherscope_wire::link::{decode, LinkType};
use tetherscope_wire::quic;
use tetherscope_wire::tls;
use tetherscope_wire::{dhcp, ech, hpack, http2, mdns, tunnel};

/// The check for a target, by its name.
pub fn by_name(target: &str) -> Option<fn(&[u8])> {
    Some(match target {
        "link_frame" => link_frame,
        "ip_packet" => ip_packet,
        "dns_message" => dns_message,
        "tls_client_hello" => tls_client_hello,
        "http_request" => http_request,
        "quic_initial" => quic_initial,
        "tcp_reassembly" => tcp_reassembly,
        "pipeline" => pipeline,
        "capture_file" => capture_file,
        "tunnel" => tunnel,
        "h2c" => h2c,
        "ech_config" => ech_config,
        "device_identity" => device_identity,
        _ => return None,
    })
}

const TYPES: [u32; 10] = [1, 113, 276, 101, 12, 14, 0, 108, 9, 104];

/// Link-layer decoding under every supported link type (the first byte
/// picks it). Invariant: the network payload lies inside the frame.
pub fn link_frame(data: &[u8]) {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let link = LinkType::from_header_field(TYPES[usize::from(pick) % TYPES.len()]);
    if let Ok(f) = decode(link, frame) {
        let (start, end) = (
            frame.as_ptr() as usize,
            frame.as_ptr() as usize + frame.len(),
        );
        let p = f.payload.as_ptr() as usize;
        assert!(p >= start && p + f.payload.len() <= end);
    }
}

/// IPv4/IPv6 headers, options, extension headers and fragments.
/// Invariant: the payload lies inside the packet.
pub fn ip_packet(data: &[u8]) {
    for proto in [NetProto::Ipv4, NetProto::Ipv6] {
        if let Ok(p) = ip::parse(proto, data) {
            let start = data.as_ptr() as usize;
            let at = p.payload.as_ptr() as usize;
            assert!(at >= start && at + p.payload.len() <= start + data.len());
        }
    }
}

/// A whole DNS message: question, every record and its data. Invariants:
/// names stay within RFC 1035's 255 bytes, and every label of the question
/// name occurs in the message bytes (compression only reuses bytes).
pub fn dns_message(data: &[u8]) {
    let Ok(m) = Message::parse(data) else { return };
    if let Ok(Some(q)) = m.first_question() {
        let name = q.name.as_bytes();
        assert!(name.len() <= 255);
        for label in name.split(|&b| b == b'.').filter(|l| !l.is_empty()) {
            let found = data
                .windows(label.len())
                .any(|w| w.eq_ignore_ascii_case(label));
            assert!(found, "label {label:?} not in the message");
        }
    }
    for rec in m.answers().take(4096) {
        let Ok(rec) = rec else { break };
        let _ = m.rdata(&rec);
    }
}

/// A DHCP message and an mDNS response, the two sources of a device's
/// identity. Invariants: every value they report is bytes of the input,
/// and mDNS names stay within 255 bytes.
pub fn device_identity(data: &[u8]) {
    if let Ok(info) = dhcp::parse(data) {
        for v in [
            info.host_name,
            info.vendor_class,
            info.parameter_list,
            info.client_id,
        ]
        .into_iter()
        .flatten()
        {
            assert!(inside(v, data));
        }
    }
    let sender = std::net::IpAddr::from([10, 42, 0, 182]);
    if let Ok(a) = mdns::parse(data, sender) {
        if let Some(model) = a.model {
            assert!(inside(model, data));
        }
        for name in [a.host_name(), a.instance_name()].into_iter().flatten() {
            assert!(name.len() <= 255);
        }
    }
}

fn inside(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

/// A TLS ClientHello message. Invariant: the SNI and every ALPN value
/// reported are bytes of the input.
pub fn tls_client_hello(data: &[u8]) {
    if let Ok(hello) = tls::parse_client_hello_message(data) {
        if let Some(sni) = hello.sni {
            assert!(inside(sni, data));
        }
        for alpn in hello.alpn() {
            assert!(inside(alpn, data));
        }
    }
    let _ = tls::RecordHeader::parse_handshake(data);
}

/// An HTTP/1.x request head. Invariant: method, target and Host are bytes
/// of the input (never synthesised).
pub fn http_request(data: &[u8]) {
    if let Ok(http::Head::Complete(r)) = http::parse_request(data) {
        assert!(inside(r.method, data) && inside(r.target, data));
        if let Some(host) = r.host {
            assert!(inside(host, data));
            let _ = http::host_without_port(host);
        }
        let _ = r.path();
    }
}

/// QUIC Initial packets of a datagram: header parsing, key derivation,
/// header-protection removal, AEAD opening and CRYPTO frames. Random bytes
/// rarely authenticate, so the fuzzer mostly exercises everything up to the
/// tag check; seeds from real Initials reach the frames.
pub fn quic_initial(data: &[u8]) {
    let mut scratch = vec![0u8; 65_536];
    for pkt in quic::initial_packets(data).take(8) {
        let Ok(pkt) = pkt else { break };
        let Ok(keys) = quic::InitialKeys::new(pkt.version, pkt.dcid, quic::Side::Client) else {
            continue;
        };
        if let Ok(plain) = pkt.open(&keys, &mut scratch) {
            for frame in quic::crypto_frames(plain).take(1024) {
                if frame.is_err() {
                    break;
                }
            }
            let _ = quic::google_handshake_data(plain);
        }
    }
}

/// Handshake reassembly from segments at arbitrary offsets (overlaps, gaps,
/// storms). Invariants: never more than the cap held, and the contiguous
/// prefix only grows until consumed.
pub fn tcp_reassembly(data: &[u8]) {
    let cap = 4096;
    let mut r = Reassembler::new(cap);
    let mut rest = data;
    let mut prefix = 0;
    while rest.len() >= 4 {
        let offset = u64::from(u16::from_be_bytes([rest[0], rest[1]])) * 7;
        let len = usize::from(rest[2]).min(rest.len() - 3);
        let consume = rest[3] == 0xff;
        r.insert(offset, &rest[4.min(rest.len())..(4 + len).min(rest.len())]);
        assert!(r.held() <= cap, "held {}", r.held());
        let now = r.contiguous().len();
        assert!(now >= prefix, "prefix shrank");
        prefix = now;
        if consume {
            r.consume(now / 2);
            prefix = r.contiguous().len();
        }
        rest = &rest[(4 + len).min(rest.len())..];
    }
}

/// The whole pipeline fed a sequence of frames (2-byte length prefix each,
/// alternating Ethernet and raw IP), with ticks that expire flows.
/// Invariants: the flow table stays within its bound, and no text a flow
/// keeps (names, ALPN, HTTP method and path, CNAME chain) holds a control
/// character.
pub fn pipeline(data: &[u8]) {
    let mut p = Pipeline::new(&PipelineConfig {
        max_flows: 64,
        ..PipelineConfig::default()
    });
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut rest = data;
    let mut n = 0u32;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let frame = &rest[2..2 + len];
        ts += u64::from(rest[0]) * 50_000_000;
        p.ingest(
            ts,
            if n.is_multiple_of(2) { 1 } else { 101 },
            frame.len() as u32,
            frame,
        );
        n += 1;
        rest = &rest[2 + len..];
        assert!(p.table.len() <= 64 + 1);
    }
    p.tick(ts + 3_600_000_000_000);
    p.finish();
    for (flow, _) in p.take_finished() {
        let Some(n) = flow.names.as_deref() else {
            continue;
        };
        let resolution = n.resolution.as_deref();
        let texts = [
            &n.sni,
            &n.http_host,
            &n.http_method,
            &n.http_path,
            &n.dns_query,
        ]
        .into_iter()
        .filter_map(|t| t.as_deref())
        .chain(n.alpn.iter().map(|a| &**a))
        .chain(resolution.map(|r| &*r.query))
        .chain(
            resolution
                .into_iter()
                .flat_map(|r| r.cname_chain.iter().map(|c| &**c)),
        );
        for text in texts {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
}

/// A capture file (pcap, pcapng, either gzipped): headers, blocks, records.
/// Invariants: no record is longer than the reader's limit or than the bytes
/// it came from, and the reader ends, with a packet stream or an error.
pub fn capture_file(data: &[u8]) {
    let reader = Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok(mut source) = FileSource::from_reader(reader) else {
        return;
    };
    let gzipped = data.starts_with(&[0x1f, 0x8b]);
    while let Ok(Some(p)) = source.next_packet() {
        assert!(p.data.len() <= MAX_RECORD);
        assert!(gzipped || p.data.len() <= data.len());
    }
}

/// Whether `part` lies inside `whole`.
fn within(part: &[u8], whole: &[u8]) -> bool {
    let (start, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    p >= start && p + part.len() <= start + whole.len()
}

/// VXLAN, Geneve, GRE and Teredo headers. Invariant: what a tunnel carries
/// lies inside the packet.
pub fn tunnel(data: &[u8]) {
    for parse in [tunnel::vxlan, tunnel::geneve, tunnel::gre, tunnel::teredo] {
        if let Ok(inner) = parse(data) {
            let bytes = match inner {
                tunnel::Inner::Ip(_, b) | tunnel::Inner::Ethernet(b) | tunnel::Inner::Ppp(b) => b,
            };
            assert!(within(bytes, data));
        }
    }
}

/// h2c client streams, HPACK header blocks and Huffman strings (the first
/// byte picks which). Invariant: no panic, bounded output.
pub fn h2c(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 3 {
        0 => {
            let mut stream = http2::PREFACE.to_vec();
            stream.extend_from_slice(rest);
            let _ = http2::parse_client_stream(&stream);
        }
        1 => {
            let mut decoder = hpack::Decoder::default();
            let mut total = 0usize;
            let _ = decoder.decode(rest, |n, v| total += n.len() + v.len());
        }
        _ => {
            let mut out = Vec::new();
            let _ = hpack::huffman_decode(rest, &mut out);
            assert!(out.len() <= 8 * rest.len() / 5 + 1);
        }
    }
}

/// ECHConfigLists and the SvcParams around them. Invariant: every public
/// name lies inside the input.
pub fn ech_config(data: &[u8]) {
    for name in ech::public_names(data).flatten() {
        assert!(within(name, data) && !name.is_empty());
    }
    if let Some(list) = ech::service_ech_param(data) {
        assert!(within(list, data));
    }
}
