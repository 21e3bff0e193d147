//! Ethernet, IPv4, IPv6, TCP and UDP: each builder wraps the payload it is
//! given in one header, so a frame reads inside out:
//! `link.up(&ipv4(phone, server, UDP, &udp(40000, 53, &query)))`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// IP protocol number of TCP.
pub const TCP: u8 = 6;
/// IP protocol number of UDP.
pub const UDP: u8 = 17;
/// The pcap link type of Ethernet (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// TCP FIN flag.
pub const FIN: u8 = 0x01;
/// TCP SYN flag.
pub const SYN: u8 = 0x02;
/// TCP RST flag.
pub const RST: u8 = 0x04;
/// TCP PSH flag.
pub const PSH: u8 = 0x08;
/// TCP ACK flag.
pub const ACK: u8 = 0x10;
/// SYN and ACK: a server's answer to a SYN.
pub const SYN_ACK: u8 = SYN | ACK;
/// PSH and ACK: a segment carrying data.
pub const PSH_ACK: u8 = PSH | ACK;
/// FIN and ACK: an orderly close.
pub const FIN_ACK: u8 = FIN | ACK;

/// An Ethernet II frame from `src` to `dst` carrying `payload`.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The two ends of the hotspot's Wi-Fi link: frames go up from the phone
/// to the hotspot, or down from the hotspot to the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The phone's MAC address.
    pub phone: [u8; 6],
    /// The hotspot's (laptop's) MAC address.
    pub hotspot: [u8; 6],
}

impl Link {
    /// A frame from the phone with any EtherType.
    pub fn up_raw(&self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        ethernet(self.hotspot, self.phone, ethertype, payload)
    }

    /// A frame to the phone with any EtherType.
    pub fn down_raw(&self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        ethernet(self.phone, self.hotspot, ethertype, payload)
    }

    /// An IP packet from the phone (the EtherType follows the IP version).
    pub fn up(&self, packet: &[u8]) -> Vec<u8> {
        self.up_raw(ethertype_of(packet), packet)
    }

    /// An IP packet to the phone (the EtherType follows the IP version).
    pub fn down(&self, packet: &[u8]) -> Vec<u8> {
        self.down_raw(ethertype_of(packet), packet)
    }
}

/// IPv6 when the version nibble says 6, IPv4 otherwise.
fn ethertype_of(packet: &[u8]) -> u16 {
    match packet.first().map(|b| b >> 4) {
        Some(6) => ETHERTYPE_IPV6,
        _ => ETHERTYPE_IPV4,
    }
}

/// How an IPv4 header is written: the identification field and whether the
/// header checksum is filled in (don't-fragment is always set, TTL is 64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ipv4 {
    /// The identification field.
    pub ident: u16,
    /// Whether to compute the header checksum (left zero otherwise).
    pub checksum: bool,
}

impl Ipv4 {
    /// An IPv4 packet from `src` to `dst` with protocol `proto`.
    pub fn packet(
        &self,
        src: impl Into<Ipv4Addr>,
        dst: impl Into<Ipv4Addr>,
        proto: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut p = Vec::with_capacity(20 + payload.len());
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&self.ident.to_be_bytes());
        p.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
        p.extend_from_slice(&src.into().octets());
        p.extend_from_slice(&dst.into().octets());
        if self.checksum {
            let sum = internet_checksum(&p);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        p.extend_from_slice(payload);
        p
    }
}

/// An IPv4 packet (identification 0, no checksum).
pub fn ipv4(
    src: impl Into<Ipv4Addr>,
    dst: impl Into<Ipv4Addr>,
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    Ipv4::default().packet(src, dst, proto, payload)
}

/// An IPv6 packet (hop limit 64) whose next header is `next`.
pub fn ipv6(
    src: impl Into<Ipv6Addr>,
    dst: impl Into<Ipv6Addr>,
    next: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src.into().octets());
    p.extend_from_slice(&dst.into().octets());
    p.extend_from_slice(payload);
    p
}

/// An IPv4 or IPv6 packet, as the addresses are.
///
/// # Panics
/// If the two addresses are of different families.
pub fn ip(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s, d, proto, payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6(s, d, proto, payload),
        _ => panic!("mixed address families: {src} and {dst}"),
    }
}

/// A UDP datagram (checksum zero).
pub fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + data.len());
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(data);
    d
}

/// A TCP segment without options (window 65535, checksum zero).
pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(20 + data.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    s.extend_from_slice(data);
    s
}

/// The Internet checksum (RFC 1071) of `bytes`.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checksummed_header_sums_to_zero() {
        let p = Ipv4 {
            ident: 1,
            checksum: true,
        }
        .packet([10, 42, 0, 1], [192, 0, 2, 1], UDP, &udp(1, 2, b"x"));
        assert_ne!(&p[10..12], &[0, 0]);
        assert_eq!(internet_checksum(&p[..20]), 0);
    }

    #[test]
    fn the_ethertype_follows_the_ip_version() {
        let link = Link {
            phone: [2, 0, 0, 0, 0, 7],
            hotspot: [2, 0, 0, 0, 0, 1],
        };
        let v6 = link.up(&ipv6([0; 16], [0; 16], UDP, &[]));
        assert_eq!(&v6[12..14], &ETHERTYPE_IPV6.to_be_bytes());
        let v4 = link.down(&ipv4([0; 4], [0; 4], TCP, &[]));
        assert_eq!(&v4[12..14], &ETHERTYPE_IPV4.to_be_bytes());
        assert_eq!((&v4[..6], &v4[6..12]), (&link.phone[..], &link.hotspot[..]));
    }
}
