//! HPACK (RFC 7541): the header compression of HTTP/2, as far as reading a
//! cleartext request's `:authority`, `:path` and `:method` needs: the static
//! table, the dynamic table built by the header blocks seen, and Huffman-coded
//! strings.
//!
//! ```text
//! 1xxxxxxx                      indexed field (7-bit index)
//! 01xxxxxx [name] value         literal, added to the dynamic table (6-bit index)
//! 001xxxxx                      dynamic table size update (5-bit)
//! 0000xxxx / 0001xxxx [name] value   literal, not added (4-bit index)
//! string: H(1) length(7-bit prefix) octets     (H: Huffman-coded)
//! ```
//!
//! Every integer, length and index is checked; decoded strings and the
//! dynamic table are bounded, so hostile blocks cost bounded memory.

use crate::{Error, Result};

/// Longest decoded string kept.
const MAX_STRING: usize = 8 * 1024;
/// Dynamic table size an HTTP/2 endpoint starts with (SETTINGS default).
const DEFAULT_TABLE_SIZE: usize = 4096;
/// Largest dynamic table size honoured, whatever an update asks for.
const MAX_TABLE_SIZE: usize = 64 * 1024;

/// RFC 7541 Appendix A: the static table, index 1 to 61.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// RFC 7541 Appendix B: the Huffman code length of each symbol (0–255, then
/// EOS). The code is canonical (codes of one length are consecutive, in
/// symbol order, and follow on from the shorter ones), so the lengths are
/// the whole table.
#[rustfmt::skip]
const HUFFMAN_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
];

const EOS: u16 = 256;
const MAX_CODE_LEN: usize = 30;

/// What canonical decoding needs, per code length: the first code, how many
/// codes there are, and where their symbols start in `symbols`.
struct Canonical {
    first: [u32; MAX_CODE_LEN + 1],
    count: [u16; MAX_CODE_LEN + 1],
    offset: [u16; MAX_CODE_LEN + 1],
    /// Symbols sorted by (code length, symbol).
    symbols: [u16; 257],
}

const CANONICAL: Canonical = canonical();

const fn canonical() -> Canonical {
    let mut c = Canonical {
        first: [0; MAX_CODE_LEN + 1],
        count: [0; MAX_CODE_LEN + 1],
        offset: [0; MAX_CODE_LEN + 1],
        symbols: [0; 257],
    };
    let mut s = 0;
    while s < 257 {
        c.count[HUFFMAN_LENGTHS[s] as usize] += 1;
        s += 1;
    }
    let (mut code, mut at, mut len) = (0u32, 0u16, 1);
    while len <= MAX_CODE_LEN {
        code <<= 1;
        c.first[len] = code;
        c.offset[len] = at;
        let mut sym = 0;
        while sym < 257 {
            if HUFFMAN_LENGTHS[sym] as usize == len {
                c.symbols[at as usize] = sym as u16;
                at += 1;
            }
            sym += 1;
        }
        code += c.count[len] as u32;
        len += 1;
    }
    // A complete prefix code uses every code of the longest length.
    assert!(code == 1 << MAX_CODE_LEN);
    c
}

