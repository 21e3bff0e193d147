//! Per-flow dissection: reading the first bytes of a flow until it is named.
//!
//! Dissection runs only until there is nothing more to learn (a ClientHello
//! or request head was read, or the flow proved to be something else); then
//! the state is dropped and later packets cost only a table lookup and
//! counter updates. DNS is the exception: every DNS message is read, because
//! answers feed the cache that names other flows.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tetherscope_wire::{dns, ech, gquic, http, http2, ja4, quic, tls, Error};

use crate::dns_cache::{DnsCache, Resolution, MAX_PUBLIC_NAMES};
use crate::flow::{normalise_name, printable, AppProto, Ech, Flow};
use crate::reassembly::{Budget, Reassembler};
use crate::stats::Stats;
use crate::Nanos;

/// Longest CNAME chain kept per answer.
const MAX_CHAIN: usize = 16;
/// Answer records read per DNS message.
const MAX_ANSWERS: usize = 256;
/// DNS-over-TCP bytes read per direction before giving up on the stream.
const MAX_DNS_STREAM: usize = 64 * 1024;
/// Client datagrams tried before a UDP flow is declared unnamed.
const MAX_UDP_TRIES: u8 = 8;

/// What the capture thread lends to dissection.
pub(crate) struct Context<'a> {
    pub dns: &'a mut DnsCache,
    pub stats: &'a Stats,
    pub scratch: &'a mut Vec<u8>,
    pub handshake: &'a mut Vec<u8>,
    pub now: Nanos,
    pub buffer_cap: usize,
    pub budget: &'a Budget,
}

/// Dissection state kept in a flow while it is being read. Flows hold it
/// boxed, so the variants' sizes do not matter to the flow table.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Dissector {
    Tcp(TcpStreams),
    /// Boxed: larger than the TCP state, and rarer.
    Quic(Box<QuicState>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpMode {
    Unknown,
    Tls,
    Http,
    /// Cleartext HTTP/2 with prior knowledge.
    H2c,
    Dns,
}

#[derive(Debug)]
pub(crate) struct TcpStreams {
    mode: TcpMode,
    up: Stream,
    down: Stream,
    dns_read: [usize; 2],
}

#[derive(Debug, Default)]
struct Stream {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    buf: Option<Box<Reassembler>>,
}

pub(crate) struct QuicState {
    crypto: Reassembler,
    /// The connection's Initial keys, once a client Initial opened.
    /// Boxed: the keys are large, and most flows never get here.
    original: Option<Box<ConnectionKeys>>,
    /// Version of the Initial that carried the start of the ClientHello.
    hello_version: Option<u32>,
    /// Set when the connection's keys started over (Retry, Version
    /// Negotiation): the CRYPTO stream read so far is void.
    restarted: bool,
}

impl core::fmt::Debug for QuicState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("QuicState")
            .field("held", &self.crypto.held())
            .finish()
    }
}

impl Dissector {
    /// TCP state for a flow's first payload, starting each direction's
    /// stream after its SYN where one was seen.
    fn new_tcp(flow: &Flow) -> Self {
        let base = |dir: usize| flow.syn_seen[dir].then(|| flow.syn_seq[dir].wrapping_add(1));
        Dissector::Tcp(TcpStreams {
            mode: TcpMode::Unknown,
            up: Stream {
                base: base(0),
                buf: None,
            },
            down: Stream {
                base: base(1),
                buf: None,
            },
            dns_read: [0; 2],
        })
    }
}

/// Outcome of one dissection step.
enum Step {
    /// Keep the dissector.
    More,
    /// Nothing more to learn.
    Done,
}

// === TCP ===

