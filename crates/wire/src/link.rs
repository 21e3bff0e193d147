//! Link layers: from a captured frame to the IP packet inside it.
//!
//! Supported: Ethernet (802.1Q/802.1ad tags, stacked QinQ, PPPoE sessions,
//! MPLS label stacks; trailers are cut later by the IP length), Linux cooked
//! capture v1 and v2, raw IP, BSD loopback/null, OpenBSD loop, PPP and
//! Cisco HDLC.

use crate::bytes::{be16, be32};
use crate::{Error, Result};

/// A pcap link-layer type (LINKTYPE_* value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte address family in the writer's byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP, with or without HDLC address/control bytes.
    pub const PPP: LinkType = LinkType(9);
    /// PPP in HDLC-like framing.
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// Raw IP (version from the first nibble).
    pub const RAW: LinkType = LinkType(101);
    /// Cisco HDLC: address, control, then an EtherType.
    pub const C_HDLC: LinkType = LinkType(104);
    /// OpenBSD loopback: address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The link type from a capture header field, without the FCS/flag bits
    /// that some writers set in its upper bits.
    pub fn from_header_field(raw: u32) -> LinkType {
        LinkType(raw & 0x03FF_FFFF)
    }

    /// Whether [`decode`] understands this link type.
    pub fn is_supported(self) -> bool {
        matches!(
            self.0,
            0 | 1 | 9 | 12 | 14 | 50 | 101 | 104 | 108 | 113 | 228 | 229 | 276
        )
    }
}

/// The network protocol found inside a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetProto {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// What a frame holds once the link layer is peeled off.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// IPv4 or IPv6.
    pub proto: NetProto,
    /// The network-layer packet (may include a link-layer trailer).
    pub payload: &'a [u8],
    /// Source MAC address, where the link layer has one.
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC address, where the link layer has one.
    pub dst_mac: Option<[u8; 6]>,
    /// Innermost 802.1Q VLAN id.
    pub vlan: Option<u16>,
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: [u16; 4] = [0x8100, 0x88a8, 0x9100, 0x9200];
const ETH_PPPOE_SESSION: u16 = 0x8864;
const ETH_MPLS: [u16; 2] = [0x8847, 0x8848];
/// More tags than this is not a real network; refuse rather than loop.
const MAX_ENCAPSULATIONS: usize = 8;

/// Peels the link layer off `frame`.
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Frame<'_>> {
    match link.0 {
        1 => ethernet(frame),
        113 => sll(frame),
        276 => sll2(frame),
        12 | 14 | 101 => raw(frame),
        228 => Ok(bare(NetProto::Ipv4, frame)),
        229 => Ok(bare(NetProto::Ipv6, frame)),
        0 => null(frame),
        108 => loopback_network_order(frame),
        9 | 50 => ppp(frame),
        104 => cisco_hdlc(frame),
        _ => Err(Error::UnknownLinkType),
    }
}

fn bare(proto: NetProto, payload: &[u8]) -> Frame<'_> {
    Frame {
        proto,
        payload,
        src_mac: None,
        dst_mac: None,
        vlan: None,
    }
}

fn mac(bytes: &[u8], at: usize) -> Result<[u8; 6]> {
    bytes
        .get(at..at + 6)
        .and_then(|m| m.try_into().ok())
        .ok_or(Error::Truncated)
}

fn ethernet(frame: &[u8]) -> Result<Frame<'_>> {
    if frame.len() < 14 {
        return Err(Error::Truncated);
    }
    let dst = mac(frame, 0)?;
    let src = mac(frame, 6)?;
    let ethertype = be16(frame, 12)?;
    let mut out = by_ethertype(ethertype, &frame[14..])?;
    out.src_mac = Some(src);
    out.dst_mac = Some(dst);
    Ok(out)
}

