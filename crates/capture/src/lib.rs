//! Capture sources: where timestamped frames come from.
//!
//! * [`file::FileSource`] reads classic pcap (either byte order, micro- or
//!   nanosecond, and the longer record headers of old patched libpcaps, see
//!   [`layout`]), pcapng (several interfaces, each with its own link type)
//!   and gzip-compressed captures of either, recognised by their magic bytes.
//! * [`live::LiveSource`] captures from an interface with libpcap.
//!
//! Both yield the same [`Packet`], so live and offline modes feed the same
//! pipeline. This crate knows nothing about protocols above the link type.

// The one unsafe call (poll(2) on the live handle) is allowed where it is.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod file;
pub mod layout;
pub mod live;

/// One captured frame, borrowed from the source's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_nanos: u64,
    /// Link type (LINKTYPE_* value, flag bits already masked off).
    pub link_type: u32,
    /// Length of the frame on the wire.
    pub wire_len: u32,
    /// The captured bytes (may be shorter than `wire_len`).
    pub data: &'a [u8],
}

/// Errors from capture sources.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The input is not a capture file.
    #[error("not a capture file (expected pcap or pcapng, optionally gzip-compressed)")]
    NotACapture,
    /// The file ends in the middle of a header or record.
    #[error("capture is cut short at byte {offset}")]
    CutShort {
        /// Bytes read before the cut.
        offset: u64,
    },
    /// A header or record is malformed; reading cannot go on.
    #[error("corrupt capture at byte {offset}: {what}")]
    Corrupt {
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong with it.
        what: String,
    },
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// libpcap reported an error.
    #[error("libpcap: {0}")]
    Pcap(#[from] pcap::Error),
}
