//! Finding the hotspot through NetworkManager: the active connection whose
//! `ipv4.method` is `shared` (NetworkManager's hotspot mode), its device and
//! its address, which need not be 10.42.0.1. `nmcli` is asked, bounded in
//! time; without NetworkManager the caller falls back to the interface
//! holding 10.42.0.1.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tetherscope_exporter::Shared;

/// How long one `nmcli` call may take before it counts as "no answer".
const NMCLI_LIMIT: Duration = Duration::from_secs(5);

/// How often the hotspot connection's state is checked while capturing.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// A shared connection NetworkManager has active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hotspot {
    /// The connection's name (`connection.id`).
    pub connection: String,
    /// The connection's UUID.
    pub uuid: String,
    /// The interface it is active on.
    pub interface: String,
    /// The interface's IPv4 addresses with prefix length, e.g. `192.168.44.1/24`.
    pub addresses: Vec<String>,
}

/// Runs `nmcli` with `args`; its standard output when it exits 0 within
/// [`NMCLI_LIMIT`], otherwise `None` (not installed, NetworkManager not
/// running, no answer).
fn nmcli(args: &[&str]) -> Option<String> {
    let mut child = Command::new("nmcli")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < NMCLI_LIMIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    let mut out = String::new();
    // The answers are a few lines: the pipe buffer held them until exit.
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    status.success().then_some(out)
}

/// `(uuid, device)` of each active connection with a device, from
/// `nmcli -t -f UUID,DEVICE connection show --active`. Neither field can hold
/// a colon (interface names never do), so the terse format splits cleanly.
pub fn parse_active(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (uuid, device) = l.trim().split_once(':')?;
            (!uuid.is_empty() && !device.is_empty() && !device.contains(':'))
                .then(|| (uuid.to_owned(), device.to_owned()))
        })
        .collect()
}

/// Addresses from `nmcli -g IP4.ADDRESS device show IF` (` | ` between several).
pub fn parse_addresses(text: &str) -> Vec<String> {
    text.split(['|', '\n'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The active shared connections, by interface name.
fn active_shared() -> Option<Vec<Hotspot>> {
    let active = nmcli(&["-t", "-f", "UUID,DEVICE", "connection", "show", "--active"])?;
    let mut found = Vec::new();
    for (uuid, interface) in parse_active(&active) {
        let Some(fields) = nmcli(&[
            "-g",
            "ipv4.method,connection.id",
            "connection",
            "show",
            &uuid,
        ]) else {
            continue;
        };
        let mut lines = fields.lines();
        if lines.next().map(str::trim) != Some("shared") {
            continue;
        }
        let connection = lines.next().unwrap_or_default().trim().to_owned();
        let addresses = nmcli(&["-g", "IP4.ADDRESS", "device", "show", &interface])
            .map(|t| parse_addresses(&t))
            .unwrap_or_default();
        found.push(Hotspot {
            connection,
            uuid,
            interface,
            addresses,
        });
    }
    found.sort_by(|a, b| a.interface.cmp(&b.interface));
    Some(found)
}

/// The hotspot NetworkManager shares, if it runs and has one active. With
/// several, the first by interface name is taken and the others are named.
pub fn from_networkmanager() -> Option<Hotspot> {
    let shared = active_shared()?;
    let first = shared.first()?.clone();
    if shared.len() > 1 {
        let others: Vec<String> = shared[1..]
            .iter()
            .map(|h| h.interface.escape_debug().to_string())
            .collect();
        tracing::warn!(
            "several shared connections are active; watching {} (others: {}; name one with --interface)",
            first.interface,
            others.join(", ")
        );
    }
    eprintln!(
        "tetherscope: NetworkManager shares connection \"{}\" on {} ({})",
        first.connection.escape_debug(),
        first.interface,
        first.addresses.join(", ").escape_debug()
    );
    Some(first)
}

/// Whether the shared connection `uuid` is active on `interface`.
fn still_active(hotspot: &Hotspot) -> Option<bool> {
    let active = nmcli(&["-t", "-f", "UUID,DEVICE", "connection", "show", "--active"])?;
    Some(
        parse_active(&active)
            .iter()
            .any(|(u, d)| *u == hotspot.uuid && *d == hotspot.interface),
    )
}

/// Follows the hotspot connection while tetherscope captures on its
/// interface: while NetworkManager has it down, the capture counts as
/// detached (`tetherscope_capture_up 0`, `/healthz` 503) even if the
/// interface itself stays (a deactivated shared connection leaves its link
/// up); when it comes back, attached again if the interface is there.
/// Answers NetworkManager cannot give change nothing.
pub fn watch(hotspot: Hotspot, shared: Arc<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("hotspot-watch".into())
        .spawn(move || {
            let mut up = true;
            loop {
                std::thread::sleep(WATCH_EVERY);
                let Some(now) = still_active(&hotspot) else {
                    continue;
                };
                if now == up {
                    continue;
                }
                up = now;
                let present = std::path::Path::new("/sys/class/net")
                    .join(&hotspot.interface)
                    .exists();
                if up {
                    tracing::warn!("hotspot connection on {} is up again", hotspot.interface);
                } else {
                    tracing::warn!("hotspot connection on {} went down", hotspot.interface);
                }
                shared.capture.attached.store(up && present, Relaxed);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot follow the hotspot connection: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_connections_parse_uuid_and_device() {
        let text = "d00627a9-4f9f-47b8-9f4c-0a5d095318cc:ap0\n\
                    b034967b-ffa1-472e-982f-d10e4527d0f7:lo\n\
                    5d2c1b4e-0000-4000-8000-000000000001:\n\
                    garbage\n";
        assert_eq!(
            parse_active(text),
            vec![
                (
                    "d00627a9-4f9f-47b8-9f4c-0a5d095318cc".to_owned(),
                    "ap0".to_owned()
                ),
                (
                    "b034967b-ffa1-472e-982f-d10e4527d0f7".to_owned(),
                    "lo".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn addresses_split_on_nmcli_separators() {
        assert_eq!(
            parse_addresses("192.168.44.1/24 | 10.0.0.1/8\n"),
            vec!["192.168.44.1/24", "10.0.0.1/8"]
        );
        assert!(parse_addresses("\n").is_empty());
    }
}