/// Follows an EtherType through VLAN tags, PPPoE and MPLS to IP.
fn by_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Result<Frame<'_>> {
    let mut vlan = None;
    for _ in 0..MAX_ENCAPSULATIONS {
        match ethertype {
            ETH_IPV4 => {
                return Ok(Frame {
                    vlan,
                    ..bare(NetProto::Ipv4, rest)
                })
            }
            ETH_IPV6 => {
                return Ok(Frame {
                    vlan,
                    ..bare(NetProto::Ipv6, rest)
                })
            }
            t if ETH_VLAN.contains(&t) => {
                vlan = Some(be16(rest, 0)? & 0x0fff);
                ethertype = be16(rest, 2)?;
                rest = &rest[4..];
            }
            ETH_PPPOE_SESSION => {
                // ver/type, code, session id, length, then a PPP protocol id.
                let len = be16(rest, 4)? as usize;
                let body = rest.get(6..).ok_or(Error::Truncated)?;
                let body = &body[..len.min(body.len())];
                return ppp_protocol(body).map(|f| Frame { vlan, ..f });
            }
            t if ETH_MPLS.contains(&t) => {
                let inner = mpls(rest)?;
                let mut f = raw(inner)?;
                f.vlan = vlan;
                return Ok(f);
            }
            _ => return Err(Error::NotIp),
        }
    }
    Err(Error::TooDeep)
}

/// Pops an MPLS label stack, returning what follows the bottom label.
fn mpls(mut rest: &[u8]) -> Result<&[u8]> {
    for _ in 0..MAX_ENCAPSULATIONS {
        let entry = be32(rest, 0)?;
        rest = &rest[4..];
        if entry & 0x100 != 0 {
            return Ok(rest);
        }
    }
    Err(Error::TooDeep)
}

/// Raw IP: the version nibble says which.
fn raw(frame: &[u8]) -> Result<Frame<'_>> {
    match frame.first().map(|b| b >> 4) {
        Some(4) => Ok(bare(NetProto::Ipv4, frame)),
        Some(6) => Ok(bare(NetProto::Ipv6, frame)),
        Some(_) => Err(Error::NotIp),
        None => Err(Error::Truncated),
    }
}

fn sll(frame: &[u8]) -> Result<Frame<'_>> {
    // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
    if frame.len() < 16 {
        return Err(Error::Truncated);
    }
    let hatype = be16(frame, 2)?;
    let alen = be16(frame, 4)?;
    let ethertype = be16(frame, 14)?;
    let mut out = by_ethertype(ethertype, &frame[16..])?;
    if hatype == 1 && alen == 6 {
        out.src_mac = Some(mac(frame, 6)?);
    }
    Ok(out)
}

fn sll2(frame: &[u8]) -> Result<Frame<'_>> {
    // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) address length(1) address(8)
    if frame.len() < 20 {
        return Err(Error::Truncated);
    }
    let ethertype = be16(frame, 0)?;
    let hatype = be16(frame, 8)?;
    let alen = frame[11];
    let mut out = by_ethertype(ethertype, &frame[20..])?;
    if hatype == 1 && alen == 6 {
        out.src_mac = Some(mac(frame, 12)?);
    }
    Ok(out)
}

/// BSD loopback. The family is in the writer's byte order, and AF_INET6 is
/// 24, 28 or 30 depending on the OS, so both orders are tried.
fn null(frame: &[u8]) -> Result<Frame<'_>> {
    let head: [u8; 4] = frame
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or(Error::Truncated)?;
    let payload = &frame[4..];
    for family in [u32::from_le_bytes(head), u32::from_be_bytes(head)] {
        match family {
            2 => return Ok(bare(NetProto::Ipv4, payload)),
            10 | 24 | 28 | 30 => return Ok(bare(NetProto::Ipv6, payload)),
            _ => {}
        }
    }
    Err(Error::NotIp)
}