/// Feeds one TCP segment. `up` is client → server.
pub(crate) fn tcp_segment(
    flow: &mut Flow,
    up: bool,
    syn: bool,
    seq: u32,
    payload: &[u8],
    ctx: &mut Context<'_>,
) {
    let is_dns_port = flow.server.port() == 53 || flow.client.port() == 53;
    let dir = usize::from(!up);
    let mut seq = seq;
    if syn {
        // Kept in the flow: most flows never carry a payload worth a
        // dissector (floods, refused connections), so none is allocated yet.
        flow.syn_seq[dir] = seq;
        flow.syn_seen[dir] = true;
        if let Some(Dissector::Tcp(t)) = flow.dissector.as_deref_mut() {
            let stream = if up { &mut t.up } else { &mut t.down };
            stream.base = Some(seq.wrapping_add(1));
        }
        if payload.is_empty() {
            return;
        }
        // TCP Fast Open (RFC 7413): the request or ClientHello starts in the
        // SYN, right after the sequence number the SYN itself takes.
        seq = seq.wrapping_add(1);
    }
    if payload.is_empty() {
        return;
    }
    // Only DNS needs the server's bytes.
    if !up && !is_dns_port {
        return;
    }
    if flow.dissector.is_none() {
        if !flow.probing {
            return;
        }
        flow.probing = false;
        flow.dissector = Some(Box::new(Dissector::new_tcp(flow)));
    }
    let Some(Dissector::Tcp(t)) = flow.dissector.as_deref_mut() else {
        return;
    };
    let stream = if up { &mut t.up } else { &mut t.down };
    let base = *stream.base.get_or_insert(seq);
    let offset = seq.wrapping_sub(base);
    if offset > 1 << 30 {
        return; // before the stream start: an old retransmission
    }
    let cap = if is_dns_port {
        MAX_DNS_STREAM
    } else {
        ctx.buffer_cap
    };
    let buf = stream
        .buf
        .get_or_insert_with(|| Box::new(Reassembler::with_budget(cap, ctx.budget.clone())));
    if !buf.insert(u64::from(offset), payload) {
        if buf.starved {
            ctx.stats.parse_error(crate::stats::HANDSHAKE_MEMORY_FULL);
            flow.stop_dissecting();
        }
        return;
    }
    if is_dns_port && t.mode == TcpMode::Unknown && !looks_like_client_hello_or_request(&t.up) {
        t.mode = TcpMode::Dns;
    }
    let step = match t.mode {
        TcpMode::Dns => tcp_dns(flow, up, ctx),
        _ => tcp_client_stream(flow, ctx),
    };
    if let Step::Done = step {
        flow.stop_dissecting();
    }
}

/// Whether the client's first bytes are a TLS handshake or an HTTP request:
/// then the payload decides, whatever a DNS port suggested.
fn looks_like_client_hello_or_request(up: &Stream) -> bool {
    up.buf.as_ref().is_some_and(|b| {
        let data = b.contiguous();
        tls::looks_like_handshake(data)
            || http::looks_like_request(data)
            || http2::looks_like_preface(data)
    })
}

/// The flow's TCP streams. Only TCP flows reach the stream dissectors, so
/// this never fails; were it ever to, the flow's dissection stops and the
/// packet is counted under [`crate::stats::DISSECTOR_STATE_MISSING`] rather
/// than the capture thread panicking.
fn streams<'f>(flow: &'f mut Flow, ctx: &Context<'_>) -> Option<&'f mut TcpStreams> {
    match flow.dissector.as_deref_mut() {
        Some(Dissector::Tcp(t)) => Some(t),
        _ => {
            ctx.stats.parse_error(crate::stats::DISSECTOR_STATE_MISSING);
            None
        }
    }
}

