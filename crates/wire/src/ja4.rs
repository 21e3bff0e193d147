//! The JA4 client fingerprint of a TLS or QUIC ClientHello.
//!
//! JA4 is the BSD-3-licensed client part of the public JA4+ specification
//! (FoxIO, `technical_details/JA4.md`). It reads only what a ClientHello
//! offers, so it names the client software, never the destination:
//!
//! ```text
//! t13d1516h2_8daaf6152771_e5627efa2ab1
//! │││ │ │ │  │            └ c: SHA-256 (first 12 hex) of the sorted extension
//! │││ │ │ │  │                 types without SNI and ALPN, then `_` and the
//! │││ │ │ │  │                 signature algorithms in wire order
//! │││ │ │ │  └ b: SHA-256 (first 12 hex) of the sorted cipher suites
//! │││ │ │ └ first and last character of the first ALPN value (`00`: none)
//! │││ │ └ number of extensions (at most 99)
//! │││ └ number of cipher suites (at most 99)
//! ││└ `d`: a server_name extension is present, `i`: none
//! │└ highest version offered: supported_versions, else legacy_version
//! └ `t` TLS over TCP, `q` QUIC
//! ```
//!
//! GREASE values (RFC 8701) are left out of every list and count; lists are
//! written as comma-separated four-digit lowercase hex. An empty list hashes
//! to `000000000000`.
//!
//! The inner lists (versions, signature algorithms, ALPN) are read leniently:
//! a list that claims more than its extension holds is read up to where the
//! extension ends, as reference implementations do, so a sloppy client gets
//! the same fingerprint here as anywhere else.
//!
//! Computing one allocates nothing, except a scratch list for a hello that
//! offers more than [`STACK_LIST`] ciphers or extensions (none seen in
//! practice); no input can make it panic.

use core::fmt;

use ring::digest;

use crate::bytes::{be16, Reader};
use crate::tls::{
    ClientHello, EXT_ALPN, EXT_SERVER_NAME, EXT_SIGNATURE_ALGORITHMS, EXT_SUPPORTED_VERSIONS,
};

/// Length of a JA4 fingerprint: `a` (10) `_` `b` (12) `_` `c` (12).
pub const LEN: usize = 36;
/// Ciphers or extensions sorted on the stack; longer lists use the heap.
pub const STACK_LIST: usize = 256;
const HEX: &[u8; 16] = b"0123456789abcdef";

/// How the ClientHello travelled: the fingerprint's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// TLS over TCP (`t`).
    Tcp,
    /// QUIC CRYPTO frames (`q`).
    Quic,
}

/// A JA4 fingerprint: 36 ASCII bytes, kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ja4([u8; LEN]);

impl Ja4 {
    /// The fingerprint as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into a fingerprint (constructor and
        // `parse` both guarantee it), so this never falls back.
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// Reads a fingerprint written by [`Ja4::as_str`] (for label tables):
    /// 36 printable ASCII characters with `_` at offsets 10 and 23 and
    /// lowercase hex hashes. `None` for anything else.
    pub fn parse(text: &str) -> Option<Ja4> {
        let b: [u8; LEN] = text.as_bytes().try_into().ok()?;
        let hex = |s: &[u8]| s.iter().all(|c| HEX.contains(c));
        let ok = b[10] == b'_'
            && b[23] == b'_'
            && b[..10].iter().all(|c| (0x20..0x7f).contains(c))
            && hex(&b[11..23])
            && hex(&b[24..]);
        ok.then_some(Ja4(b))
    }
}

impl fmt::Display for Ja4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Ja4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ja4({})", self.as_str())
    }
}

/// GREASE values (RFC 8701 §2): `0x?a?a` with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// The JA4 fingerprint of a parsed ClientHello.
pub fn fingerprint(hello: &ClientHello<'_>, carrier: Carrier) -> Ja4 {
    // Every byte is overwritten below except the hash parts, whose zero
    // default is what an empty list gives.
    let mut out = [b'0'; LEN];
    out[0] = match carrier {
        Carrier::Tcp => b't',
        Carrier::Quic => b'q',
    };
    let ext = Extensions::read(hello.extensions);
    let version = ext.highest_version.unwrap_or(hello.legacy_version);
    out[1..3].copy_from_slice(version_code(version));
    out[3] = if ext.has_sni { b'd' } else { b'i' };
    let ciphers = || {
        hello
            .cipher_suites
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .filter(|&c| !is_grease(c))
    };
    out[4..6].copy_from_slice(&two_digits(ciphers().count()));
    out[6..8].copy_from_slice(&two_digits(ext.count));
    out[8..10].copy_from_slice(&alpn_code(ext.first_alpn));
    out[10] = b'_';
    out[23] = b'_';

    let mut list = SortedList::new();
    list.fill(ciphers());
    if !list.as_slice().is_empty() {
        let mut h = HexHasher::new();
        h.list(list.as_slice());
        out[11..23].copy_from_slice(&h.finish());
    }

    let hashed = |t: &u16| *t != EXT_SERVER_NAME && *t != EXT_ALPN;
    list.fill(ext.types(hello.extensions).filter(hashed));
    let sigs = ext.signature_algorithms();
    if !list.as_slice().is_empty() || sigs.clone().next().is_some() {
        let mut h = HexHasher::new();
        h.list(list.as_slice());
        if sigs.clone().next().is_some() {
            h.byte(b'_');
            h.list(sigs);
        }
        out[24..].copy_from_slice(&h.finish());
    }
    Ja4(out)
}

