//! `tetherscope run`: live capture on the hotspot, exporter on loopback.
//!
//! main thread: tokio runtime serving HTTP until SIGINT/SIGTERM.
//! capture thread: libpcap → the same `Pipeline::ingest` as `read` →
//! finished flows folded into the exporter's totals and the flow log. It
//! never waits on the exporter: the exporter only reads shared tables.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tetherscope_capture::live::{LiveOptions, LiveSource, LiveStats, Poll};
use tetherscope_exporter::Shared;
use tetherscope_flow::Pipeline;

use crate::cli::RunArgs;
use crate::monitor::{self, Event};
use crate::settings::Settings;
use crate::state::WithoutState;
use crate::UsageError;

/// NetworkManager's address for the hotspot side of a shared connection.
const HOTSPOT_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 42, 0, 1));

/// The interface holding the hotspot address, or a usage error listing the
/// candidates and how to start a hotspot.
fn find_hotspot() -> anyhow::Result<String> {
    let devices = pcap::Device::list().unwrap_or_default();
    if let Some(d) = devices
        .iter()
        .find(|d| d.addresses.iter().any(|a| a.addr == HOTSPOT_ADDR))
    {
        return Ok(d.name.clone());
    }
    Err(UsageError(format!(
        "no hotspot found: no interface holds {HOTSPOT_ADDR}. Candidates: {}. Start one with \
         `tetherscope-hotspot` (deploy/networkmanager) or `nmcli device wifi hotspot ifname wlan0 \
         ssid tetherscope password <8+ chars>`, or name an interface with --interface \
         (try `tetherscope demo` without a phone)",
        candidates(&devices)
    ))
    .into())
}

/// Capturable interfaces with their addresses, for error messages.
fn candidates(devices: &[pcap::Device]) -> String {
    let list: Vec<String> = devices
        .iter()
        .filter(|d| !d.flags.is_loopback() && d.name != "any")
        .map(|d| {
            let addrs: Vec<String> = d.addresses.iter().map(|a| a.addr.to_string()).collect();
            if addrs.is_empty() {
                format!("{} (no address)", d.name)
            } else {
                format!("{} ({})", d.name, addrs.join(", "))
            }
        })
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join("; ")
    }
}

/// Opens the first capture handle; a missing interface is a usage error, a
/// refused one says which capabilities are needed.
fn open_capture(opts: &LiveOptions) -> anyhow::Result<LiveSource> {
    LiveSource::open(opts).map_err(|e| {
        let devices = pcap::Device::list().unwrap_or_default();
        if !devices.iter().any(|d| d.name == opts.interface) {
            UsageError(format!(
                "no interface named {}. Candidates: {}",
                opts.interface,
                candidates(&devices)
            ))
            .into()
        } else {
            anyhow::anyhow!(
                "cannot capture on {}: {e} (capture needs CAP_NET_RAW and CAP_NET_ADMIN; \
                 deploy/systemd/tetherscope.service grants them)",
                opts.interface
            )
        }
    })
}

/// `run`: the settings, the hotspot, then the monitor's start-up.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let settings = crate::settings::resolve(args)?;
    let hotspot = Hotspot::find(&settings)?;
    crate::start::monitor(&settings, hotspot)
}

/// The interface to watch and how to capture on it.
struct Hotspot {
    opts: LiveOptions,
    leases: PathBuf,
    /// NetworkManager's shared connection, followed while capturing.
    networkmanager: Option<crate::hotspot::Hotspot>,
}

impl Hotspot {
    /// The interface the settings name; else the device of NetworkManager's
    /// active shared connection; else the one holding 10.42.0.1.
    fn find(settings: &Settings) -> anyhow::Result<Hotspot> {
        let networkmanager = settings
            .interface
            .is_none()
            .then(crate::hotspot::from_networkmanager)
            .flatten();
        let interface = match (&settings.interface, &networkmanager) {
            (Some(i), _) => i.clone(),
            (None, Some(h)) => h.interface.clone(),
            (None, None) => find_hotspot()?,
        };
        let leases = settings.leases.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "/var/lib/NetworkManager/dnsmasq-{interface}.leases"
            ))
        });
        let opts = LiveOptions {
            buffer_bytes: i32::try_from(u64::from(settings.buffer_mib) << 20).unwrap_or(i32::MAX),
            filter: settings.filter.clone(),
            ..LiveOptions::new(interface)
        };
        Ok(Hotspot {
            opts,
            leases,
            networkmanager,
        })
    }
}

impl crate::start::Source for Hotspot {
    type Feed = LiveFeed;
    const KEEPS_CAPTURE_PRIVILEGE: bool = true;
    const WITHOUT_STATE: WithoutState = WithoutState::DefaultStore;

    fn name(&self) -> String {
        self.opts.interface.clone()
    }

    fn doing(&self) -> String {
        format!("watching {}", self.opts.interface)
    }

    fn open(&mut self) -> anyhow::Result<LiveFeed> {
        if running_as_root() {
            tracing::warn!("running as root: capture needs only CAP_NET_RAW and CAP_NET_ADMIN (see deploy/systemd)");
        }
        let first = open_capture(&self.opts)?;
        Ok(LiveFeed::new(first, self.opts.clone(), self.leases.clone()))
    }

