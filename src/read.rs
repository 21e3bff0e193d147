//! `tetherscope read`: a capture file through the pipeline, flows out.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use tetherscope_classify::Purpose;
use tetherscope_flow::{BlindSpot, Flow, Pipeline, PipelineConfig, Stats};
use tetherscope_record::annotate::Annotator;
use tetherscope_record::blind::BlindTally;
use tetherscope_record::record::FlowRecord;

use crate::cli::{Format, ReadArgs};
use crate::offline::{self, Progress};

/// Totals for the summary line.
struct Summary {
    flows: u64,
    named: u64,
    bytes: u64,
    named_bytes: u64,
    /// Bytes of flows no rule or list gives a purpose.
    unknown_bytes: u64,
    /// Flows to servers off the local network.
    remote_flows: u64,
    /// Of those, flows neither the catalog nor the network tables give an
    /// owner.
    ownerless_flows: u64,
    /// Unnamed flows and bytes by reason.
    blind: BlindTally,
}

impl Summary {
    fn new(devices: usize) -> Self {
        Summary {
            flows: 0,
            named: 0,
            bytes: 0,
            named_bytes: 0,
            unknown_bytes: 0,
            remote_flows: 0,
            ownerless_flows: 0,
            blind: BlindTally::new(devices),
        }
    }

    /// Unnamed flows and bytes per reason, in label order.
    fn blind_spots(&self) -> Vec<(BlindSpot, u64, u64)> {
        let counts = self.blind.by_reason();
        BlindSpot::ALL
            .iter()
            .map(|&r| (r, counts[r as usize].flows, counts[r as usize].bytes))
            .filter(|(_, flows, _)| *flows > 0)
            .collect()
    }
}

pub fn run(args: &ReadArgs) -> anyhow::Result<ExitCode> {
    let mut source = offline::open(&args.capture)?;
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let catalog = crate::catalog::load(&args.catalog)?;
    // The flow record looks each finished flow's server address up here.
    let network_db = crate::network_db::load(&args.network_db)?;
    let config = PipelineConfig {
        max_flows: args.max_flows,
        ..PipelineConfig::default()
    };
    let mut pipeline = Pipeline::new(&config);
    let mut state = match &args.state.path {
        Some(path) => Some(crate::state::start(path, args.state.settings())?),
        None => None,
    };
    if let Some(state) = &mut state {
        crate::state::restore_dns(std::mem::take(&mut state.saved_dns), &mut pipeline);
    }
    let baseline = state.as_ref().map(|s| s.handle.clone());
    let devices = pipeline.devices.clone();
    if let Some(b) = &baseline {
        crate::state::remember_holders(b, &devices);
    }
    let annotator = Annotator::new(&catalog, &devices, baseline.as_ref()).with_network(&network_db);
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut table_rows = Vec::new();
    let mut summary = Summary::new(config.max_devices);
    let mut progress = Progress::new(!args.quiet && io::stderr().is_terminal());

    let mut emit = |flow: Box<Flow>| -> io::Result<()> {
        let bytes = flow.bytes_up + flow.bytes_down;
        summary.flows += 1;
        summary.bytes += bytes;
        if flow.domain().is_some() {
            summary.named += 1;
            summary.named_bytes += bytes;
        }
        let a = annotator.finished(&flow);
        if a.class.purpose == Purpose::Unknown {
            summary.unknown_bytes += bytes;
        }
        if !is_local_or_unroutable(flow.server.ip()) {
            summary.remote_flows += 1;
            summary.ownerless_flows += u64::from(a.record.verdict.owner.is_none());
        }
        summary.blind.add(
            flow.client_mac,
            a.blind_spot,
            bytes,
            a.class.purpose == Purpose::EncryptedDns,
            true,
        );
        match format {
            Format::Jsonl => {
                serde_json::to_writer(&mut out, &a.record)?;
                out.write_all(b"\n")
            }
            Format::Table => {
                table_rows.push(a.record);
                Ok(())
            }
        }
    };
    let ended = offline::each_flow(&mut source, &mut pipeline, &mut progress, |_| {}, &mut emit)?;
    if format == Format::Table {
        table_rows.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
        write_table(&mut out, &table_rows)?;
    }
    out.flush()?;
    drop(out);
    if let Some(state) = state {
        state.finish(&pipeline, ended.last_packet)?;
    }

    if let Some(e) = &ended.warning {
        eprintln!(
            "tetherscope: warning: {}: {e}; results cover what was read before it",
            args.capture.display()
        );
    }
    if !args.quiet {
        print_summary(&pipeline.stats, &summary);
        print_devices(&pipeline.devices);
    }
    // The process ends here: freeing every destination of the baseline one
    // by one would only cost time (all of it is saved).
    std::mem::forget(baseline);
    Ok(ExitCode::SUCCESS)
}

