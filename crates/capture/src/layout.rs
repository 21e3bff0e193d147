//! Record layouts of classic pcap.
//!
//! Classic pcap has one file header and then records, each a 16-byte header
//! (seconds, fraction, captured length, wire length) and the frame. A few
//! patched libpcaps of the late 1990s wrote longer record headers, and their
//! files still turn up in archives; Wireshark reads them, so we do too. The
//! layouts, as Wireshark's `wiretap/libpcap.c` documents them:
//!
//! | layout | magic | record header |
//! |---|---|---|
//! | standard | `a1b2c3d4` / `a1b23c4d` (ns) | 16 bytes |
//! | Nokia (IPSO firewalls) | `a1b2c3d4` | 16 + 4 bytes of Nokia data |
//! | Red Hat 6.1 (Kuznetsov's `ss990417`) | `a1b2c3d4` | 16 + interface index (4), protocol (2), packet type (1), pad (1) = 24 |
//! | Kuznetsov's patched libpcap (`ss991029`) | `a1b2cd34` | the same 24 bytes |
//! | SuSE 6.3 (Kuznetsov's `ss990915`) | `a1b2cd34` | 24 + two CPU bytes and 3 of padding = 28 |
//!
//! The patched magic says only "one of Kuznetsov's layouts", and the Red Hat
//! and Nokia files carry the standard magic, so the header alone cannot tell
//! them apart: [`detect`] checks which layout makes the first records of the
//! file consistent (lengths within limits, fractions below one second, each
//! record ending where the next begins or at the end of the file).

/// The length of a classic pcap record header, by layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The 16-byte header every current writer uses.
    Standard,
    /// Nokia's: four bytes of its own after the standard header.
    Nokia,
    /// Kuznetsov's 24-byte header (his patched magic, or Red Hat 6.1's
    /// standard magic).
    Kuznetsov,
    /// Kuznetsov's 28-byte header of SuSE 6.3.
    SuSe,
}

impl Layout {
    /// Bytes before the frame in each record.
    pub fn header_len(self) -> usize {
        match self {
            Layout::Standard => 16,
            Layout::Nokia => 20,
            Layout::Kuznetsov => 24,
            Layout::SuSe => 28,
        }
    }
}

/// The records [`detect`] checks before it trusts a layout. A real capture's
/// first records are consistent under exactly one layout; a handful is
/// enough to tell, and the check stays within the first read of the file.
pub(crate) const RECORDS_CHECKED: usize = 8;

/// Picks the record layout for a classic pcap file.
///
/// `patched_magic` is true for Kuznetsov's magic (`a1b2cd34`). `records` is
/// the start of the file after its 24-byte header, as much as is buffered;
/// `at_eof` says whether it runs to the end of the file. `limit` is the
/// largest captured length a record may claim. The standard layout wins
/// every tie, so a file that is consistent as written today is read as
/// today.
pub fn detect(
    patched_magic: bool,
    records: &[u8],
    at_eof: bool,
    be: bool,
    nanos: bool,
    limit: usize,
) -> Layout {
    let candidates: &[Layout] = if patched_magic {
        &[Layout::Kuznetsov, Layout::SuSe]
    } else {
        &[
            Layout::Standard,
            Layout::Kuznetsov,
            Layout::Nokia,
            Layout::SuSe,
        ]
    };
    let consistent = |layout: Layout| consistent_records(layout, records, at_eof, be, nanos, limit);
    candidates
        .iter()
        .copied()
        .find(|&layout| consistent(layout))
        .unwrap_or(candidates[0])
}

/// Whether the first records of `records` parse cleanly under `layout`.
fn consistent_records(
    layout: Layout,
    records: &[u8],
    at_eof: bool,
    be: bool,
    nanos: bool,
    limit: usize,
) -> bool {
    let header = layout.header_len();
    let fraction_limit = if nanos { 1_000_000_000 } else { 1_000_000 };
    let mut at = 0;
    for _ in 0..RECORDS_CHECKED {
        if at == records.len() {
            // Ended exactly at a record boundary: consistent only if this is
            // the end of the file (a buffer that stops here proves nothing
            // more, but nothing against the layout either).
            return true;
        }
        let Some(h) = records.get(at..at + 16) else {
            // A partial header at the end of the file is a cut-short file
            // under any layout; in the middle of the buffer it is unknown.
            return !at_eof;
        };
        let word = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        // The wire length is not checked: some writers leave it zero or
        // smaller than the captured length, and the reader tolerates that.
        let (fraction, caplen) = (word(4), word(8) as usize);
        if fraction >= fraction_limit || caplen > limit {
            return false;
        }
        let next = at + header + caplen;
        if next > records.len() {
            // The record runs past what is buffered: fine in the middle of a
            // long file, a sign of the wrong layout at its end.
            return !at_eof;
        }
        at = next;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of `layout` carrying `frames`, little-endian, microseconds.
    fn records(layout: Layout, frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            out.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes());
            out.extend_from_slice(&(i as u32 * 10).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            // Kuznetsov's extra fields: interface 2, protocol IPv4, to us.
            let extra = [2, 0, 0, 0, 0x08, 0x00, 0, 0, 1, 2, 0, 0, 0, 0];
            out.extend_from_slice(&extra[..layout.header_len() - 16]);
            out.extend_from_slice(frame);
        }
        out
    }

    const FRAMES: &[&[u8]] = &[&[0x45; 60], &[0x60; 74], &[0x11; 42], &[0x22; 1514]];

    #[test]
    fn each_layout_is_recognised_from_its_records() {
        for (magic, layout) in [
            (false, Layout::Standard),
            (false, Layout::Nokia),
            (false, Layout::Kuznetsov),
            (false, Layout::SuSe),
            (true, Layout::Kuznetsov),
            (true, Layout::SuSe),
        ] {
            let bytes = records(layout, FRAMES);
            assert_eq!(detect(magic, &bytes, true, false, false, 262_144), layout);
        }
    }

    #[test]
    fn standard_wins_when_the_file_is_empty_or_ambiguous() {
        assert_eq!(
            detect(false, &[], true, false, false, 262_144),
            Layout::Standard
        );
        assert_eq!(
            detect(true, &[], true, false, false, 262_144),
            Layout::Kuznetsov
        );
        // One record cut off mid-buffer: nothing contradicts the standard layout.
        let bytes = records(Layout::Standard, FRAMES);
        assert_eq!(
            detect(false, &bytes[..100], false, false, false, 262_144),
            Layout::Standard
        );
    }

    #[test]
    fn garbage_falls_back_to_the_magic_s_first_layout() {
        let bytes = vec![0xff; 64];
        assert_eq!(
            detect(false, &bytes, true, false, false, 262_144),
            Layout::Standard
        );
        assert_eq!(
            detect(true, &bytes, true, false, false, 262_144),
            Layout::Kuznetsov
        );
    }
}