fn tcp_client_stream(flow: &mut Flow, ctx: &mut Context<'_>) -> Step {
    loop {
        let Some(t) = streams(flow, ctx) else {
            return Step::Done;
        };
        let Some(buf) = t.up.buf.as_ref() else {
            return Step::More;
        };
        let data = buf.contiguous();
        let full = buf.overflowed || data.len() >= ctx.buffer_cap;
        if t.mode == TcpMode::Unknown {
            if data.len() < 3 {
                return Step::More;
            }
            t.mode = if tls::looks_like_handshake(data) {
                TcpMode::Tls
            } else if http2::looks_like_preface(data) {
                TcpMode::H2c
            } else if http::looks_like_request(data) {
                TcpMode::Http
            } else if data.len() < 8
                && b"PROPFIND OPTIONS CONNECT DELETE"
                    .windows(data.len())
                    .any(|w| w == data)
            {
                return Step::More;
            } else {
                return Step::Done;
            };
        }
        match t.mode {
            TcpMode::Tls => {
                let result = client_hello_from_records(data, ctx.handshake);
                return match result {
                    Ok(Some(())) => {
                        match tls::parse_client_hello_message(ctx.handshake) {
                            Ok(hello) => {
                                apply_hello(flow, &hello, ja4::Carrier::Tcp, ctx);
                                flow.app = AppProto::Tls;
                            }
                            Err(e) => malformed(flow, ctx, e),
                        }
                        Step::Done
                    }
                    Ok(None) if full => {
                        ctx.stats.parse_error(crate::stats::CLIENT_HELLO_TOO_LONG);
                        flow.app = AppProto::Tls;
                        Step::Done
                    }
                    Ok(None) => Step::More,
                    Err(e) => {
                        malformed(flow, ctx, e);
                        Step::Done
                    }
                };
            }
            TcpMode::Http => match http::parse_request(data) {
                Ok(http::Head::Complete(req)) => {
                    let connect = req.method == b"CONNECT";
                    let request = owned_request(&req);
                    apply_request(flow, request);
                    flow.app = AppProto::Http;
                    if !connect {
                        return Step::Done;
                    }
                    // CONNECT: what follows the head is a tunnel, often TLS.
                    // The head was just parsed from this buffer: both are
                    // there unless the flow's state was lost (counted).
                    let Some(t) = streams(flow, ctx) else {
                        return Step::Done;
                    };
                    let Some(buf) = t.up.buf.as_mut() else {
                        return Step::Done;
                    };
                    match buf.contiguous().windows(4).position(|w| w == b"\r\n\r\n") {
                        Some(end) => {
                            buf.consume(end + 4);
                            // Later segments are placed by sequence number:
                            // the stream now starts after the head.
                            t.up.base = t.up.base.map(|b| b.wrapping_add((end + 4) as u32));
                            t.mode = TcpMode::Unknown;
                            continue;
                        }
                        None => return Step::Done,
                    }
                }
                Ok(http::Head::Incomplete) if !full => return Step::More,
                Ok(http::Head::Incomplete) => {
                    ctx.stats.parse_error(crate::stats::HTTP_HEAD_TOO_LONG);
                    flow.app = AppProto::Http;
                    return Step::Done;
                }
                Err(e) => {
                    malformed(flow, ctx, e);
                    return Step::Done;
                }
            },
            TcpMode::H2c => {
                return match http2::parse_client_stream(data) {
                    Ok(http2::Head::Complete(req)) => {
                        apply_request(flow, owned_h2_request(&req));
                        flow.app = AppProto::Http;
                        Step::Done
                    }
                    Ok(http2::Head::Incomplete) if !full => Step::More,
                    Ok(http2::Head::Incomplete) => {
                        ctx.stats.parse_error(crate::stats::HTTP_HEAD_TOO_LONG);
                        flow.app = AppProto::Http;
                        Step::Done
                    }
                    Err(e) => {
                        malformed(flow, ctx, e);
                        Step::Done
                    }
                }
            }
            TcpMode::Unknown | TcpMode::Dns => return Step::Done,
        }
    }
}

/// Counts a parse error of the flow's own handshake and marks the flow: if
/// nothing names it, this is why.
fn malformed(flow: &mut Flow, ctx: &Context<'_>, e: Error) {
    ctx.stats.parse_error(e.reason());
    flow.malformed = true;
}

