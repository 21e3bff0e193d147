//! `tetherscope run`: live capture on the hotspot, exporter on loopback.
//!
//! main thread: tokio runtime serving HTTP until SIGINT/SIGTERM.
//! capture thread: libpcap → the same `Pipeline::ingest` as `read` →
//! finished flows folded into the exporter's totals and the flow log. It
//! never waits on the exporter: the exporter only reads shared tables.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tetherscope_capture::live::{LiveOptions, LiveSource, LiveStats, Poll};
use tetherscope_exporter::state::{DomainLabel, LabelPolicy};
use tetherscope_exporter::Shared;
use tetherscope_flow::{Pipeline, PipelineConfig};

use crate::cli::RunArgs;
use crate::monitor::{self, Event};
use crate::UsageError;

/// NetworkManager's address for the hotspot side of a shared connection.
const HOTSPOT_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 42, 0, 1));

/// The exporter's address unless `--listen` says otherwise: loopback only.
pub const DEFAULT_LISTEN: std::net::SocketAddr =
    std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9433);

/// Settings a config file may hold.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    interface: Option<String>,
    listen: Option<std::net::SocketAddr>,
    #[serde(default)]
    catalog: Vec<PathBuf>,
    profile: Option<String>,
    max_flows: Option<usize>,
    max_domains: Option<usize>,
    domain_label: Option<crate::cli::DomainLabelArg>,
    label_idle: Option<String>,
    flow_log: Option<PathBuf>,
    flow_log_max_mib: Option<f64>,
    flow_log_keep: Option<u32>,
    history_url: Option<String>,
    history_table: Option<String>,
    history_user: Option<String>,
    history_password: Option<String>,
    sensor: Option<String>,
    history_spool: Option<PathBuf>,
    history_spool_mib: Option<u64>,
    history_batch_rows: Option<usize>,
    history_batch_secs: Option<f64>,
    buffer_mib: Option<u32>,
    filter: Option<String>,
    leases: Option<PathBuf>,
    state: Option<PathBuf>,
    #[serde(default)]
    device: Vec<crate::state::DeviceEntry>,
}

