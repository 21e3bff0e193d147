//! `tetherscope replay`: a capture file through the live path.
//!
//! Exactly what `run` does (pipeline, exporter, API, flow log), with the
//! file as the packet source instead of libpcap: as fast as it can be read,
//! or paced at the capture's own clock with `--speed`. At the end of the
//! file the monitor keeps serving its final state until SIGINT/SIGTERM.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context;
use tetherscope_capture::file::FileSource;
use tetherscope_capture::{CaptureError, Packet};
use tetherscope_exporter::Shared;
use tetherscope_flow::Pipeline;

use crate::cli::ReplayArgs;
use crate::monitor::{self, Event};
use crate::state::WithoutState;

/// `replay`: the capture file, the settings, then the monitor's start-up.
pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let source = crate::offline::open(&args.capture)?;
    let settings = crate::settings::resolve(args.monitor)?;
    let replay = Replay {
        source: Some(source),
        speed: args.speed,
        name: args.capture.display().to_string(),
    };
    crate::start::monitor(&settings, replay)
}

/// A capture file, read once.
struct Replay {
    source: Option<FileSource>,
    speed: Option<f64>,
    name: String,
}

impl crate::start::Source for Replay {
    type Feed = FileFeed;
    /// A file needs no privilege: whatever this process was started with
    /// (root, say) ends before the store is opened or a thread started.
    const KEEPS_CAPTURE_PRIVILEGE: bool = false;
    /// A capture from anywhere: the user's own baseline only when asked.
    const WITHOUT_STATE: WithoutState = WithoutState::InMemory;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn doing(&self) -> String {
        format!("replaying {}", self.name)
    }

    fn open(&mut self) -> anyhow::Result<FileFeed> {
        let source = self
            .source
            .take()
            .context("the capture file was already read")?;
        Ok(FileFeed::new(source, self.speed, self.name.clone()))
    }

    /// Packet time: a capture's DNS answers are still valid at its end,
    /// whenever it is replayed.
    fn end_time(pipeline: &Pipeline) -> u64 {
        pipeline.latest()
    }
}

/// The longest a paced replay waits for one packet (a year): further is a
/// broken timestamp, not a pause.
const MAX_WAIT: Duration = Duration::from_secs(365 * 86_400);

/// A capture file as a feed: packets as fast as they can be read, or at
/// `speed` times the capture's own pace.
struct FileFeed {
    source: FileSource,
    speed: Option<f64>,
    name: String,
    /// Wall time and capture time of the first packet (paced playback).
    clock: Option<(Instant, u64)>,
    /// A paced packet read before it was due: (timestamp, link type, wire
    /// length), its bytes in `held_data`.
    held: Option<(u64, u32, u32)>,
    held_data: Vec<u8>,
    ended: bool,
    /// Why reading stopped before the end, said once with the summary.
    warning: Option<CaptureError>,
    announced: bool,
    started: Instant,
    packets: u64,
}

impl FileFeed {
    fn new(source: FileSource, speed: Option<f64>, name: String) -> Self {
        FileFeed {
            source,
            speed,
            name,
            clock: None,
            held: None,
            held_data: Vec::new(),
            ended: false,
            warning: None,
            announced: false,
            started: Instant::now(),
            packets: 0,
        }
    }

    /// Says once that the file (or what could be read of it) is done.
    fn announce_end(&mut self) {
        self.announced = true;
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
        if let Some(e) = self.warning.take() {
            eprintln!(
                "tetherscope: warning: {}: {e}; the state covers what was read before it",
                self.name
            );
        }
        eprintln!(
            "tetherscope: {} read: {} packets in {:.1} s; serving the final state until SIGINT/SIGTERM",
            self.name,
            self.packets,
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl monitor::Feed for FileFeed {
    fn next(&mut self, _shared: &Shared) -> Event<'_> {
        if self.ended {
            if !self.announced {
                self.announce_end();
            }
            std::thread::sleep(Duration::from_millis(100));
            return Event::Ended;
        }
        let Some(speed) = self.speed else {
            return match self.source.next_packet() {
                Ok(Some(p)) => {
                    self.packets += 1;
                    Event::Packet(p)
                }
                Ok(None) => {
                    self.ended = true;
                    Event::Idle(None)
                }
                Err(e) => {
                    (self.ended, self.warning) = (true, Some(e));
                    Event::Idle(None)
                }
            };
        };
        if self.held.is_none() {
            match self.source.next_packet() {
                Ok(Some(p)) => {
                    self.held_data.clear();
                    self.held_data.extend_from_slice(p.data);
                    self.held = Some((p.ts_nanos, p.link_type, p.wire_len));
                }
                Ok(None) => {
                    self.ended = true;
                    return Event::Idle(None);
                }
                Err(e) => {
                    (self.ended, self.warning) = (true, Some(e));
                    return Event::Idle(None);
                }
            }
        }
        let Some((ts, link_type, wire_len)) = self.held else {
            return Event::Idle(None);
        };
        let (start, first) = *self.clock.get_or_insert((Instant::now(), ts));
        // A bogus timestamp far in the future must not overflow the clock.
        let wait = ts.saturating_sub(first) as f64 / 1e9 / speed;
        let due = start
            + Duration::try_from_secs_f64(wait)
                .unwrap_or(MAX_WAIT)
                .min(MAX_WAIT);
        let now = Instant::now();
        if now < due {
            std::thread::sleep((due - now).min(Duration::from_millis(100)));
            if Instant::now() < due {
                // Between packets: the capture's clock goes on, idle flows expire.
                let elapsed = start.elapsed().as_secs_f64() * speed;
                return Event::Idle(Some(first + (elapsed * 1e9) as u64));
            }
        }
        self.held = None;
        self.packets += 1;
        Event::Packet(Packet {
            ts_nanos: ts,
            link_type,
            wire_len,
            data: &self.held_data,
        })
    }

    fn housekeeping(&mut self, shared: &Shared) {
        shared.capture.packets.store(self.packets, Relaxed);
        if !self.ended && std::io::stderr().is_terminal() {
            let (done, total) = self.source.progress();
            if let Some(total) = total.filter(|t| *t > 0) {
                eprint!(
                    "\r{}: {:.0}% ({} packets)",
                    self.name,
                    100.0 * done as f64 / total as f64,
                    self.packets
                );
            }
        }
    }
}
