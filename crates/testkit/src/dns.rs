//! DNS messages (RFC 1035): queries, responses with any records (A, AAAA,
//! CNAME chains, HTTPS), names in wire form and compression pointers.

use std::net::{IpAddr, Ipv4Addr};

/// Record type A.
pub const A: u16 = 1;
/// Record type CNAME.
pub const CNAME: u16 = 5;
/// Record type AAAA.
pub const AAAA: u16 = 28;
/// Record type HTTPS (RFC 9460).
pub const HTTPS: u16 = 65;
/// Where the question name starts in a message: a record whose owner is
/// `pointer(QUESTION_AT)` is owned by the question's name.
pub const QUESTION_AT: u16 = 12;

/// `n` in wire form, uncompressed (empty labels, as in a trailing dot, are
/// skipped).
pub fn name(n: &str) -> Vec<u8> {
    let labels: Vec<&[u8]> = n
        .split('.')
        .filter(|l| !l.is_empty())
        .map(str::as_bytes)
        .collect();
    name_from_labels(&labels)
}

/// Labels of any bytes in wire form (lengths are not checked: tests build
/// hostile names with this).
pub fn name_from_labels(labels: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    out
}

/// A compression pointer to offset `at`.
pub fn pointer(at: u16) -> [u8; 2] {
    (0xc000 | at).to_be_bytes()
}

/// A recursive query for `qname` (wire form) of `qtype`, class IN.
pub fn query_wire(id: u16, qname: &[u8], qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(qname);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// A recursive query for `qname` of `qtype`, class IN.
pub fn query(id: u16, qname: &str, qtype: u16) -> Vec<u8> {
    query_wire(id, &name(qname), qtype)
}

/// A response being written: the question, then records appended as they
/// come (all in the answer section), with one TTL.
#[derive(Debug, Clone)]
pub struct Response {
    bytes: Vec<u8>,
    answers: u16,
    ttl: u32,
}

impl Response {
    /// A successful recursive response to `qname` (wire form) of `qtype`;
    /// records get a TTL of 300 seconds unless [`Response::ttl`] says.
    pub fn new(id: u16, qname: &[u8], qtype: u16) -> Self {
        let mut bytes = id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(qname);
        bytes.extend_from_slice(&qtype.to_be_bytes());
        bytes.extend_from_slice(&[0, 1]);
        Response {
            bytes,
            answers: 0,
            ttl: 300,
        }
    }

    /// Sets the TTL of the records appended from now on.
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = seconds;
        self
    }

    /// Appends a record owned by `owner` (wire form, may be a pointer);
    /// returns the offset of its data, for pointers to it.
    pub fn record(&mut self, owner: &[u8], rtype: u16, rdata: &[u8]) -> u16 {
        self.bytes.extend_from_slice(owner);
        self.bytes.extend_from_slice(&rtype.to_be_bytes());
        self.bytes.extend_from_slice(&[0, 1]);
        self.bytes.extend_from_slice(&self.ttl.to_be_bytes());
        self.bytes
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        let at = self.bytes.len() as u16;
        self.bytes.extend_from_slice(rdata);
        self.answers += 1;
        at
    }

    /// Where the next record will start (for pointers to it).
    pub fn next_offset(&self) -> u16 {
        self.bytes.len() as u16
    }

    /// Appends an A or AAAA record, as the address is.
    pub fn address(&mut self, owner: &[u8], addr: IpAddr) {
        match addr {
            IpAddr::V4(v4) => self.record(owner, A, &v4.octets()),
            IpAddr::V6(v6) => self.record(owner, AAAA, &v6.octets()),
        };
    }

    /// The message, with the answer count filled in.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes[6..8].copy_from_slice(&self.answers.to_be_bytes());
        self.bytes
    }
}

/// A response to `qname`/`qtype` whose `answers` (type, data) are each
/// owned by `qname`.
pub fn response(id: u16, qname: &str, qtype: u16, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let owner = name(qname);
    let mut r = Response::new(id, &owner, qtype);
    for (rtype, rdata) in answers {
        r.record(&owner, *rtype, rdata);
    }
    r.finish()
}

/// A response to an A query for `qname`: the CNAME `chain` from `qname`,
/// then `addrs` owned by the chain's last name.
pub fn cname_answer(id: u16, qname: &str, chain: &[&str], addrs: &[Ipv4Addr]) -> Vec<u8> {
    let mut r = Response::new(id, &name(qname), A);
    let mut owner = qname;
    for target in chain {
        r.record(&name(owner), CNAME, &name(target));
        owner = target;
    }
    for a in addrs {
        r.address(&name(owner), IpAddr::V4(*a));
    }
    r.finish()
}

/// HTTPS record data (RFC 9460 §2.2): `priority`, target `target`, and
/// `params` (key, value) in the order given.
pub fn https_rdata(priority: u16, target: &str, params: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut r = priority.to_be_bytes().to_vec();
    r.extend_from_slice(&name(target));
    for (key, value) in params {
        r.extend_from_slice(&key.to_be_bytes());
        r.extend_from_slice(&(value.len() as u16).to_be_bytes());
        r.extend_from_slice(value);
    }
    r
}

/// The `alpn` SvcParam (key 1).
pub fn svc_alpn(protocols: &[&str]) -> (u16, Vec<u8>) {
    let mut v = Vec::new();
    for p in protocols {
        v.push(p.len() as u8);
        v.extend_from_slice(p.as_bytes());
    }
    (1, v)
}

/// The `ipv4hint` SvcParam (key 4) with one address.
pub fn svc_ipv4hint(addr: impl Into<Ipv4Addr>) -> (u16, Vec<u8>) {
    (4, addr.into().octets().to_vec())
}

/// The `ech` SvcParam (key 5) holding an ECHConfigList.
pub fn svc_ech(config_list: &[u8]) -> (u16, Vec<u8>) {
    (5, config_list.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_wire_form() {
        assert_eq!(name("a.bc."), b"\x01a\x02bc\x00");
        assert_eq!(name("."), b"\x00");
    }

    #[test]
    fn the_answer_count_follows_the_records() {
        let m = cname_answer(
            7,
            "a.example",
            &["b.example"],
            &[Ipv4Addr::new(192, 0, 2, 1)],
        );
        assert_eq!(&m[..2], &7u16.to_be_bytes());
        assert_eq!(&m[6..8], &2u16.to_be_bytes());
        assert_eq!(&m[m.len() - 4..], &[192, 0, 2, 1]);
    }
}
