//! Google QUIC (Q024–Q046, and Q050 once decrypted): the SNI tag of the
//! client's CHLO handshake message.
//!
//! A CHLO is `"CHLO" | u16 tag count | u16 padding | (tag, u32 end offset)* |
//! values`, all little-endian. Rather than decode each gQUIC packet format,
//! the parser finds the message tag in the first packet's bytes, which is
//! cheap (it only runs until a flow is named) and version independent.

use crate::{Error, Result};

const CHLO: &[u8; 4] = b"CHLO";
const TAG_SNI: &[u8; 4] = b"SNI\0";
/// A CHLO with more tags than this is not a real handshake.
const MAX_TAGS: usize = 128;

/// Whether a UDP payload carries a Google QUIC version tag ("Q0xx").
pub fn looks_like_gquic(payload: &[u8]) -> bool {
    // Q043 and older: flags(1) [CID(8)] version(4); Q046: long header.
    let at = |i: usize| payload.get(i..i + 2) == Some(b"Q0");
    at(1) || at(9)
}

/// The version tag ("Q043", "Q046", ...) of a Google QUIC client packet, as
/// the big-endian number the IETF version field would hold: after the flags
/// byte in Q046's long header, after flags and an 8-byte connection ID in
/// the older public header.
pub fn version(payload: &[u8]) -> Option<u32> {
    [1, 9].into_iter().find_map(|at| {
        let tag = payload.get(at..at + 4)?;
        (tag[..2] == *b"Q0" && tag[2..].iter().all(u8::is_ascii_digit))
            .then(|| u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]]))
    })
}

/// Finds a CHLO in `bytes` and returns its SNI value.
pub fn chlo_sni(bytes: &[u8]) -> Result<Option<&[u8]>> {
    let start = bytes
        .windows(4)
        .position(|w| w == CHLO)
        .ok_or(Error::Truncated)?;
    let msg = &bytes[start + 4..];
    let count = usize::from(u16::from_le_bytes([
        *msg.first().ok_or(Error::Truncated)?,
        *msg.get(1).ok_or(Error::Truncated)?,
    ]));
    if count > MAX_TAGS {
        return Err(Error::BadLength);
    }
    let index = msg.get(4..4 + count * 8).ok_or(Error::Truncated)?;
    let values = &msg[4 + count * 8..];
    let mut prev_end = 0usize;
    for entry in index.chunks_exact(8) {
        let end = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]) as usize;
        if end < prev_end {
            return Err(Error::BadLength);
        }
        if &entry[..4] == TAG_SNI {
            return Ok(Some(values.get(prev_end..end).ok_or(Error::Truncated)?));
        }
        prev_end = end;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sni_tag() {
        let mut p = b"\x0d\x01\x02\x03\x04\x05\x06\x07\x08Q043\x01junkCHLO".to_vec();
        p.extend_from_slice(&[2, 0, 0, 0]);
        p.extend_from_slice(b"PAD\0");
        p.extend_from_slice(&3u32.to_le_bytes());
        p.extend_from_slice(b"SNI\0");
        p.extend_from_slice(&(3 + 9u32).to_le_bytes());
        p.extend_from_slice(b"---i.ytimg.com");
        assert!(looks_like_gquic(&p));
        assert_eq!(version(&p), Some(0x5130_3433));
        assert_eq!(chlo_sni(&p).unwrap(), Some(&b"i.ytimg.c"[..]));
        p.truncate(p.len() - 8);
        // Q046 long header: the version follows the flags byte.
        assert_eq!(version(b"\xc3Q046\x50\x01"), Some(0x5130_3436));
        assert_eq!(version(b"\xc3Q0x6"), None);
        assert!(chlo_sni(&p).is_err());
    }
}