/// Collects the first handshake message from a run of TLS records into
/// `out`. `Ok(None)`: more bytes are needed.
fn client_hello_from_records(data: &[u8], out: &mut Vec<u8>) -> Result<Option<()>, Error> {
    out.clear();
    let mut pos = 0;
    while pos + tls::RecordHeader::LEN <= data.len() {
        let header = tls::RecordHeader::parse_handshake(&data[pos..])?;
        let start = pos + tls::RecordHeader::LEN;
        let end = start + usize::from(header.length);
        out.extend_from_slice(&data[start..end.min(data.len())]);
        if out.len() >= 4 {
            let (kind, len) = tls::handshake_header(out)?;
            if kind != tls::CLIENT_HELLO {
                return Err(Error::NotClientHello);
            }
            if out.len() >= 4 + len {
                return Ok(Some(()));
            }
        }
        if end > data.len() {
            return Ok(None);
        }
        pos = end;
    }
    Ok(None)
}

fn tcp_dns(flow: &mut Flow, up: bool, ctx: &mut Context<'_>) -> Step {
    let dir = usize::from(!up);
    let client_ip = flow.client.ip();
    loop {
        let Some(t) = streams(flow, ctx) else {
            return Step::Done;
        };
        let stream = if up { &t.up } else { &t.down };
        let Some(buf) = stream.buf.as_ref() else {
            return Step::More;
        };
        let data = buf.contiguous();
        let at = t.dns_read[dir];
        let Some(len) = data
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return if at >= MAX_DNS_STREAM {
                Step::Done
            } else {
                Step::More
            };
        };
        let Some(msg) = data.get(at + 2..at + 2 + len) else {
            return if buf.overflowed {
                Step::Done
            } else {
                Step::More
            };
        };
        // Copy out: the message borrows the flow's buffer.
        ctx.scratch.clear();
        ctx.scratch.extend_from_slice(msg);
        t.dns_read[dir] = at + 2 + len;
        let msg = std::mem::take(ctx.scratch);
        dns_message(flow, &msg, client_ip, ctx);
        *ctx.scratch = msg;
    }
}

// === UDP ===

/// Feeds one UDP datagram. Returns true when the sender turned out to be the
/// client although the flow thought otherwise (the caller swaps sides).
pub(crate) fn udp_datagram(
    flow: &mut Flow,
    up: bool,
    payload: &[u8],
    ctx: &mut Context<'_>,
) -> bool {
    let ports = (flow.client.port(), flow.server.port());
    let any = |p: u16| ports.0 == p || ports.1 == p;
    // A QUIC Initial from or to port 53 is QUIC: the payload decides.
    let quic = matches!(flow.app, AppProto::Quic | AppProto::Gquic);
    if any(53) && !quic && !quic::looks_like_initial(payload) {
        flow.app = AppProto::Dns;
        return dns_datagram(flow, up, payload, ctx);
    }
    if any(5353) || any(5355) {
        mdns_datagram(flow, up, payload, ctx);
        flow.stop_dissecting();
        return false;
    }
    if any(123) && payload.len() >= 48 {
        flow.app = AppProto::Ntp;
        flow.stop_dissecting();
        return false;
    }
    if any(67) || any(68) {
        flow.app = AppProto::Dhcp;
        return false;
    }
    if !flow.dissecting() {
        return false;
    }
    if quic::looks_like_initial(payload) {
        return quic_datagram(flow, up, payload, ctx);
    }
    if !up {
        return false;
    }
    if gquic::looks_like_gquic(payload) {
        if let Ok(Some(sni)) = gquic::chlo_sni(payload) {
            let names = flow.names_mut();
            names.sni = Some(normalise_name(sni));
            names.quic_version = gquic::version(payload);
            flow.app = AppProto::Gquic;
            flow.stop_dissecting();
            return false;
        }
    }
    bump_tries(flow);
    false
}

fn bump_tries(flow: &mut Flow) {
    flow.tries = flow.tries.saturating_add(1);
    if flow.tries >= MAX_UDP_TRIES {
        flow.stop_dissecting();
    }
}

