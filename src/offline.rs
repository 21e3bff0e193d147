//! The offline file loop of `read` and `report`, and the opening of a
//! capture file they share with `replay`.
//!
//! Packets go through the pipeline; every flow it finishes (and, at the
//! end of the file, every flow still open) is handed to the caller, which
//! annotates it (`tetherscope_record::annotate`) and keeps what it needs.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use tetherscope_capture::file::FileSource;
use tetherscope_capture::CaptureError;
use tetherscope_flow::{Flow, Pipeline};

/// Opens a capture file, saying plainly when it is not one.
pub fn open(path: &Path) -> anyhow::Result<FileSource> {
    match FileSource::open(path) {
        Ok(s) => Ok(s),
        Err(CaptureError::NotACapture) => anyhow::bail!(
            "{}: not a capture file (expected pcap or pcapng, optionally gzip-compressed)",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("{}", path.display())),
    }
}

/// How reading a file ended.
#[derive(Default)]
pub struct Ended {
    /// Why reading stopped before the end of the file, if it did.
    pub warning: Option<CaptureError>,
    /// Capture time of the first packet (0: none).
    pub first_packet: u64,
    /// Capture time of the latest packet (0: none).
    pub last_packet: u64,
}

/// Reads `source` to its end through `pipeline`: `packet` is told each
/// packet's capture time before the pipeline sees it, `finished` gets every
/// flow that leaves the flow table, in the order it leaves; at the end of
/// the file every open flow is finished too. A read error ends the loop
/// (said in [`Ended::warning`]); an error of `finished` ends it at once.
pub fn each_flow(
    source: &mut FileSource,
    pipeline: &mut Pipeline,
    progress: &mut Progress,
    mut packet: impl FnMut(u64),
    mut finished: impl FnMut(Box<Flow>) -> io::Result<()>,
) -> io::Result<Ended> {
    let mut ended = Ended::default();
    loop {
        match source.next_packet() {
            Ok(Some(p)) => {
                if ended.first_packet == 0 {
                    ended.first_packet = p.ts_nanos;
                }
                ended.last_packet = ended.last_packet.max(p.ts_nanos);
                packet(p.ts_nanos);
                pipeline.ingest(p.ts_nanos, p.link_type, p.wire_len, p.data);
            }
            Ok(None) => break,
            Err(e) => {
                ended.warning = Some(e);
                break;
            }
        }
        for (flow, _) in pipeline.take_finished() {
            finished(flow)?;
        }
        progress.update(source);
    }
    pipeline.finish();
    for (flow, _) in pipeline.take_finished() {
        finished(flow)?;
    }
    progress.clear();
    Ok(ended)
}

/// A progress line on stderr for large files, when stderr is a terminal.
pub struct Progress {
    enabled: bool,
    last: Instant,
    shown: bool,
}

impl Progress {
    /// A progress line, shown only if `enabled`.
    pub fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            last: Instant::now(),
            shown: false,
        }
    }

    /// Redraws the line, at most four times a second.
    pub fn update(&mut self, source: &FileSource) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        let (done, total) = source.progress();
        match total {
            Some(t) if t > 0 => eprint!(
                "\r{:5.1}% of {} MB read ",
                100.0 * done as f64 / t as f64,
                t >> 20
            ),
            _ => eprint!("\r{} MB read ", done >> 20),
        }
        self.shown = true;
    }

    /// Erases the line, if one was drawn.
    pub fn clear(&mut self) {
        if self.shown {
            eprint!("\r{:40}\r", "");
        }
    }
}
