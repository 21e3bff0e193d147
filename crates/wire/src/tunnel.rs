//! Tunnels that carry whole packets or frames: VXLAN, Geneve, GRE,
//! IP-in-IP / IPv6-in-IPv4 and Teredo. Each function returns what the
//! tunnel carries, for the caller to dissect as if captured directly.
//!
//! ```text
//! VXLAN (RFC 7348, UDP 4789):  flags(1: I=0x08) reserved(3) VNI(3) reserved(1) | Ethernet
//! Geneve (RFC 8926, UDP 6081): ver(2b) opt_len(6b, 4-byte words) flags(1)
//!                              protocol(2: EtherType) VNI(3) reserved(1) options | payload
//! GRE (RFC 2784, RFC 2890; IP protocol 47):
//!     C K S flags, version(3b) (2) protocol(2: EtherType)
//!     [checksum(2) reserved(2)] [key(4)] [sequence(4)] | payload
//! PPTP's enhanced GRE (RFC 2637, version 1): key always, sequence if S,
//!     acknowledgement if A (0x0080) | PPP
//! Teredo (RFC 4380, UDP 3544): [authentication 0x0001 ...]
//!     [origin indication 0x0000 + port(2) + address(4)] | IPv6
//! ```

use crate::bytes::{be16, Reader};
use crate::link::NetProto;
use crate::{Error, Result};

/// VXLAN's IANA port.
pub const VXLAN_PORT: u16 = 4789;
/// Geneve's IANA port.
pub const GENEVE_PORT: u16 = 6081;
/// Teredo's IANA port.
pub const TEREDO_PORT: u16 = 3544;
/// IP protocol number of IPv4-in-IP (RFC 2003).
pub const PROTO_IPIP: u8 = 4;
/// IP protocol number of IPv6 encapsulation (RFC 2473, 6in4).
pub const PROTO_IPV6: u8 = 41;
/// IP protocol number of GRE.
pub const PROTO_GRE: u8 = 47;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Transparent Ethernet bridging: a whole Ethernet frame follows.
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_PPP: u16 = 0x880b;

/// What a tunnel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// An IP packet.
    Ip(NetProto, &'a [u8]),
    /// An Ethernet frame.
    Ethernet(&'a [u8]),
    /// A PPP frame (PPTP).
    Ppp(&'a [u8]),
}

fn by_ethertype(ethertype: u16, payload: &[u8]) -> Result<Inner<'_>> {
    match ethertype {
        ETHERTYPE_IPV4 => Ok(Inner::Ip(NetProto::Ipv4, payload)),
        ETHERTYPE_IPV6 => Ok(Inner::Ip(NetProto::Ipv6, payload)),
        ETHERTYPE_TEB => Ok(Inner::Ethernet(payload)),
        ETHERTYPE_PPP => Ok(Inner::Ppp(payload)),
        _ => Err(Error::NotIp),
    }
}

/// The Ethernet frame inside a VXLAN packet.
pub fn vxlan(bytes: &[u8]) -> Result<Inner<'_>> {
    let header = bytes.get(..8).ok_or(Error::Truncated)?;
    // The I flag says the VNI is valid; the other flag bits are reserved
    // (but for the group-policy extension's G bit), as is the last byte.
    if header[0] & 0x08 == 0 || header[0] & 0x77 != 0 || header[7] != 0 {
        return Err(Error::BadVersion);
    }
    Ok(Inner::Ethernet(&bytes[8..]))
}

/// What a Geneve packet carries.
pub fn geneve(bytes: &[u8]) -> Result<Inner<'_>> {
    let first = *bytes.first().ok_or(Error::Truncated)?;
    if first >> 6 != 0 {
        return Err(Error::BadVersion);
    }
    let options = usize::from(first & 0x3f) * 4;
    let protocol = be16(bytes, 2)?;
    let payload = bytes.get(8 + options..).ok_or(Error::Truncated)?;
    by_ethertype(protocol, payload)
}

/// What a GRE packet carries (versions 0 and 1).
pub fn gre(bytes: &[u8]) -> Result<Inner<'_>> {
    let mut r = Reader::new(bytes);
    let flags = r.u16()?;
    let protocol = r.u16()?;
    let (checksum, key, sequence) = (
        flags & 0x8000 != 0,
        flags & 0x2000 != 0,
        flags & 0x1000 != 0,
    );
    match flags & 0x7 {
        0 => {
            if checksum {
                r.skip(4)?;
            }
            if key {
                r.skip(4)?;
            }
            if sequence {
                r.skip(4)?;
            }
        }
        1 => {
            // PPTP: payload length and call id stand where the key would.
            if !key || protocol != ETHERTYPE_PPP {
                return Err(Error::BadVersion);
            }
            r.skip(4)?;
            if sequence {
                r.skip(4)?;
            }
            if flags & 0x0080 != 0 {
                r.skip(4)?;
            }
        }
        _ => return Err(Error::BadVersion),
    }
    by_ethertype(protocol, r.rest())
}

