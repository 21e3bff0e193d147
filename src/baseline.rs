//! `tetherscope baseline`: list and triage each device's destinations and
//! TLS clients (new software).
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
use tetherscope_baseline::{ClientEntry, Entry, Settings, Store, Triage};
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

/// Clients of the store (one device's, if given), requests not yet
/// applied by a running process included.
fn client_entries(store: &StoreArgs, device: Option<&str>) -> anyhow::Result<Vec<ClientEntry>> {
    let path = path_of(store)?;
    let store = Store::open_read_only(&path).map_err(|e| UsageError(e.to_string()))?;
    let baseline = crate::state::load(&store, Settings::default())?;
    baseline
        .client_entries(device)
        .map_err(|e| UsageError(e.to_string()).into())
}

/// A table on a terminal, JSON otherwise.
fn default_format() -> ListFormat {
    if io::stdout().is_terminal() {
        ListFormat::Table
    } else {
        ListFormat::Json
    }
}

pub fn run(cmd: &BaselineCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BaselineCommand::List {
            device,
            clients: true,
            format,
            store,
            ..
        } => {
            let list = client_entries(store, device.as_deref())?;
            let mut out = io::stdout().lock();
            match format.unwrap_or_else(default_format) {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &list)?;
                    writeln!(out)?;
                }
                ListFormat::Table => write_client_table(&mut out, &list)?,
            }
        }
        BaselineCommand::List {
            device,
            clients: false,
            format,
            config,
            profile,
            store,
        } => {
            let list = entries(store, device.as_deref())?;
            let config = config
                .as_deref()
                .map(crate::settings::ConfigFile::read)
                .transpose()?;
            let judges = Judges::new(config.as_ref(), profile.as_deref());
            let registry = tetherscope_classify::oui::system();
            let list: Vec<Listed> = list
                .iter()
                .map(|entry| Listed {
                    profile: judges.profile_of(entry),
                    vendor: tetherscope_baseline::parse_mac(&entry.mac)
                        .and_then(|mac| registry?.vendor(&mac)),
                    entry,
                })
                .collect();
            let format = format.unwrap_or_else(default_format);
            let mut out = io::stdout().lock();
            match format {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &list)?;
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
    let done = match op {
        Triage::Accept => "accepted",
        Triage::Flag => "flagged",
        Triage::Forget => "forgot",
    };
    if let Some(client) = &t.client {
        return triage_client(op, t.device.as_deref(), client, store, baseline, done);
    }
    let (Some(device), Some(destination)) = (&t.device, &t.destination) else {
        return Err(UsageError("a destination needs --device".into()).into());
    };
    let mac = baseline
        .resolve(device)
        .map_err(|e| UsageError(e.to_string()))?;
    let entry = baseline
        .triage(op, device, destination)
        .map_err(|e| UsageError(e.to_string()))?
        .context("destination vanished")?;
    store
        .queue(
            op.as_str(),
            &tetherscope_baseline::format_mac(&mac),
            destination,
            None,
            &baseline.take_dirty(),
        )
        .map_err(|e| UsageError(e.to_string()))?;
    eprintln!(
        "tetherscope: {done} {} for {} ({})",
        entry.destination, entry.device, entry.mac
    );
    Ok(())
}

/// Triage of a TLS client: of one device, or of every device that used it
/// (the request then names no MAC, so a running process does the same).
fn triage_client(
    op: Triage,
    device: Option<&str>,
    client: &str,
    mut store: Store,
    mut baseline: tetherscope_baseline::Baseline,
    done: &str,
) -> anyhow::Result<()> {
    let mac = device
        .map(|d| baseline.resolve(d))
        .transpose()
        .map_err(|e| UsageError(e.to_string()))?;
    let entries = baseline
        .triage_client(op, device, client)
        .map_err(|e| UsageError(e.to_string()))?;
    store
        .queue(
            op.client_op(),
            &mac.map(|m| tetherscope_baseline::format_mac(&m))
                .unwrap_or_default(),
            client,
            None,
            &baseline.take_dirty(),
        )
        .map_err(|e| UsageError(e.to_string()))?;
    for e in entries {
        eprintln!(
            "tetherscope: {done} client {} for {} ({})",
            e.client, e.device, e.mac
        );
    }
    Ok(())
}

/// The clients as a table for people: the fingerprint and destinations
/// with their invisible characters shown.
fn write_client_table(out: &mut dyn Write, list: &[ClientEntry]) -> io::Result<()> {
    use tetherscope_exporter::visible::visible;
    writeln!(
        out,
        "{:<20} {:<9} {:<36} {:>6}  {:<20}  DESTINATIONS",
        "DEVICE", "STATE", "CLIENT (JA4)", "FLOWS", "FIRST SEEN"
    )?;
    for e in list {
        let r = tetherscope_exporter::record::rfc3339(tetherscope_baseline::nanos(e.first_seen));
        let destinations: Vec<String> = e
            .destinations
            .iter()
            .map(|d| visible(d).to_string())
            .collect();
        writeln!(
            out,
            "{:<20} {:<9} {:<36} {:>6}  {:<20}  {}",
            visible(&e.device),
            e.state,
            visible(&e.client),
            e.flows,
            r.get(..19).unwrap_or(&r).replace('T', " "),
            destinations.join(", ")
        )?;
    }
    Ok(())
}

