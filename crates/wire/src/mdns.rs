//! Multicast DNS (RFC 6762) responses: the names and model a device
//! announces about itself on the local link.
//!
//! A responder announces its host name in A/AAAA records (`NAME.local`)
//! and, with DNS-SD (RFC 6763), may describe itself in a
//! `_device-info._tcp.local` TXT record whose `model=` key names its
//! hardware model (the key Apple's Bonjour publishes; RFC 6763 §6 defines
//! the TXT `key=value` format). Only responses are read: a query's
//! known-answer section repeats other devices' records. Only A/AAAA
//! records for the sender's own address name the sender, so a responder
//! announcing for another host (a sleep proxy) names no one.
//!
//! Names are decoded with [`crate::dns::read_name`] (pointers strictly
//! backwards, at most 255 bytes); at most [`MAX_RECORDS`] records are
//! read; values are borrowed. Nothing here can panic on any input. The
//! bytes are as the device sent them: callers sanitise before showing.

use std::net::IpAddr;

use crate::dns::{rtype, Message, Name, RData};
use crate::{Error, Result};

/// The mDNS UDP port.
pub const PORT: u16 = 5353;
/// Records read from one message; the rest are ignored.
pub const MAX_RECORDS: usize = 64;

const LOCAL: &[u8] = b".local";
const DEVICE_INFO: &[u8] = b"._device-info._tcp.local";

/// What an mDNS response says about its sender.
#[derive(Debug, Clone, Copy, Default)]
pub struct Announcement<'a> {
    /// Owner name of the first A/AAAA record for the sender's address.
    pub host: Option<Name>,
    /// Owner name of the first `_device-info._tcp.local` TXT record.
    pub device_info: Option<Name>,
    /// Its `model=` value, if it has one.
    pub model: Option<&'a [u8]>,
}

impl Announcement<'_> {
    /// The host name without `.local` (`Pixel-7a` for `Pixel-7a.local`).
    pub fn host_name(&self) -> Option<&[u8]> {
        self.host
            .as_ref()
            .map(|n| strip_suffix(n.as_bytes(), LOCAL))
    }

    /// The device-info instance name (`Living Room` for
    /// `Living Room._device-info._tcp.local`), the name a user gave it.
    pub fn instance_name(&self) -> Option<&[u8]> {
        self.device_info
            .as_ref()
            .map(|n| strip_suffix(n.as_bytes(), DEVICE_INFO))
    }

    /// Whether it says anything about the sender.
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.device_info.is_none()
    }
}

/// `name` without `suffix` (ASCII case-insensitive), or `name` itself.
fn strip_suffix<'n>(name: &'n [u8], suffix: &[u8]) -> &'n [u8] {
    match name.len().checked_sub(suffix.len()) {
        Some(at) if name[at..].eq_ignore_ascii_case(suffix) => &name[..at],
        _ => name,
    }
}

fn ends_with(name: &[u8], suffix: &[u8]) -> bool {
    name.len() > suffix.len() && strip_suffix(name, suffix).len() != name.len()
}

/// The value of key `key` (ASCII case-insensitive) in a TXT record's
/// strings, each `key=value` with a one-byte length (RFC 6763 §6.3-6.4).
pub fn txt_value<'a>(rdata: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut rest = rdata;
    while let Some((&len, tail)) = rest.split_first() {
        let string = tail.get(..usize::from(len))?;
        rest = &tail[usize::from(len)..];
        if let Some(eq) = string.iter().position(|&b| b == b'=') {
            if string[..eq].eq_ignore_ascii_case(key) {
                return Some(&string[eq + 1..]);
            }
        }
    }
    None
}

