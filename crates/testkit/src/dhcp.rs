//! DHCP (RFC 2131, options RFC 2132) requests, which tell the hotspot a
//! phone's host name (option 12), vendor class (option 60) and parameter
//! request list (option 55).

use crate::frame::{ethernet, udp, Ipv4, ETHERTYPE_IPV4, UDP};

/// The parameter request list of AOSP's DhcpClient (`REQUESTED_PARAMS` in
/// its public source: subnet mask, router, DNS servers, domain name, MTU,
/// broadcast address, lease, renewal and rebinding times, vendor info,
/// captive portal URL, IPv6-only preferred).
pub const AOSP_PARAMETERS: &[u8] = &[1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114, 108];

/// A DHCPREQUEST's client-side fields.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// chaddr: the client hardware address the message claims.
    pub chaddr: [u8; 6],
    /// Option 12.
    pub host_name: Option<&'a [u8]>,
    /// Option 60.
    pub vendor_class: Option<&'a [u8]>,
    /// Option 55 (left out when empty).
    pub parameter_list: &'a [u8],
    /// Option 57.
    pub max_message_size: Option<u16>,
}

impl<'a> Request<'a> {
    /// A request from `mac` with only a host name.
    pub fn named(mac: [u8; 6], host_name: &'a [u8]) -> Self {
        Request {
            chaddr: mac,
            host_name: Some(host_name),
            vendor_class: None,
            parameter_list: &[],
            max_message_size: None,
        }
    }

    /// A request shaped like AOSP's DhcpClient's: max message size 1500,
    /// vendor class `android-dhcp-RELEASE` (e.g. `b"android-dhcp-14"`),
    /// host name, then [`AOSP_PARAMETERS`].
    pub fn android(mac: [u8; 6], host_name: &'a [u8], vendor_class: &'a [u8]) -> Self {
        Request {
            chaddr: mac,
            host_name: Some(host_name),
            vendor_class: Some(vendor_class),
            parameter_list: AOSP_PARAMETERS,
            max_message_size: Some(1500),
        }
    }

    /// The BOOTP message (UDP payload).
    pub fn message(&self) -> Vec<u8> {
        let mut bootp = vec![1, 1, 6, 0]; // BOOTREQUEST, Ethernet, 6-byte address, 0 hops
        bootp.extend_from_slice(&0x3903_f326u32.to_be_bytes()); // transaction id
        bootp.extend_from_slice(&[0; 4]); // secs, flags
        bootp.extend_from_slice(&[0; 16]); // ciaddr, yiaddr, siaddr, giaddr
        bootp.extend_from_slice(&self.chaddr);
        bootp.extend_from_slice(&[0; 10 + 192]); // rest of chaddr, sname, file
        bootp.extend_from_slice(&[0x63, 0x82, 0x53, 0x63]); // magic cookie
        bootp.extend_from_slice(&[53, 1, 3]); // DHCPREQUEST
        if let Some(size) = self.max_message_size {
            bootp.extend_from_slice(&[57, 2]);
            bootp.extend_from_slice(&size.to_be_bytes());
        }
        let mut option = |code: u8, value: &[u8]| {
            bootp.extend_from_slice(&[code, value.len() as u8]);
            bootp.extend_from_slice(value);
        };
        if let Some(vc) = self.vendor_class {
            option(60, vc);
        }
        if let Some(name) = self.host_name {
            option(12, name);
        }
        if !self.parameter_list.is_empty() {
            option(55, self.parameter_list);
        }
        bootp.push(0xff);
        bootp
    }

    /// The broadcast frame (0.0.0.0:68 to 255.255.255.255:67) as the
    /// station `src_mac` sends it; the IPv4 header has identification 1
    /// and its checksum.
    pub fn frame_from(&self, src_mac: [u8; 6]) -> Vec<u8> {
        let ip = Ipv4 {
            ident: 1,
            checksum: true,
        }
        .packet(
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            UDP,
            &udp(68, 67, &self.message()),
        );
        ethernet([0xff; 6], src_mac, ETHERTYPE_IPV4, &ip)
    }

    /// The frame as the client itself sends it (source MAC = chaddr).
    pub fn frame(&self) -> Vec<u8> {
        self.frame_from(self.chaddr)
    }
}

/// A broadcast DHCPREQUEST frame from `mac` (source 0.0.0.0:68 to
/// 255.255.255.255:67) carrying `host_name` as option 12; the IPv4 header
/// has identification 1 and its checksum.
pub fn request(mac: [u8; 6], host_name: &[u8]) -> Vec<u8> {
    Request::named(mac, host_name).frame()
}
