//! Builders for crafted frames: Ethernet/IPv4 around UDP and TCP, TLS
//! ClientHellos, DNS messages and protected QUIC Initials.

#![allow(dead_code)]

use ring::aead::{self, quic as hp, Aad, LessSafeKey, Nonce, UnboundKey};
use tetherscope_flow::{Flow, Pipeline, PipelineConfig, SECOND};
use tetherscope_wire::quic::{InitialSecrets, Side};

pub const PHONE: [u8; 4] = [10, 42, 0, 7];
pub const SERVER: [u8; 4] = [198, 51, 100, 20];
pub const RESOLVER: [u8; 4] = [10, 42, 0, 1];
const PHONE_MAC: [u8; 6] = [2, 0, 0x5e, 0, 0, 7];
const AP_MAC: [u8; 6] = [2, 0, 0x5e, 0, 0, 1];
pub const T0: u64 = 1_700_000_000 * SECOND;

/// Ethernet link type.
pub const EN10MB: u32 = 1;

pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

pub fn eth(from_phone: bool, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = if from_phone {
        (PHONE_MAC, AP_MAC)
    } else {
        (AP_MAC, PHONE_MAC)
    };
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn udp_seg(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

pub fn tcp_seg(sport: u16, dport: u16, seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(data);
    t
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const PSH: u8 = 0x08;

/// An Ethernet/IPv4/UDP frame.
pub fn udp_frame(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    from_phone: bool,
    data: &[u8],
) -> Vec<u8> {
    eth(
        from_phone,
        0x0800,
        &ipv4(src.0, dst.0, 17, &udp_seg(src.1, dst.1, data)),
    )
}

/// An Ethernet/IPv4/TCP frame.
pub fn tcp_frame(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    from_phone: bool,
    seq: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    eth(
        from_phone,
        0x0800,
        &ipv4(src.0, dst.0, 6, &tcp_seg(src.1, dst.1, seq, flags, data)),
    )
}

/// A ClientHello handshake message naming `sni`, with an ECH extension
/// when asked and `padding` bytes of padding extension.
pub fn client_hello(sni: &str, ech: bool, padding: usize) -> Vec<u8> {
    let mut exts = Vec::new();
    let mut sn = vec![0];
    sn.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    sn.extend_from_slice(sni.as_bytes());
    let mut list = (sn.len() as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&sn);
    exts.extend_from_slice(&[0, 0]);
    exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
    exts.extend_from_slice(&list);
    exts.extend_from_slice(&[0, 16, 0, 5, 0, 3, 2, b'h', b'3']);
    if ech {
        exts.extend_from_slice(&[0xfe, 0x0d, 0, 6, 0, 0, 1, 0, 1, 0x42]);
    }
    if padding > 0 {
        exts.extend_from_slice(&[0, 21]);
        exts.extend_from_slice(&(padding as u16).to_be_bytes());
        exts.extend(std::iter::repeat_n(0u8, padding));
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    msg
}

/// A TLS handshake record around `msg`.
pub fn tls_record(msg: &[u8]) -> Vec<u8> {
    let mut r = vec![22, 3, 1];
    r.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    r.extend_from_slice(msg);
    r
}

/// A QUIC CRYPTO frame (type 0x06) with 4-byte varints.
pub fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend_from_slice(&(0x8000_0000u32 | offset as u32).to_be_bytes());
    f.extend_from_slice(&(0x8000_0000u32 | data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// A client Initial of `version` to `dcid`, protected with the Initial keys
/// derived from `key_dcid` (RFC 9001 §5: AEAD over the payload with the
/// header as associated data, then header protection from a sample),
/// padded to 1200 bytes.
pub fn client_initial(
    version: u32,
    dcid: &[u8],
    key_dcid: &[u8],
    token: &[u8],
    pn: u32,
    frames: &[u8],
) -> Vec<u8> {
    let s = InitialSecrets::derive(version, key_dcid, Side::Client).unwrap();
    let initial_type = if version == 0x6b33_43cf { 1 } else { 0 };
    let mut header = vec![0xc0 | (initial_type << 4) | 3];
    header.extend_from_slice(&version.to_be_bytes());
    header.push(dcid.len() as u8);
    header.extend_from_slice(dcid);
    header.extend_from_slice(&[4, 0xc1, 0xc2, 0xc3, 0xc4]); // client's SCID
    header.push(token.len() as u8); // token length as a 1-byte varint
    header.extend_from_slice(token);
    let payload_len = 1200 - header.len() - 2 - 4;
    header.extend_from_slice(&(0x4000u16 | (payload_len + 4) as u16).to_be_bytes());
    let pn_offset = header.len();
    header.extend_from_slice(&pn.to_be_bytes());
    let mut payload = frames.to_vec();
    assert!(payload.len() <= payload_len - 16, "frames too long");
    payload.resize(payload_len - 16, 0);
    let mut nonce = s.iv;
    for (i, b) in u64::from(pn).to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let key = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &s.key).unwrap());
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&header),
        &mut payload,
    )
    .unwrap();
    let mut pkt = header;
    pkt.extend_from_slice(&payload);
    let hpk = hp::HeaderProtectionKey::new(&hp::AES_128, &s.hp).unwrap();
    let mask = hpk.new_mask(&pkt[pn_offset + 4..pn_offset + 20]).unwrap();
    pkt[0] ^= mask[0] & 0x0f;
    for i in 0..4 {
        pkt[pn_offset + i] ^= mask[1 + i];
    }
    pkt
}

/// A server packet the dissector must not take for the client's: a server
/// Initial protected with random-looking bytes (its keys are the server's).
pub fn server_initial(version: u32, dcid: &[u8], scid: &[u8]) -> Vec<u8> {
    let mut p = vec![0xc1];
    p.extend_from_slice(&version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    p.push(0);
    p.extend_from_slice(&(0x4000u16 | 100).to_be_bytes());
    p.extend((0..100u8).map(|i| i.wrapping_mul(37)));
    p
}

/// A Retry packet (RFC 9000 §17.2.5) handing the client `scid` and a token.
pub fn retry(version: u32, dcid: &[u8], scid: &[u8], token: &[u8]) -> Vec<u8> {
    let retry_type = if version == 0x6b33_43cf { 0 } else { 3 };
    let mut p = vec![0xc0 | (retry_type << 4)];
    p.extend_from_slice(&version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    p.extend_from_slice(token);
    p.extend_from_slice(&[0x5a; 16]); // integrity tag
    p
}

/// A Version Negotiation packet (RFC 9000 §17.2.1) listing `versions`.
pub fn version_negotiation(dcid: &[u8], scid: &[u8], versions: &[u32]) -> Vec<u8> {
    let mut p = vec![0x80];
    p.extend_from_slice(&0u32.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(scid.len() as u8);
    p.extend_from_slice(scid);
    for v in versions {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p
}

/// A pipeline with default settings.
pub fn pipeline() -> Pipeline {
    Pipeline::new(&PipelineConfig::default())
}

/// Feeds Ethernet frames one millisecond apart.
pub fn feed(p: &mut Pipeline, frames: &[Vec<u8>]) {
    for (i, f) in frames.iter().enumerate() {
        p.ingest(T0 + i as u64 * 1_000_000, EN10MB, f.len() as u32, f);
    }
}

/// Runs `f` on the flow whose server port is `port`.
pub fn with_flow<R>(p: &Pipeline, port: u16, f: impl FnOnce(&Flow) -> R) -> R {
    let mut found = None;
    p.table.for_each(|flow| {
        if flow.server.port() == port && found.is_none() {
            found = Some(describe(flow));
        }
    });
    let mut out = None;
    let mut f = Some(f);
    p.table.for_each(|flow| {
        if flow.server.port() == port && out.is_none() {
            out = Some((f.take().unwrap())(flow));
        }
    });
    out.unwrap_or_else(|| panic!("no flow to port {port}: {found:?}"))
}

fn describe(flow: &Flow) -> String {
    format!("{:?} {:?}", flow.app, flow.names)
}

/// The SNI a flow to `port` learned.
pub fn sni(p: &Pipeline, port: u16) -> Option<String> {
    with_flow(p, port, |f| {
        f.names
            .as_deref()
            .and_then(|n| n.sni.as_deref().map(str::to_owned))
    })
}

/// A DNS name in wire form.
pub fn dns_name(n: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in n.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A DNS query for `qname` of `qtype`.
pub fn dns_query(id: u16, qname: &str, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(qname));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// A DNS response to `qname`/`qtype` with `answers` as (type, rdata), each
/// owned by `qname` with a TTL of 300.
pub fn dns_response(id: u16, qname: &str, qtype: u16, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x81, 0x80, 0, 1]);
    m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(qname));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    for (rtype, rdata) in answers {
        m.extend_from_slice(&dns_name(qname));
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 1, 0x2c]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    }
    m
}

/// An ECHConfigList with one version 0xfe0d configuration for `public_name`.
pub fn ech_config_list(public_name: &str) -> Vec<u8> {
    let mut c = vec![0x2a, 0x00, 0x20];
    c.extend_from_slice(&32u16.to_be_bytes());
    c.extend_from_slice(&[0x11; 32]);
    c.extend_from_slice(&[0, 4, 0, 1, 0, 1]);
    c.push(0);
    c.push(public_name.len() as u8);
    c.extend_from_slice(public_name.as_bytes());
    c.extend_from_slice(&[0, 0]);
    let mut config = vec![0xfe, 0x0d];
    config.extend_from_slice(&(c.len() as u16).to_be_bytes());
    config.extend_from_slice(&c);
    let mut list = (config.len() as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&config);
    list
}

/// HTTPS record data (priority 1, target ".") with ALPN h2, an ipv4hint
/// and, when given, an `ech` parameter.
pub fn https_rdata(hint: [u8; 4], ech: Option<&[u8]>) -> Vec<u8> {
    let mut r = vec![0, 1, 0];
    r.extend_from_slice(&[0, 1, 0, 3, 2, b'h', b'2']);
    r.extend_from_slice(&[0, 4, 0, 4]);
    r.extend_from_slice(&hint);
    if let Some(list) = ech {
        r.extend_from_slice(&[0, 5]);
        r.extend_from_slice(&(list.len() as u16).to_be_bytes());
        r.extend_from_slice(list);
    }
    r
}

/// Resolver answer frames: the phone asks `qname` and gets `answers`.
pub fn dns_exchange(id: u16, qname: &str, qtype: u16, answers: &[(u16, Vec<u8>)]) -> [Vec<u8>; 2] {
    let port = 40_000 + id;
    [
        udp_frame(
            (PHONE, port),
            (RESOLVER, 53),
            true,
            &dns_query(id, qname, qtype),
        ),
        udp_frame(
            (RESOLVER, 53),
            (PHONE, port),
            false,
            &dns_response(id, qname, qtype, answers),
        ),
    ]
}

/// A TCP connection from the phone to `server:port` whose first segment
/// carries `data`.
pub fn tcp_connection(sport: u16, server: [u8; 4], port: u16, data: &[u8]) -> Vec<Vec<u8>> {
    vec![
        tcp_frame((PHONE, sport), (server, port), true, 1000, SYN, &[]),
        tcp_frame((server, port), (PHONE, sport), false, 5000, SYN | ACK, &[]),
        tcp_frame((PHONE, sport), (server, port), true, 1001, ACK | PSH, data),
    ]
}

/// Runs `f` on the flow whose client port is `port`.
pub fn with_client_port<R>(p: &Pipeline, port: u16, f: impl FnOnce(&Flow) -> R) -> R {
    let mut out = None;
    let mut f = Some(f);
    p.table.for_each(|flow| {
        if flow.client.port() == port && out.is_none() {
            out = Some((f.take().unwrap())(flow));
        }
    });
    out.unwrap_or_else(|| panic!("no flow from port {port}"))
}

/// An IPv6 header around `payload`.
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// Whether any flow has `port` as either port.
pub fn has_flow_on_port(p: &Pipeline, port: u16) -> bool {
    let mut found = false;
    p.table.for_each(|f| {
        found |= f.server.port() == port || f.client.port() == port;
    });
    found
}

/// Number of flows in the table.
pub fn flow_count(p: &Pipeline) -> usize {
    p.table.len()
}