/// Reads an mDNS message sent from `sender`. A query is
/// [`Error::NotMdnsResponse`]; a malformed record refuses the message.
pub fn parse(bytes: &[u8], sender: IpAddr) -> Result<Announcement<'_>> {
    let msg = Message::parse(bytes)?;
    if !msg.is_response() || msg.opcode() != 0 {
        return Err(Error::NotMdnsResponse);
    }
    let mut out = Announcement::default();
    for rec in msg.records().take(MAX_RECORDS) {
        let rec = rec?;
        match rec.rtype {
            rtype::A | rtype::AAAA if out.host.is_none() => {
                if let RData::Address(a) = msg.rdata(&rec)? {
                    if a == sender && ends_with(rec.name.as_bytes(), LOCAL) {
                        out.host = Some(rec.name);
                    }
                }
            }
            rtype::TXT
                if out.device_info.is_none() && ends_with(rec.name.as_bytes(), DEVICE_INFO) =>
            {
                out.device_info = Some(rec.name);
                out.model = txt_value(rec.rdata, b"model").filter(|m| !m.is_empty());
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name as uncompressed labels.
    fn name(dotted: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in dotted.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    fn record(owner: &[u8], rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&0x8001u16.to_be_bytes()); // IN, cache flush
        r.extend_from_slice(&120u32.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    /// An announcement as a responder sends it: flags 0x8400, answers.
    fn response(records: &[Vec<u8>], flags: u16) -> Vec<u8> {
        let mut m = vec![0, 0];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, records.len() as u8, 0, 0, 0, 0]);
        for r in records {
            m.extend_from_slice(r);
        }
        m
    }

    const SENDER: [u8; 4] = [10, 42, 0, 182];

    #[test]
    fn reads_the_host_name_and_model_a_device_announces() {
        let mut txt = vec![14];
        txt.extend_from_slice(b"model=iPhone14");
        txt.extend_from_slice(b"\x0bosxvers=23");
        let m = response(
            &[
                record(&name("Kims-iPhone.local"), rtype::A, &SENDER),
                record(
                    &name("Kims iPhone._device-info._tcp.local"),
                    rtype::TXT,
                    &txt,
                ),
            ],
            0x8400,
        );
        let a = parse(&m, IpAddr::from(SENDER)).unwrap();
        assert_eq!(a.host_name(), Some(&b"Kims-iPhone"[..]));
        assert_eq!(a.instance_name(), Some(&b"Kims iPhone"[..]));
        assert_eq!(a.model, Some(&b"iPhone14"[..]));
        for len in 0..m.len() {
            let _ = parse(&m[..len], IpAddr::from(SENDER));
        }
    }

    #[test]
    fn names_only_its_sender_and_only_in_responses() {
        let other = record(&name("printer.local"), rtype::A, &[10, 42, 0, 9]);
        let m = response(std::slice::from_ref(&other), 0x8400);
        assert!(parse(&m, IpAddr::from(SENDER)).unwrap().is_empty());
        // A query carrying a known answer for the sender names no one.
        let own = record(&name("phone.local"), rtype::A, &SENDER);
        let q = response(&[own], 0x0000);
        assert_eq!(
            parse(&q, IpAddr::from(SENDER)).unwrap_err(),
            Error::NotMdnsResponse
        );
        // A name outside .local is not a host name.
        let m = response(&[record(&name("phone.example"), rtype::A, &SENDER)], 0x8400);
        assert!(parse(&m, IpAddr::from(SENDER)).unwrap().is_empty());
    }

    #[test]
    fn malformed_and_endless_messages_are_bounded() {
        // A record whose data runs past the end.
        let mut bad = record(&name("phone.local"), rtype::A, &SENDER);
        bad.truncate(bad.len() - 2);
        assert!(parse(&response(&[bad], 0x8400), IpAddr::from(SENDER)).is_err());
        // Counts claiming 65535 records in each section: the records
        // present are read, then the message ends.
        let mut m = response(&[record(&name("phone.local"), rtype::A, &SENDER)], 0x8400);
        m[6..12].copy_from_slice(&[0xff; 6]);
        assert!(parse(&m, IpAddr::from(SENDER)).is_err());
        // TXT strings whose lengths run past the end give no value.
        assert_eq!(txt_value(&[20, b'm', b'='], b"model"), None);
        assert_eq!(txt_value(&[3, b'M', b'=', b'x'], b"model"), None);
        assert_eq!(
            txt_value(&[7, b'M', b'O', b'D', b'E', b'L', b'=', b'x'], b"model"),
            Some(&b"x"[..])
        );
    }
}