/// What JA4 needs from the extensions block, in one pass.
#[derive(Default)]
struct Extensions<'a> {
    /// Non-GREASE extensions, capped at 99 when written.
    count: usize,
    has_sni: bool,
    /// Highest non-GREASE supported_versions value.
    highest_version: Option<u16>,
    /// The first ALPN value; `Some(&[])` when the extension is there but
    /// holds no readable value.
    first_alpn: Option<&'a [u8]>,
    /// Data of the (last) signature_algorithms extension.
    signature_algorithms: &'a [u8],
}

impl<'a> Extensions<'a> {
    fn read(block: &'a [u8]) -> Self {
        let mut e = Extensions::default();
        for (kind, data) in each_extension(block) {
            if is_grease(kind) {
                continue;
            }
            e.count += 1;
            match kind {
                EXT_SERVER_NAME => e.has_sni = true,
                EXT_ALPN => e.first_alpn = Some(first_alpn(data)),
                EXT_SIGNATURE_ALGORITHMS => e.signature_algorithms = data,
                EXT_SUPPORTED_VERSIONS => {
                    let n = data.first().map_or(0, |&n| usize::from(n));
                    let list = data.get(1..).unwrap_or_default();
                    e.highest_version = pairs(&list[..n.min(list.len())])
                        .filter(|&v| !is_grease(v))
                        .max();
                }
                _ => {}
            }
        }
        e
    }

    /// The extension types again, GREASE left out (the block is re-walked
    /// rather than copied: it is short and already in cache).
    fn types(&self, block: &'a [u8]) -> impl Iterator<Item = u16> + 'a {
        each_extension(block)
            .map(|(kind, _)| kind)
            .filter(|&k| !is_grease(k))
    }

    /// Signature algorithms in wire order, GREASE left out.
    fn signature_algorithms(&self) -> impl Iterator<Item = u16> + Clone + 'a {
        let data = self.signature_algorithms;
        let n = be16(data, 0).map_or(0, usize::from);
        let list = data.get(2..).unwrap_or_default();
        pairs(&list[..n.min(list.len())]).filter(|&s| !is_grease(s))
    }
}

/// Walks an extensions block already checked by the ClientHello parser;
/// stops quietly at anything malformed.
fn each_extension(block: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut r = Reader::new(block);
    core::iter::from_fn(move || {
        let kind = r.u16().ok()?;
        let data = r.vec16().ok()?;
        Some((kind, data))
    })
}

/// Big-endian pairs; an odd last byte is ignored.
fn pairs(bytes: &[u8]) -> impl Iterator<Item = u16> + Clone + '_ {
    bytes
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
}

/// The first protocol of an ALPN extension, read as far as the data goes.
fn first_alpn(data: &[u8]) -> &[u8] {
    let Ok(declared) = be16(data, 0) else {
        return &[];
    };
    let end = (2 + usize::from(declared)).min(data.len());
    let Some(&len) = data.get(2).filter(|_| end > 2) else {
        return &[];
    };
    data.get(3..3 + usize::from(len)).unwrap_or_default()
}

fn version_code(v: u16) -> &'static [u8; 2] {
    match v {
        0x0304 => b"13",
        0x0303 => b"12",
        0x0302 => b"11",
        0x0301 => b"10",
        0x0300 => b"s3",
        0x0002 => b"s2",
        0xfeff => b"d1",
        0xfefd => b"d2",
        0xfefc => b"d3",
        _ => b"00",
    }
}

fn two_digits(n: usize) -> [u8; 2] {
    let n = n.min(99) as u8;
    [b'0' + n / 10, b'0' + n % 10]
}

