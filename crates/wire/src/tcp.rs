//! TCP segment view.

use crate::bytes::{be16, be32};
use crate::{Error, Result};

/// TCP flag bits.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// A checked TCP segment. After [`Segment::parse`] succeeds, no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    header: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Segment<'a> {
    /// Checks the header length and splits header from payload.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 20 {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(bytes[12] >> 4) * 4;
        if header_len < 20 {
            return Err(Error::BadLength);
        }
        if bytes.len() < header_len {
            return Err(Error::Truncated);
        }
        Ok(Segment {
            header: &bytes[..header_len],
            payload: &bytes[header_len..],
        })
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.header, 0).unwrap_or(0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.header, 2).unwrap_or(0)
    }
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        be32(self.header, 4).unwrap_or(0)
    }
    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        be32(self.header, 8).unwrap_or(0)
    }
    /// The flag byte (see [`flags`]).
    pub fn flags(&self) -> u8 {
        self.header[13]
    }
    /// Whether all bits of `f` are set.
    pub fn has(&self, f: u8) -> bool {
        self.flags() & f == f
    }
    /// Segment data.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_syn_with_options() {
        let mut s = vec![
            0x9e,
            0x3d,
            0x01,
            0xbb,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0x60,
            flags::SYN,
            0xff,
            0xff,
            0,
            0,
            0,
            0,
        ];
        s.extend_from_slice(&[2, 4, 5, 0xb4, 1, 2, 3]);
        let seg = Segment::parse(&s).unwrap();
        assert_eq!((seg.src_port(), seg.dst_port(), seg.seq()), (40509, 443, 1));
        assert!(seg.has(flags::SYN) && !seg.has(flags::ACK));
        assert_eq!(seg.payload(), &[1, 2, 3]);
    }

    #[test]
    fn header_length_checks() {
        let mut s = [0u8; 20];
        s[12] = 0x40;
        assert_eq!(Segment::parse(&s).unwrap_err(), Error::BadLength);
        s[12] = 0xf0;
        assert_eq!(Segment::parse(&s).unwrap_err(), Error::Truncated);
    }
}
