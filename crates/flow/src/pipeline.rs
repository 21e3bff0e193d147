//! The one path every packet takes: frame → link → IP → transport → flow.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tetherscope_wire::{dhcp, gtp, ip, link, mdns, tcp, tunnel, udp, Error};

use crate::devices::DeviceTable;
use crate::dissect::{self, Context};
use crate::dns_cache::DnsCache;
use crate::flow::{Flow, TcpState};
use crate::fragments::Fragments;
use crate::key::{FlowKey, Transport};
use crate::reassembly::Budget;
use crate::stats::Stats;
use crate::table::{EvictReason, FlowTable, Timeouts};
use crate::{Nanos, SECOND};

/// Tunables of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Most flows tracked at once.
    pub max_flows: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Most (client, address) entries in the DNS cache.
    pub dns_cache_entries: usize,
    /// Added to every DNS TTL.
    pub dns_ttl_slack: Nanos,
    /// Bytes buffered per flow to read a split handshake.
    pub handshake_buffer: usize,
    /// Bytes all flows' handshake buffers may hold together.
    pub handshake_memory: usize,
    /// Most devices tracked.
    pub max_devices: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_flows: 262_144,
            timeouts: Timeouts::default(),
            dns_cache_entries: 131_072,
            dns_ttl_slack: 300 * SECOND,
            handshake_buffer: 16 * 1024,
            handshake_memory: 32 << 20,
            max_devices: 1024,
        }
    }
}

/// How often (packet time) idle flows are swept out.
const SWEEP_EVERY: Nanos = 5 * SECOND;

/// A flow that left the table, and why.
pub type Finished = (Box<Flow>, EvictReason);

/// Packets in, flows out.
pub struct Pipeline {
    /// The shared flow table.
    pub table: Arc<FlowTable>,
    /// The shared device table.
    pub devices: Arc<DeviceTable>,
    /// The shared counters.
    pub stats: Arc<Stats>,
    dns: DnsCache,
    fragments: Fragments,
    scratch: Vec<u8>,
    handshake: Vec<u8>,
    buffer_cap: usize,
    budget: Budget,
    finished: Vec<Finished>,
    last_sweep: Nanos,
    latest: Nanos,
}

// What finding a flow and dissecting a packet borrow from the pipeline.
// Macros, not methods, so that they borrow fields one by one beside the flow
// the packet holds in the table.
macro_rules! admission {
    ($p:expr) => {
        Admission {
            stats: &$p.stats,
            finished: &mut $p.finished,
            dns: &$p.dns,
            latest: $p.latest,
        }
    };
}

macro_rules! context {
    ($p:expr, $now:expr) => {
        Context {
            dns: &mut $p.dns,
            stats: &$p.stats,
            scratch: &mut $p.scratch,
            handshake: &mut $p.handshake,
            now: $now,
            buffer_cap: $p.buffer_cap,
            budget: &$p.budget,
        }
    };
}

/// Ports that identify a server when the other side's port is ephemeral.
fn is_service_port(p: u16) -> bool {
    p < 1024
        || matches!(
            p,
            1900 | 3478 | 4443 | 5228 | 5353 | 5355 | 7275 | 8080 | 8443
        )
}

impl Pipeline {
    /// A pipeline with fresh tables.
    pub fn new(config: &PipelineConfig) -> Self {
        let stats = Arc::new(Stats::default());
        Pipeline {
            table: Arc::new(FlowTable::new(config.max_flows, config.timeouts)),
            devices: Arc::new(DeviceTable::new(config.max_devices)),
            budget: Budget::new(stats.handshake_bytes.clone(), config.handshake_memory),
            stats,
            dns: DnsCache::new(config.dns_cache_entries, config.dns_ttl_slack),
            fragments: Fragments::default(),
            scratch: vec![0; 65_536],
            handshake: Vec::with_capacity(config.handshake_buffer),
            buffer_cap: config.handshake_buffer,
            finished: Vec::new(),
            last_sweep: 0,
            latest: 0,
        }
    }

