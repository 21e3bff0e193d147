//! Multicast DNS (RFC 6762) announcements: a responder's host name in an
//! A record and, with DNS-SD (RFC 6763), a `_device-info._tcp` TXT record
//! with its model.

use std::net::Ipv4Addr;

use crate::dns::name_from_labels;
use crate::frame::{ethernet, udp, Ipv4, ETHERTYPE_IPV4, UDP};

/// The mDNS IPv4 group.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// The group's Ethernet address (RFC 1112 §6.4).
pub const GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];

/// What a device announces about itself.
#[derive(Debug, Clone, Copy)]
pub struct Announcement<'a> {
    /// Host label (`Pixel-7a` for `Pixel-7a.local`), any bytes.
    pub host: &'a [u8],
    /// Its IPv4 address, in the A record.
    pub address: Ipv4Addr,
    /// Device-info instance label and `model=` value, if announced.
    pub device_info: Option<(&'a [u8], &'a [u8])>,
}

fn record(out: &mut Vec<u8>, owner: &[u8], rtype: u16, rdata: &[u8]) {
    out.extend_from_slice(owner);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&0x8001u16.to_be_bytes()); // IN, cache flush
    out.extend_from_slice(&120u32.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

impl Announcement<'_> {
    /// The DNS message: an unsolicited response (flags 0x8400, id 0)
    /// with the A record and, if any, the device-info TXT record.
    pub fn message(&self) -> Vec<u8> {
        let count = 1 + u8::from(self.device_info.is_some());
        let mut m = vec![0, 0, 0x84, 0, 0, 0, 0, count, 0, 0, 0, 0];
        record(
            &mut m,
            &name_from_labels(&[self.host, b"local"]),
            1,
            &self.address.octets(),
        );
        if let Some((instance, model)) = self.device_info {
            let mut txt = vec![(6 + model.len()) as u8];
            txt.extend_from_slice(b"model=");
            txt.extend_from_slice(model);
            let owner = name_from_labels(&[instance, b"_device-info", b"_tcp", b"local"]);
            record(&mut m, &owner, 16, &txt);
        }
        m
    }

    /// The frame from `src_mac` to the mDNS group (5353 → 5353); the IPv4
    /// header has identification 1 and its checksum.
    pub fn frame(&self, src_mac: [u8; 6]) -> Vec<u8> {
        let ip = Ipv4 {
            ident: 1,
            checksum: true,
        }
        .packet(self.address, GROUP, UDP, &udp(5353, 5353, &self.message()));
        ethernet(GROUP_MAC, src_mac, ETHERTYPE_IPV4, &ip)
    }
}
