//! Capture files: classic pcap (little-endian, microseconds) and pcapng
//! (little-endian, one interface), written as tetherscope's file reader
//! expects them from tcpdump and Wireshark.

use std::io::Write;

/// A classic little-endian pcap file being written.
///
/// Write errors panic: the kit writes to memory or scratch files in tests.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the header of an Ethernet capture with snap length 65535.
    pub fn new(out: W) -> Self {
        Self::with_link(out, crate::frame::LINKTYPE_ETHERNET, 65_535)
    }

    /// Writes the header of a capture of link type `link` cut at `snaplen`.
    pub fn with_link(mut out: W, link: u32, snaplen: u32) -> Self {
        let mut header = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        header.extend_from_slice(&[2, 0, 4, 0]); // version 2.4
        header.extend_from_slice(&[0; 8]); // thiszone, sigfigs
        header.extend_from_slice(&snaplen.to_le_bytes());
        header.extend_from_slice(&link.to_le_bytes());
        out.write_all(&header).expect("write pcap header");
        PcapWriter { out }
    }

    /// Writes one whole frame captured at `ts_us` (Unix microseconds).
    pub fn record(&mut self, ts_us: u64, frame: &[u8]) {
        let (sec, usec) = ((ts_us / 1_000_000) as u32, (ts_us % 1_000_000) as u32);
        self.record_raw(sec, usec, frame, frame.len() as u32);
    }

    /// Writes one record with every header field given: `data` is what was
    /// captured of a packet `wire_len` bytes long.
    pub fn record_raw(&mut self, sec: u32, usec: u32, data: &[u8], wire_len: u32) {
        let mut header = Vec::with_capacity(16);
        for v in [sec, usec, data.len() as u32, wire_len] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        self.out.write_all(&header).expect("write pcap record");
        self.out.write_all(data).expect("write pcap record");
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> W {
        self.out.flush().expect("flush pcap");
        self.out
    }
}

/// A classic pcap in memory: records (seconds, microseconds, captured
/// bytes, wire length), link type `link`, snap length 262144.
pub fn pcap_bytes(records: &[(u32, u32, &[u8], u32)], link: u32) -> Vec<u8> {
    let mut w = PcapWriter::with_link(Vec::new(), link, 0x0004_0000);
    for (sec, usec, data, wire) in records {
        w.record_raw(*sec, *usec, data, *wire);
    }
    w.finish()
}

/// Kuznetsov's magic: records with his longer headers follow.
pub const PATCHED_MAGIC_LE: [u8; 4] = [0x34, 0xcd, 0xb2, 0xa1];
/// The standard magic, little-endian.
pub const MAGIC_LE: [u8; 4] = [0xd4, 0xc3, 0xb2, 0xa1];

/// A little-endian classic pcap rewritten with `extra` bytes after each
/// record header (interface 2, protocol IPv4, packet type "to us", then
/// padding) and `magic` as its first four bytes: how the patched libpcaps
/// of the late 1990s wrote files (Kuznetsov's, `extra` 8 or 12 under
/// [`PATCHED_MAGIC_LE`]; Red Hat 6.1's 8 and Nokia's 4 under [`MAGIC_LE`]).
pub fn with_longer_record_headers(pcap: &[u8], magic: [u8; 4], extra: usize) -> Vec<u8> {
    assert_eq!(pcap[..4], MAGIC_LE, "a little-endian classic pcap");
    assert!(extra <= 12, "no layout has more than 12 extra bytes");
    let mut out = magic.to_vec();
    out.extend_from_slice(&pcap[4..24]);
    let mut at = 24;
    while at < pcap.len() {
        let caplen = u32::from_le_bytes([pcap[at + 8], pcap[at + 9], pcap[at + 10], pcap[at + 11]]);
        let end = at + 16 + caplen as usize;
        out.extend_from_slice(&pcap[at..at + 16]);
        out.extend_from_slice(&[2, 0, 0, 0, 0x08, 0x00, 0, 0, 0, 0, 0, 0][..extra]);
        out.extend_from_slice(&pcap[at + 16..end]);
        at = end;
    }
    out
}