    /// Takes the flows that have finished since the last call, oldest
    /// first (then by endpoints and transport). A sweep of idle flows (or
    /// the end of the input) ends them in the order of a randomly seeded
    /// map; sorted, the same capture gives the same records, flow log and
    /// baseline every time.
    pub fn take_finished(&mut self) -> std::vec::Drain<'_, Finished> {
        if self.finished.len() > 1 {
            self.finished
                .sort_by_key(|(f, _)| (f.first_seen, f.client, f.server, f.transport));
        }
        self.finished.drain(..)
    }

    /// Ends the input: every active flow is finished.
    pub fn finish(&mut self) {
        let before = self.finished.len();
        self.table.drain(&mut self.finished);
        self.stats.evicted(
            EvictReason::Shutdown.name(),
            (self.finished.len() - before) as u64,
        );
    }

    /// DNS answers still valid at `now` (to save them across a restart).
    pub fn dns_answers(&self, now: Nanos) -> Vec<crate::dns_cache::ValidAnswer<'_>> {
        self.dns.valid_answers(now)
    }

    /// Puts back a DNS answer saved earlier (see [`DnsCache::restore`]).
    pub fn restore_dns_answer(
        &mut self,
        client: std::net::IpAddr,
        address: std::net::IpAddr,
        resolution: std::sync::Arc<crate::dns_cache::Resolution>,
        expires: Nanos,
    ) {
        self.dns.restore(client, address, resolution, expires);
    }

    /// Entries in the DNS answer cache.
    pub fn dns_cache_len(&self) -> usize {
        self.dns.len()
    }

    /// Packet time of the newest packet ingested (0 before the first).
    pub fn latest(&self) -> Nanos {
        self.latest
    }

    /// Expires idle flows as of `now` (the live source calls this when idle).
    pub fn tick(&mut self, now: Nanos) {
        if now >= self.last_sweep + SWEEP_EVERY {
            self.last_sweep = now;
            let before = self.finished.len();
            self.table.take_expired(now, &mut self.finished);
            self.stats.evicted(
                EvictReason::Idle.name(),
                (self.finished.len() - before) as u64,
            );
            self.fragments.expire(now);
        }
    }

    /// Ingests one captured frame.
    pub fn ingest(&mut self, ts: Nanos, link_type: u32, wire_len: u32, frame: &[u8]) {
        let stats = &*self.stats;
        Stats::add(&stats.packets, 1);
        Stats::add(&stats.bytes, u64::from(wire_len));
        let truncated = (frame.len() as u64) < u64::from(wire_len);
        if truncated {
            Stats::add(&stats.truncated, 1);
        }
        // Packet time only moves forward for sweeping purposes.
        if ts > self.latest {
            self.latest = ts;
        }
        self.tick(self.latest);
        let frame_view = match link::decode(link::LinkType(link_type), frame) {
            Ok(f) => f,
            Err(Error::NotIp) => {
                Stats::add(&self.stats.not_ip, 1);
                return;
            }
            Err(e) => return self.stats.parse_error(e.reason()),
        };
        self.ip_packet(
            ts,
            frame_view.proto,
            frame_view.payload,
            wire_len,
            truncated,
            frame_view.src_mac,
            0,
        );
    }

    /// One IP packet; `depth` counts tunnels already opened.
    #[allow(clippy::too_many_arguments)]
    fn ip_packet(
        &mut self,
        ts: Nanos,
        proto: link::NetProto,
        bytes: &[u8],
        wire_len: u32,
        truncated: bool,
        src_mac: Option<[u8; 6]>,
        depth: u8,
    ) {
        let packet = match ip::parse(proto, bytes) {
            Ok(p) => p,
            Err(e) => return self.stats.parse_error(e.reason()),
        };
        if let (Some(mac), true) = (src_mac, is_device_address(packet.src) && depth == 0) {
            self.devices.observe(mac, packet.src);
        }
        // Tunnels (GTP-U, VXLAN, Geneve, GRE, IP-in-IP, Teredo) carry the
        // traffic worth naming: the inner flow is the one reported, and it
        // belongs to the device that sent the outer packet.
        if depth < MAX_TUNNEL_DEPTH && packet.fragment.is_none() {
            if let Some(inner) = tunnel_payload(packet.protocol, packet.payload) {
                let frame = match inner {
                    tunnel::Inner::Ip(proto, bytes) => Ok((proto, bytes)),
                    tunnel::Inner::Ethernet(bytes) => {
                        link::decode(link::LinkType::ETHERNET, bytes).map(|f| (f.proto, f.payload))
                    }
                    tunnel::Inner::Ppp(bytes) => {
                        link::decode(link::LinkType::PPP, bytes).map(|f| (f.proto, f.payload))
                    }
                };
                match frame {
                    Ok((proto, bytes)) => {
                        return self.ip_packet(
                            ts,
                            proto,
                            bytes,
                            wire_len,
                            truncated,
                            src_mac,
                            depth + 1,
                        )
                    }
                    // Tunnelled non-IP (ARP, keepalives): nothing to name.
                    Err(Error::NotIp) => return Stats::add(&self.stats.not_ip, 1),
                    Err(e) => return self.stats.parse_error(e.reason()),
                }
            }
        }
        if let Some(frag) = packet.fragment {
            Stats::add(&self.stats.fragments, 1);
            if packet.protocol != ip::protocol::UDP {
                return self.stats.parse_error(crate::stats::FRAGMENT_NOT_UDP);
            }
            let done = self.fragments.add(
                packet.src,
                packet.dst,
                packet.protocol,
                frag.ident,
                frag.offset,
                frag.more,
                packet.payload,
                wire_len,
                ts,
            );
            let frame_view_mac = src_mac;
            Stats::add(&self.stats.fragments_dropped, self.fragments.dropped);
            self.fragments.dropped = 0;
            let Some(whole) = done else { return };
            let wire = u32::try_from(whole.wire_bytes).unwrap_or(u32::MAX);
            return self.transport(
                ts,
                packet.src,
                packet.dst,
                packet.protocol,
                &whole.payload,
                wire,
                false,
                frame_view_mac,
            );
        }
        self.transport(
            ts,
            packet.src,
            packet.dst,
            packet.protocol,
            packet.payload,
            wire_len,
            truncated,
            src_mac,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        ts: Nanos,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        payload: &[u8],
        wire_len: u32,
        truncated: bool,
        src_mac: Option<[u8; 6]>,
    ) {
        let transport = Transport::from_protocol(protocol);
        match transport {
            Transport::Tcp => match tcp::Segment::parse(payload) {
                Ok(seg) => {
                    let s = SocketAddr::new(src, seg.src_port());
                    let d = SocketAddr::new(dst, seg.dst_port());
                    self.tcp(ts, s, d, &seg, wire_len, truncated, src_mac)
                }
                Err(e) => self.stats.parse_error(e.reason()),
            },
            Transport::Udp => match udp::Datagram::parse(payload) {
                Ok(dg) => {
                    let s = SocketAddr::new(src, dg.src_port);
                    let d = SocketAddr::new(dst, dg.dst_port);
                    self.udp(ts, s, d, dg.payload, wire_len, truncated, src_mac)
                }
                Err(e) => self.stats.parse_error(e.reason()),
            },
            _ => {
                let s = SocketAddr::new(src, 0);
                let d = SocketAddr::new(dst, 0);
                let mut flow = flow_for(
                    &self.table,
                    admission!(self),
                    (transport, s, d, ts),
                    |_, _| true,
                    false,
                );
                account(&mut flow, s, ts, wire_len, truncated, src_mac);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        ts: Nanos,
        src: SocketAddr,
        dst: SocketAddr,
        seg: &tcp::Segment<'_>,
        wire_len: u32,
        truncated: bool,
        src_mac: Option<[u8; 6]>,
    ) {
        use tcp::flags::{ACK, FIN, RST, SYN};
        let syn_only = seg.has(SYN) && !seg.has(ACK);
        let syn_ack = seg.has(SYN | ACK);
        let key = FlowKey::new(Transport::Tcp, src, dst);
        let restart = syn_only
            && self.table.map.get(&key).is_some_and(|f| {
                matches!(
                    f.tcp,
                    TcpState::Closed | TcpState::Reset | TcpState::Closing
                ) || (f.tcp != TcpState::SynSent && f.client == dst)
            });
        let mut flow = flow_for(
            &self.table,
            admission!(self),
            (Transport::Tcp, src, dst, ts),
            |s, d| {
                if syn_only {
                    true
                } else if syn_ack {
                    false
                } else {
                    !is_service_port(s.port()) || is_service_port(d.port())
                }
            },
            restart,
        );
        if flow.packets_up + flow.packets_down == 0 {
            flow.client_confirmed = syn_only || syn_ack;
            flow.probing = true;
            if !syn_only && !syn_ack {
                flow.tcp = TcpState::Established;
            }
        }
        let up = account(&mut flow, src, ts, wire_len, truncated, src_mac);
        let dir = usize::from(!up);
        if seg.has(RST) {
            flow.tcp = TcpState::Reset;
        } else if seg.has(FIN) {
            flow.fin[dir] = true;
            flow.tcp = if flow.fin == [true, true] {
                TcpState::Closed
            } else {
                TcpState::Closing
            };
        } else if syn_ack {
            if flow.tcp == TcpState::SynSent {
                flow.tcp = TcpState::SynReceived;
            }
        } else if seg.has(ACK)
            && matches!(flow.tcp, TcpState::SynSent | TcpState::SynReceived)
            && !syn_only
        {
            flow.tcp = TcpState::Established;
        }
        if flow.dissecting() {
            let mut ctx = context!(self, ts);
            dissect::tcp_segment(
                &mut flow,
                up,
                seg.has(SYN),
                seg.seq(),
                seg.payload(),
                &mut ctx,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn udp(
        &mut self,
        ts: Nanos,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        wire_len: u32,
        truncated: bool,
        src_mac: Option<[u8; 6]>,
    ) {
        let mut flow = flow_for(
            &self.table,
            admission!(self),
            (Transport::Udp, src, dst, ts),
            |s, d| !is_service_port(s.port()) || is_service_port(d.port()),
            false,
        );
        if flow.packets_up + flow.packets_down == 0 {
            flow.probing = true;
        }
        let up = account(&mut flow, src, ts, wire_len, truncated, src_mac);
        if src.port() == 67 || src.port() == 68 || dst.port() == 67 {
            self.dhcp_identity(payload, src_mac);
        }
        if src.port() == mdns::PORT && is_device_address(src.ip()) {
            self.mdns_identity(payload, src.ip(), src_mac);
        }
        let mut ctx = context!(self, ts);
        let swap = (flow.dissecting() || src.port() == 53 || dst.port() == 53)
            && dissect::udp_datagram(&mut flow, up, payload, &mut ctx);
        if swap {
            swap_sides(&mut flow, src_mac);
        }
    }
}

// === device identity ===

impl Pipeline {
    /// What a DHCP client message says about its client. Only the station
    /// that sent the frame can speak for itself: a message whose client
    /// hardware address is not the frame's source MAC (a forged request,
    /// or one without a link address to check) names and identifies no
    /// one, and is counted. Server replies say nothing about the client.
    fn dhcp_identity(&self, payload: &[u8], src_mac: Option<[u8; 6]>) {
        let Ok(info) = dhcp::parse(payload) else {
            return;
        };
        if !info.from_client() {
            return;
        }
        let Some(mac) = info.mac.filter(|m| Some(*m) == src_mac) else {
            return self.stats.parse_error(crate::stats::DHCP_CLIENT_MISMATCH);
        };
        if let Some(name) = info.host_name {
            self.devices.set_name(mac, &String::from_utf8_lossy(name));
        }
        self.devices
            .set_dhcp_identity(mac, info.vendor_class, info.parameter_list);
    }

    /// What an mDNS response from a hotspot client says about the sender.
    /// Malformed messages were counted by the flow's dissector already;
    /// names and models that cannot be shown safely are counted here.
    fn mdns_identity(&self, payload: &[u8], sender: IpAddr, src_mac: Option<[u8; 6]>) {
        let Some(mac) = src_mac else { return };
        let Ok(a) = mdns::parse(payload, sender) else {
            return;
        };
        if a.is_empty() {
            return;
        }
        let take = |bytes: Option<&[u8]>| {
            let bytes = bytes?;
            let text = crate::devices::mdns_text(bytes);
            if text.is_none() {
                self.stats.parse_error(crate::stats::MDNS_NAME_REJECTED);
            }
            text
        };
        let announced = crate::devices::Announced {
            host: take(a.host_name()),
            name: take(a.instance_name()),
            model: take(a.model),
        };
        self.devices.set_announced(mac, announced);
    }
}

/// A packet's flow in place in the table. Its shard stays locked for
/// writing while the packet is worked on, so a packet of a known flow costs
/// one hash lookup; nothing that holds one touches the table otherwise.
type FlowRef<'t> = dashmap::mapref::one::RefMut<'t, FlowKey, Box<Flow>>;

/// What finding or making a flow needs besides the table.
struct Admission<'a> {
    stats: &'a Stats,
    finished: &'a mut Vec<Finished>,
    dns: &'a DnsCache,
    latest: Nanos,
}

/// The flow for a packet (transport, source, destination, time), found or
/// made. `src_is_client` decides the initiator of a new flow. `restart` ends
/// an existing flow and starts a new one (a new SYN on closed endpoints).
fn flow_for<'t>(
    table: &'t FlowTable,
    a: Admission<'_>,
    (transport, src, dst, ts): (Transport, SocketAddr, SocketAddr, Nanos),
    src_is_client: impl Fn(SocketAddr, SocketAddr) -> bool,
    restart: bool,
) -> FlowRef<'t> {
    let key = FlowKey::new(transport, src, dst);
    if let Some(flow) = table.map.get_mut(&key) {
        let idle = ts.saturating_sub(flow.last_seen) > table.timeouts.for_flow(&flow);
        if !(restart || idle) {
            return flow;
        }
        drop(flow);
        let reason = if idle {
            EvictReason::Idle
        } else {
            EvictReason::Reused
        };
        if let Some((_, old)) = table.map.remove(&key) {
            a.stats.evicted(reason.name(), 1);
            a.finished.push((old, reason));
        }
    }
    if table.len() >= table.max_flows {
        let before = a.finished.len();
        table.take_expired(a.latest, a.finished);
        a.stats
            .evicted(EvictReason::Idle.name(), (a.finished.len() - before) as u64);
        if table.len() >= table.max_flows {
            let before = a.finished.len();
            table.evict_for_capacity(a.finished);
            a.stats.evicted(
                EvictReason::Capacity.name(),
                (a.finished.len() - before) as u64,
            );
        }
    }
    Stats::add(&a.stats.flows_created, 1);
    let (client, server) = if src_is_client(src, dst) {
        (src, dst)
    } else {
        (dst, src)
    };
    let mut flow = Box::new(Flow::new(transport, client, server, ts));
    if let Some(r) = a.dns.lookup(client.ip(), server.ip(), ts) {
        flow.names_mut().resolution = Some(r);
    }
    table.map.entry(key).or_insert(flow)
}

/// Counts a packet into its flow; returns whether it went client → server.
fn account(
    flow: &mut Flow,
    src: SocketAddr,
    ts: Nanos,
    wire_len: u32,
    truncated: bool,
    src_mac: Option<[u8; 6]>,
) -> bool {
    let up = flow.client == src;
    if up {
        flow.packets_up += 1;
        flow.bytes_up += u64::from(wire_len);
        if flow.client_mac.is_none() {
            flow.client_mac = src_mac;
        }
    } else {
        flow.packets_down += 1;
        flow.bytes_down += u64::from(wire_len);
    }
    if ts > flow.last_seen {
        flow.last_seen = ts;
    }
    if truncated {
        flow.truncated_packets = flow.truncated_packets.saturating_add(1);
    }
    up
}

/// The flow had client and server the wrong way round.
fn swap_sides(flow: &mut Flow, sender_mac: Option<[u8; 6]>) {
    std::mem::swap(&mut flow.client, &mut flow.server);
    std::mem::swap(&mut flow.packets_up, &mut flow.packets_down);
    std::mem::swap(&mut flow.bytes_up, &mut flow.bytes_down);
    flow.client_mac = sender_mac;
    flow.client_confirmed = true;
}

/// Tunnels opened inside tunnels before the packet is taken as it is.
const MAX_TUNNEL_DEPTH: u8 = 4;

/// What a tunnel packet carries, when `payload` (of IP protocol
/// `protocol`) is one: GRE and IP-in-IP by protocol number, the UDP
/// tunnels by port and only when their header checks out, so an ordinary
/// flow on one of those ports stays an ordinary flow.
fn tunnel_payload(protocol: u8, payload: &[u8]) -> Option<tunnel::Inner<'_>> {
    match protocol {
        tunnel::PROTO_IPIP => Some(tunnel::Inner::Ip(link::NetProto::Ipv4, payload)),
        tunnel::PROTO_IPV6 => Some(tunnel::Inner::Ip(link::NetProto::Ipv6, payload)),
        tunnel::PROTO_GRE => tunnel::gre(payload).ok(),
        ip::protocol::UDP => {
            let dg = udp::Datagram::parse(payload).ok()?;
            let port = |p: u16| dg.src_port == p || dg.dst_port == p;
            if port(gtp::PORT) {
                let (proto, inner) = gtp::decapsulate(dg.payload).ok()?;
                Some(tunnel::Inner::Ip(proto, inner))
            } else if port(tunnel::VXLAN_PORT) {
                tunnel::vxlan(dg.payload).ok()
            } else if port(tunnel::GENEVE_PORT) {
                tunnel::geneve(dg.payload).ok()
            } else if port(tunnel::TEREDO_PORT) {
                tunnel::teredo(dg.payload).ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Whether a source address can be a device on the hotspot's side (private
/// or link-local): only such a packet teaches the device table its MAC.
fn is_device_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_private() || a.is_link_local(),
        IpAddr::V6(a) => {
            (a.segments()[0] & 0xfe00) == 0xfc00 || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}
