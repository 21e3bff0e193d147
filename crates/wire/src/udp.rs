//! UDP datagram view.

use crate::bytes::be16;
use crate::{Error, Result};

/// A checked UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Data, cut to the UDP length field and to what was captured.
    pub payload: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Parses the 8-byte header. A length field shorter than the header is
    /// refused; a longer one than the bytes present is a truncated capture and
    /// the payload is what is there. A length of 0 (IPv6 jumbograms) means
    /// "the rest".
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 8 {
            return Err(Error::Truncated);
        }
        let len = usize::from(be16(bytes, 4)?);
        let end = match len {
            0 => bytes.len(),
            1..=7 => return Err(Error::BadLength),
            n => n.min(bytes.len()),
        };
        Ok(Datagram {
            src_port: be16(bytes, 0)?,
            dst_port: be16(bytes, 2)?,
            payload: &bytes[8..end],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_field_bounds_payload() {
        let d = Datagram::parse(&[0, 53, 0x9c, 0x40, 0, 10, 0, 0, 1, 2, 3, 4]).unwrap();
        assert_eq!(
            (d.src_port, d.dst_port, d.payload),
            (53, 40000, &[1u8, 2][..])
        );
        assert_eq!(
            Datagram::parse(&[0, 53, 0, 53, 0, 3, 0, 0]).unwrap_err(),
            Error::BadLength
        );
    }
}