fn loopback_network_order(frame: &[u8]) -> Result<Frame<'_>> {
    let payload = frame.get(4..).ok_or(Error::Truncated)?;
    match be32(frame, 0)? {
        2 => Ok(bare(NetProto::Ipv4, payload)),
        10 | 24 | 28 | 30 => Ok(bare(NetProto::Ipv6, payload)),
        _ => Err(Error::NotIp),
    }
}

/// PPP (RFC 1661), optionally with the HDLC address/control bytes, and with
/// or without protocol-field compression.
fn ppp(frame: &[u8]) -> Result<Frame<'_>> {
    let mut rest = frame;
    if rest.starts_with(&[0xff, 0x03]) {
        rest = &rest[2..];
    }
    ppp_protocol(rest)
}

/// A PPP protocol field and what follows it. The field is one byte when the
/// peers negotiated protocol-field compression (RFC 1661 §6.5): a protocol
/// number's low byte is odd and its high byte even, so an odd first byte
/// is a whole, compressed field.
fn ppp_protocol(rest: &[u8]) -> Result<Frame<'_>> {
    let first = *rest.first().ok_or(Error::Truncated)?;
    let (proto, skip) = if first & 1 == 1 {
        (u16::from(first), 1)
    } else {
        (be16(rest, 0)?, 2)
    };
    let payload = &rest[skip..];
    match proto {
        0x21 => Ok(bare(NetProto::Ipv4, payload)),
        0x57 => Ok(bare(NetProto::Ipv6, payload)),
        _ => Err(Error::NotIp),
    }
}