pub fn apply_config(mut args: RunArgs) -> anyhow::Result<RunArgs> {
    let Some(path) = args.config.clone() else {
        return Ok(args);
    };
    let text = tetherscope_classify::input::read_text_file(&path)
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let cfg: ConfigFile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        let message = e.message().trim().replace('\n', "; ");
        UsageError(format!("{}:{line}: {message}", path.display()))
    })?;
    // The command line wins over the file.
    let defaults = <RunArgs as clap::FromArgMatches>::from_arg_matches(
        &<crate::cli::Cli as clap::CommandFactory>::command()
            .try_get_matches_from(["tetherscope", "run"])
            .ok()
            .and_then(|m| m.subcommand_matches("run").cloned())
            .context("default arguments")?,
    )?;
    args.interface = args.interface.or(cfg.interface);
    if args.listen.is_none() {
        if let Some(addr) = cfg.listen.filter(|a| !a.ip().is_loopback()) {
            return Err(UsageError(format!(
                "{}: listen = \"{addr}\" is not a loopback address; exposing what the phones \
                 do to the network must be asked for on the command line (--listen {addr})",
                path.display()
            ))
            .into());
        }
        args.listen = cfg.listen;
    }
    let base = path.parent().unwrap_or(Path::new("."));
    args.catalog
        .files
        .extend(cfg.catalog.into_iter().map(|c| base.join(c)));
    if args.catalog.profile == defaults.catalog.profile {
        args.catalog.profile = cfg.profile.unwrap_or(args.catalog.profile);
    }
    if args.max_flows == defaults.max_flows {
        args.max_flows = cfg.max_flows.unwrap_or(args.max_flows);
    }
    if args.max_domains == defaults.max_domains {
        args.max_domains = cfg.max_domains.unwrap_or(args.max_domains);
    }
    if args.domain_label == defaults.domain_label {
        args.domain_label = cfg.domain_label.unwrap_or(args.domain_label);
    }
    if let (true, Some(idle)) = (args.label_idle == defaults.label_idle, cfg.label_idle) {
        args.label_idle = crate::cli::parse_duration(&idle)
            .map_err(|e| UsageError(format!("{}: label_idle: {e}", path.display())))?;
    }
    args.flow_log = args.flow_log.or(cfg.flow_log);
    if args.flow_log_max_mib == defaults.flow_log_max_mib {
        args.flow_log_max_mib = cfg.flow_log_max_mib.unwrap_or(args.flow_log_max_mib);
    }
    if args.flow_log_keep == defaults.flow_log_keep {
        args.flow_log_keep = cfg.flow_log_keep.unwrap_or(args.flow_log_keep);
    }
    args.history_url = args.history_url.or(cfg.history_url);
    if args.history_table == defaults.history_table {
        args.history_table = cfg.history_table.unwrap_or(args.history_table);
    }
    args.history_user = args.history_user.or(cfg.history_user);
    args.history_password = cfg.history_password;
    args.sensor = args.sensor.or(cfg.sensor);
    args.history_spool = args
        .history_spool
        .or(cfg.history_spool.map(|p| base.join(p)));
    if args.history_spool_mib == defaults.history_spool_mib {
        args.history_spool_mib = cfg.history_spool_mib.unwrap_or(args.history_spool_mib);
    }
    if args.history_batch_rows == defaults.history_batch_rows {
        args.history_batch_rows = cfg.history_batch_rows.unwrap_or(args.history_batch_rows);
    }
    if args.history_batch_secs == defaults.history_batch_secs {
        args.history_batch_secs = cfg.history_batch_secs.unwrap_or(args.history_batch_secs);
    }
    if args.buffer_mib == defaults.buffer_mib {
        args.buffer_mib = cfg.buffer_mib.unwrap_or(args.buffer_mib);
    }
    args.filter = args.filter.or(cfg.filter);
    args.leases = args.leases.or(cfg.leases);
    args.state.path = args.state.path.or(cfg.state);
    args.devices = cfg.device;
    Ok(args)
}

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

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let args = apply_config(args)?;
    // No interface named: NetworkManager's shared connection, else 10.42.0.1.
    let nm_hotspot = args
        .interface
        .is_none()
        .then(crate::hotspot::from_networkmanager)
        .flatten();
    let interface = match (&args.interface, &nm_hotspot) {
        (Some(i), _) => i.clone(),
        (None, Some(h)) => h.interface.clone(),
        (None, None) => find_hotspot()?,
    };
    let listen = args.listen.unwrap_or(DEFAULT_LISTEN);
    let (mut pipeline, mut shared) = build(&args)?;
    *shared
        .capture
        .interface
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = interface.clone();
    let flow_log = monitor::open_flow_log(args.flow_log.as_ref(), flow_log_rotation(&args)?)?;
    let leases = args.leases.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "/var/lib/NetworkManager/dnsmasq-{interface}.leases"
        ))
    });
    let opts = LiveOptions {
        buffer_bytes: i32::try_from(u64::from(args.buffer_mib) << 20).unwrap_or(i32::MAX),
        filter: args.filter.clone(),
        ..LiveOptions::new(interface.clone())
    };
    if running_as_root() {
        tracing::warn!("running as root: capture needs only CAP_NET_RAW and CAP_NET_ADMIN (see deploy/systemd)");
    }

    // Everything that needs a privilege happens first: the capture handle and
    // the listening socket. Then only the capture thread keeps capabilities:
    // its starter is created now, every capability of this thread is dropped,
    // and the store (whose writer thread inherits this thread's capabilities)
    // is opened only after that.
    let first = open_capture(&opts)?;
    shared.capture.attached.store(true, Relaxed);
    shared.capture.attachments.store(1, Relaxed);
    let listener = monitor::bind(listen)?;
    let capture_starter = crate::privileges::CaptureSpawner::start()?;
    crate::privileges::drop_all();
    let baseline = crate::state::attach(&args, &mut pipeline, &mut shared)?;
    eprintln!(
        "tetherscope: watching {interface}; page on http://{0}/, metrics on http://{0}/metrics, flows on http://{0}/api/flows",
        listen
    );
    crate::open::announce(listen, &shared);

    let history = crate::history::start(&args, &shared)?;
    let stop = Arc::new(AtomicBool::new(false));
    let capture = {
        let (shared, stop) = (shared.clone(), stop.clone());
        capture_starter.spawn(move || {
            let mut feed = LiveFeed::new(first, opts, leases);
            monitor::capture_loop(pipeline, &shared, &mut feed, flow_log, history, &stop)
        })?
    };
    if let Some(h) = nm_hotspot {
        crate::hotspot::watch(h, shared.clone());
    }
    let (summary, pipeline) = monitor::serve(shared, listener, stop, capture)?;
    baseline.finish(&pipeline, monitor::unix_nanos())?;
    eprintln!("tetherscope: stopped; {summary}");
    Ok(ExitCode::SUCCESS)
}

/// The pipeline and the exporter's view of it, as the options ask.
pub fn build(args: &RunArgs) -> anyhow::Result<(Pipeline, Arc<Shared>)> {
    let catalog = Arc::new(crate::catalog::load(&args.catalog)?);
    let config = PipelineConfig {
        max_flows: args.max_flows,
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::new(&config);
    let shared = Arc::new(Shared::with_labels(&pipeline, catalog, label_policy(args)));
    Ok((pipeline, shared))
}

/// How the flow log is rotated, as the options ask.
pub fn flow_log_rotation(args: &RunArgs) -> anyhow::Result<crate::flow_log::Rotation> {
    crate::flow_log::Rotation::from_mib(args.flow_log_max_mib, args.flow_log_keep)
        .map_err(|e| UsageError(format!("--flow-log-max-mib: {e}")).into())
}

/// The `domain` label policy the options ask for.
fn label_policy(args: &RunArgs) -> LabelPolicy {
    LabelPolicy {
        max_domains: args.max_domains,
        idle_ns: u64::try_from(args.label_idle.as_nanos()).unwrap_or(u64::MAX),
        domain: match args.domain_label {
            crate::cli::DomainLabelArg::Registrable => DomainLabel::Registrable,
            crate::cli::DomainLabelArg::Fqdn => DomainLabel::Fqdn,
        },
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