/// The ALPN characters: `00` without a value; otherwise one character for
/// the first byte and one for the last, a printable ASCII byte as itself and
/// a byte from 0x80 up as `9`; a control byte at either end gives `99`. The
/// specification leaves non-alphanumeric bytes loosely defined; this follows
/// the reference implementations' reading.
fn alpn_code(first: Option<&[u8]>) -> [u8; 2] {
    let (Some(&a), Some(&z)) = (first.and_then(|v| v.first()), first.and_then(|v| v.last())) else {
        return *b"00";
    };
    let char_of = |b: u8| match b {
        0x20..=0x7e => Some(b),
        0x80..=0xff => Some(b'9'),
        _ => None,
    };
    match (char_of(a), char_of(z)) {
        (Some(a), Some(z)) => [a, z],
        _ => *b"99",
    }
}

/// A sorted copy of a u16 list: on the stack up to [`STACK_LIST`] values.
struct SortedList {
    stack: [u16; STACK_LIST],
    len: usize,
    heap: Vec<u16>,
}

impl SortedList {
    fn new() -> Self {
        SortedList {
            stack: [0; STACK_LIST],
            len: 0,
            heap: Vec::new(),
        }
    }

    fn fill(&mut self, values: impl Iterator<Item = u16>) {
        self.len = 0;
        self.heap.clear();
        for v in values {
            if self.len < STACK_LIST {
                self.stack[self.len] = v;
                self.len += 1;
            } else {
                if self.heap.is_empty() {
                    self.heap.extend_from_slice(&self.stack);
                }
                self.heap.push(v);
            }
        }
        if self.heap.is_empty() {
            self.stack[..self.len].sort_unstable();
        } else {
            self.heap.sort_unstable();
        }
    }

    fn as_slice(&self) -> &[u16] {
        if self.heap.is_empty() {
            &self.stack[..self.len]
        } else {
            &self.heap
        }
    }
}

/// SHA-256 over text written piecewise, buffered so the digest sees few,
/// larger updates.
struct HexHasher {
    ctx: digest::Context,
    buf: [u8; 256],
    len: usize,
}

impl HexHasher {
    fn new() -> Self {
        HexHasher {
            ctx: digest::Context::new(&digest::SHA256),
            buf: [0; 256],
            len: 0,
        }
    }

