//! `tetherscope read`: a capture file through the pipeline, flows out.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use tetherscope_capture::file::FileSource;
use tetherscope_capture::CaptureError;
use tetherscope_classify::Purpose;
use tetherscope_exporter::record::FlowRecord;
use tetherscope_exporter::{facts, novelty};
use tetherscope_flow::{BlindSpot, Flow, Pipeline, PipelineConfig, Stats};

use crate::cli::{Format, ReadArgs};

/// A flow's client MAC, when the link layer had one.
type ClientMac = Option<[u8; 6]>;

/// Totals for the summary line.
#[derive(Default)]
struct Summary {
    flows: u64,
    named: u64,
    bytes: u64,
    named_bytes: u64,
    /// Bytes of flows no rule or list gives a purpose.
    unknown_bytes: u64,
    /// Unnamed flows and bytes by (client MAC, reason); `no_dns_seen` of
    /// devices seen using private DNS is reported as `encrypted_dns`.
    blind: std::collections::BTreeMap<(ClientMac, BlindSpot), (u64, u64)>,
    private_dns: std::collections::HashSet<ClientMac>,
}

impl Summary {
    /// Unnamed flows and bytes per reason, in label order.
    fn blind_spots(&self) -> Vec<(BlindSpot, u64, u64)> {
        let mut by_reason: std::collections::BTreeMap<BlindSpot, (u64, u64)> = Default::default();
        for ((mac, reason), (flows, bytes)) in &self.blind {
            let reason = match reason {
                BlindSpot::NoDnsSeen if self.private_dns.contains(mac) => BlindSpot::EncryptedDns,
                r => *r,
            };
            let e = by_reason.entry(reason).or_default();
            e.0 += flows;
            e.1 += bytes;
        }
        by_reason.into_iter().map(|(r, (f, b))| (r, f, b)).collect()
    }
}

pub fn run(args: &ReadArgs) -> anyhow::Result<ExitCode> {
    let mut source = match FileSource::open(&args.capture) {
        Ok(s) => s,
        Err(CaptureError::NotACapture) => {
            anyhow::bail!(
                "{}: not a capture file (expected pcap or pcapng, optionally gzip-compressed)",
                args.capture.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("{}", args.capture.display())),
    };
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let catalog = crate::catalog::load(&args.catalog)?;
    // The flow record looks each new flow's server address up here.
    let _network_db = crate::network_db::load(&args.network_db)?;
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
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut table_rows = Vec::new();
    let mut summary = Summary::default();
    let mut progress = Progress::new(!args.quiet && io::stderr().is_terminal());
    let mut warning = None;

    let emit = |flow: Box<Flow>,
                out: &mut dyn Write,
                rows: &mut Vec<FlowRecord>,
                summary: &mut Summary|
     -> io::Result<()> {
        let bytes = flow.bytes_up + flow.bytes_down;
        summary.flows += 1;
        summary.bytes += bytes;
        if flow.domain().is_some() {
            summary.named += 1;
            summary.named_bytes += bytes;
        }
        let class = facts::classify(&catalog, &flow);
        if class.purpose == Purpose::Unknown {
            summary.unknown_bytes += bytes;
        }
        if class.purpose == Purpose::EncryptedDns {
            summary.private_dns.insert(flow.client_mac);
        }
        if let Some(reason) = facts::blind_spot(&flow, class.purpose) {
            let e = summary.blind.entry((flow.client_mac, reason)).or_default();
            e.0 += 1;
            e.1 += bytes;
        }
        let mut record = FlowRecord::new(&flow, facts::verdict_fields(&class));
        if let Some(b) = &baseline {
            let host = flow
                .client_mac
                .and_then(|m| novelty::host_name(&devices, &m));
            record.novelty = b
                .judge(&flow, &class, host.as_deref())
                .map(|o| o.novelty.as_str());
        }
        match format {
            Format::Jsonl => {
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")
            }
            Format::Table => {
                rows.push(record);
                Ok(())
            }
        }
    };

    let mut last_packet = 0;
    loop {
        match source.next_packet() {
            Ok(Some(p)) => {
                last_packet = last_packet.max(p.ts_nanos);
                pipeline.ingest(p.ts_nanos, p.link_type, p.wire_len, p.data);
            }
            Ok(None) => break,
            Err(e) => {
                warning = Some(e);
                break;
            }
        }
        for (flow, _) in pipeline.take_finished() {
            emit(flow, &mut out, &mut table_rows, &mut summary)?;
        }
        progress.update(&source);
    }
    pipeline.finish();
    for (flow, _) in pipeline.take_finished() {
        emit(flow, &mut out, &mut table_rows, &mut summary)?;
    }
    progress.clear();
    if format == Format::Table {
        table_rows.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
        write_table(&mut out, &table_rows)?;
    }
    out.flush()?;
    drop(out);
    if let Some(state) = state {
        state.finish(&pipeline, last_packet)?;
    }

    if let Some(e) = &warning {
        eprintln!(
            "tetherscope: warning: {}: {e}; results cover what was read before it",
            args.capture.display()
        );
    }
    if !args.quiet {
        print_summary(&pipeline.stats, &summary);
    }
    // The process ends here: freeing every destination of the baseline one
    // by one would only cost time (all of it is saved).
    std::mem::forget(baseline);
    Ok(ExitCode::SUCCESS)
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
}

fn write_table(out: &mut dyn Write, rows: &[FlowRecord]) -> io::Result<()> {
    use tetherscope_exporter::visible::visible;
    writeln!(
        out,
        "{:<5} {:<42} {:<42} {:<5} {:>9} {:>9}  {:<19} {:<10}  DOMAIN",
        "PROTO", "CLIENT", "SERVER", "APP", "BYTES UP", "BYTES DN", "PURPOSE", "VERDICT"
    )?;
    for r in rows {
        let ep = |ip: &str, port: Option<u16>| match port {
            Some(p) if ip.contains(':') => format!("[{ip}]:{p}"),
            Some(p) => format!("{ip}:{p}"),
            None => ip.to_owned(),
        };
        // Names from the wire: invisible and reordering characters shown.
        let name = r
            .domain
            .as_deref()
            .map(|d| visible(d).into_owned())
            .or_else(|| {
                r.dns_query
                    .as_ref()
                    .map(|q| format!("(dns) {}", visible(q)))
            })
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<5} {:<42} {:<42} {:<5} {:>9} {:>9}  {:<19} {:<10}  {}",
            r.transport,
            ep(&r.client_ip, r.client_port),
            ep(&r.server_ip, r.server_port),
            r.app_protocol.unwrap_or("-"),
            r.bytes_up,
            r.bytes_down,
            r.verdict.purpose.as_deref().unwrap_or("-"),
            r.verdict.verdict.as_deref().unwrap_or("-"),
            name
        )?;
    }
    Ok(())
}

/// A progress line on stderr for large files, when stderr is a terminal.
pub(crate) struct Progress {
    enabled: bool,
    last: Instant,
    shown: bool,
}

impl Progress {
    pub(crate) fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            last: Instant::now(),
            shown: false,
        }
    }

    pub(crate) fn update(&mut self, source: &FileSource) {
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

    pub(crate) fn clear(&mut self) {
        if self.shown {
            eprint!("\r{:40}\r", "");
        }
    }
}
