//! GTPv1-U (3GPP TS 29.281): the tunnel mobile networks carry user IP in.
//!
//! ```text
//! flags(1: version 3 bits, PT, -, E, S, PN) type(1) length(2) TEID(4)
//! [sequence(2) N-PDU(1) next extension type(1)]   if any of E, S, PN
//! [extension headers: length in 4-octet units, content, next type]*
//! ```
//! Only G-PDU messages (type 255) carry user packets.

use crate::bytes::be16;
use crate::link::NetProto;
use crate::{Error, Result};

/// The well-known GTP-U port.
pub const PORT: u16 = 2152;
const G_PDU: u8 = 255;
const MAX_EXTENSIONS: usize = 8;

/// Returns the IP packet inside a G-PDU.
pub fn decapsulate(bytes: &[u8]) -> Result<(NetProto, &[u8])> {
    if bytes.len() < 8 {
        return Err(Error::Truncated);
    }
    let flags = bytes[0];
    if flags >> 5 != 1 || flags & 0x10 == 0 || bytes[1] != G_PDU {
        return Err(Error::BadVersion);
    }
    let len = usize::from(be16(bytes, 2)?);
    let end = (8 + len).min(bytes.len());
    let mut pos = 8;
    if flags & 0x07 != 0 {
        let mut next = *bytes.get(11).ok_or(Error::Truncated)?;
        pos = 12;
        for _ in 0..MAX_EXTENSIONS {
            if next == 0 {
                break;
            }
            let units = usize::from(*bytes.get(pos).ok_or(Error::Truncated)?);
            if units == 0 {
                return Err(Error::BadLength);
            }
            pos += units * 4;
            next = *bytes.get(pos - 1).ok_or(Error::Truncated)?;
        }
        if next != 0 {
            return Err(Error::TooDeep);
        }
    }
    let inner = bytes.get(pos..end).ok_or(Error::Truncated)?;
    match inner.first().map(|b| b >> 4) {
        Some(4) => Ok((NetProto::Ipv4, inner)),
        Some(6) => Ok((NetProto::Ipv6, inner)),
        Some(_) => Err(Error::NotIp),
        None => Err(Error::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_with_sequence() {
        let mut p = vec![0x30, 0xff, 0, 4, 0, 0, 0, 1, 0x45, 0, 0, 0];
        assert_eq!(
            decapsulate(&p).unwrap(),
            (NetProto::Ipv4, &[0x45, 0, 0, 0][..])
        );
        p = vec![0x32, 0xff, 0, 8, 0, 0, 0, 1, 0, 1, 0, 0, 0x60, 0, 0, 0];
        assert_eq!(decapsulate(&p).unwrap().0, NetProto::Ipv6);
        p[1] = 1; // echo request
        assert!(decapsulate(&p).is_err());
    }
}
