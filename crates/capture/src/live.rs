//! Live capture from an interface with libpcap.
//!
//! Batched delivery (the kernel wakes the reader per ring block, not per
//! packet) and a large kernel buffer (default
//! 32 MiB; small buffers are a known cause of loss in monitors), with a short
//! read timeout so the caller can notice shutdown and a vanished interface.

use crate::{CaptureError, Packet};

/// Options for opening a live capture.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Interface name.
    pub interface: String,
    /// Kernel buffer size in bytes.
    pub buffer_bytes: i32,
    /// Bytes kept per packet.
    pub snaplen: i32,
    /// Optional BPF filter expression.
    pub filter: Option<String>,
    /// Read timeout in milliseconds.
    pub timeout_ms: i32,
}

impl LiveOptions {
    /// Defaults for `interface`.
    pub fn new(interface: impl Into<String>) -> Self {
        LiveOptions {
            interface: interface.into(),
            buffer_bytes: 32 << 20,
            snaplen: 65_535,
            filter: None,
            timeout_ms: 100,
        }
    }
}

/// Counters libpcap keeps for a live handle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets received by the filter.
    pub received: u64,
    /// Packets dropped because the kernel buffer was full.
    pub dropped_kernel: u64,
    /// Packets dropped by the interface or driver.
    pub dropped_interface: u64,
}

/// A libpcap live capture.
pub struct LiveSource {
    cap: pcap::Capture<pcap::Active>,
    link_type: u32,
}

/// What one poll of a live source produced.
#[derive(Debug)]
pub enum Poll<'a> {
    /// A packet.
    Packet(Packet<'a>),
    /// The read timeout passed with no packet.
    Idle,
}

impl LiveSource {
    /// Opens and activates a capture.
    pub fn open(opts: &LiveOptions) -> Result<Self, CaptureError> {
        let mut cap = pcap::Capture::from_device(opts.interface.as_str())?
            // Batched delivery: the kernel fills whole ring blocks and wakes
            // the reader once per block or timeout, not once per packet.
            // Nothing here needs sub-timeout latency.
            .immediate_mode(false)
            .buffer_size(opts.buffer_bytes)
            .snaplen(opts.snaplen)
            .promisc(false)
            .timeout(opts.timeout_ms)
            .open()?;
        if let Some(f) = &opts.filter {
            cap.filter(f, true)?;
        }
        let link_type = cap.get_datalink().0 as u32 & 0x03FF_FFFF;
        Ok(LiveSource { cap, link_type })
    }

    /// Waits up to the read timeout for the next packet.
    pub fn poll(&mut self) -> Result<Poll<'_>, CaptureError> {
        match self.cap.next_packet() {
            Ok(p) => {
                let ts = &p.header.ts;
                let ts_nanos =
                    (ts.tv_sec.max(0) as u64) * 1_000_000_000 + (ts.tv_usec.max(0) as u64) * 1000;
                Ok(Poll::Packet(Packet {
                    ts_nanos,
                    link_type: self.link_type,
                    wire_len: p.header.len,
                    data: p.data,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(Poll::Idle),
            Err(e) => Err(e.into()),
        }
    }

    /// libpcap's counters for this handle.
    pub fn stats(&mut self) -> Result<LiveStats, CaptureError> {
        let s = self.cap.stats()?;
        Ok(LiveStats {
            received: u64::from(s.received),
            dropped_kernel: u64::from(s.dropped),
            dropped_interface: u64::from(s.if_dropped),
        })
    }
}