    fn byte(&mut self, b: u8) {
        if self.len == self.buf.len() {
            self.ctx.update(&self.buf);
            self.len = 0;
        }
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// Writes `xxxx,yyyy,...`.
    fn list(&mut self, values: impl IntoIterator<Item = impl core::borrow::Borrow<u16>>) {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.byte(b',');
            }
            let v = *v.borrow();
            for shift in [12, 8, 4, 0] {
                self.byte(HEX[usize::from((v >> shift) & 0xf)]);
            }
        }
    }

    /// The first 12 hex digits of the digest.
    fn finish(mut self) -> [u8; 12] {
        self.ctx.update(&self.buf[..self.len]);
        let d = self.ctx.finish();
        let mut out = [0; 12];
        for (i, b) in d.as_ref().iter().take(6).enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::parse_client_hello_message;

    /// A ClientHello message with these suites and (type, data) extensions.
    fn hello(suites: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
        suites
            .iter()
            .for_each(|s| body.extend_from_slice(&s.to_be_bytes()));
        body.extend_from_slice(&[1, 0]);
        let mut block = Vec::new();
        for (kind, data) in exts {
            block.extend_from_slice(&kind.to_be_bytes());
            block.extend_from_slice(&(data.len() as u16).to_be_bytes());
            block.extend_from_slice(data);
        }
        body.extend_from_slice(&(block.len() as u16).to_be_bytes());
        body.extend_from_slice(&block);
        let mut msg = vec![1, 0];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&body);
        msg
    }

    fn u16_list(len_bytes: usize, values: &[u16]) -> Vec<u8> {
        let n = values.len() * 2;
        let mut out = if len_bytes == 1 {
            vec![n as u8]
        } else {
            (n as u16).to_be_bytes().to_vec()
        };
        values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_be_bytes()));
        out
    }

    fn ja4_of(msg: &[u8], carrier: Carrier) -> String {
        let parsed = parse_client_hello_message(msg).unwrap();
        fingerprint(&parsed, carrier).as_str().to_owned()
    }

    /// The specification's published example (JA4.md: a Chrome hello,
    /// `t13d1516h2_8daaf6152771_e5627efa2ab1`), rebuilt from its raw
    /// lists, with GREASE added where Chrome puts it: GREASE changes nothing.
    fn published_example(grease: bool, carrier: Carrier) -> String {
        let mut suites = vec![
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let sigs = [
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ];
        let sni = {
            let name = b"www.example.org";
            let mut entry = vec![0];
            entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
            entry.extend_from_slice(name);
            let mut d = (entry.len() as u16).to_be_bytes().to_vec();
            d.extend_from_slice(&entry);
            d
        };
        let alpn = vec![
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ];
        let mut versions = vec![0x0304, 0x0303];
        let mut exts: Vec<(u16, Vec<u8>)> = vec![
            (0x0000, sni),
            (0x0017, vec![]),
            (0xff01, vec![0]),
            (0x000a, u16_list(2, &[0x001d, 0x0017])),
            (0x000b, vec![1, 0]),
            (0x0023, vec![]),
            (0x0010, alpn),
            (0x0005, vec![1, 0, 0, 0, 0]),
            (0x000d, u16_list(2, &sigs)),
            (0x0012, vec![]),
            (0x0033, vec![0, 0]),
            (0x002d, vec![1, 1]),
            (0x002b, vec![]),
            (0x001b, vec![2, 0, 2]),
            (0x4469, vec![0, 3, 2, b'h', b'2']),
            (0x0015, vec![0; 16]),
        ];
        if grease {
            suites.insert(0, 0x3a3a);
            exts.insert(0, (0x0a0a, vec![]));
            exts.push((0xfafa, vec![0]));
            versions.insert(0, 0x5a5a);
        }
        let at = exts.iter().position(|e| e.0 == 0x002b).unwrap();
        exts[at].1 = u16_list(1, &versions);
        ja4_of(&hello(&suites, &exts), carrier)
    }

    #[test]
    fn the_specifications_published_example() {
        let want = "t13d1516h2_8daaf6152771_e5627efa2ab1";
        assert_eq!(published_example(false, Carrier::Tcp), want);
        assert_eq!(published_example(true, Carrier::Tcp), want);
        assert_eq!(
            published_example(true, Carrier::Quic),
            "q13d1516h2_8daaf6152771_e5627efa2ab1"
        );
    }

    #[test]
    fn empty_lists_hash_to_zeros_and_counts_stop_at_99() {
        // No supported_versions: the legacy version (TLS 1.2); no SNI: `i`.
        assert_eq!(
            ja4_of(&hello(&[], &[]), Carrier::Tcp),
            "t12i000000_000000000000_000000000000"
        );
        // 0x1301 alone: sha256("1301") begins 0f2cb44170f4.
        let many: Vec<u16> = (1..=150).collect();
        let exts: Vec<(u16, Vec<u8>)> = (100..250).map(|t| (t, vec![])).collect();
        let fp = ja4_of(&hello(&many, &exts), Carrier::Tcp);
        assert_eq!(&fp[..10], "t12i999900");
        assert_eq!(
            &ja4_of(&hello(&[0x1301], &[]), Carrier::Tcp)[11..23],
            "0f2cb44170f4"
        );
        // SNI and ALPN alone count in `a` but leave nothing to hash in `c`.
        let exts = [(0x0000, vec![]), (0x0010, vec![0, 3, 2, b'h', b'2'])];
        assert_eq!(
            ja4_of(&hello(&[0x1301], &exts), Carrier::Tcp),
            "t12d0102h2_0f2cb44170f4_000000000000"
        );
    }

    #[test]
    fn alpn_characters() {
        let code = |v: &[u8]| alpn_code(Some(v));
        assert_eq!(code(b"h2"), *b"h2");
        assert_eq!(code(b"http/1.1"), *b"h1");
        assert_eq!(code(b"h"), *b"hh");
        assert_eq!(code(&[0xab, 0xcd]), *b"99");
        assert_eq!(code(&[b'a', 0x01]), *b"99");
        assert_eq!(code(b""), *b"00");
        assert_eq!(alpn_code(None), *b"00");
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x3a3a));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301) && !is_grease(0xaaab));
    }

    #[test]
    fn parse_accepts_only_what_as_str_writes() {
        let fp = "t13d1516h2_8daaf6152771_e5627efa2ab1";
        assert_eq!(Ja4::parse(fp).unwrap().as_str(), fp);
        assert!(Ja4::parse("t13d1516h2_8daaf6152771_e5627efa2abX").is_none());
        assert!(Ja4::parse("t13d1516h2-8daaf6152771_e5627efa2ab1").is_none());
        assert!(Ja4::parse("short").is_none());
    }

    #[test]
    fn hostile_lists_never_panic() {
        // Inner lengths that claim more than the extension holds, odd
        // lengths and empty data: read as far as they go.
        let exts = [
            (0x000d, vec![0xff, 0xff, 4, 3]),
            (0x002b, vec![9, 3, 4]),
            (0x0010, vec![0, 2, 5, b'h']),
        ];
        let fp = ja4_of(&hello(&[0x1301, 0x1302], &exts), Carrier::Tcp);
        assert_eq!(&fp[..10], "t13i020300");
    }
}