fn quic_datagram(flow: &mut Flow, up: bool, payload: &[u8], ctx: &mut Context<'_>) -> bool {
    if !matches!(flow.dissector.as_deref(), Some(Dissector::Quic(_))) {
        flow.probing = false;
        flow.dissector = Some(Box::new(Dissector::Quic(Box::new(QuicState {
            crypto: Reassembler::with_budget(ctx.buffer_cap, ctx.budget.clone()),
            original: None,
            hello_version: None,
            restarted: false,
        }))));
    }
    let mut opened_any = false;
    let mut bad_packets = false;
    let mut version = 0;
    let mut gquic_sni = None;
    {
        let Some(Dissector::Quic(q)) = flow.dissector.as_deref_mut() else {
            return false;
        };
        if ctx.scratch.len() < 65_536 {
            ctx.scratch.resize(65_536, 0);
        }
        for pkt in quic::initial_packets(payload) {
            let pkt = match pkt {
                Ok(p) => p,
                Err(e) => {
                    ctx.stats.parse_error(e.reason());
                    bad_packets = true;
                    break;
                }
            };
            let plain = match open_with_known_keys(q, &pkt, ctx.scratch) {
                Ok(range) => &ctx.scratch[range],
                Err(_) if !up => continue, // a server Initial: not ours to open
                Err(e) => {
                    ctx.stats.parse_error(e.reason());
                    bad_packets = true;
                    continue;
                }
            };
            if std::mem::take(&mut q.restarted) {
                q.crypto = Reassembler::with_budget(ctx.buffer_cap, ctx.budget.clone());
                q.hello_version = None;
            }
            opened_any = true;
            version = pkt.version;
            if quic::is_google_version(pkt.version) {
                match quic::google_handshake_data(plain) {
                    Ok(data) if pkt.version == quic::VERSION_Q050 => {
                        if let Ok(Some(sni)) = gquic::chlo_sni(data) {
                            gquic_sni = Some(normalise_name(sni));
                        }
                    }
                    Ok(data) => {
                        q.hello_version.get_or_insert(pkt.version);
                        q.crypto.insert(0, data);
                    }
                    Err(e) => {
                        ctx.stats.parse_error(e.reason());
                        bad_packets = true;
                    }
                }
                continue;
            }
            for frame in quic::crypto_frames(plain) {
                match frame {
                    Ok(f) => {
                        if f.offset == 0 {
                            q.hello_version = Some(pkt.version);
                        }
                        q.crypto.insert(f.offset, f.data);
                    }
                    Err(e) => {
                        ctx.stats.parse_error(e.reason());
                        bad_packets = true;
                        break;
                    }
                }
            }
        }
    }
    flow.malformed |= bad_packets;
    let swapped = opened_any && !up;
    if opened_any {
        flow.client_confirmed = true;
        flow.app = if quic::is_google_version(version) {
            AppProto::Gquic
        } else {
            AppProto::Quic
        };
    }
    if let Some(sni) = gquic_sni {
        let names = flow.names_mut();
        names.sni = Some(sni);
        names.quic_version = Some(version);
        flow.stop_dissecting();
        return swapped;
    }
    let Some(Dissector::Quic(q)) = flow.dissector.as_deref() else {
        return swapped;
    };
    if q.crypto.starved {
        ctx.stats.parse_error(crate::stats::HANDSHAKE_MEMORY_FULL);
        flow.stop_dissecting();
        return swapped;
    }
    let data = q.crypto.contiguous();
    if data.len() >= 4 {
        match tls::handshake_header(data) {
            Ok((tls::CLIENT_HELLO, len)) if data.len() >= 4 + len => {
                match tls::parse_client_hello_message(data) {
                    Ok(hello) => {
                        let hello_names = owned_hello(&hello, ja4::Carrier::Quic);
                        flow.names_mut().quic_version = Some(q.hello_version.unwrap_or(version));
                        set_hello(flow, hello_names, ctx.dns, ctx.now);
                    }
                    Err(e) => malformed(flow, ctx, e),
                }
                flow.stop_dissecting();
                return swapped;
            }
            Ok((tls::CLIENT_HELLO, _)) => {}
            _ => {
                malformed(flow, ctx, Error::NotClientHello);
                flow.stop_dissecting();
                return swapped;
            }
        }
    }
    if up || opened_any {
        bump_tries(flow);
    }
    swapped
}

