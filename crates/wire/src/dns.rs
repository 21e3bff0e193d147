//! DNS messages (RFC 1035), with the record types that name flows:
//! A, AAAA, CNAME, and the address hints of SVCB/HTTPS (RFC 9460).
//!
//! Names are decoded into a fixed 255-byte [`Name`] without allocating.
//! Compression pointers must point strictly before the label sequence that
//! contains them (the rule hickory calls "pointer not prior to label"), which
//! makes every decode terminate; labels are at most 63 bytes and names at most
//! 255 bytes on the wire.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::{be16, Reader};
use crate::{Error, Result};

/// Record types this module decodes.
pub mod rtype {
    /// Domain name pointer (DNS-SD service instances).
    pub const PTR: u16 = 12;
    /// Text strings (DNS-SD key=value pairs).
    pub const TXT: u16 = 16;
    /// Service location (RFC 2782).
    pub const SRV: u16 = 33;
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service binding.
    pub const SVCB: u16 = 64;
    /// HTTPS service binding.
    pub const HTTPS: u16 = 65;
}

/// Longest name on the wire, length bytes included (RFC 1035 §2.3.4).
pub const MAX_NAME_WIRE: usize = 255;
const MAX_LABEL: usize = 63;

/// A decoded domain name in dotted form, without the trailing dot. Bytes are
/// kept as they were on the wire (case included); callers normalise.
#[derive(Clone, Copy)]
pub struct Name {
    buf: [u8; MAX_NAME_WIRE],
    len: u8,
}

impl Name {
    /// The empty (root) name.
    pub const fn root() -> Self {
        Name {
            buf: [0; MAX_NAME_WIRE],
            len: 0,
        }
    }
    /// The dotted form as raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.len == 0
    }
    fn push_label(&mut self, label: &[u8]) -> Result<()> {
        let dot = usize::from(self.len != 0);
        let start = usize::from(self.len) + dot;
        let end = start + label.len();
        if end > MAX_NAME_WIRE {
            return Err(Error::DnsNameTooLong);
        }
        if dot == 1 {
            self.buf[start - 1] = b'.';
        }
        self.buf[start..end].copy_from_slice(label);
        self.len = end as u8;
        Ok(())
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Name({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// Decodes the name at `start` in `msg`; returns it and the offset just past
/// it in the original (unfollowed) byte stream.
pub fn read_name(msg: &[u8], start: usize) -> Result<(Name, usize)> {
    let mut name = Name::root();
    let mut pos = start;
    let mut segment_start = start;
    let mut resume = None;
    let mut wire_len = 1usize; // the root label
    loop {
        let len = *msg.get(pos).ok_or(Error::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Ok((name, resume.unwrap_or(pos + 1)));
            }
            0x00 => {
                let len = usize::from(len);
                debug_assert!(len <= MAX_LABEL);
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(Error::Truncated)?;
                wire_len += len + 1;
                if wire_len > MAX_NAME_WIRE {
                    return Err(Error::DnsNameTooLong);
                }
                name.push_label(label)?;
                pos += 1 + len;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(Error::Truncated)?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                if target >= segment_start {
                    return Err(Error::DnsPointerLoop);
                }
                resume.get_or_insert(pos + 2);
                pos = target;
                segment_start = target;
            }
            _ => return Err(Error::DnsBadLabel),
        }
    }
}

/// A question entry.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    /// The name asked about.
    pub name: Name,
    /// Query type.
    pub qtype: u16,
}

/// A resource record from the answer section.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Owner name.
    pub name: Name,
    /// Record type.
    pub rtype: u16,
    /// Time to live, seconds.
    pub ttl: u32,
    /// Raw record data.
    pub rdata: &'a [u8],
    rdata_at: usize,
}

/// What a record says, for the types that name flows.
#[derive(Debug, Clone, Copy)]
pub enum RData<'a> {
    /// An address (A or AAAA).
    Address(IpAddr),
    /// A CNAME target.
    Cname(Name),
    /// An SVCB/HTTPS record: its target and raw parameters.
    Service {
        /// Target name (root means "the owner name").
        target: Name,
        /// SvcParams, to read with [`service_hints`].
        params: &'a [u8],
    },
    /// A type this module does not decode.
    Other,
}

