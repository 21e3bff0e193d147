//! DHCPv4 (RFC 2131, options RFC 2132): what a client's message says about
//! the client — its hardware address, host name (option 12), vendor class
//! (option 60), parameter request list (option 55), client identifier
//! (option 61) and maximum message size (option 57).
//!
//! Every value is borrowed from the message; the options are walked once,
//! with every length checked, so no input can make [`parse`] panic.
//!
//! ```text
//! op(1) htype(1) hlen(1) hops(1) xid(4) secs(2) flags(2)
//! ciaddr(4) yiaddr(4) siaddr(4) giaddr(4) chaddr(16) sname(64) file(128)
//! magic cookie 99.130.83.99, then options: code(1) len(1) value(len),
//! except Pad (0) and End (255), which are one byte.
//! ```

use crate::bytes::Reader;
use crate::{Error, Result};

const MAGIC: [u8; 4] = [99, 130, 83, 99];
const OPT_PAD: u8 = 0;
const OPT_HOST_NAME: u8 = 12;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_PARAMETER_LIST: u8 = 55;
const OPT_MAX_MESSAGE_SIZE: u8 = 57;
const OPT_VENDOR_CLASS: u8 = 60;
const OPT_CLIENT_ID: u8 = 61;
const OPT_END: u8 = 255;

/// `op` of a message a client sends (RFC 2131 §2).
pub const BOOTREQUEST: u8 = 1;

/// What a DHCP message says about its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientInfo<'a> {
    /// `op`: [`BOOTREQUEST`] from a client, 2 from a server.
    pub op: u8,
    /// chaddr, when htype is Ethernet.
    pub mac: Option<[u8; 6]>,
    /// Option 53, the DHCP message type (1 DISCOVER, 3 REQUEST, ...).
    pub message_type: Option<u8>,
    /// Option 12, if present and not empty.
    pub host_name: Option<&'a [u8]>,
    /// Option 60, if present and not empty.
    pub vendor_class: Option<&'a [u8]>,
    /// Option 55: the option codes the client asks for, in its order.
    pub parameter_list: Option<&'a [u8]>,
    /// Option 61, if present.
    pub client_id: Option<&'a [u8]>,
    /// Option 57, when it is the two bytes RFC 2132 §9.10 says.
    pub max_message_size: Option<u16>,
}

impl ClientInfo<'_> {
    /// Whether a client sent it (`op` is BOOTREQUEST).
    pub fn from_client(&self) -> bool {
        self.op == BOOTREQUEST
    }
}

/// Parses a BOOTP/DHCP message. Options after a malformed one are lost:
/// the message is refused with the reason.
pub fn parse(bytes: &[u8]) -> Result<ClientInfo<'_>> {
    if bytes.len() < 240 {
        return Err(Error::Truncated);
    }
    if bytes[236..240] != MAGIC {
        return Err(Error::NotDhcp);
    }
    let mac = (bytes[1] == 1 && bytes[2] == 6).then(|| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&bytes[28..34]);
        m
    });
    let mut info = ClientInfo {
        op: bytes[0],
        mac,
        ..ClientInfo::default()
    };
    let non_empty = |v: &[u8]| !v.is_empty();
    let mut r = Reader::new(&bytes[240..]);
    while let Ok(code) = r.u8() {
        match code {
            OPT_PAD => continue,
            OPT_END => break,
            _ => {
                let value = r.vec8()?;
                match code {
                    OPT_HOST_NAME => info.host_name = Some(value).filter(|v| non_empty(v)),
                    OPT_VENDOR_CLASS => info.vendor_class = Some(value).filter(|v| non_empty(v)),
                    OPT_PARAMETER_LIST => info.parameter_list = Some(value),
                    OPT_CLIENT_ID => info.client_id = Some(value),
                    OPT_MESSAGE_TYPE => info.message_type = value.first().copied(),
                    OPT_MAX_MESSAGE_SIZE => {
                        info.max_message_size =
                            <[u8; 2]>::try_from(value).ok().map(u16::from_be_bytes);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(options: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 240];
        m[0] = 1;
        m[1] = 1;
        m[2] = 6;
        m[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 5]);
        m[236..240].copy_from_slice(&MAGIC);
        m.extend_from_slice(options);
        m
    }

    #[test]
    fn reads_host_name() {
        let mut m = message(&[53, 1, 3, 0, 12, 5]);
        m.extend_from_slice(b"pixel");
        m.push(255);
        let info = parse(&m).unwrap();
        assert_eq!(info.mac, Some([2, 0, 0, 0, 0, 5]));
        assert_eq!(info.host_name, Some(&b"pixel"[..]));
        assert_eq!(info.message_type, Some(3));
        assert!(info.from_client());
        m.truncate(250);
        assert!(parse(&m).is_err());
    }

    /// The options of a DHCPREQUEST shaped like the one AOSP's DhcpClient
    /// sends (DhcpPacket.java: client id, requested address, max size
    /// 1500, vendor class `android-dhcp-` + release, host name, then the
    /// parameter list).
    #[test]
    fn reads_the_options_that_identify_a_client() {
        let mut opts = vec![53, 1, 3, 61, 7, 1, 2, 0, 0, 0, 0, 5, 57, 2, 0x05, 0xdc];
        opts.extend_from_slice(&[60, 15]);
        opts.extend_from_slice(b"android-dhcp-14");
        opts.extend_from_slice(&[12, 8]);
        opts.extend_from_slice(b"pixel-7a");
        opts.extend_from_slice(&[55, 6, 1, 3, 6, 15, 26, 28, 255]);
        let m = message(&opts);
        let info = parse(&m).unwrap();
        assert_eq!(info.vendor_class, Some(&b"android-dhcp-14"[..]));
        assert_eq!(info.parameter_list, Some(&[1u8, 3, 6, 15, 26, 28][..]));
        assert_eq!(info.client_id, Some(&[1u8, 2, 0, 0, 0, 0, 5][..]));
        assert_eq!(info.max_message_size, Some(1500));
        assert_eq!(info.host_name, Some(&b"pixel-7a"[..]));
        // Every truncation is refused or read as far as it goes, never a panic.
        for len in 0..m.len() {
            let _ = parse(&m[..len]);
        }
    }

    #[test]
    fn odd_values_are_read_as_absent() {
        // An empty vendor class, a three-byte max size, no End option.
        let m = message(&[60, 0, 57, 3, 1, 2, 3, 12, 0]);
        let info = parse(&m).unwrap();
        assert_eq!(info.vendor_class, None);
        assert_eq!(info.max_message_size, None);
        assert_eq!(info.host_name, None);
        // An option whose length runs past the end is refused.
        assert_eq!(parse(&message(&[60, 20, b'a'])), Err(Error::Truncated));
        // A server's reply is not a client's.
        let mut reply = message(&[255]);
        reply[0] = 2;
        assert!(!parse(&reply).unwrap().from_client());
    }
}
