//! IPv4 and IPv6 headers, down to the transport payload.
//!
//! The payload is cut to the length the IP header declares (which removes
//! Ethernet trailers) and to what was captured (a snaplen-truncated packet is
//! used as far as it goes). IPv6 extension headers are skipped; fragments are
//! reported so the caller can reassemble them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::be16;
use crate::link::NetProto;
use crate::{Error, Result};

/// IP protocol numbers the pipeline cares about.
pub mod protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// Where a fragment sits in its original datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Identification shared by all fragments of one datagram.
    pub ident: u32,
    /// Offset of this fragment's data, in bytes.
    pub offset: u32,
    /// Whether more fragments follow.
    pub more: bool,
}

/// A parsed IP header and its payload.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The transport protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// The transport-layer bytes (or fragment data).
    pub payload: &'a [u8],
    /// Set when this packet is a fragment (offset > 0 or more fragments).
    pub fragment: Option<Fragment>,
    /// True when fewer bytes were captured than the header declares.
    pub truncated: bool,
}

/// Parses an IP packet of the given version.
pub fn parse(proto: NetProto, bytes: &[u8]) -> Result<Packet<'_>> {
    match proto {
        NetProto::Ipv4 => ipv4(bytes),
        NetProto::Ipv6 => ipv6(bytes),
    }
}

/*  0                   1                   2                   3
|Version|  IHL  |Type of Service|          Total Length         |
|         Identification        |Flags|      Fragment Offset    |
|  Time to Live |    Protocol   |         Header Checksum       |
|                       Source Address                          |
|                    Destination Address                        |      */
fn ipv4(b: &[u8]) -> Result<Packet<'_>> {
    if b.len() < 20 {
        return Err(Error::Truncated);
    }
    if b[0] >> 4 != 4 {
        return Err(Error::BadVersion);
    }
    let header_len = usize::from(b[0] & 0x0f) * 4;
    let total_len = usize::from(be16(b, 2)?);
    if header_len < 20 || total_len < header_len {
        return Err(Error::BadLength);
    }
    if b.len() < header_len {
        return Err(Error::Truncated);
    }
    let end = total_len.min(b.len());
    let flags_frag = be16(b, 6)?;
    let offset = u32::from(flags_frag & 0x1fff) * 8;
    let more = flags_frag & 0x2000 != 0;
    let fragment = (offset != 0 || more).then_some(Fragment {
        ident: u32::from(be16(b, 4)?),
        offset,
        more,
    });
    Ok(Packet {
        src: IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])),
        dst: IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19])),
        protocol: b[9],
        payload: &b[header_len..end],
        fragment,
        truncated: b.len() < total_len,
    })
}

/// Extension headers are bounded: a chain longer than this is hostile.
const MAX_EXTENSION_HEADERS: usize = 8;

fn ipv6(b: &[u8]) -> Result<Packet<'_>> {
    if b.len() < 40 {
        return Err(Error::Truncated);
    }
    if b[0] >> 4 != 6 {
        return Err(Error::BadVersion);
    }
    let payload_len = usize::from(be16(b, 4)?);
    let end = (40 + payload_len).min(b.len());
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let mut next = b[6];
    let mut rest = &b[40..end];
    let mut fragment = None;
    for _ in 0..MAX_EXTENSION_HEADERS {
        match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let len = (usize::from(*rest.get(1).ok_or(Error::Truncated)?) + 1) * 8;
                next = rest[0];
                rest = rest.get(len..).ok_or(Error::Truncated)?;
            }
            44 => {
                let h = rest.get(..8).ok_or(Error::Truncated)?;
                let off_flags = be16(h, 2)?;
                fragment = Some(Fragment {
                    ident: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                    offset: u32::from(off_flags & 0xfff8),
                    more: off_flags & 1 != 0,
                });
                next = h[0];
                rest = &rest[8..];
                if fragment.is_some_and(|f| f.offset != 0) {
                    // Later fragments carry no further headers.
                    break;
                }
            }
            // Authentication header: length in 4-octet units, minus 2.
            51 => {
                let len = (usize::from(*rest.get(1).ok_or(Error::Truncated)?) + 2) * 4;
                next = rest[0];
                rest = rest.get(len..).ok_or(Error::Truncated)?;
            }
            _ => {
                return Ok(Packet {
                    src: addr(8),
                    dst: addr(24),
                    protocol: next,
                    payload: rest,
                    fragment,
                    truncated: b.len() < 40 + payload_len,
                })
            }
        }
    }
    if fragment.is_some_and(|f| f.offset != 0) {
        return Ok(Packet {
            src: addr(8),
            dst: addr(24),
            protocol: next,
            payload: rest,
            fragment,
            truncated: b.len() < 40 + payload_len,
        });
    }
    Err(Error::TooDeep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(total: u16, frag: u16, proto: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34]);
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0, 10, 42, 0, 7, 192, 0, 2, 1]);
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn ipv4_trailer_is_cut_by_total_length() {
        let p = v4(24, 0, 17, &[1, 2, 3, 4, 0xee, 0xee]);
        let ip = parse(NetProto::Ipv4, &p).unwrap();
        assert_eq!(ip.payload, &[1, 2, 3, 4]);
        assert_eq!(ip.src, "10.42.0.7".parse::<IpAddr>().unwrap());
        assert!(!ip.truncated && ip.fragment.is_none());
    }

    #[test]
    fn ipv4_truncated_capture_is_used_as_far_as_it_goes() {
        let p = v4(1000, 0, 6, &[1, 2]);
        let ip = parse(NetProto::Ipv4, &p).unwrap();
        assert!(ip.truncated);
        assert_eq!(ip.payload, &[1, 2]);
    }

    #[test]
    fn ipv4_fragment_fields() {
        let p = v4(28, 0x2000 | 3, 17, &[0; 8]);
        let f = parse(NetProto::Ipv4, &p).unwrap().fragment.unwrap();
        assert_eq!((f.ident, f.offset, f.more), (0x1234, 24, true));
    }

    #[test]
    fn ipv4_bad_lengths() {
        let mut p = v4(10, 0, 6, &[]);
        assert_eq!(parse(NetProto::Ipv4, &p).unwrap_err(), Error::BadLength);
        p[0] = 0x4f; // 60-byte header in a 20-byte packet
        p[2..4].copy_from_slice(&60u16.to_be_bytes());
        assert_eq!(parse(NetProto::Ipv4, &p).unwrap_err(), Error::Truncated);
    }

    fn v6(next: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(body.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(8));
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn ipv6_skips_extension_headers_and_reads_fragments() {
        // hop-by-hop (8 bytes) -> fragment (offset 0, more) -> UDP
        let mut body = vec![44, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&[17, 0, 0x00, 0x01, 0, 0, 0, 9]);
        body.extend_from_slice(&[0xaa; 8]);
        let p = v6(0, &body);
        let ip = parse(NetProto::Ipv6, &p).unwrap();
        assert_eq!(ip.protocol, 17);
        assert_eq!(ip.payload, &[0xaa; 8]);
        assert_eq!(
            ip.fragment,
            Some(Fragment {
                ident: 9,
                offset: 0,
                more: true
            })
        );
    }

    #[test]
    fn ipv6_extension_chain_is_bounded() {
        let body: Vec<u8> = [0u8, 0, 0, 0, 0, 0, 0, 0].repeat(12);
        assert_eq!(
            parse(NetProto::Ipv6, &v6(0, &body)).unwrap_err(),
            Error::TooDeep
        );
    }
}
