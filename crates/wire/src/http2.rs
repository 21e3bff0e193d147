//! Cleartext HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3): the client
//! connection preface, the frames that follow it, and the request header
//! fields of its first HEADERS block.
//!
//! ```text
//! preface: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
//! frame:   length(24) type(8) flags(8) R(1) stream id(31) | payload
//! HEADERS: [pad length(8) if PADDED] [dependency(32) weight(8) if PRIORITY]
//!          header block fragment [padding]
//! CONTINUATION (type 9) frames carry the rest until END_HEADERS.
//! ```

use crate::hpack;
use crate::{Error, Result};

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Largest header block gathered from HEADERS and CONTINUATION frames.
const MAX_BLOCK: usize = 16 * 1024;

/// Whether `data` is (the start of) the client connection preface.
pub fn looks_like_preface(data: &[u8]) -> bool {
    let n = data.len().min(PREFACE.len());
    n > 0 && data[..n] == PREFACE[..n]
}

/// The request header fields read from a client's stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Request {
    /// `:authority`, or the `host` field.
    pub authority: Option<Vec<u8>>,
    /// `:method`.
    pub method: Option<Vec<u8>>,
    /// `:path`.
    pub path: Option<Vec<u8>>,
}

/// Outcome of reading a client stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// The first request's header fields.
    Complete(Request),
    /// More bytes are needed.
    Incomplete,
}

/// One frame header and payload.
struct Frame<'a> {
    kind: u8,
    flags: u8,
    payload: &'a [u8],
}

/// Splits the next whole frame off `data`; `None` when it is not all there.
fn next_frame(data: &[u8]) -> Option<(Frame<'_>, &[u8])> {
    let header = data.get(..9)?;
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let payload = data.get(9..9 + len)?;
    Some((
        Frame {
            kind: header[3],
            flags: header[4],
            payload,
        },
        &data[9 + len..],
    ))
}

/// The header block fragment of a HEADERS frame, without padding and
/// priority fields.
fn headers_fragment<'a>(f: &Frame<'a>) -> Result<&'a [u8]> {
    let mut p = f.payload;
    let mut pad = 0;
    if f.flags & PADDED != 0 {
        pad = usize::from(*p.first().ok_or(Error::Truncated)?);
        p = &p[1..];
    }
    if f.flags & PRIORITY != 0 {
        p = p.get(5..).ok_or(Error::Truncated)?;
    }
    let end = p.len().checked_sub(pad).ok_or(Error::BadLength)?;
    Ok(&p[..end])
}

/// Reads the client side of an h2c connection from its first byte: the
/// preface, then frames until a complete header block names a request.
/// Header blocks are decoded in order with one dynamic table, as the server
/// would.
pub fn parse_client_stream(data: &[u8]) -> Result<Head> {
    if data.is_empty() {
        return Ok(Head::Incomplete);
    }
    if !looks_like_preface(data) {
        return Err(Error::NotHttpRequest);
    }
    let Some(mut rest) = data.get(PREFACE.len()..) else {
        return Ok(Head::Incomplete);
    };
    let mut decoder = hpack::Decoder::default();
    let mut block: Vec<u8> = Vec::new();
    let mut in_block = false;
    while let Some((frame, next)) = next_frame(rest) {
        rest = next;
        let fragment = match (frame.kind, in_block) {
            (HEADERS, false) => headers_fragment(&frame)?,
            (CONTINUATION, true) => frame.payload,
            // Anything else in the middle of a header block is an error.
            (_, true) => return Err(Error::BadLength),
            _ => continue,
        };
        if block.len() + fragment.len() > MAX_BLOCK {
            return Err(Error::BadLength);
        }
        block.extend_from_slice(fragment);
        in_block = frame.flags & END_HEADERS == 0;
        if in_block {
            continue;
        }
        let mut req = Request::default();
        decoder.decode(&block, |name, value| {
            let slot = match name {
                b":authority" => &mut req.authority,
                b"host" if req.authority.is_none() => &mut req.authority,
                b":method" => &mut req.method,
                b":path" => &mut req.path,
                _ => return,
            };
            *slot = Some(value.to_vec());
        })?;
        if req.authority.is_some() || req.path.is_some() {
            return Ok(Head::Complete(req));
        }
        block.clear();
    }
    Ok(Head::Incomplete)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tetherscope_testkit::http2::frame;

    /// RFC 7541 C.4.1: GET http://www.example.com/ with Huffman strings.
    const BLOCK: [u8; 17] = [
        0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90,
        0xf4, 0xff,
    ];

    fn connection(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut c = PREFACE.to_vec();
        c.extend_from_slice(&frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100])); // SETTINGS
        for f in frames {
            c.extend_from_slice(f);
        }
        c
    }

    #[test]
    fn first_request_after_the_preface() {
        let c = connection(&[frame(HEADERS, END_HEADERS | 0x1, 1, &BLOCK)]);
        let want = Request {
            authority: Some(b"www.example.com".to_vec()),
            method: Some(b"GET".to_vec()),
            path: Some(b"/".to_vec()),
        };
        assert_eq!(parse_client_stream(&c).unwrap(), Head::Complete(want));
        for n in 0..c.len() {
            assert_eq!(
                parse_client_stream(&c[..n]).unwrap(),
                Head::Incomplete,
                "{n}"
            );
        }
    }

    #[test]
    fn padded_prioritised_and_continued_blocks() {
        let mut payload = vec![4]; // pad length
        payload.extend_from_slice(&[0, 0, 0, 0, 16]); // priority
        payload.extend_from_slice(&BLOCK[..6]);
        payload.extend_from_slice(&[0; 4]);
        let c = connection(&[
            frame(HEADERS, PADDED | PRIORITY, 1, &payload),
            frame(CONTINUATION, END_HEADERS, 1, &BLOCK[6..]),
        ]);
        match parse_client_stream(&c).unwrap() {
            Head::Complete(r) => assert_eq!(r.authority.as_deref(), Some(&b"www.example.com"[..])),
            other => panic!("{other:?}"),
        }
        // A frame of another type inside the block is refused.
        let bad = connection(&[frame(HEADERS, 0, 1, &BLOCK[..6]), frame(0x0, 0, 1, b"data")]);
        assert!(parse_client_stream(&bad).is_err());
    }

    #[test]
    fn not_h2c() {
        assert_eq!(
            parse_client_stream(b"GET / HTTP/1.1\r\n").unwrap_err(),
            Error::NotHttpRequest
        );
        assert!(looks_like_preface(b"PRI * HT"));
        assert!(!looks_like_preface(b"PRIX"));
    }
}