/// Cisco HDLC: address (0x0f unicast, 0x8f broadcast), control (0), then
/// an EtherType, as on Ethernet.
fn cisco_hdlc(frame: &[u8]) -> Result<Frame<'_>> {
    let ethertype = be16(frame, 2)?;
    by_ethertype(ethertype, &frame[4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        f.extend_from_slice(ethertype);
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn ethernet_ipv4_with_macs() {
        let f = eth(&[0x08, 0x00], &[0x45, 0, 0, 20]);
        let out = decode(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(out.proto, NetProto::Ipv4);
        assert_eq!(out.src_mac, Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(out.payload, &[0x45, 0, 0, 20]);
    }

    #[test]
    fn qinq_then_pppoe_then_ipv4() {
        let mut rest = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x88, 0x64];
        rest.extend_from_slice(&[
            0x11, 0x00, 0x12, 0x34, 0x00, 0x06, 0x00, 0x21, 0x45, 0, 0, 0, 0xee,
        ]);
        let f = eth(&[0x88, 0xa8], &rest);
        let out = decode(LinkType::ETHERNET, &f).unwrap();
        assert_eq!(out.vlan, Some(20));
        assert_eq!(out.proto, NetProto::Ipv4);
        // PPPoE length (6) bounds the payload: the trailing 0xee is cut.
        assert_eq!(out.payload, &[0x45, 0, 0, 0]);
    }

    #[test]
    fn mpls_stack_then_ipv6() {
        let rest = [0, 0, 0x10, 0xff, 0, 0, 0x21, 0xff, 0x60, 0, 0, 0];
        let frame = eth(&[0x88, 0x47], &rest);
        let out = decode(LinkType::ETHERNET, &frame).unwrap();
        assert_eq!(out.proto, NetProto::Ipv6);
        assert_eq!(out.payload, &[0x60, 0, 0, 0]);
    }

    #[test]
    fn endless_vlan_tags_are_refused() {
        let rest: Vec<u8> = [0x00, 0x01, 0x81, 0x00].repeat(20);
        assert_eq!(
            decode(LinkType::ETHERNET, &eth(&[0x81, 0x00], &rest)).unwrap_err(),
            Error::TooDeep
        );
    }

    #[test]
    fn null_loopback_in_either_byte_order() {
        assert_eq!(
            decode(LinkType::NULL, &[2, 0, 0, 0, 0x45]).unwrap().proto,
            NetProto::Ipv4
        );
        assert_eq!(
            decode(LinkType::NULL, &[0, 0, 0, 30, 0x60]).unwrap().proto,
            NetProto::Ipv6
        );
        assert_eq!(
            decode(LinkType::NULL, &[24, 0, 0, 0, 0x60]).unwrap().proto,
            NetProto::Ipv6
        );
        assert_eq!(
            decode(LinkType::NULL, &[7, 0, 0, 0, 0x60]).unwrap_err(),
            Error::NotIp
        );
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let mut v1 = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 9, 0, 0, 0x86, 0xdd];
        v1.push(0x60);
        let out = decode(LinkType::LINUX_SLL, &v1).unwrap();
        assert_eq!(
            (out.proto, out.src_mac),
            (NetProto::Ipv6, Some([2, 0, 0, 0, 0, 9]))
        );
        let mut v2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 7, 0, 0,
        ];
        v2.push(0x45);
        let out = decode(LinkType::LINUX_SLL2, &v2).unwrap();
        assert_eq!(
            (out.proto, out.src_mac),
            (NetProto::Ipv4, Some([2, 0, 0, 0, 0, 7]))
        );
    }

    #[test]
    fn ppp_forms() {
        assert_eq!(
            decode(LinkType::PPP, &[0xff, 0x03, 0x00, 0x21, 0x45])
                .unwrap()
                .payload,
            &[0x45]
        );
        assert_eq!(
            decode(LinkType::PPP, &[0x57, 0x60]).unwrap().proto,
            NetProto::Ipv6
        );
    }

    #[test]
    fn pppoe_with_a_compressed_protocol_field() {
        // PPPoE session header, then PPP protocol 0x21 in one byte.
        let rest = [0x11, 0x00, 0x12, 0x34, 0x00, 0x05, 0x21, 0x45, 0, 0, 0];
        let frame = eth(&[0x88, 0x64], &rest);
        let out = decode(LinkType::ETHERNET, &frame).unwrap();
        assert_eq!(out.proto, NetProto::Ipv4);
        assert_eq!(out.payload, &[0x45, 0, 0, 0]);
        let v6 = [0x11, 0x00, 0x12, 0x34, 0x00, 0x02, 0x57, 0x60];
        let frame = eth(&[0x88, 0x64], &v6);
        let out = decode(LinkType::ETHERNET, &frame).unwrap();
        assert_eq!(out.proto, NetProto::Ipv6);
    }

    #[test]
    fn cisco_hdlc_frames() {
        assert!(LinkType::C_HDLC.is_supported());
        let out = decode(LinkType::C_HDLC, &[0x0f, 0x00, 0x08, 0x00, 0x45, 1]).unwrap();
        assert_eq!((out.proto, out.payload), (NetProto::Ipv4, &[0x45, 1][..]));
        let out = decode(LinkType::C_HDLC, &[0x8f, 0x00, 0x86, 0xdd, 0x60]).unwrap();
        assert_eq!(out.proto, NetProto::Ipv6);
        // SLARP keepalives are not IP.
        assert_eq!(
            decode(LinkType::C_HDLC, &[0x8f, 0x00, 0x80, 0x35, 0, 0]).unwrap_err(),
            Error::NotIp
        );
        assert_eq!(
            decode(LinkType::C_HDLC, &[0x0f, 0x00, 0x08]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn link_type_flag_bits_are_masked() {
        assert_eq!(LinkType::from_header_field(0x4000_0000), LinkType::NULL);
        assert_eq!(LinkType::from_header_field(0x1000_0001), LinkType::ETHERNET);
    }

    #[test]
    fn short_frames_are_truncated_not_panics() {
        for link in [0, 1, 9, 101, 104, 108, 113, 228, 276] {
            for len in 0..24 {
                let f = vec![0x81; len];
                let _ = decode(LinkType(link), &f);
            }
        }
    }
}
