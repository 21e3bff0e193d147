//! DHCPv4 (RFC 2131): the client's hardware address and the Host Name option
//! (12), which name devices on the hotspot.

use crate::bytes::Reader;
use crate::{Error, Result};

const MAGIC: [u8; 4] = [99, 130, 83, 99];
const OPT_HOST_NAME: u8 = 12;
const OPT_PAD: u8 = 0;
const OPT_END: u8 = 255;

/// What a DHCP message says about its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo<'a> {
    /// chaddr, when htype is Ethernet.
    pub mac: Option<[u8; 6]>,
    /// Option 12, if present.
    pub host_name: Option<&'a [u8]>,
}

/// Parses a BOOTP/DHCP message.
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
    let mut r = Reader::new(&bytes[240..]);
    let mut host_name = None;
    while let Ok(code) = r.u8() {
        match code {
            OPT_PAD => continue,
            OPT_END => break,
            _ => {
                let value = r.vec8()?;
                if code == OPT_HOST_NAME && !value.is_empty() {
                    host_name = Some(value);
                }
            }
        }
    }
    Ok(ClientInfo { mac, host_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_name() {
        let mut m = vec![0u8; 240];
        m[0] = 1;
        m[1] = 1;
        m[2] = 6;
        m[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 5]);
        m[236..240].copy_from_slice(&MAGIC);
        m.extend_from_slice(&[53, 1, 3, 0, 12, 5]);
        m.extend_from_slice(b"pixel");
        m.push(255);
        let info = parse(&m).unwrap();
        assert_eq!(info.mac, Some([2, 0, 0, 0, 0, 5]));
        assert_eq!(info.host_name, Some(&b"pixel"[..]));
        m.truncate(250);
        assert!(parse(&m).is_err());
    }
}