/// The IPv6 packet inside a Teredo datagram (RFC 4380 §5.1.1).
pub fn teredo(bytes: &[u8]) -> Result<Inner<'_>> {
    let mut rest = bytes;
    // Authentication: 0x0001, id length, auth length, id, auth, nonce(8), confirmation(1).
    if rest.starts_with(&[0x00, 0x01]) {
        let id_len = usize::from(*rest.get(2).ok_or(Error::Truncated)?);
        let auth_len = usize::from(*rest.get(3).ok_or(Error::Truncated)?);
        rest = rest
            .get(4 + id_len + auth_len + 9..)
            .ok_or(Error::Truncated)?;
    }
    // Origin indication: 0x0000, obfuscated port and address.
    if rest.starts_with(&[0x00, 0x00]) {
        rest = rest.get(8..).ok_or(Error::Truncated)?;
    }
    // An IPv6 header, with a payload length that fits.
    if rest.len() < 40 || rest[0] >> 4 != 6 {
        return Err(Error::NotIp);
    }
    if 40 + usize::from(be16(rest, 4)?) > rest.len() {
        return Err(Error::BadLength);
    }
    Ok(Inner::Ip(NetProto::Ipv6, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &[u8] = &[0x45, 0, 0, 20];

    #[test]
    fn vxlan_carries_ethernet() {
        let mut p = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
        p.extend_from_slice(b"frame");
        assert_eq!(vxlan(&p).unwrap(), Inner::Ethernet(b"frame"));
        p[0] = 0;
        assert_eq!(vxlan(&p).unwrap_err(), Error::BadVersion);
        assert_eq!(vxlan(b"not a vxlan header").unwrap_err(), Error::BadVersion);
        assert_eq!(vxlan(&p[..7]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn geneve_skips_its_options() {
        let mut p = vec![0x02, 0, 0x08, 0x00, 0, 0, 1, 0];
        p.extend_from_slice(&[0xaa; 8]); // two option words
        p.extend_from_slice(V4);
        assert_eq!(geneve(&p).unwrap(), Inner::Ip(NetProto::Ipv4, V4));
        p[2..4].copy_from_slice(&[0x65, 0x58]);
        assert!(matches!(geneve(&p).unwrap(), Inner::Ethernet(_)));
        p[0] = 0x0f; // options longer than the packet
        assert_eq!(geneve(&p).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn gre_with_checksum_key_and_sequence() {
        let mut p = vec![0xb0, 0x00, 0x86, 0xdd];
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        assert_eq!(
            gre(&p).unwrap(),
            Inner::Ip(NetProto::Ipv6, &[0x60, 0, 0, 0])
        );
        let plain = [0x00, 0x00, 0x08, 0x00, 0x45];
        assert_eq!(gre(&plain).unwrap(), Inner::Ip(NetProto::Ipv4, &[0x45]));
        assert_eq!(gre(&p[..10]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn pptp_enhanced_gre_carries_ppp() {
        let mut p = vec![0x30, 0x81, 0x88, 0x0b, 0, 8, 0, 1, 0, 0, 0, 5, 0, 0, 0, 4];
        p.extend_from_slice(&[0xff, 0x03, 0x00, 0x21, 0x45]);
        assert_eq!(
            gre(&p).unwrap(),
            Inner::Ppp(&[0xff, 0x03, 0x00, 0x21, 0x45])
        );
    }

    #[test]
    fn teredo_with_origin_indication() {
        let mut ipv6 = vec![0x60, 0, 0, 0, 0, 4, 17, 64];
        ipv6.extend_from_slice(&[0; 32]);
        ipv6.extend_from_slice(&[1, 2, 3, 4]);
        let mut p = vec![0, 0, 0xf2, 0x27, 0x3f, 0xff, 0xfc, 0xfe];
        p.extend_from_slice(&ipv6);
        assert_eq!(teredo(&p).unwrap(), Inner::Ip(NetProto::Ipv6, &ipv6[..]));
        assert_eq!(teredo(&ipv6).unwrap(), Inner::Ip(NetProto::Ipv6, &ipv6[..]));
        assert_eq!(teredo(b"\x45not teredo").unwrap_err(), Error::NotIp);
    }

    #[test]
    fn truncations_never_panic() {
        let samples: [&[u8]; 3] = [
            &[0xb0, 0x00, 0x86, 0xdd, 0, 0, 0, 0],
            &[0x3f, 0, 0x08, 0x00, 0, 0, 1, 0],
            &[0, 1, 200, 200, 0, 0],
        ];
        for s in samples {
            for n in 0..=s.len() {
                let _ = (
                    gre(&s[..n]),
                    geneve(&s[..n]),
                    teredo(&s[..n]),
                    vxlan(&s[..n]),
                );
            }
        }
    }
}
