//! `tetherscope baseline`: list and triage each device's destinations.
//!
//! The CLI works on the store file. While `run` (or `replay`) holds the
//! same store, its in-memory baseline is authoritative, so a change is
//! written both to the tables (visible at once to `list`) and as a row of
//! the `request` table, which the running process applies to its memory at
//! its next batch (within a second) and then deletes; a process that starts
//! later applies what is left when it loads. Nothing the CLI changes is
//! overwritten by a running process's older state.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tetherscope_baseline::{Entry, Settings, Store, Triage};
use tetherscope_classify::input::{read_limited, read_text_file, MAX_INPUT_BYTES};

use crate::cli::{BaselineCommand, ListFormat, StoreArgs, TriageArgs};
use crate::UsageError;

fn path_of(store: &StoreArgs) -> anyhow::Result<PathBuf> {
    store
        .path
        .clone()
        .or_else(crate::state::default_path)
        .ok_or_else(|| UsageError("no state store: give --state PATH".into()).into())
}

/// Entries of the store (one device's, if given), requests not yet applied
/// by a running process included.
fn entries(store: &StoreArgs, device: Option<&str>) -> anyhow::Result<Vec<Entry>> {
    let path = path_of(store)?;
    let store = Store::open_read_only(&path).map_err(|e| UsageError(e.to_string()))?;
    let baseline = crate::state::load(&store, Settings::default())?;
    baseline
        .entries(device)
        .map_err(|e| UsageError(e.to_string()).into())
}

pub fn run(cmd: &BaselineCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BaselineCommand::List {
            device,
            format,
            store,
        } => {
            let list = entries(store, device.as_deref())?;
            let format = format.unwrap_or(if io::stdout().is_terminal() {
                ListFormat::Table
            } else {
                ListFormat::Json
            });
            let mut out = io::stdout().lock();
            match format {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &with_vendors(&list))?;
                    writeln!(out)?;
                }
                ListFormat::Table => write_table(&mut out, &list)?,
            }
        }
        BaselineCommand::Export { device, store } => {
            let list = entries(store, device.as_deref())?;
            let mut out = io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        BaselineCommand::Accept(t) => triage(Triage::Accept, t)?,
        BaselineCommand::Flag(t) => triage(Triage::Flag, t)?,
        BaselineCommand::Forget(t) => triage(Triage::Forget, t)?,
        BaselineCommand::Import { file, store } => {
            // A regular file (or standard input) of a bounded size.
            let text = if file.as_os_str() == "-" {
                read_limited(io::stdin().lock(), MAX_INPUT_BYTES)
            } else {
                read_text_file(file)
            }
            .map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
            let list = parse_export(&text)
                .map_err(|why| UsageError(format!("{}: {why}", file.display())))?;
            let path = path_of(store)?;
            let mut store = crate::state::open_store(&path)?;
            let mut baseline = crate::state::load(&store, Settings::default())?;
            let n = baseline
                .import(&list)
                .map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
            let payload = serde_json::to_string(&list)?;
            store
                .queue("import", "", "", Some(&payload), &baseline.take_dirty())
                .map_err(|e| UsageError(e.to_string()))?;
            eprintln!(
                "tetherscope: imported {n} destinations into {}",
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The entries of an export. Each is read on its own, so that an error
/// (a count past 2^64, a negative one, a missing field) names the entry.
fn parse_export(text: &str) -> Result<Vec<Entry>, String> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| format!("{}: not a baseline export: {e}", e.line()))?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let destination = v.get("destination").cloned().unwrap_or_default();
            let entry = |why: String| format!("entry {} (destination {destination}): {why}", i + 1);
            for field in ["flows", "bytes_up", "bytes_down", "cleartext_bytes"] {
                match v.get(field) {
                    Some(n) if n.as_u64().is_none() => {
                        return Err(entry(format!("{field} {n} is not a count")))
                    }
                    _ => {}
                }
            }
            serde_json::from_value(v).map_err(|e| entry(e.to_string()))
        })
        .collect()
}

fn triage(op: Triage, t: &TriageArgs) -> anyhow::Result<()> {
    let path = path_of(&t.store)?;
    let mut store = crate::state::open_store(&path)?;
    let mut baseline = crate::state::load(&store, Settings::default())?;
    let mac = baseline
        .resolve(&t.device)
        .map_err(|e| UsageError(e.to_string()))?;
    let entry = baseline
        .triage(op, &t.device, &t.destination)
        .map_err(|e| UsageError(e.to_string()))?
        .context("destination vanished")?;
    store
        .queue(
            op.as_str(),
            &tetherscope_baseline::format_mac(&mac),
            &t.destination,
            None,
            &baseline.take_dirty(),
        )
        .map_err(|e| UsageError(e.to_string()))?;
    let done = match op {
        Triage::Accept => "accepted",
        Triage::Flag => "flagged",
        Triage::Forget => "forgot",
    };
    eprintln!(
        "tetherscope: {done} {} for {} ({})",
        entry.destination, entry.device, entry.mac
    );
    Ok(())
}

/// An entry as `list` shows it: with the vendor of the device's MAC block
/// when the IEEE registry knows it (docs/identity.md; never for a
/// randomised MAC). Export leaves it out: it is not the store's.
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    entry: &'a Entry,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor: Option<&'static str>,
}

fn with_vendors(list: &[Entry]) -> Vec<Listed<'_>> {
    let registry = tetherscope_classify::oui::system();
    list.iter()
        .map(|entry| Listed {
            entry,
            vendor: tetherscope_baseline::parse_mac(&entry.mac)
                .and_then(|mac| registry?.vendor(&mac)),
        })
        .collect()
}

/// The entries as a table for people: names from the wire with their
/// invisible characters shown (JSON keeps them as they are).
fn write_table(out: &mut dyn Write, list: &[Entry]) -> io::Result<()> {
    use tetherscope_exporter::visible::visible;
    writeln!(
        out,
        "{:<20} {:<9} {:<20} {:>6} {:>10} {:>10}  {:<20} {:<20}  DESTINATION",
        "DEVICE", "STATE", "PURPOSE", "FLOWS", "BYTES UP", "BYTES DN", "FIRST SEEN", "LAST SEEN"
    )?;
    let when = |s: f64| {
        let r = tetherscope_exporter::record::rfc3339(tetherscope_baseline::nanos(s));
        r.get(..19).unwrap_or(&r).replace('T', " ")
    };
    for e in list {
        writeln!(
            out,
            "{:<20} {:<9} {:<20} {:>6} {:>10} {:>10}  {:<20} {:<20}  {}",
            visible(&e.device),
            e.state,
            e.purpose,
            e.flows,
            e.bytes_up,
            e.bytes_down,
            when(e.first_seen),
            when(e.last_seen),
            visible(&e.destination)
        )?;
    }
    Ok(())
}