/// The Initial keys of one QUIC connection: derived from the Destination
/// Connection ID of the client's first Initial (or, after a Retry, of the
/// first Initial that followed it), whatever DCID later Initials carry.
pub(crate) struct ConnectionKeys {
    dcid: Vec<u8>,
    version: u32,
    keys: quic::InitialKeys,
}

/// Opens a client Initial and returns where its plaintext sits in `scratch`.
///
/// Initial keys belong to the connection, not to a DCID (RFC 9001 §5.2):
/// once the server has answered, the client's next Initials carry the
/// server's connection ID but are still protected with the keys of the
/// first one; after a compatible version upgrade (RFC 9368) they use the
/// new version's salt over that same first DCID. A packet whose own DCID
/// opens it starts (or, after a Retry, restarts) the connection's keys.
fn open_with_known_keys(
    q: &mut QuicState,
    pkt: &quic::InitialPacket<'_>,
    scratch: &mut [u8],
) -> Result<core::ops::Range<usize>, Error> {
    if let Some(c) = q.original.as_deref() {
        if c.dcid == pkt.dcid && c.version == pkt.version {
            return pkt.open_range(&c.keys, scratch);
        }
    }
    let own = quic::InitialKeys::new(pkt.version, pkt.dcid, quic::Side::Client)?;
    let own_err = match pkt.open_range(&own, scratch) {
        Ok(range) => {
            // A new DCID (or version) opening with its own keys is a new
            // start: after a Retry or a Version Negotiation the client sends
            // its ClientHello again from offset 0, possibly a different one.
            if q.original
                .as_deref()
                .is_some_and(|c| c.dcid != pkt.dcid || c.version != pkt.version)
            {
                q.restarted = true;
            }
            q.original = Some(Box::new(ConnectionKeys {
                dcid: pkt.dcid.to_vec(),
                version: pkt.version,
                keys: own,
            }));
            return Ok(range);
        }
        Err(e) => e,
    };
    let Some(c) = q.original.as_deref_mut() else {
        return Err(own_err);
    };
    if c.version == pkt.version {
        return pkt.open_range(&c.keys, scratch);
    }
    let upgraded = quic::InitialKeys::new(pkt.version, &c.dcid, quic::Side::Client)?;
    let range = pkt.open_range(&upgraded, scratch)?;
    c.version = pkt.version;
    c.keys = upgraded;
    Ok(range)
}

// === DNS ===

fn dns_datagram(flow: &mut Flow, up: bool, payload: &[u8], ctx: &mut Context<'_>) -> bool {
    let Ok(msg) = dns::Message::parse(payload) else {
        ctx.stats.parse_error(Error::Truncated.reason());
        return false;
    };
    // The side that asks is the client.
    let swapped = !flow.client_confirmed && (up == msg.is_response());
    if !flow.client_confirmed {
        flow.client_confirmed = true;
    }
    let client_ip = if swapped {
        flow.server.ip()
    } else {
        flow.client.ip()
    };
    dns_message(flow, payload, client_ip, ctx);
    flow.stop_dissecting();
    swapped
}

/// Multicast DNS and LLMNR (RFC 6762, RFC 4795): the phone asks for and
/// announces local device and service names. The question (or, in an
/// announcement, the first answer's name) goes to `dns_query`; answers feed
/// the cache only when sent to one client (an LLMNR reply, a unicast mDNS
/// reply), never when multicast to the whole network.
fn mdns_datagram(flow: &mut Flow, up: bool, payload: &[u8], ctx: &mut Context<'_>) {
    flow.app = AppProto::Mdns;
    let Ok(msg) = dns::Message::parse(payload) else {
        return malformed(flow, ctx, Error::Truncated);
    };
    let name = match msg.first_question() {
        Ok(Some(q)) => Some(q.name),
        Ok(None) => msg.answers().next().and_then(|r| r.ok()).map(|r| r.name),
        Err(e) => return malformed(flow, ctx, e),
    };
    if let Some(name) = name.filter(|n| !n.is_root()) {
        let names = flow.names_mut();
        if names.dns_query.is_none() {
            names.dns_query = Some(normalise_name(name.as_bytes()));
        }
    }
    let receiver = if up {
        flow.server.ip()
    } else {
        flow.client.ip()
    };
    if msg.is_response() && !receiver.is_multicast() {
        dns_message(flow, payload, receiver, ctx);
        flow.app = AppProto::Mdns;
    }
}

