//! Live capture from an interface with libpcap.
//!
//! Batched delivery (the kernel wakes the reader per ring block, not per
//! packet) and a large kernel buffer (default
//! 32 MiB; small buffers are a known cause of loss in monitors).
//!
//! The handle is non-blocking and [`LiveSource::poll`] waits on its file
//! descriptor with a timeout of its own. libpcap's read timeout alone is not
//! enough: on Linux it only starts once a first packet arrives, so a read on a
//! silent interface (a phone asleep on the hotspot at night) would block
//! forever, and with it shutdown, idle expiry and the capture counters.

use std::os::unix::io::AsRawFd;

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
    timeout_ms: i32,
    /// The last read found the ring empty: wait before reading again.
    drained: bool,
}

/// What one poll of a live source produced.
#[derive(Debug)]
pub enum Poll<'a> {
    /// A packet.
    Packet(Packet<'a>),
    /// The timeout passed with no packet.
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
            .open()?
            .setnonblock()?;
        if let Some(f) = &opts.filter {
            cap.filter(f, true)?;
        }
        let link_type = cap.get_datalink().0 as u32 & 0x03FF_FFFF;
        Ok(LiveSource {
            cap,
            link_type,
            timeout_ms: opts.timeout_ms.max(1),
            drained: false,
        })
    }

    /// The next packet, waiting up to the timeout when none is ready. Never
    /// blocks longer than that, whether or not packets arrive.
    pub fn poll(&mut self) -> Result<Poll<'_>, CaptureError> {
        if self.drained {
            wait_readable(&self.cap, self.timeout_ms)?;
        }
        match self.cap.next_packet() {
            Ok(p) => {
                self.drained = false;
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
            // Non-blocking: nothing in the ring right now.
            Err(pcap::Error::TimeoutExpired) => {
                self.drained = true;
                Ok(Poll::Idle)
            }
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

/// Waits until the capture's descriptor is readable (or in error, which the
/// next read reports), at most `timeout_ms`.
#[allow(unsafe_code)]
fn wait_readable(fd: &impl AsRawFd, timeout_ms: i32) -> Result<(), CaptureError> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, owned by this frame, for the whole call.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        // A signal is not a failure: the caller simply polls again.
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err.into());
        }
    }
    // An interface gone down: say so rather than spin on a descriptor that
    // is always "ready" (older libpcap reads report nothing in this case).
    if pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
        && pfd.revents & libc::POLLIN == 0
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "capture descriptor reports an error (interface down?)",
        )
        .into());
    }
    Ok(())
}