    fn started(&mut self, shared: &Arc<Shared>) {
        if let Some(h) = self.networkmanager.take() {
            crate::hotspot::watch(h, shared.clone());
        }
    }

    /// The wall clock: live DNS answers expire in real time.
    fn end_time(_pipeline: &Pipeline) -> u64 {
        monitor::unix_nanos()
    }
}

/// Whether the effective user is root.
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Reads NetworkManager's dnsmasq lease file: `expiry mac ip hostname id`.
fn read_leases(path: &Path, shared: &Shared) {
    // Read every second by the capture thread: never from a FIFO or a
    // device, which could stall it.
    let Ok(text) = tetherscope_classify::input::read_text_file(path) else {
        return;
    };
    for line in text.lines().take(4096) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[3] == "*" {
            continue;
        }
        let mac: Vec<u8> = f[1]
            .split(':')
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect();
        if let (Ok(mac), Ok(ip)) = (<[u8; 6]>::try_from(mac.as_slice()), f[2].parse::<IpAddr>()) {
            shared.devices.observe(mac, ip);
            shared.devices.set_name(mac, f[3]);
        }
    }
}

/// libpcap on the hotspot interface, re-attached when the interface comes
/// back after vanishing (hotspot switched off and on).
struct LiveFeed {
    opts: LiveOptions,
    leases: PathBuf,
    source: Option<LiveSource>,
    /// The last poll failed: detach before the next one.
    failed: Option<String>,
    /// libpcap's counters restart with each handle: totals of the closed ones.
    base: LiveStats,
    /// The open handle's counters at the last look.
    last: LiveStats,
    reported_missing: bool,
    /// While detached: when to try opening the interface again.
    retry_at: Option<Instant>,
}

impl LiveFeed {
    fn new(first: LiveSource, opts: LiveOptions, leases: PathBuf) -> Self {
        LiveFeed {
            opts,
            leases,
            source: Some(first),
            failed: None,
            base: LiveStats::default(),
            last: LiveStats::default(),
            reported_missing: false,
            retry_at: None,
        }
    }

    fn attached(&mut self, shared: &Shared) {
        if self.reported_missing {
            tracing::warn!("capture on {} resumed", self.opts.interface);
        }
        self.reported_missing = false;
        shared.capture.attached.store(true, Relaxed);
        shared.capture.attachments.fetch_add(1, Relaxed);
    }

    /// Closes the handle, keeping its counters.
    fn detach(&mut self, shared: &Shared) {
        if let Some(mut source) = self.source.take() {
            if let Ok(s) = source.stats() {
                self.last = s;
            }
        }
        self.base.received += self.last.received;
        self.base.dropped_kernel += self.last.dropped_kernel;
        self.base.dropped_interface += self.last.dropped_interface;
        self.last = LiveStats::default();
        self.publish(shared);
        shared.capture.attached.store(false, Relaxed);
    }

    fn publish(&self, shared: &Shared) {
        let cap = &shared.capture;
        cap.packets
            .store(self.base.received + self.last.received, Relaxed);
        cap.dropped_kernel
            .store(self.base.dropped_kernel + self.last.dropped_kernel, Relaxed);
        cap.dropped_interface.store(
            self.base.dropped_interface + self.last.dropped_interface,
            Relaxed,
        );
    }
}

impl monitor::Feed for LiveFeed {
    fn next(&mut self, shared: &Shared) -> Event<'_> {
        if let Some(e) = self.failed.take() {
            tracing::warn!(
                "capture on {} stopped: {e}; waiting for the interface to return",
                self.opts.interface
            );
            self.detach(shared);
            std::thread::sleep(Duration::from_millis(100));
            return Event::Idle(Some(monitor::unix_nanos()));
        }
        if self.source.is_none() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                // Short naps: shutdown is noticed within a tenth of a second.
                std::thread::sleep(Duration::from_millis(100));
                return Event::Idle(Some(monitor::unix_nanos()));
            }
            self.retry_at = Some(Instant::now() + Duration::from_secs(1));
            match LiveSource::open(&self.opts) {
                Ok(s) => {
                    self.source = Some(s);
                    self.attached(shared);
                }
                Err(e) => {
                    if !self.reported_missing {
                        tracing::warn!(
                            "cannot capture on {}: {e}; retrying every second",
                            self.opts.interface
                        );
                        self.reported_missing = true;
                    }
                    shared.capture.attached.store(false, Relaxed);
                    return Event::Idle(Some(monitor::unix_nanos()));
                }
            }
        }
        let Some(source) = self.source.as_mut() else {
            return Event::Idle(None);
        };
        match source.poll() {
            Ok(Poll::Packet(p)) => Event::Packet(p),
            // A quiet link: idle flows expire by the wall clock.
            Ok(Poll::Idle) => Event::Idle(Some(monitor::unix_nanos())),
            Err(e) => {
                self.failed = Some(e.to_string());
                Event::Idle(None)
            }
        }
    }

    fn housekeeping(&mut self, shared: &Shared) {
        if let Some(Ok(s)) = self.source.as_mut().map(LiveSource::stats) {
            self.last = s;
        }
        self.publish(shared);
        read_leases(&self.leases, shared);
    }
}
