//! DHCP (RFC 2131) requests, which tell the hotspot a phone's host name
//! (option 12).

use crate::frame::{ethernet, udp, Ipv4, ETHERTYPE_IPV4, UDP};

/// A broadcast DHCPREQUEST frame from `mac` (source 0.0.0.0:68 to
/// 255.255.255.255:67) carrying `host_name` as option 12; the IPv4 header
/// has identification 1 and its checksum.
pub fn request(mac: [u8; 6], host_name: &[u8]) -> Vec<u8> {
    let mut bootp = vec![1, 1, 6, 0]; // BOOTREQUEST, Ethernet, 6-byte address, 0 hops
    bootp.extend_from_slice(&0x3903_f326u32.to_be_bytes()); // transaction id
    bootp.extend_from_slice(&[0; 4]); // secs, flags
    bootp.extend_from_slice(&[0; 16]); // ciaddr, yiaddr, siaddr, giaddr
    bootp.extend_from_slice(&mac);
    bootp.extend_from_slice(&[0; 10 + 192]); // rest of chaddr, sname, file
    bootp.extend_from_slice(&[0x63, 0x82, 0x53, 0x63]); // magic cookie
    bootp.extend_from_slice(&[53, 1, 3]); // DHCPREQUEST
    bootp.extend_from_slice(&[12, host_name.len() as u8]);
    bootp.extend_from_slice(host_name);
    bootp.push(0xff);
    let ip = Ipv4 {
        ident: 1,
        checksum: true,
    }
    .packet(
        [0, 0, 0, 0],
        [255, 255, 255, 255],
        UDP,
        &udp(68, 67, &bootp),
    );
    ethernet([0xff; 6], mac, ETHERTYPE_IPV4, &ip)
}