/// A checked DNS message view.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// Checks that the 12-byte header is present.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 12 {
            return Err(Error::Truncated);
        }
        Ok(Message { bytes })
    }
    /// Transaction id.
    pub fn id(&self) -> u16 {
        be16(self.bytes, 0).unwrap_or(0)
    }
    /// QR bit.
    pub fn is_response(&self) -> bool {
        self.bytes[2] & 0x80 != 0
    }
    /// Response code (low 4 bits).
    pub fn rcode(&self) -> u8 {
        self.bytes[3] & 0x0f
    }
    /// Opcode.
    pub fn opcode(&self) -> u8 {
        (self.bytes[2] >> 3) & 0x0f
    }
    /// Number of questions.
    pub fn question_count(&self) -> u16 {
        be16(self.bytes, 4).unwrap_or(0)
    }
    /// Number of answer records.
    pub fn answer_count(&self) -> u16 {
        be16(self.bytes, 6).unwrap_or(0)
    }
    /// The first question, if the message has one.
    pub fn first_question(&self) -> Result<Option<Question>> {
        if self.question_count() == 0 {
            return Ok(None);
        }
        let (name, next) = read_name(self.bytes, 12)?;
        let qtype = be16(self.bytes, next)?;
        be16(self.bytes, next + 2)?;
        Ok(Some(Question { name, qtype }))
    }
    /// Iterates over the answer section. The iterator yields at most one
    /// error and then stops.
    pub fn answers(&self) -> Answers<'a> {
        let mut pos = Some(12);
        for _ in 0..self.question_count() {
            pos = pos
                .and_then(|p| read_name(self.bytes, p).ok())
                .map(|(_, n)| n + 4);
        }
        Answers {
            msg: self.bytes,
            pos,
            left: self.answer_count(),
        }
    }
    /// Iterates over every resource record: the answer, authority and
    /// additional sections in turn (mDNS puts a responder's names in all
    /// of them). Yields at most one error and then stops.
    pub fn records(&self) -> Answers<'a> {
        let count = |at| be16(self.bytes, at).unwrap_or(0);
        let mut all = self.answers();
        all.left = count(6).saturating_add(count(8)).saturating_add(count(10));
        all
    }
    /// Decodes the (possibly compressed) name `skip` bytes into a record's
    /// data, such as an SRV target (after priority, weight and port) or a
    /// PTR target (`skip` 0).
    pub fn rdata_name(&self, rec: &Record<'a>, skip: usize) -> Result<Name> {
        if skip >= rec.rdata.len() {
            return Err(Error::BadLength);
        }
        Ok(read_name(self.bytes, rec.rdata_at + skip)?.0)
    }
    /// Decodes a record's data.
    pub fn rdata(&self, rec: &Record<'a>) -> Result<RData<'a>> {
        match rec.rtype {
            rtype::A => {
                let b: [u8; 4] = rec.rdata.try_into().map_err(|_| Error::BadLength)?;
                Ok(RData::Address(IpAddr::V4(Ipv4Addr::from(b))))
            }
            rtype::AAAA => {
                let b: [u8; 16] = rec.rdata.try_into().map_err(|_| Error::BadLength)?;
                Ok(RData::Address(IpAddr::V6(Ipv6Addr::from(b))))
            }
            rtype::CNAME => Ok(RData::Cname(read_name(self.bytes, rec.rdata_at)?.0)),
            rtype::SVCB | rtype::HTTPS => {
                // priority(2) target(name) params
                let (target, next) = read_name(self.bytes, rec.rdata_at + 2)?;
                let end = rec.rdata_at + rec.rdata.len();
                let params = self.bytes.get(next..end).ok_or(Error::BadLength)?;
                Ok(RData::Service { target, params })
            }
            _ => Ok(RData::Other),
        }
    }
}

/// Iterator over answer records.
#[derive(Debug, Clone)]
pub struct Answers<'a> {
    msg: &'a [u8],
    pos: Option<usize>,
    left: u16,
}