/// Reads one DNS message: the question names the flow, answers feed the cache.
fn dns_message(flow: &mut Flow, bytes: &[u8], client_ip: IpAddr, ctx: &mut Context<'_>) {
    flow.app = AppProto::Dns;
    let Ok(msg) = dns::Message::parse(bytes) else {
        ctx.stats.parse_error(Error::Truncated.reason());
        return;
    };
    let question = match msg.first_question() {
        Ok(q) => q,
        Err(e) => {
            ctx.stats.parse_error(e.reason());
            return;
        }
    };
    let Some(question) = question else { return };
    let names = flow.names_mut();
    if names.dns_query.is_none() {
        names.dns_query = Some(normalise_name(question.name.as_bytes()));
    }
    if msg.is_response() {
        names.dns_rcode.get_or_insert(msg.rcode());
    } else {
        names.dns_questions = names.dns_questions.saturating_add(1);
    }
    if !msg.is_response() || msg.answer_count() == 0 {
        return;
    }
    let mut chain: Vec<Box<str>> = Vec::new();
    let mut addresses: Vec<(IpAddr, u32)> = Vec::new();
    let mut ech_names: Vec<(Box<str>, u32)> = Vec::new();
    for rec in msg.answers().take(MAX_ANSWERS) {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                ctx.stats.parse_error(e.reason());
                break;
            }
        };
        match msg.rdata(&rec) {
            Ok(dns::RData::Address(a)) => addresses.push((a, rec.ttl)),
            Ok(dns::RData::Cname(target)) if chain.len() < MAX_CHAIN => {
                chain.push(normalise_name(target.as_bytes()))
            }
            Ok(dns::RData::Service { params, .. }) => {
                addresses.extend(dns::service_hints(params).take(32).map(|a| (a, rec.ttl)));
                if let Some(list) = ech::service_ech_param(params) {
                    for name in ech::public_names(list).take(MAX_PUBLIC_NAMES) {
                        match name {
                            Ok(n) => ech_names.push((normalise_name(n), rec.ttl)),
                            Err(e) => {
                                ctx.stats.parse_error(e.reason());
                                break;
                            }
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(e) => ctx.stats.parse_error(e.reason()),
        }
    }
    if let Some(ttl) = ech_names.iter().map(|(_, t)| *t).min() {
        let names = ech_names.into_iter().map(|(n, _)| n).collect();
        let query = normalise_name(question.name.as_bytes());
        ctx.dns.insert_ech(client_ip, &query, names, ttl, ctx.now);
    }
    if addresses.is_empty() {
        return;
    }
    let resolution = Arc::new(Resolution {
        query: normalise_name(question.name.as_bytes()),
        cname_chain: chain.into_boxed_slice(),
    });
    for (addr, ttl) in addresses {
        ctx.dns
            .insert(client_ip, addr, resolution.clone(), ttl, ctx.now);
    }
    let stats = &ctx.stats;
    stats.dns_cache_entries.store(ctx.dns.len() as u64, Relaxed);
    stats.dns_cache_evictions.store(ctx.dns.evicted, Relaxed);
}

// === names ===

struct HelloNames {
    sni: Option<Box<str>>,
    alpn: Vec<Box<str>>,
    ech: bool,
    ja4: ja4::Ja4,
}

fn owned_hello(hello: &tls::ClientHello<'_>, carrier: ja4::Carrier) -> HelloNames {
    HelloNames {
        sni: hello.sni.map(normalise_name),
        alpn: hello.alpn().take(8).map(|p| printable(p).into()).collect(),
        ech: hello.ech,
        ja4: ja4::fingerprint(hello, carrier),
    }
}

/// Real or GREASE: real when the outer SNI is the public name of an ECH
/// configuration this client was given for the name it resolved to reach
/// the server, or, when no answer for this flow was seen, one any client
/// was given.
fn ech_kind(flow: &Flow, h: &HelloNames, dns: &DnsCache, now: Nanos) -> Option<Ech> {
    if !h.ech {
        return None;
    }
    let Some(sni) = h.sni.as_deref() else {
        return Some(Ech::Grease);
    };
    let resolution = flow.names.as_deref().and_then(|n| n.resolution.as_deref());
    let real = match resolution {
        Some(r) => {
            let names = std::iter::once(&*r.query).chain(r.cname_chain.iter().map(|c| &**c));
            dns.is_ech_public_name(flow.client.ip(), names, sni, now)
        }
        None => dns.is_known_public_name(sni, now),
    };
    Some(if real { Ech::Real } else { Ech::Grease })
}

fn set_hello(flow: &mut Flow, h: HelloNames, dns: &DnsCache, now: Nanos) {
    let ech = ech_kind(flow, &h, dns, now);
    let names = flow.names_mut();
    names.sni = h.sni;
    names.alpn = h.alpn;
    names.ech = ech;
    // The first complete ClientHello fingerprints the flow; a later one
    // (after a Retry or a HelloRetryRequest) does not replace it.
    names.ja4.get_or_insert(h.ja4);
}

fn apply_hello(
    flow: &mut Flow,
    hello: &tls::ClientHello<'_>,
    carrier: ja4::Carrier,
    ctx: &Context<'_>,
) {
    let h = owned_hello(hello, carrier);
    set_hello(flow, h, ctx.dns, ctx.now);
}

struct RequestNames {
    host: Option<Box<str>>,
    method: Box<str>,
    path: Box<str>,
}

fn owned_request(req: &http::Request<'_>) -> RequestNames {
    let path = req.path();
    RequestNames {
        host: req
            .host
            .map(|h| normalise_name(http::host_without_port(h.trim_ascii()))),
        method: printable(req.method).into(),
        path: printable(&path[..path.len().min(512)]).into(),
    }
}

fn owned_h2_request(req: &http2::Request) -> RequestNames {
    let path = req.path.as_deref().unwrap_or_default();
    RequestNames {
        host: req
            .authority
            .as_deref()
            .map(|h| normalise_name(http::host_without_port(h.trim_ascii()))),
        method: printable(req.method.as_deref().unwrap_or_default()).into(),
        path: printable(&path[..path.len().min(512)]).into(),
    }
}

fn apply_request(flow: &mut Flow, req: RequestNames) {
    let names = flow.names_mut();
    if names.http_host.is_none() {
        names.http_host = req.host;
        names.http_method = Some(req.method);
        names.http_path = Some(req.path);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::key::Transport;

    /// A TCP stream dissector handed a flow without TCP state (an invariant
    /// broken) stops dissecting it and counts a drop; the capture thread
    /// once panicked there.
    #[test]
    fn a_flow_without_tcp_state_is_a_counted_drop_not_a_panic() {
        let client = "192.0.2.10:40000".parse().unwrap();
        let server = "198.51.100.1:443".parse().unwrap();
        let mut flow = Flow::new(Transport::Udp, client, server, 0);
        assert!(flow.dissector.is_none());
        let stats = Stats::default();
        let mut dns = DnsCache::new(16, 0);
        let (mut scratch, mut handshake) = (Vec::new(), Vec::new());
        let budget = Budget::new(Arc::new(AtomicU64::new(0)), 1 << 20);
        let mut ctx = Context {
            dns: &mut dns,
            stats: &stats,
            scratch: &mut scratch,
            handshake: &mut handshake,
            now: 0,
            buffer_cap: 4096,
            budget: &budget,
        };
        assert!(matches!(tcp_client_stream(&mut flow, &mut ctx), Step::Done));
        assert!(matches!(tcp_dns(&mut flow, true, &mut ctx), Step::Done));
        let missing = stats
            .parse_errors()
            .into_iter()
            .find(|(reason, _)| *reason == crate::stats::DISSECTOR_STATE_MISSING);
        assert_eq!(missing, Some((crate::stats::DISSECTOR_STATE_MISSING, 2)));
    }
}