/// A little-endian pcapng file being written: a section header, one
/// interface of link type `link` (microsecond timestamps), then enhanced
/// packet blocks.
pub struct PcapngWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header and the interface description.
    pub fn new(out: W, link: u32) -> Self {
        let mut w = PcapngWriter { out };
        let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]); // version 1.0
        shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        w.block(0x0a0d_0d0a, &shb);
        let mut idb = (link as u16).to_le_bytes().to_vec();
        idb.extend_from_slice(&[0, 0]);
        idb.extend_from_slice(&65_535u32.to_le_bytes());
        w.block(1, &idb);
        w
    }

    /// Writes one whole frame captured at `ts_us` (microseconds).
    pub fn packet(&mut self, ts_us: u64, frame: &[u8]) {
        let mut epb = 0u32.to_le_bytes().to_vec(); // interface 0
        epb.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_us as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        self.block(6, &epb);
    }

    /// One block: type, total length, body padded to 32 bits, length again.
    fn block(&mut self, kind: u32, body: &[u8]) {
        let pad = body.len().next_multiple_of(4) - body.len();
        let total = (12 + body.len() + pad) as u32;
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(body);
        b.resize(b.len() + pad, 0);
        b.extend_from_slice(&total.to_le_bytes());
        self.out.write_all(&b).expect("write pcapng block");
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> W {
        self.out.flush().expect("flush pcapng");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_header_and_record_layout() {
        let bytes = pcap_bytes(&[(10, 5, b"abc", 60)], 1);
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(bytes.len(), 24 + 16 + 3);
        assert_eq!(&bytes[24..28], &10u32.to_le_bytes());
        assert_eq!(&bytes[36..40], &60u32.to_le_bytes());
    }

    #[test]
    fn records_read_back_what_was_written() {
        let mut w = PcapWriter::new(Vec::new());
        w.record(1_500_000, b"one");
        w.record_raw(2, 7, b"two", 90);
        let bytes = w.finish();
        let (link, recs) = records(&bytes).unwrap();
        assert_eq!(link, 1);
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].ts_nanos, recs[0].data),
            (1_500_000_000, &b"one"[..])
        );
        assert_eq!((recs[1].ts_nanos, recs[1].wire_len), (2_000_007_000, 90));
        assert!(records(&bytes[..bytes.len() - 1]).unwrap().1.len() == 1);
        assert!(records(b"not a pcap file at all..").is_none());
    }

    #[test]
    fn pcapng_blocks_are_padded_and_closed_by_their_length() {
        let mut w = PcapngWriter::new(Vec::new(), 1);
        w.packet(1, b"abcde");
        let bytes = w.finish();
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < bytes.len() {
            let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(&bytes[at + len - 4..at + len], &(len as u32).to_le_bytes());
            kinds.push(kind);
            at += len;
        }
        assert_eq!(kinds, [0x0a0d_0d0a, 1, 6]);
    }
}

/// One record of a classic pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Capture time, Unix nanoseconds.
    pub ts_nanos: u64,
    /// The packet's length on the wire.
    pub wire_len: u32,
    /// What was captured of it.
    pub data: &'a [u8],
}

/// The link type and records of a classic pcap file held in memory (either
/// byte order, microsecond or nanosecond timestamps), for tests that feed a
/// built capture straight into a pipeline. Stops at the first record cut
/// short; `None` when the header is not a classic pcap header.
pub fn records(bytes: &[u8]) -> Option<(u32, Vec<Record<'_>>)> {
    let magic = bytes.get(..4)?;
    let (big_endian, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return None,
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let link = u32_at(20)?;
    let mut out = Vec::new();
    let mut at = 24;
    while let (Some(sec), Some(frac), Some(caplen), Some(wire_len)) =
        (u32_at(at), u32_at(at + 4), u32_at(at + 8), u32_at(at + 12))
    {
        let Some(data) = bytes.get(at + 16..at + 16 + caplen as usize) else {
            break;
        };
        let frac_nanos = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        out.push(Record {
            ts_nanos: u64::from(sec) * 1_000_000_000 + frac_nanos,
            wire_len,
            data,
        });
        at += 16 + caplen as usize;
    }
    Some((link, out))
}
