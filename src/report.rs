//! `tetherscope report`: a capture's story as one self-contained HTML file.
//!
//! The capture streams through the same pipeline and classification as
//! `read`; finished flows are folded into the page's bounded `Aggregate`
//! as they leave the flow table, so memory does not grow with the capture.
//! The file inlines its CSS and SVG, fetches nothing and runs no script
//! (its Content-Security-Policy forbids both), and prints cleanly.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tetherscope_flow::{Flow, Pipeline, PipelineConfig, Stats};
use tetherscope_record::annotate::Annotator;
use tetherscope_view::html::{self, text};
use tetherscope_view::sources;
use tetherscope_view::view::{Aggregate, Limits, Seen, Timeline, View};

use crate::cli::ReportArgs;
use crate::offline::Progress;

/// Buckets of the report's timeline (widened to fit the capture).
const TIMELINE_BUCKETS: usize = 48;

/// What the report says about the capture itself.
struct CaptureFacts {
    file: String,
    bytes: Option<u64>,
    first_packet: u64,
    last_packet: u64,
    profile: String,
    read_error: Option<String>,
}

/// The default output: the capture's name with `.html`.
fn default_output(capture: &Path) -> PathBuf {
    capture.with_extension("html")
}

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.capture));
    if same_file(&args.capture, &output) {
        return Err(crate::UsageError(format!(
            "{}: the report would overwrite its own capture; give another with -o FILE",
            output.display()
        ))
        .into());
    }
    let mut source = crate::offline::open(&args.capture)?;
    let catalog = crate::catalog::load(&args.catalog)?;
    // The flow record looks each finished flow's server address up here.
    let network_db = crate::network_db::load(&args.network_db)?;
    let mut pipeline = Pipeline::new(&PipelineConfig {
        max_flows: args.max_flows,
        ..PipelineConfig::default()
    });
    let devices = pipeline.devices.clone();
    let annotator = Annotator::new(&catalog, &devices, None).with_network(&network_db);
    let mut progress = Progress::new(!args.quiet && io::stderr().is_terminal());
    let mut aggregate: Option<Aggregate> = None;
    // The timeline starts at the first packet.
    let first_packet = std::cell::Cell::new(0);
    let fold = |flow: Box<Flow>| -> io::Result<()> {
        let a = annotator.finished(&flow);
        let start = match first_packet.get() {
            0 => flow.first_seen,
            t => t,
        };
        aggregate
            .get_or_insert_with(|| {
                Aggregate::new(
                    Limits::default(),
                    Timeline::growing(start, tetherscope_flow::SECOND, TIMELINE_BUCKETS),
                )
            })
            .add(&Seen::of(&flow, a.blind_spot), &a.record);
        Ok(())
    };
    let note_packet = |ts: u64| {
        if first_packet.get() == 0 {
            first_packet.set(ts);
        }
    };
    let ended =
        crate::offline::each_flow(&mut source, &mut pipeline, &mut progress, note_packet, fold)?;
    let facts = CaptureFacts {
        file: args.capture.file_name().map_or_else(
            || args.capture.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        bytes: std::fs::metadata(&args.capture).ok().map(|m| m.len()),
        first_packet: ended.first_packet,
        last_packet: ended.last_packet,
        profile: args.catalog.profile.clone(),
        read_error: ended.warning.map(|e| e.to_string()),
    };
    let aggregate = aggregate.unwrap_or_else(|| {
        Aggregate::new(
            Limits::default(),
            Timeline::growing(0, tetherscope_flow::SECOND, TIMELINE_BUCKETS),
        )
    });
    let mut view = aggregate.view(&[], &pipeline.devices.snapshot());
    // A report has no per-device profiles: the active one judged them all.
    for device in &mut view.devices {
        device.profile = Some(args.catalog.profile.clone());
    }
    let footer = sources::footer(&sources::data_sources(&catalog, &network_db));
    let doc = document(&facts, &view, &pipeline.stats, &footer);
    write_atomically(&output, doc.as_bytes())
        .map_err(|e| crate::UsageError(format!("{}: {e}", output.display())))?;
    if let Some(e) = &facts.read_error {
        eprintln!(
            "tetherscope: warning: {}: {e}; the report covers what was read before it",
            args.capture.display()
        );
    }
    if !args.quiet {
        eprintln!(
            "tetherscope: wrote {} ({} flows, {} devices, {} destinations)",
            output.display(),
            view.flows,
            view.devices.len(),
            view.devices
                .iter()
                .map(|d| d.destinations.len())
                .sum::<usize>()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `a` and `b` are one file (the same path, or links to it).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Writes a temporary file next to `path` and renames it there, so a
/// failed run leaves no half file. The temporary name is unpredictable and
/// the file is created new, never through a link: in a directory others
/// can write, a link planted at the name would otherwise take the write
/// (root's, say) wherever it points.
fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let (mut file, tmp) = create_temporary(path)?;
    let result = file
        .write_all(data)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A new file `.NAME.RANDOM.tmp` in `path`'s directory.
fn create_temporary(path: &Path) -> io::Result<(std::fs::File, PathBuf)> {
    use std::hash::{BuildHasher, Hasher};
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut last = None;
    for attempt in 0..16u32 {
        // Keys the OS drew at random for this process.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(attempt);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{:016x}.tmp", h.finish()));
        let tmp = dir.join(tmp_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary file")))
}

/// The report's own policy: inline style and data images only, no script,
/// nothing fetched.
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

fn document(facts: &CaptureFacts, view: &View, stats: &Stats, footer: &str) -> String {
    let mut out = String::with_capacity(128 * 1024);
    let _ = write!(
        out,
        r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{csp}"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer"><title>tetherscope report: {file}</title><style>{css}</style></head><body><header><h1>tetherscope report: {file}</h1><nav aria-label="Sections"><ul><li><a href="#capture">Capture</a></li><li><a href="#devices">Devices</a></li><li><a href="#destinations">Destinations</a></li><li><a href="#timeline">Timeline</a></li><li><a href="#dns">DNS</a></li><li><a href="#blind">Blind spots</a></li><li><a href="#unparsed">Not parsed</a></li></ul></nav></header><main>"##,
        csp = REPORT_CSP,
        file = text(&facts.file),
        css = html::CSS,
    );
    capture_section(&mut out, facts, view, stats);
    devices_section(&mut out, view);
    let _ = write!(
        out,
        r#"<section id="destinations"><h2>Destinations by purpose</h2><p class="meta">Per device, each destination (registrable domain, or the server address when nothing named it) with who runs it, the protocols and where its name came from, what went in the clear, the CNAME chain behind it, and the active profile's verdict.</p>{}</section>"#,
        html::devices(view, true)
    );
    let _ = write!(
        out,
        r#"<section id="timeline"><h2>Timeline</h2><div class="charts"><figure><figcaption>Bytes by purpose over time ({} per bar)</figcaption>{}</figure><figure><figcaption>Busiest destinations</figcaption>{}</figure></div></section>"#,
        text(&duration(view.timeline.bucket_seconds)),
        html::timeline_svg(&view.timeline),
        html::top_svg(view)
    );
    let _ = write!(
        out,
        r#"<section id="dns"><h2>DNS questions and answers</h2>{}</section><section id="blind"><h2>Blind spots</h2>{}</section>"#,
        html::dns(view),
        html::blind_spots(view)
    );
    unparsed_section(&mut out, facts, stats);
    out.push_str("</main>");
    out.push_str(footer);
    out.push_str("</body></html>\n");
    out
}

fn duration(secs: f64) -> String {
    if secs >= 86_400.0 {
        format!("{:.1} d", secs / 86_400.0)
    } else if secs >= 3600.0 {
        format!("{:.1} h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{secs:.0} s")
    }
}

fn capture_section(out: &mut String, f: &CaptureFacts, view: &View, stats: &Stats) {
    let span = f.last_packet.saturating_sub(f.first_packet) as f64 / 1e9;
    let _ = write!(
        out,
        r#"<section id="capture"><h2>The capture</h2><dl class="facts"><dt>File</dt><dd>{}</dd><dt>Size</dt><dd>{}</dd><dt>First packet</dt><dd>{} UTC</dd><dt>Last packet</dt><dd>{} UTC</dd><dt>Span</dt><dd>{}</dd><dt>Packets</dt><dd>{}</dd><dt>Flows</dt><dd>{}</dd><dt>Devices</dt><dd>{}</dd><dt>Profile</dt><dd>{}</dd><dt>Made by</dt><dd>tetherscope {}</dd></dl></section>"#,
        text(&f.file),
        f.bytes.map_or_else(|| "-".into(), html::bytes),
        text(&html::time(f.first_packet as f64 / 1e9)),
        text(&html::time(f.last_packet as f64 / 1e9)),
        text(&duration(span)),
        Stats::get(&stats.packets),
        view.flows,
        view.devices.len(),
        text(&f.profile),
        env!("CARGO_PKG_VERSION"),
    );
}

fn devices_section(out: &mut String, view: &View) {
    out.push_str(r#"<section id="devices"><h2>Devices</h2><div class="scroll"><table><caption>Devices seen (DHCP host name, MAC; "randomised" when the MAC is locally administered)</caption><thead><tr><th scope="col">Device</th><th scope="col">MAC</th><th scope="col">Randomised</th><th scope="col">Destinations</th><th scope="col">Flows</th><th scope="col">Bytes</th></tr></thead><tbody>"#);
    for d in &view.devices {
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td class="mac">{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            text(&d.device),
            text(&d.mac),
            if d.randomised { "yes" } else { "no" },
            d.destinations.len(),
            d.flows,
            text(&html::bytes(d.bytes))
        );
    }
    out.push_str("</tbody></table></div>");
    if view.dropped_flows > 0 {
        let _ = write!(
            out,
            r#"<p class="meta">{} flows of devices past the device limit are not shown.</p>"#,
            view.dropped_flows
        );
    }
    out.push_str("</section>");
}

fn unparsed_section(out: &mut String, f: &CaptureFacts, stats: &Stats) {
    out.push_str(r#"<section id="unparsed"><h2>What could not be parsed</h2><table><caption>Packets and flows tetherscope skipped or cut short</caption><thead><tr><th scope="col">What</th><th scope="col">Count</th></tr></thead><tbody>"#);
    let mut rows: Vec<(String, u64)> = vec![
        (
            "packets cut short by the snap length".into(),
            Stats::get(&stats.truncated),
        ),
        ("frames that are not IP".into(), Stats::get(&stats.not_ip)),
        ("IP fragments".into(), Stats::get(&stats.fragments)),
    ];
    rows.extend(
        stats
            .parse_errors()
            .into_iter()
            .map(|(k, v)| (format!("malformed: {k}"), v)),
    );
    rows.extend(
        stats
            .evictions()
            .into_iter()
            .filter(|(k, _)| *k == "capacity")
            .map(|(_, v)| ("flows evicted early: the flow table was full".to_owned(), v)),
    );
    for (what, n) in rows {
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td class="num">{n}</td></tr>"#,
            text(&what)
        );
    }
    out.push_str("</tbody></table>");
    if let Some(e) = &f.read_error {
        let _ = write!(
            out,
            r#"<p><strong>The file ends early:</strong> {}; the report covers what was read before it.</p>"#,
            text(e)
        );
    }
    out.push_str("</section>");
}