impl<'a> Iterator for Answers<'a> {
    type Item = Result<Record<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let Some(pos) = self.pos else {
            self.left = 0;
            return Some(Err(Error::Truncated));
        };
        let rec = (|| {
            let (name, next) = read_name(self.msg, pos)?;
            let mut r = Reader::new(self.msg.get(next..).ok_or(Error::Truncated)?);
            let rtype = r.u16()?;
            let _class = r.u16()?;
            let ttl = r.u32()?;
            let rdata = r.vec16()?;
            Ok((
                Record {
                    name,
                    rtype,
                    ttl,
                    rdata,
                    rdata_at: next + 10,
                },
                next + r.position(),
            ))
        })();
        match rec {
            Ok((rec, next)) => {
                self.pos = Some(next);
                Some(Ok(rec))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

/// The addresses in an SVCB/HTTPS record's `ipv4hint` and `ipv6hint`.
pub fn service_hints(params: &[u8]) -> impl Iterator<Item = IpAddr> + '_ {
    let mut r = Reader::new(params);
    let mut current: (u16, &[u8]) = (0, &[]);
    core::iter::from_fn(move || loop {
        match current.0 {
            4 if current.1.len() >= 4 => {
                let (a, rest) = current.1.split_at(4);
                current.1 = rest;
                return Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])));
            }
            6 if current.1.len() >= 16 => {
                let (a, rest) = current.1.split_at(16);
                current.1 = rest;
                let mut b = [0u8; 16];
                b.copy_from_slice(a);
                return Some(IpAddr::V6(Ipv6Addr::from(b)));
            }
            _ => {
                let key = r.u16().ok()?;
                let value = r.vec16().ok()?;
                current = (key, value);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the seed study's answer: xtrapath3.izatcloud.net CNAME
    /// xtrapath3.qcomgeo2.com CNAME xp3.gpsonextra.net CNAME
    /// d3nj9ptoklgw8o.cloudfront.net A 52.222.231.102, with compression.
    pub(crate) fn xtra_response() -> Vec<u8> {
        let mut m = vec![0x96, 0x45, 0x81, 0x80, 0, 1, 0, 4, 0, 0, 0, 0];
        // question at 12
        m.extend_from_slice(b"\x09xtrapath3\x09izatcloud\x03net\x00\x00\x01\x00\x01");
        // CNAME 1: owner -> ptr 12
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60]);
        let t1 = b"\x09xtrapath3\x08qcomgeo2\x03com\x00";
        m.extend_from_slice(&(t1.len() as u16).to_be_bytes());
        let t1_at = m.len();
        m.extend_from_slice(t1);
        // CNAME 2
        m.extend_from_slice(&[0xc0, t1_at as u8, 0, 5, 0, 1, 0, 0, 0, 60]);
        let t2 = b"\x03xp3\x0agpsonextra\x03net\x00";
        m.extend_from_slice(&(t2.len() as u16).to_be_bytes());
        let t2_at = m.len();
        m.extend_from_slice(t2);
        // CNAME 3
        m.extend_from_slice(&[0xc0, t2_at as u8, 0, 5, 0, 1, 0, 0, 0, 60]);
        let t3 = b"\x0ed3nj9ptoklgw8o\x0acloudfront\x03net\x00";
        m.extend_from_slice(&(t3.len() as u16).to_be_bytes());
        let t3_at = m.len();
        m.extend_from_slice(t3);
        // A
        m.extend_from_slice(&[
            0xc0,
            t3_at as u8,
            0,
            1,
            0,
            1,
            0,
            0,
            0,
            60,
            0,
            4,
            52,
            222,
            231,
            102,
        ]);
        m
    }

    #[test]
    fn reads_the_xtra_cname_chain() {
        let bytes = xtra_response();
        let msg = Message::parse(&bytes).unwrap();
        assert!(msg.is_response());
        assert_eq!(
            msg.first_question().unwrap().unwrap().name.as_bytes(),
            b"xtrapath3.izatcloud.net"
        );
        let mut seen = Vec::new();
        for rec in msg.answers() {
            let rec = rec.unwrap();
            match msg.rdata(&rec).unwrap() {
                RData::Cname(t) => seen.push(String::from_utf8_lossy(t.as_bytes()).into_owned()),
                RData::Address(a) => seen.push(a.to_string()),
                _ => {}
            }
        }
        assert_eq!(
            seen,
            [
                "xtrapath3.qcomgeo2.com",
                "xp3.gpsonextra.net",
                "d3nj9ptoklgw8o.cloudfront.net",
                "52.222.231.102"
            ]
        );
    }

    #[test]
    fn pointer_to_itself_or_forward_is_refused() {
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[0xc0, 12]);
        assert_eq!(read_name(&m, 12).unwrap_err(), Error::DnsPointerLoop);
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[0xc0, 20, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(read_name(&m, 12).unwrap_err(), Error::DnsPointerLoop);
    }

    #[test]
    fn pointer_back_into_own_labels_is_refused() {
        // "a" then a pointer back to the "a" label: a loop through two steps.
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[1, b'a', 0xc0, 12]);
        m.extend_from_slice(&[0xc0, 12]);
        assert_eq!(read_name(&m, 16).unwrap_err(), Error::DnsPointerLoop);
    }

    #[test]
    fn long_names_are_refused() {
        let mut m = Vec::new();
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'x'; 63]);
        }
        m.push(0);
        assert_eq!(read_name(&m, 0).unwrap_err(), Error::DnsNameTooLong);
        assert_eq!(read_name(&[0x40, 0], 0).unwrap_err(), Error::DnsBadLabel);
    }

    #[test]
    fn truncated_answer_section_yields_one_error() {
        let mut bytes = xtra_response();
        bytes.truncate(bytes.len() - 3);
        let msg = Message::parse(&bytes).unwrap();
        let results: Vec<_> = msg.answers().collect();
        assert_eq!(results.len(), 4);
        assert_eq!(results[3].as_ref().unwrap_err(), &Error::Truncated);
    }

    #[test]
    fn https_record_hints() {
        // priority 1, target ".", alpn, ipv4hint 192.0.2.1,192.0.2.2, ipv6hint 2001:db8::1
        let mut params = vec![0, 1, 0, 3, 2, b'h', b'3'];
        params.extend_from_slice(&[0, 4, 0, 8, 192, 0, 2, 1, 192, 0, 2, 2]);
        params.extend_from_slice(&[
            0, 6, 0, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ]);
        let hints: Vec<String> = service_hints(&params).map(|a| a.to_string()).collect();
        assert_eq!(hints, ["192.0.2.1", "192.0.2.2", "2001:db8::1"]);
    }
}