/// A listed destination with the profile that judges its device, and the
/// vendor of the device's MAC block when the IEEE registry knows it
/// (docs/identity.md; never for a randomised MAC). Export leaves both out:
/// they are not the store's.
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    entry: &'a Entry,
    profile: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor: Option<&'static str>,
}

/// Which profile judges each device: its `[[device]]` entry's (by MAC, or
/// by the DHCP host name or label it is listed under), else the monitor's.
struct Judges<'a> {
    devices: &'a [crate::state::DeviceEntry],
    active: &'a str,
}

impl<'a> Judges<'a> {
    fn new(config: Option<&'a crate::settings::ConfigFile>, profile: Option<&'a str>) -> Self {
        Judges {
            devices: config.map_or(&[], |c| c.devices()),
            active: profile
                .or_else(|| config.and_then(|c| c.profile()))
                .unwrap_or(crate::cli::DEFAULT_PROFILE),
        }
    }

    fn profile_of(&self, entry: &Entry) -> &'a str {
        let mac = tetherscope_baseline::parse_mac(&entry.mac);
        let by_mac = self.devices.iter().find(|d| {
            d.mac
                .as_deref()
                .and_then(tetherscope_baseline::parse_mac)
                .is_some_and(|m| Some(m) == mac)
        });
        let by_name = || {
            self.devices.iter().find(|d| {
                d.mac.is_none()
                    && (d.name.as_deref() == Some(&entry.device)
                        || d.label.as_deref() == Some(&entry.device))
            })
        };
        by_mac
            .or_else(by_name)
            .and_then(|d| d.profile.as_deref())
            .unwrap_or(self.active)
    }
}

/// The entries as a table for people: names from the wire with their
/// invisible characters shown (JSON keeps them as they are).
fn write_table(out: &mut dyn Write, list: &[Listed]) -> io::Result<()> {
    use tetherscope_exporter::visible::visible;
    writeln!(
        out,
        "{:<20} {:<16} {:<9} {:<20} {:>6} {:>10} {:>10}  {:<20} {:<20}  DESTINATION",
        "DEVICE",
        "PROFILE",
        "STATE",
        "PURPOSE",
        "FLOWS",
        "BYTES UP",
        "BYTES DN",
        "FIRST SEEN",
        "LAST SEEN"
    )?;
    let when = |s: f64| {
        let r = tetherscope_exporter::record::rfc3339(tetherscope_baseline::nanos(s));
        r.get(..19).unwrap_or(&r).replace('T', " ")
    };
    for Listed {
        entry: e, profile, ..
    } in list
    {
        writeln!(
            out,
            "{:<20} {:<16} {:<9} {:<20} {:>6} {:>10} {:>10}  {:<20} {:<20}  {}",
            visible(&e.device),
            visible(profile),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(device: &str, mac: &str) -> Entry {
        serde_json::from_value(serde_json::json!({
            "device": device, "mac": mac, "destination": "example.com",
            "state": "new", "first_seen": 0.0, "last_seen": 0.0,
        }))
        .unwrap()
    }

    #[test]
    fn each_device_is_listed_with_the_profile_that_judges_it() {
        let config = crate::settings::ConfigFile::parse(
            std::path::Path::new("t.toml"),
            "profile = \"stock-android\"\n\
             [[device]]\nmac = \"02:00:5e:00:01:82\"\nprofile = \"strict\"\n\
             [[device]]\nname = \"tablet\"\nlabel = \"Kid's tablet\"\nprofile = \"calyxos\"\n",
        )
        .unwrap();
        let judges = Judges::new(Some(&config), None);
        assert_eq!(
            judges.profile_of(&entry("phone", "02:00:5e:00:01:82")),
            "strict"
        );
        assert_eq!(
            judges.profile_of(&entry("Kid's tablet", "02:00:5e:00:01:99")),
            "calyxos"
        );
        assert_eq!(
            judges.profile_of(&entry("tablet", "02:00:5e:00:01:98")),
            "calyxos"
        );
        assert_eq!(
            judges.profile_of(&entry("laptop", "02:00:5e:00:01:97")),
            "stock-android"
        );
        let flagged = Judges::new(Some(&config), Some("minimal"));
        assert_eq!(
            flagged.profile_of(&entry("laptop", "02:00:5e:00:01:97")),
            "minimal"
        );
        let none = Judges::new(None, None);
        assert_eq!(
            none.profile_of(&entry("phone", "02:00:5e:00:01:82")),
            crate::cli::DEFAULT_PROFILE
        );
    }
}
