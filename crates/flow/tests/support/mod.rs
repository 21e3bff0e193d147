//! The flow tests' traffic, built with the test kit between one phone, its
//! resolver and a server, and helpers to look at the flows it makes.

// Each test binary uses its own part of what is here.
#![allow(dead_code, unused_imports)]

use tetherscope_flow::{Flow, Pipeline, PipelineConfig, SECOND};
use tetherscope_testkit::dns;
use tetherscope_testkit::frame::{self, Ipv4, Link};
use tetherscope_testkit::tls::{self, ClientHello};

pub use tetherscope_testkit::dns::{query as dns_query, response as dns_response};
pub use tetherscope_testkit::frame::{ipv6, udp as udp_seg, ACK, PSH, SYN};
pub use tetherscope_testkit::quic::{
    client_initial, crypto_frame, retry, server_initial, version_negotiation,
};
pub use tetherscope_testkit::tls::handshake_record as tls_record;

pub const PHONE: [u8; 4] = [10, 42, 0, 7];
pub const SERVER: [u8; 4] = [198, 51, 100, 20];
pub const RESOLVER: [u8; 4] = [10, 42, 0, 1];
const LINK: Link = Link {
    phone: [2, 0, 0x5e, 0, 0, 7],
    hotspot: [2, 0, 0x5e, 0, 0, 1],
};
pub const T0: u64 = 1_700_000_000 * SECOND;

/// Ethernet link type.
pub const EN10MB: u32 = frame::LINKTYPE_ETHERNET;

/// An IPv4 packet with identification 1.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    Ipv4 {
        ident: 1,
        checksum: false,
    }
    .packet(src, dst, proto, payload)
}

/// An Ethernet frame on the phone's link, up or down.
pub fn eth(from_phone: bool, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    if from_phone {
        LINK.up_raw(ethertype, payload)
    } else {
        LINK.down_raw(ethertype, payload)
    }
}

/// A TCP segment acknowledging nothing.
pub fn tcp_seg(sport: u16, dport: u16, seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    frame::tcp(sport, dport, seq, 0, flags, data)
}

/// An Ethernet/IPv4/UDP frame.
pub fn udp_frame(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    from_phone: bool,
    data: &[u8],
) -> Vec<u8> {
    eth(
        from_phone,
        frame::ETHERTYPE_IPV4,
        &ipv4(src.0, dst.0, frame::UDP, &udp_seg(src.1, dst.1, data)),
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
        frame::ETHERTYPE_IPV4,
        &ipv4(
            src.0,
            dst.0,
            frame::TCP,
            &tcp_seg(src.1, dst.1, seq, flags, data),
        ),
    )
}

/// A ClientHello handshake message naming `sni` and offering h3, with an
/// outer ECH extension when asked and `padding` bytes of padding extension.
pub fn client_hello(sni: &str, ech: bool, padding: usize) -> Vec<u8> {
    let hello = ClientHello::new().sni(sni).alpn(&["h3"]).padding(padding);
    if ech {
        hello.ech(&tls::ECH_OUTER).message()
    } else {
        hello.message()
    }
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
    dns::name(n)
}

/// An ECHConfigList with one version 0xfe0d configuration for `public_name`.
pub fn ech_config_list(public_name: &str) -> Vec<u8> {
    tls::ech_config_list(&[tls::ech_config(0x2a, public_name)])
}

/// HTTPS record data (priority 1, target ".") with ALPN h2, an ipv4hint
/// and, when given, an `ech` parameter.
pub fn https_rdata(hint: [u8; 4], ech: Option<&[u8]>) -> Vec<u8> {
    let mut params = vec![dns::svc_alpn(&["h2"]), dns::svc_ipv4hint(hint)];
    params.extend(ech.map(dns::svc_ech));
    dns::https_rdata(1, ".", &params)
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
