//! Capture files: classic pcap, pcapng, and gzip-compressed versions of both.
//!
//! The reader streams through a large buffer and hands out frames borrowed
//! from it, so reading costs one copy from the kernel and none per packet.
//! Every length read from the file is checked against hard limits before
//! anything is allocated: a record claiming more than [`MAX_RECORD`] bytes is
//! refused as corrupt, never allocated.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::layout::{self, Layout};
use crate::{CaptureError, Packet};

/// Largest record accepted (libpcap's own ceiling for any link type).
pub const MAX_RECORD: usize = 262_144;
/// Largest pcapng block accepted.
const MAX_BLOCK: usize = MAX_RECORD + 4096;
/// Interfaces per pcapng section, beyond which the file is refused.
const MAX_INTERFACES: usize = 65_536;
const BUFFER: usize = 4 << 20;

/// Which format a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap.
    Pcap {
        /// Written big-endian.
        big_endian: bool,
        /// Nanosecond timestamps.
        nanos: bool,
        /// How long each record's header is.
        layout: Layout,
    },
    /// pcapng.
    PcapNg,
}

/// Counts bytes pulled from the underlying file (before decompression), for
/// progress reports.
struct Counting<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// A buffer over a reader that can guarantee `n` contiguous bytes.
struct Window {
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Offset in the (decompressed) stream of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl Window {
    fn new(reader: Box<dyn Read + Send>) -> Self {
        Window {
            reader,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Makes `n` bytes available from `start`; false at a clean or unclean EOF.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            if self.buf.len() - self.start < n {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if self.buf.len() < n {
                    self.buf.resize(n, 0);
                }
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn peek(&self, n: usize) -> &[u8] {
        &self.buf[self.start..self.start + n]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    fn at_eof(&mut self) -> io::Result<bool> {
        Ok(!self.fill(1)?)
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    ts_offset_secs: i64,
    snaplen: u32,
}

/// A packet block's interface, timestamp, captured and wire lengths, and
/// where its data starts in the block body.
type PacketBlock = (Interface, u64, usize, u32, usize);

/// Streams packets out of a capture file.
pub struct FileSource {
    win: Window,
    format: Format,
    // pcap
    link_type: u32,
    // pcapng
    big_endian: bool,
    interfaces: Vec<Interface>,
    consumed_record: usize,
    raw_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    total_bytes: Option<u64>,
}

fn u16_at(b: &[u8], at: usize, be: bool) -> u16 {
    let v = [b[at], b[at + 1]];
    if be {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn u32_at(b: &[u8], at: usize, be: bool) -> u32 {
    let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if be {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

impl FileSource {
    /// Opens a capture file, sniffing its format from the magic bytes.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path)?;
        let total = file.metadata().ok().map(|m| m.len());
        let mut src = Self::from_reader(Box::new(file))?;
        src.total_bytes = total;
        Ok(src)
    }

    /// Reads a capture from any byte stream (a pipe, a decompressor, memory).
    pub fn from_reader(reader: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let raw_bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counting = Counting {
            inner: reader,
            count: raw_bytes.clone(),
        };
        let mut win = Window::new(Box::new(counting));
        if !win.fill(4)? {
            return Err(CaptureError::NotACapture);
        }
        if win.peek(2) == [0x1f, 0x8b] {
            // gzip: swap the reader for a decompressor over the same bytes.
            let buffered = win.buf[win.start..win.end].to_vec();
            let rest = std::mem::replace(&mut win.reader, Box::new(io::empty()));
            let chained = io::Cursor::new(buffered).chain(rest);
            let gz =
                flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(1 << 20, chained));
            win = Window::new(Box::new(gz));
            if !win.fill(4)? {
                return Err(CaptureError::NotACapture);
            }
        }
        let mut src = FileSource {
            win,
            format: Format::PcapNg,
            link_type: 0,
            big_endian: false,
            interfaces: Vec::new(),
            consumed_record: 0,
            raw_bytes,
            total_bytes: None,
        };
        match src.win.peek(4) {
            [0xa1, 0xb2, 0xc3, 0xd4] => src.pcap_header(true, false, false)?,
            [0xd4, 0xc3, 0xb2, 0xa1] => src.pcap_header(false, false, false)?,
            [0xa1, 0xb2, 0x3c, 0x4d] => src.pcap_header(true, true, false)?,
            [0x4d, 0x3c, 0xb2, 0xa1] => src.pcap_header(false, true, false)?,
            [0xa1, 0xb2, 0xcd, 0x34] => src.pcap_header(true, false, true)?,
            [0x34, 0xcd, 0xb2, 0xa1] => src.pcap_header(false, false, true)?,
            [0x0a, 0x0d, 0x0d, 0x0a] => src.format = Format::PcapNg,
            _ => return Err(CaptureError::NotACapture),
        }
        Ok(src)
    }

    /// The detected format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Bytes of the file read so far and its size, for progress reports.
    pub fn progress(&self) -> (u64, Option<u64>) {
        (
            self.raw_bytes.load(std::sync::atomic::Ordering::Relaxed),
            self.total_bytes,
        )
    }

    fn pcap_header(
        &mut self,
        big_endian: bool,
        nanos: bool,
        patched_magic: bool,
    ) -> Result<(), CaptureError> {
        if !self.win.fill(24)? {
            return Err(CaptureError::NotACapture);
        }
        let h = self.win.peek(24);
        self.link_type = u32_at(h, 20, big_endian) & 0x03FF_FFFF;
        self.win.consume(24);
        // Enough of the file to check the first records' layout; a shorter
        // file is all there (fill reports the end instead of failing).
        let whole = !self.win.fill(layout::RECORDS_CHECKED * (MAX_RECORD + 28))?;
        let layout = layout::detect(
            patched_magic,
            &self.win.buf[self.win.start..self.win.end],
            whole,
            big_endian,
            nanos,
            MAX_RECORD,
        );
        self.format = Format::Pcap {
            big_endian,
            nanos,
            layout,
        };
        Ok(())
    }

    /// The next packet, `Ok(None)` at the end of the file. After an error the
    /// source is finished: what was read before it stands.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        self.win.consume(std::mem::take(&mut self.consumed_record));
        match self.format {
            Format::Pcap {
                big_endian,
                nanos,
                layout,
            } => self.next_pcap(big_endian, nanos, layout.header_len()),
            Format::PcapNg => self.next_pcapng(),
        }
    }

    fn cut_short(&self) -> CaptureError {
        CaptureError::CutShort {
            offset: self.win.offset,
        }
    }

    fn corrupt(&self, what: String) -> CaptureError {
        CaptureError::Corrupt {
            offset: self.win.offset,
            what,
        }
    }

    fn next_pcap(
        &mut self,
        be: bool,
        nanos: bool,
        header: usize,
    ) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.win.at_eof()? {
            return Ok(None);
        }
        if !self.win.fill(header)? {
            return Err(self.cut_short());
        }
        let h = self.win.peek(16);
        let (sec, frac) = (u64::from(u32_at(h, 0, be)), u64::from(u32_at(h, 4, be)));
        let caplen = u32_at(h, 8, be) as usize;
        let wire_len = u32_at(h, 12, be);
        if caplen > MAX_RECORD {
            return Err(self.corrupt(format!(
                "record claims {caplen} captured bytes (limit {MAX_RECORD})"
            )));
        }
        if !self.win.fill(header + caplen)? {
            return Err(self.cut_short());
        }
        let ts_nanos = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        self.consumed_record = header + caplen;
        let data = &self.win.peek(header + caplen)[header..];
        Ok(Some(Packet {
            ts_nanos,
            link_type: self.link_type,
            wire_len: wire_len.max(caplen as u32),
            data,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        loop {
            if self.win.at_eof()? {
                return Ok(None);
            }
            if !self.win.fill(12)? {
                return Err(self.cut_short());
            }
            let head = self.win.peek(12);
            let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if raw_type == 0x0a0d_0d0a {
                let magic = &head[8..12];
                self.big_endian = match magic {
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    _ => return Err(self.corrupt("bad section byte-order magic".into())),
                };
                self.interfaces.clear();
            }
            let be = self.big_endian;
            let block_type = u32_at(head, 0, be);
            let total = u32_at(head, 4, be) as usize;
            if total < 12 || !total.is_multiple_of(4) || total > MAX_BLOCK {
                return Err(self.corrupt(format!(
                    "block of type {block_type:#x} claims {total} bytes"
                )));
            }
            if !self.win.fill(total)? {
                return Err(self.cut_short());
            }
            let block = self.win.peek(total);
            let body = &block[8..total - 4];
            match block_type {
                1 => {
                    let iface = self.parse_idb(body)?;
                    if self.interfaces.len() >= MAX_INTERFACES {
                        return Err(self.corrupt("too many interfaces".into()));
                    }
                    self.interfaces.push(iface);
                }
                2 | 3 | 6 => {
                    if let Some((iface, ts, caplen, wire_len, data_at)) =
                        self.parse_packet_block(block_type, body)?
                    {
                        self.consumed_record = total;
                        let data = &self.win.peek(total)[8 + data_at..8 + data_at + caplen];
                        return Ok(Some(Packet {
                            ts_nanos: ts,
                            link_type: iface.link_type,
                            wire_len: wire_len.max(caplen as u32),
                            data,
                        }));
                    }
                }
                _ => {}
            }
            self.win.consume(total);
        }
    }

    fn parse_idb(&self, body: &[u8]) -> Result<Interface, CaptureError> {
        let be = self.big_endian;
        if body.len() < 8 {
            return Err(self.corrupt("short interface description".into()));
        }
        let mut iface = Interface {
            link_type: u32::from(u16_at(body, 0, be)),
            units_per_sec: 1_000_000,
            ts_offset_secs: 0,
            snaplen: u32_at(body, 4, be),
        };
        let mut opts = &body[8..];
        while opts.len() >= 4 {
            let code = u16_at(opts, 0, be);
            let len = usize::from(u16_at(opts, 2, be));
            let Some(value) = opts.get(4..4 + len) else {
                break;
            };
            match (code, value) {
                (0, _) => break,
                (9, [v, ..]) => {
                    let exp = u32::from(v & 0x7f);
                    iface.units_per_sec = if v & 0x80 == 0 {
                        10u64.checked_pow(exp).unwrap_or(0)
                    } else {
                        1u64.checked_shl(exp).unwrap_or(0)
                    };
                    if iface.units_per_sec == 0 {
                        return Err(
                            self.corrupt(format!("timestamp resolution {v:#x} out of range"))
                        );
                    }
                }
                (14, v) if v.len() == 8 => {
                    let raw = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
                    iface.ts_offset_secs = if be {
                        i64::from_be_bytes(raw)
                    } else {
                        i64::from_le_bytes(raw)
                    };
                }
                _ => {}
            }
            opts = &opts[(4 + len).next_multiple_of(4).min(opts.len())..];
        }
        Ok(iface)
    }

    /// Returns (interface, ts, caplen, wire_len, data offset within body).
    fn parse_packet_block(
        &self,
        block_type: u32,
        body: &[u8],
    ) -> Result<Option<PacketBlock>, CaptureError> {
        let be = self.big_endian;
        let (if_id, ts_at, caplen, wire_len, data_at) = match block_type {
            6 if body.len() >= 20 => (
                u32_at(body, 0, be) as usize,
                4,
                u32_at(body, 12, be) as usize,
                u32_at(body, 16, be),
                20,
            ),
            2 if body.len() >= 20 => (
                usize::from(u16_at(body, 0, be)),
                4,
                u32_at(body, 12, be) as usize,
                u32_at(body, 16, be),
                20,
            ),
            3 if body.len() >= 4 => {
                let wire = u32_at(body, 0, be);
                let snap = self.interfaces.first().map_or(u32::MAX, |i| {
                    if i.snaplen == 0 {
                        u32::MAX
                    } else {
                        i.snaplen
                    }
                });
                let cap = (wire.min(snap) as usize).min(body.len() - 4);
                (0, usize::MAX, cap, wire, 4)
            }
            _ => return Err(self.corrupt(format!("short packet block of type {block_type}"))),
        };
        let Some(iface) = self.interfaces.get(if_id).copied() else {
            return Err(self.corrupt(format!("packet for undeclared interface {if_id}")));
        };
        if data_at + caplen > body.len() {
            return Err(self.corrupt(format!(
                "packet claims {caplen} bytes in a {}-byte block",
                body.len()
            )));
        }
        let ts = if ts_at == usize::MAX {
            0
        } else {
            let units =
                (u64::from(u32_at(body, ts_at, be)) << 32) | u64::from(u32_at(body, ts_at + 4, be));
            let nanos = u128::from(units) * 1_000_000_000 / u128::from(iface.units_per_sec);
            let offset = i128::from(iface.ts_offset_secs) * 1_000_000_000;
            u64::try_from((nanos as i128 + offset).max(0)).unwrap_or(u64::MAX)
        };
        Ok(Some((iface, ts, caplen, wire_len, data_at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tetherscope_testkit::pcap::{
        pcap_bytes, with_longer_record_headers, MAGIC_LE, PATCHED_MAGIC_LE,
    };

    /// (timestamp, link type, bytes, wire length) of each packet.
    type Read = (u64, u32, Vec<u8>, u32);

    fn read_all(bytes: Vec<u8>) -> (Vec<Read>, Option<CaptureError>) {
        let mut src = FileSource::from_reader(Box::new(io::Cursor::new(bytes))).unwrap();
        let mut out = Vec::new();
        loop {
            match src.next_packet() {
                Ok(Some(p)) => out.push((p.ts_nanos, p.link_type, p.data.to_vec(), p.wire_len)),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn classic_pcap_little_endian() {
        let (pkts, err) = read_all(pcap_bytes(&[(10, 5, b"abc", 60), (11, 0, b"de", 2)], 1));
        assert!(err.is_none());
        assert_eq!(pkts[0], (10_000_005_000, 1, b"abc".to_vec(), 60));
        assert_eq!(pkts[1].0, 11_000_000_000);
    }

    #[test]
    fn patched_libpcap_layouts_read_like_the_standard_one() {
        let frames: Vec<Vec<u8>> = (0..12u8)
            .map(|i| vec![i; 40 + usize::from(i) * 7])
            .collect();
        let records: Vec<(u32, u32, &[u8], u32)> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    1_700_000_000 + i as u32,
                    250 * i as u32,
                    f.as_slice(),
                    f.len() as u32,
                )
            })
            .collect();
        let standard = pcap_bytes(&records, 1);
        let (expected, err) = read_all(standard.clone());
        assert!(err.is_none());
        assert_eq!(expected.len(), 12);
        let (le, patched) = (MAGIC_LE, PATCHED_MAGIC_LE);
        for (name, magic, extra, layout) in [
            ("Kuznetsov", patched, 8, Layout::Kuznetsov),
            ("SuSE 6.3", patched, 12, Layout::SuSe),
            ("Red Hat 6.1", le, 8, Layout::Kuznetsov),
            ("Nokia", le, 4, Layout::Nokia),
        ] {
            let file = with_longer_record_headers(&standard, magic, extra);
            let mut src = FileSource::from_reader(Box::new(io::Cursor::new(file.clone()))).unwrap();
            assert!(
                matches!(src.format(), Format::Pcap { layout: l, .. } if l == layout),
                "{name}: {:?}",
                src.format()
            );
            assert!(src.next_packet().unwrap().is_some());
            let (got, err) = read_all(file);
            assert!(err.is_none(), "{name}: {err:?}");
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn big_endian_nanosecond_and_flag_bits() {
        let mut f = vec![
            0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        f.extend_from_slice(&0x4000_0000u32.to_be_bytes()); // NULL with FCS flag bits
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 0xaa]);
        let (pkts, err) = read_all(f);
        assert!(err.is_none());
        assert_eq!(pkts, vec![(1_000_000_007, 0, vec![0xaa], 1)]);
    }

    #[test]
    fn cut_short_keeps_what_was_read() {
        let mut f = pcap_bytes(&[(1, 0, b"abcd", 4), (2, 0, b"efgh", 4)], 1);
        f.truncate(f.len() - 2);
        let (pkts, err) = read_all(f);
        assert_eq!(pkts.len(), 1);
        assert!(matches!(err, Some(CaptureError::CutShort { .. })));
    }

    #[test]
    fn huge_record_length_is_refused_not_allocated() {
        let mut f = pcap_bytes(&[], 1);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xd5, 0x00, 0x08, 0x00, 197, 0, 0, 0]);
        let (_, err) = read_all(f);
        assert!(matches!(err, Some(CaptureError::Corrupt { .. })), "{err:?}");
    }

    #[test]
    fn not_a_capture() {
        for bytes in [b"hello world".to_vec(), vec![], vec![0x1f, 0x8b, 0, 0]] {
            assert!(FileSource::from_reader(Box::new(io::Cursor::new(bytes))).is_err());
        }
    }

    fn block(ty: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let total = (body.len() + 12) as u32;
        let mut b = ty.to_le_bytes().to_vec();
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(&body);
        b.extend_from_slice(&total.to_le_bytes());
        b
    }

    pub(crate) fn pcapng_two_interfaces() -> Vec<u8> {
        let mut f = block(
            0x0a0d0d0a,
            &[
                0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        );
        f.extend(block(1, &[1, 0, 0, 0, 0, 0, 0, 0])); // Ethernet, µs
                                                       // raw IP with nanosecond resolution (if_tsresol = 9)
        f.extend(block(
            1,
            &[101, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0],
        ));
        let epb = |iface: u32, ts: u64, data: &[u8]| {
            let mut b = iface.to_le_bytes().to_vec();
            b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            b.extend_from_slice(&(ts as u32).to_le_bytes());
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(&(data.len() as u32 + 10).to_le_bytes());
            b.extend_from_slice(data);
            block(6, &b)
        };
        f.extend(epb(0, 2_000_001, b"eth"));
        f.extend(block(5, &[0; 8])); // statistics block: skipped
        f.extend(epb(1, 3_000_000_002, b"rawip"));
        f
    }

    #[test]
    fn pcapng_interfaces_with_own_link_types_and_resolutions() {
        let (pkts, err) = read_all(pcapng_two_interfaces());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts[0], (2_000_001_000, 1, b"eth".to_vec(), 13));
        assert_eq!(pkts[1], (3_000_000_002, 101, b"rawip".to_vec(), 15));
    }

    #[test]
    fn gzip_is_detected_by_magic() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&pcapng_two_interfaces()).unwrap();
        let (pkts, err) = read_all(gz.finish().unwrap());
        assert!(err.is_none());
        assert_eq!(pkts.len(), 2);
    }

    #[test]
    fn every_prefix_is_handled() {
        let f = pcapng_two_interfaces();
        for n in 0..f.len() {
            if let Ok(mut src) = FileSource::from_reader(Box::new(io::Cursor::new(f[..n].to_vec())))
            {
                while let Ok(Some(_)) = src.next_packet() {}
            }
        }
    }
}