/// The hotspot's own network and every range no public network serves:
/// flows there have no owner to name.
fn is_local_or_unroutable(ip: std::net::IpAddr) -> bool {
    tetherscope_record::facts::is_on_local_network(ip)
        || tetherscope_netinfo::special::is_unroutable(ip)
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn print_summary(stats: &Stats, s: &Summary) {
    let errors: Vec<_> = stats
        .parse_errors()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    let errors_text = if errors.is_empty() {
        "none".to_owned()
    } else {
        errors
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let evicted: Vec<String> = stats
        .evictions()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    eprintln!(
        "{} packets, {} flows; named {:.1}% of flows and {:.1}% of bytes; {} truncated, {} not IP, {} fragments; skipped: {}; evicted: {}",
        Stats::get(&stats.packets),
        s.flows,
        pct(s.named, s.flows),
        pct(s.named_bytes, s.bytes),
        Stats::get(&stats.truncated),
        Stats::get(&stats.not_ip),
        Stats::get(&stats.fragments),
        errors_text,
        if evicted.is_empty() {
            "none".to_owned()
        } else {
            evicted.join(" ")
        },
    );
    let blind: Vec<String> = s
        .blind_spots()
        .into_iter()
        .map(|(reason, flows, bytes)| format!("{}={flows} ({bytes} bytes)", reason.name()))
        .collect();
    if !blind.is_empty() {
        eprintln!("unnamed flows by reason: {}", blind.join(" "));
    }
    eprintln!(
        "purpose unknown for {:.1}% of bytes",
        pct(s.unknown_bytes, s.bytes)
    );
    eprintln!(
        "no owner for {:.1}% of flows to servers off the local network ({} of {})",
        pct(s.ownerless_flows, s.remote_flows),
        s.ownerless_flows,
        s.remote_flows
    );
}

/// One line per device with what it is (docs/identity.md): its label,
/// MAC and, when known, OS, vendor, model and announced names, as JSON
/// after `device ` so scripts can read it; escaped, as names come from
/// the wire.
fn print_devices(devices: &tetherscope_flow::DeviceTable) {
    use tetherscope_flow::devices::format_mac;
    use tetherscope_view::identity::Identity;
    for d in devices.snapshot() {
        let line = serde_json::json!({
            "device": devices.label(&d.mac),
            "mac": format_mac(&d.mac),
            "identity": Identity::of_installed(&d),
        });
        // serde_json escapes control characters; characters that draw
        // nothing or reorder text are written out; markup stays text.
        eprintln!(
            "device {}",
            tetherscope_record::visible::visible(&line.to_string())
        );
    }
}

fn write_table(out: &mut dyn Write, rows: &[FlowRecord]) -> io::Result<()> {
    use tetherscope_record::record::owner_text;
    use tetherscope_record::visible::visible;
    writeln!(
        out,
        "{:<5} {:<42} {:<42} {:<5} {:>9} {:>9}  {:<19} {:<10}  {:<32}  {:<40} CLIENT SOFTWARE (JA4)",
        "PROTO", "CLIENT", "SERVER", "APP", "BYTES UP", "BYTES DN", "PURPOSE", "VERDICT", "OWNER",
        "DOMAIN OR NETWORK"
    )?;
    let labels = tetherscope_classify::ClientLabels::builtin();
    for r in rows {
        let ep = |ip: &str, port: Option<u16>| match port {
            Some(p) if ip.contains(':') => format!("[{ip}]:{p}"),
            Some(p) => format!("{ip}:{p}"),
            None => ip.to_owned(),
        };
        // Names from the wire and from the network tables: invisible and
        // reordering characters shown.
        let name = r
            .domain
            .as_deref()
            .map(|d| visible(d).into_owned())
            .or_else(|| {
                r.dns_query
                    .as_ref()
                    .map(|q| format!("(dns) {}", visible(q)))
            })
            .or_else(|| r.network_label().map(|n| visible(&n).into_owned()))
            .unwrap_or_else(|| "-".into());
        let owner = owner_text(
            r.verdict.owner.as_deref(),
            r.verdict.owner_source,
            r.as_org.as_deref(),
        );
        // A measured client by name, any other fingerprint as itself.
        let client = match r.ja4.as_deref() {
            Some(j) if labels.clients(j).is_empty() => visible(j).into_owned(),
            Some(j) => format!("{} ({})", visible(&labels.label(j)), visible(j)),
            None => "-".into(),
        };
        writeln!(
            out,
            "{:<5} {:<42} {:<42} {:<5} {:>9} {:>9}  {:<19} {:<10}  {:<32}  {:<40} {}",
            r.transport,
            ep(&r.client_ip, r.client_port),
            ep(&r.server_ip, r.server_port),
            r.app_protocol.unwrap_or("-"),
            r.bytes_up,
            r.bytes_down,
            r.verdict.purpose.as_deref().unwrap_or("-"),
            r.verdict.verdict.as_deref().unwrap_or("-"),
            visible(&owner),
            name,
            client
        )?;
    }
    Ok(())
}