/// Decodes a Huffman-coded string (RFC 7541 §5.2) into `out`.
pub fn huffman_decode(bytes: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let c = &CANONICAL;
    let (mut code, mut len) = (0u32, 0usize);
    for &byte in bytes {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            if len > MAX_CODE_LEN {
                return Err(Error::BadLength);
            }
            let index = code.wrapping_sub(c.first[len]);
            if index < u32::from(c.count[len]) {
                let sym = c.symbols[usize::from(c.offset[len]) + index as usize];
                if sym == EOS {
                    return Err(Error::BadLength);
                }
                if out.len() >= MAX_STRING {
                    return Err(Error::BadLength);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (the start of EOS).
    if len >= 8 || code != (1 << len) - 1 {
        return Err(Error::BadLength);
    }
    Ok(())
}

/// Reads an integer with an `n`-bit prefix (RFC 7541 §5.1).
fn integer(bytes: &[u8], pos: &mut usize, n: u8) -> Result<usize> {
    let first = *bytes.get(*pos).ok_or(Error::Truncated)?;
    *pos += 1;
    let max = (1usize << n) - 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    for shift in (0..28).step_by(7) {
        let b = *bytes.get(*pos).ok_or(Error::Truncated)?;
        *pos += 1;
        value += usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::BadLength)
}

/// Reads a string literal, decoding Huffman when flagged.
fn string(bytes: &[u8], pos: &mut usize) -> Result<Vec<u8>> {
    let huffman = bytes.get(*pos).ok_or(Error::Truncated)? & 0x80 != 0;
    let len = integer(bytes, pos, 7)?;
    let end = pos.checked_add(len).ok_or(Error::BadLength)?;
    let raw = bytes.get(*pos..end).ok_or(Error::Truncated)?;
    *pos = end;
    if huffman {
        let mut out = Vec::with_capacity(len + len / 2);
        huffman_decode(raw, &mut out)?;
        Ok(out)
    } else if len > MAX_STRING {
        Err(Error::BadLength)
    } else {
        Ok(raw.to_vec())
    }
}

/// One side's HPACK decoding state: the dynamic table, newest first.
#[derive(Debug)]
pub struct Decoder {
    dynamic: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            dynamic: Default::default(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
        }
    }
}

fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

impl Decoder {
    /// The name and value at `index` (1-based: static, then dynamic).
    fn field(&self, index: usize) -> Result<(&[u8], &[u8])> {
        match index {
            0 => Err(Error::BadLength),
            1..=61 => {
                let (n, v) = STATIC[index - 1];
                Ok((n.as_bytes(), v.as_bytes()))
            }
            _ => self
                .dynamic
                .get(index - 62)
                .map(|(n, v)| (n.as_slice(), v.as_slice()))
                .ok_or(Error::BadLength),
        }
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.dynamic.pop_back() {
                Some((n, v)) => self.size -= entry_size(&n, &v),
                None => break,
            }
        }
    }

    fn add(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = entry_size(&name, &value);
        if size > self.max_size {
            // Too big for the table: it empties it (RFC 7541 §4.4).
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.dynamic.push_front((name, value));
    }

    /// Decodes one complete header block, calling `field` with each name and
    /// value in order.
    pub fn decode(&mut self, block: &[u8], mut field: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let mut pos = 0;
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                let index = integer(block, &mut pos, 7)?;
                let (n, v) = self.field(index)?;
                field(n, v);
            } else if b & 0xe0 == 0x20 {
                let size = integer(block, &mut pos, 5)?;
                self.max_size = size.min(MAX_TABLE_SIZE);
                self.evict_to(self.max_size);
            } else {
                let (prefix, indexing) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let index = integer(block, &mut pos, prefix)?;
                let name = if index == 0 {
                    string(block, &mut pos)?
                } else {
                    self.field(index)?.0.to_vec()
                };
                let value = string(block, &mut pos)?;
                field(&name, &value);
                if indexing {
                    self.add(name, value);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(d: &mut Decoder, block: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        d.decode(&hex(block), |n, v| {
            out.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        })
        .unwrap();
        out
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rfc7541_c3_requests_without_huffman() {
        let mut d = Decoder::default();
        let first = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ];
        assert_eq!(
            fields(&mut d, "828684410f7777772e6578616d706c652e636f6d"),
            pairs(&first)
        );
        // The second request refers to :authority in the dynamic table (62).
        let mut second = first.to_vec();
        second.push(("cache-control", "no-cache"));
        assert_eq!(
            fields(&mut d, "828684be58086e6f2d6361636865"),
            pairs(&second)
        );
    }

    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        let mut d = Decoder::default();
        let got = fields(&mut d, "828684418cf1e3c2e5f23a6ba0ab90f4ff");
        assert_eq!(got[3], pairs(&[(":authority", "www.example.com")])[0]);
        let got = fields(&mut d, "828684be5886a8eb10649cbf");
        assert_eq!(got[4], pairs(&[("cache-control", "no-cache")])[0]);
    }

    #[test]
    fn huffman_padding_and_eos_are_checked() {
        let mut out = Vec::new();
        huffman_decode(&hex("f1e3c2e5f23a6ba0ab90f4ff"), &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        // Padding that is not all ones, or a whole byte of it, is refused.
        assert!(huffman_decode(&hex("f1e3c2e5f23a6ba0ab90f4fe"), &mut Vec::new()).is_err());
        assert!(huffman_decode(&hex("ff"), &mut Vec::new()).is_err());
        // EOS (thirty ones) inside the string is refused.
        assert!(huffman_decode(&hex("ffffffff"), &mut Vec::new()).is_err());
    }

    #[test]
    fn hostile_blocks_are_errors() {
        let mut d = Decoder::default();
        for block in ["ff", "bf", "ffffffffffff0f", "41ff7f", "40", "00", "c0"] {
            assert!(d.decode(&hex(block), |_, _| {}).is_err(), "{block}");
        }
        // A size update cannot grow the table past the bound.
        d.decode(&hex("3fe1ff3f"), |_, _| {}).unwrap();
        assert!(d.max_size <= MAX_TABLE_SIZE);
    }

    #[test]
    fn dynamic_table_stays_within_its_size() {
        let mut d = Decoder::default();
        let mut block = Vec::new();
        for i in 0..200u8 {
            block.extend_from_slice(&[0x40, 3, b'k', b'e', i, 0x7f, 0x80, 0x01]);
            block.extend(std::iter::repeat_n(b'v', 255));
        }
        d.decode(&block, |_, _| {}).unwrap();
        assert!(d.size <= DEFAULT_TABLE_SIZE);
        assert_eq!(
            d.size,
            d.dynamic
                .iter()
                .map(|(n, v)| entry_size(n, v))
                .sum::<usize>()
        );
    }
}
