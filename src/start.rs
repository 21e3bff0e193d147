//! The start-up `run` and `replay` share: one straight line, one function
//! per step, only the packet source differing between the two commands.
//!
//! The order is the one privileges require. Everything that needs one comes
//! first: the capture handle (CAP_NET_RAW) and the listening socket. Then
//! only the capture thread may keep capabilities: its starter is created,
//! every capability of this thread is dropped, and the store (whose writer
//! thread inherits this thread's capabilities) is opened only after that.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use tetherscope_exporter::state::{DomainLabel, LabelPolicy, DEFAULT_MAX_OWNERS};
use tetherscope_exporter::Shared;
use tetherscope_flow::{Pipeline, PipelineConfig};

use crate::flow_log::FlowLog;
use crate::monitor::{self, Feed};
use crate::settings::Settings;
use crate::state::WithoutState;
use crate::UsageError;

/// Where a monitor's packets come from: the part of start-up that differs
/// between `run` (a live interface) and `replay` (a capture file).
pub trait Source {
    /// The capture thread's packet feed.
    type Feed: Feed + 'static;
    /// Whether the capture thread keeps the capture capabilities (to open
    /// the interface again when the hotspot comes back).
    const KEEPS_CAPTURE_PRIVILEGE: bool;
    /// Where the baseline lives without `--state`.
    const WITHOUT_STATE: WithoutState;
    /// What the page calls the source: the interface or the file's name.
    fn name(&self) -> String;
    /// What the monitor says it is doing ("watching wlan0").
    fn doing(&self) -> String;
    /// Opens the source, with every privilege still held.
    fn open(&mut self) -> anyhow::Result<Self::Feed>;
    /// Once the capture thread runs.
    fn started(&mut self, _shared: &Arc<Shared>) {}
    /// Packet time at which DNS answers saved at the end must still be valid.
    fn end_time(pipeline: &Pipeline) -> u64;
}

/// Runs the monitor on `source` until SIGINT/SIGTERM.
pub fn monitor<S: Source>(settings: &Settings, mut source: S) -> anyhow::Result<ExitCode> {
    let (mut pipeline, mut shared) = build_pipeline(settings)?;
    let flow_log = open_flow_log(settings)?;
    let feed = configure_capture(&mut source, &shared)?;
    let listener = monitor::bind(settings.listen)?;
    let capture_starter = CaptureStarter::new(S::KEEPS_CAPTURE_PRIVILEGE)?;
    crate::privileges::drop_all();
    let store = crate::state::open(settings, S::WITHOUT_STATE, &mut pipeline)?;
    let baseline = store.attach(&settings.devices, &mut shared)?;
    announce(settings, &source, &shared);
    let stop = Arc::new(AtomicBool::new(false));
    let history = crate::history::start(settings, &shared)?;
    let capture = start_capture(
        capture_starter,
        pipeline,
        &shared,
        feed,
        (flow_log, history),
        &stop,
    )?;
    source.started(&shared);
    let (summary, pipeline) = monitor::serve(shared, listener, stop, capture)?;
    baseline.finish(&pipeline, S::end_time(&pipeline))?;
    eprintln!("tetherscope: stopped; {summary}");
    Ok(ExitCode::SUCCESS)
}

/// The pipeline and the exporter's view of it, as the settings ask.
pub fn build_pipeline(settings: &Settings) -> anyhow::Result<(Pipeline, Arc<Shared>)> {
    let catalog = Arc::new(crate::catalog::load(&settings.catalog)?);
    // Each flow record built looks its server address up in these tables.
    let network = crate::network_db::load(&settings.network_db)?;
    let config = PipelineConfig {
        max_flows: settings.max_flows,
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::new(&config);
    let mut shared = Shared::with_labels(&pipeline, catalog, label_policy(settings));
    shared.network = network;
    let shared = Arc::new(shared);
    Ok((pipeline, shared))
}

/// The `domain` label policy the settings ask for.
fn label_policy(settings: &Settings) -> LabelPolicy {
    LabelPolicy {
        max_domains: settings.max_domains,
        idle_ns: u64::try_from(settings.label_idle.as_nanos()).unwrap_or(u64::MAX),
        domain: match settings.domain_label {
            crate::cli::DomainLabelArg::Registrable => DomainLabel::Registrable,
            crate::cli::DomainLabelArg::Fqdn => DomainLabel::Fqdn,
        },
        max_owners: DEFAULT_MAX_OWNERS,
    }
}

/// The flow log, rotated as the settings ask.
fn open_flow_log(settings: &Settings) -> anyhow::Result<Option<FlowLog>> {
    let rotation =
        crate::flow_log::Rotation::from_mib(settings.flow_log_max_mib, settings.flow_log_keep)
            .map_err(|e| UsageError(format!("--flow-log-max-mib: {e}")))?;
    monitor::open_flow_log(settings.flow_log.as_ref(), rotation)
}

/// Opens the source and shows it as attached.
fn configure_capture<S: Source>(source: &mut S, shared: &Shared) -> anyhow::Result<S::Feed> {
    *shared
        .capture
        .interface
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = source.name();
    let feed = source.open()?;
    shared.capture.attached.store(true, Relaxed);
    shared.capture.attachments.store(1, Relaxed);
    Ok(feed)
}

/// Says where the page, metrics and flows are served.
fn announce<S: Source>(settings: &Settings, source: &S, shared: &Shared) {
    eprintln!(
        "tetherscope: {doing}; page on http://{listen}/, metrics on http://{listen}/metrics, flows on http://{listen}/api/flows",
        doing = source.doing(),
        listen = settings.listen,
    );
    crate::open::announce(settings.listen, shared);
}

/// How the capture thread is started: by a thread that kept the capture
/// capabilities, or as any thread.
enum CaptureStarter {
    KeepingPrivilege(crate::privileges::CaptureSpawner),
    Plain,
}

impl CaptureStarter {
    /// Call it before the capabilities are dropped.
    fn new(keep_privilege: bool) -> anyhow::Result<CaptureStarter> {
        Ok(if keep_privilege {
            CaptureStarter::KeepingPrivilege(crate::privileges::CaptureSpawner::start()?)
        } else {
            CaptureStarter::Plain
        })
    }
}

/// Starts the capture thread: feed → pipeline → exporter and flow log,
/// until `stop`.
fn start_capture<F: Feed + 'static>(
    starter: CaptureStarter,
    pipeline: Pipeline,
    shared: &Arc<Shared>,
    mut feed: F,
    (flow_log, history): (Option<FlowLog>, Option<tetherscope_history::Sink>),
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<(String, Pipeline)>> {
    let (shared, stop) = (shared.clone(), stop.clone());
    let work =
        move || monitor::capture_loop(pipeline, &shared, &mut feed, flow_log, history, &stop);
    match starter {
        CaptureStarter::KeepingPrivilege(spawner) => spawner.spawn(work),
        CaptureStarter::Plain => Ok(std::thread::Builder::new()
            .name(crate::privileges::CAPTURE_THREAD.into())
            .spawn(work)?),
    }
}
