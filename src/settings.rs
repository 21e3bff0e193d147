//! The settings of `run` and `replay`: the config file merged with the
//! command line by one pure function, [`merge`].
//!
//! The rule is that an option given on the command line wins over the file,
//! and a key the file gives wins over the default. The command line's
//! options are `Option`s (see [`RunArgs`]) so "given" is known even when the
//! value given equals the default; defaults are applied here, after the
//! merge, and nowhere else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{parse_duration, CatalogArgs, DomainLabelArg, RunArgs, DEFAULT_PROFILE};
use crate::state::{DeviceEntry, DEFAULT_LEARN_FOR, DEFAULT_MAX_DESTINATIONS, DEFAULT_RETAIN};
use crate::UsageError;

/// Where the exporter listens unless `--listen` or the file says otherwise:
/// loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9433);
/// Flows tracked at once without `max_flows`.
pub const DEFAULT_MAX_FLOWS: usize = 262_144;
/// `domain` label values without `max_domains`.
pub const DEFAULT_MAX_DOMAINS: usize = 500;
/// How long a `domain` value may stay idle without `label_idle`.
pub const DEFAULT_LABEL_IDLE: Duration = Duration::from_secs(24 * 3600);
/// Kernel capture buffer without `buffer_mib`, MiB.
pub const DEFAULT_BUFFER_MIB: u32 = 32;
/// The flow history table without `history_table`.
pub const DEFAULT_HISTORY_TABLE: &str = "tetherscope.flows";
/// Longest a flow waits for its history batch without
/// `history_batch_secs`, seconds.
pub const DEFAULT_HISTORY_BATCH_SECS: f64 = 2.0;

/// What `run` and `replay` work with, every default applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The interface to watch; `None`: find the hotspot.
    pub interface: Option<String>,
    /// Where the exporter listens.
    pub listen: SocketAddr,
    /// Catalog files (the command line's, then the config file's) and the
    /// profile.
    pub catalog: CatalogArgs,
    /// The offline tables naming each server address's network and country.
    pub network_db: crate::cli::NetworkDbArgs,
    /// Most flows tracked at once.
    pub max_flows: usize,
    /// Most distinct `domain` label values.
    pub max_domains: usize,
    /// What the `domain` label holds.
    pub domain_label: DomainLabelArg,
    /// Packet time after which an idle `domain` value gives its place back.
    pub label_idle: Duration,
    /// The flow log (`-`: stdout).
    pub flow_log: Option<PathBuf>,
    /// Size at which the flow log rotates, MiB (0: never).
    pub flow_log_max_mib: f64,
    /// Rotated flow log files kept.
    pub flow_log_keep: u32,
    /// Kernel capture buffer, MiB.
    pub buffer_mib: u32,
    /// BPF filter expression.
    pub filter: Option<String>,
    /// dnsmasq lease file; `None`: NetworkManager's for the interface.
    pub leases: Option<PathBuf>,
    /// The state store; `None`: the command's own choice (see
    /// [`crate::state::WithoutState`]).
    pub state: Option<PathBuf>,
    /// How long each device learns, packet time.
    pub learn_for: Duration,
    /// How long an unseen destination is kept, packet time (0: forever).
    pub retain: Duration,
    /// Most destinations kept per device.
    pub max_destinations: usize,
    /// Devices the config file names (`[[device]]`).
    pub devices: Vec<DeviceEntry>,
    /// Where finished flows also go, if anywhere (`history_url`).
    pub history: History,
}

/// The flow history sink's settings (docs/flow-history.md).
#[derive(Debug, Clone)]
pub struct History {
    /// ClickHouse's HTTP interface; `None`: no flow history.
    pub url: Option<String>,
    /// The table rows go to.
    pub table: String,
    /// ClickHouse user.
    pub user: Option<String>,
    /// ClickHouse password: the config file's, never the command line's.
    pub password: Option<String>,
    /// This sensor's name on every row; `None`: the host name.
    pub sensor: Option<String>,
    /// Where batches wait; `None`: beside the state store.
    pub spool: Option<PathBuf>,
    /// Largest spool, MiB.
    pub spool_mib: u64,
    /// Rows that close a batch.
    pub batch_rows: usize,
    /// Longest a row waits for its batch, seconds.
    pub batch_secs: f64,
}

impl Settings {
    /// The baseline's settings.
    pub fn baseline(&self) -> tetherscope_baseline::Settings {
        crate::state::baseline_settings(self.learn_for, self.retain, self.max_destinations)
    }
}

/// The keys a config file may hold (deploy/tetherscope.toml shows each).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKeys {
    interface: Option<String>,
    listen: Option<SocketAddr>,
    #[serde(default)]
    catalog: Vec<PathBuf>,
    profile: Option<String>,
    max_flows: Option<usize>,
    max_domains: Option<usize>,
    domain_label: Option<DomainLabelArg>,
    label_idle: Option<String>,
    flow_log: Option<PathBuf>,
    flow_log_max_mib: Option<f64>,
    flow_log_keep: Option<u32>,
    buffer_mib: Option<u32>,
    filter: Option<String>,
    leases: Option<PathBuf>,
    state: Option<PathBuf>,
    learn_for: Option<String>,
    retain: Option<String>,
    max_destinations: Option<usize>,
    history_url: Option<String>,
    history_table: Option<String>,
    history_user: Option<String>,
    history_password: Option<String>,
    sensor: Option<String>,
    history_spool: Option<PathBuf>,
    history_spool_mib: Option<u64>,
    history_batch_rows: Option<usize>,
    history_batch_secs: Option<f64>,
    #[serde(default)]
    device: Vec<DeviceEntry>,
}

/// A config file as read: where it is (for messages, and catalogs named
/// relative to it) and what it says.
#[derive(Debug)]
pub struct ConfigFile {
    /// The file.
    pub path: PathBuf,
    /// Its keys.
    pub keys: FileKeys,
}

impl ConfigFile {
    /// The profile the file names, if any.
    pub fn profile(&self) -> Option<&str> {
        self.keys.profile.as_deref()
    }

    /// The file's `[[device]]` entries.
    pub fn devices(&self) -> &[DeviceEntry] {
        &self.keys.device
    }

    /// Reads and parses `path`; any problem is one `path:line: message`.
    pub fn read(path: &Path) -> Result<ConfigFile, UsageError> {
        let text = tetherscope_classify::input::read_text_file(path)
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
        ConfigFile::parse(path, &text)
    }

    /// Parses `text`, the content of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, UsageError> {
        let keys = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            let message = e.message().trim().replace('\n', "; ");
            UsageError(format!("{}:{line}: {message}", path.display()))
        })?;
        Ok(ConfigFile {
            path: path.to_owned(),
            keys,
        })
    }

    /// A duration key, parsed as the command line parses its flags.
    fn duration(&self, key: &str, value: Option<&str>) -> Result<Option<Duration>, UsageError> {
        value
            .map(|v| {
                parse_duration(v)
                    .map_err(|e| UsageError(format!("{}: {key}: {e}", self.path.display())))
            })
            .transpose()
    }
}

/// The settings of `run`/`replay`: the command line's `--config` read and
/// merged with the rest of the command line.
pub fn resolve(cli: RunArgs) -> Result<Settings, UsageError> {
    let file = cli.config.as_deref().map(ConfigFile::read).transpose()?;
    merge(file.as_ref(), cli)
}

/// Merges a config file with the command line: an option given on the
/// command line wins, then the file's key, then the default. Catalogs add
/// up (the command line's first, then the file's, relative to it). A file
/// cannot choose a listening address off loopback: exposing what the phones
/// do must be asked for on the command line.
pub fn merge(file: Option<&ConfigFile>, cli: RunArgs) -> Result<Settings, UsageError> {
    let empty = FileKeys::default();
    let keys = file.map_or(&empty, |f| &f.keys);
    let (label_idle, learn_for, retain) = match file {
        Some(f) => (
            f.duration("label_idle", keys.label_idle.as_deref())?,
            f.duration("learn_for", keys.learn_for.as_deref())?,
            f.duration("retain", keys.retain.as_deref())?,
        ),
        None => (None, None, None),
    };
    let listen = match (cli.listen, keys.listen, file) {
        (Some(addr), _, _) => addr,
        (None, Some(addr), Some(f)) if !addr.ip().is_loopback() => {
            return Err(UsageError(format!(
                "{}: listen = \"{addr}\" is not a loopback address; exposing what the phones \
                 do to the network must be asked for on the command line (--listen {addr})",
                f.path.display()
            )))
        }
        (None, from_file, _) => from_file.unwrap_or(DEFAULT_LISTEN),
    };
    let base = file.map_or(Path::new("."), |f| {
        f.path.parent().unwrap_or(Path::new("."))
    });
    let mut catalogs = cli.catalog.files;
    if file.is_some() {
        catalogs.extend(keys.catalog.iter().map(|c| base.join(c)));
    }
    let history = History {
        url: cli.history_url.or_else(|| keys.history_url.clone()),
        table: cli
            .history_table
            .or_else(|| keys.history_table.clone())
            .unwrap_or_else(|| DEFAULT_HISTORY_TABLE.into()),
        user: cli.history_user.or_else(|| keys.history_user.clone()),
        password: keys.history_password.clone(),
        sensor: cli.sensor.or_else(|| keys.sensor.clone()),
        spool: cli
            .history_spool
            .or_else(|| keys.history_spool.as_ref().map(|p| base.join(p))),
        spool_mib: cli
            .history_spool_mib
            .or(keys.history_spool_mib)
            .unwrap_or(tetherscope_history::DEFAULT_SPOOL_MIB),
        batch_rows: cli
            .history_batch_rows
            .or(keys.history_batch_rows)
            .unwrap_or(tetherscope_history::DEFAULT_BATCH_ROWS),
        batch_secs: cli
            .history_batch_secs
            .or(keys.history_batch_secs)
            .unwrap_or(DEFAULT_HISTORY_BATCH_SECS),
    };
    Ok(Settings {
        interface: cli.interface.or_else(|| keys.interface.clone()),
        listen,
        catalog: CatalogArgs {
            files: catalogs,
            profile: cli
                .catalog
                .profile
                .or_else(|| keys.profile.clone())
                .unwrap_or_else(|| DEFAULT_PROFILE.into()),
            no_default_lists: cli.catalog.no_default_lists,
        },
        network_db: cli.network_db,
        max_flows: cli
            .max_flows
            .or(keys.max_flows)
            .unwrap_or(DEFAULT_MAX_FLOWS),
        max_domains: cli
            .max_domains
            .or(keys.max_domains)
            .unwrap_or(DEFAULT_MAX_DOMAINS),
        domain_label: cli
            .domain_label
            .or(keys.domain_label)
            .unwrap_or(DomainLabelArg::Registrable),
        label_idle: cli.label_idle.or(label_idle).unwrap_or(DEFAULT_LABEL_IDLE),
        flow_log: cli.flow_log.or_else(|| keys.flow_log.clone()),
        flow_log_max_mib: cli
            .flow_log_max_mib
            .or(keys.flow_log_max_mib)
            .unwrap_or(crate::flow_log::DEFAULT_MAX_MIB),
        flow_log_keep: cli
            .flow_log_keep
            .or(keys.flow_log_keep)
            .unwrap_or(crate::flow_log::DEFAULT_KEEP),
        buffer_mib: cli
            .buffer_mib
            .or(keys.buffer_mib)
            .unwrap_or(DEFAULT_BUFFER_MIB),
        filter: cli.filter.or_else(|| keys.filter.clone()),
        leases: cli.leases.or_else(|| keys.leases.clone()),
        state: cli.state.path.or_else(|| keys.state.clone()),
        learn_for: cli
            .state
            .learn_for
            .or(learn_for)
            .unwrap_or(DEFAULT_LEARN_FOR),
        retain: cli.state.retain.or(retain).unwrap_or(DEFAULT_RETAIN),
        max_destinations: cli
            .state
            .max_destinations
            .or(keys.max_destinations)
            .unwrap_or(DEFAULT_MAX_DESTINATIONS),
        devices: keys.device.clone(),
        history,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// `run FLAGS` as the command line parses it.
    fn cli(flags: &[&str]) -> RunArgs {
        let args = ["tetherscope", "run"].iter().chain(flags);
        match Cli::try_parse_from(args).expect("flags parse").command {
            Command::Run(args) => args,
            other => panic!("not run: {other:?}"),
        }
    }

    /// A config file in /etc/tetherscope holding `text`.
    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("/etc/tetherscope/tetherscope.toml"), text)
            .expect("config parses")
    }

    type Field = fn(&Settings) -> String;

    /// Per key: the file's line, the flag giving the key's default value,
    /// the field, and what it holds with the file alone, with the flag (and
    /// the file), and with neither.
    type Case = (
        &'static str,
        Vec<&'static str>,
        Field,
        &'static str,
        &'static str,
        &'static str,
    );

    fn cases() -> Vec<Case> {
        vec![
            (
                "interface = \"wlan7\"",
                vec!["--interface", "wlan0"],
                |s| format!("{:?}", s.interface),
                "Some(\"wlan7\")",
                "Some(\"wlan0\")",
                "None",
            ),
            (
                "listen = \"127.0.0.2:9000\"",
                vec!["--listen", "127.0.0.1:9433"],
                |s| s.listen.to_string(),
                "127.0.0.2:9000",
                "127.0.0.1:9433",
                "127.0.0.1:9433",
            ),
            (
                "profile = \"stock-android\"",
                vec!["--profile", "calyxos"],
                |s| s.catalog.profile.clone(),
                "stock-android",
                "calyxos",
                "calyxos",
            ),
            (
                "max_flows = 1000",
                vec!["--max-flows", "262144"],
                |s| s.max_flows.to_string(),
                "1000",
                "262144",
                "262144",
            ),
            (
                "max_domains = 50",
                vec!["--max-domains", "500"],
                |s| s.max_domains.to_string(),
                "50",
                "500",
                "500",
            ),
            (
                "domain_label = \"fqdn\"",
                vec!["--domain-label", "registrable"],
                |s| format!("{:?}", s.domain_label),
                "Fqdn",
                "Registrable",
                "Registrable",
            ),
            (
                "label_idle = \"1w\"",
                vec!["--label-idle", "24h"],
                |s| s.label_idle.as_secs().to_string(),
                "604800",
                "86400",
                "86400",
            ),
            (
                "flow_log = \"/var/log/flows.jsonl\"",
                vec!["--flow-log", "-"],
                |s| format!("{:?}", s.flow_log),
                "Some(\"/var/log/flows.jsonl\")",
                "Some(\"-\")",
                "None",
            ),
            (
                "flow_log_max_mib = 1.5",
                vec!["--flow-log-max-mib", "100"],
                |s| s.flow_log_max_mib.to_string(),
                "1.5",
                "100",
                "100",
            ),
            (
                "flow_log_keep = 2",
                vec!["--flow-log-keep", "5"],
                |s| s.flow_log_keep.to_string(),
                "2",
                "5",
                "5",
            ),
            (
                "buffer_mib = 8",
                vec!["--buffer-mib", "32"],
                |s| s.buffer_mib.to_string(),
                "8",
                "32",
                "32",
            ),
            (
                "filter = \"udp\"",
                vec!["--filter", "tcp"],
                |s| format!("{:?}", s.filter),
                "Some(\"udp\")",
                "Some(\"tcp\")",
                "None",
            ),
            (
                "leases = \"/run/a.leases\"",
                vec!["--leases", "/run/b.leases"],
                |s| format!("{:?}", s.leases),
                "Some(\"/run/a.leases\")",
                "Some(\"/run/b.leases\")",
                "None",
            ),
            (
                "state = \"/var/lib/a.db\"",
                vec!["--state", "/var/lib/b.db"],
                |s| format!("{:?}", s.state),
                "Some(\"/var/lib/a.db\")",
                "Some(\"/var/lib/b.db\")",
                "None",
            ),
            (
                "learn_for = \"2w\"",
                vec!["--learn-for", "48h"],
                |s| s.learn_for.as_secs().to_string(),
                "1209600",
                "172800",
                "172800",
            ),
            (
                "retain = \"1d\"",
                vec!["--retain", "90d"],
                |s| s.retain.as_secs().to_string(),
                "86400",
                "7776000",
                "7776000",
            ),
            (
                "max_destinations = 10",
                vec!["--max-destinations", "10000"],
                |s| s.max_destinations.to_string(),
                "10",
                "10000",
                "10000",
            ),
            (
                "history_url = \"http://127.0.0.1:8123\"",
                vec!["--history-url", "http://127.0.0.2:8123"],
                |s| format!("{:?}", s.history.url),
                "Some(\"http://127.0.0.1:8123\")",
                "Some(\"http://127.0.0.2:8123\")",
                "None",
            ),
            (
                "history_table = \"db.t\"",
                vec!["--history-table", "tetherscope.flows"],
                |s| s.history.table.clone(),
                "db.t",
                "tetherscope.flows",
                "tetherscope.flows",
            ),
            (
                "history_user = \"a\"",
                vec!["--history-user", "b"],
                |s| format!("{:?}", s.history.user),
                "Some(\"a\")",
                "Some(\"b\")",
                "None",
            ),
            (
                "sensor = \"attic\"",
                vec!["--sensor", "cellar"],
                |s| format!("{:?}", s.history.sensor),
                "Some(\"attic\")",
                "Some(\"cellar\")",
                "None",
            ),
            (
                "history_spool = \"spool\"",
                vec!["--history-spool", "/var/spool/t"],
                |s| format!("{:?}", s.history.spool),
                "Some(\"/etc/tetherscope/spool\")",
                "Some(\"/var/spool/t\")",
                "None",
            ),
            (
                "history_spool_mib = 64",
                vec!["--history-spool-mib", "256"],
                |s| s.history.spool_mib.to_string(),
                "64",
                "256",
                "256",
            ),
            (
                "history_batch_rows = 100",
                vec!["--history-batch-rows", "10000"],
                |s| s.history.batch_rows.to_string(),
                "100",
                "10000",
                "10000",
            ),
            (
                "history_batch_secs = 0.5",
                vec!["--history-batch-secs", "2"],
                |s| s.history.batch_secs.to_string(),
                "0.5",
                "2",
                "2",
            ),
        ]
    }

    /// Each key: the file sets it; a flag wins over the file even when the
    /// flag's value is the default's (once the file won then, and the file
    /// could not set learn_for, retain nor max_destinations); with neither,
    /// the default.
    #[test]
    fn the_command_line_wins_then_the_file_then_the_default() {
        for (line, flag, field, from_file, from_flag, default) in cases() {
            assert_ne!(from_file, default, "{line}: the case cannot fail");
            let config = file(line);
            let merged = merge(Some(&config), cli(&[])).unwrap();
            assert_eq!(field(&merged), from_file, "{line} alone");
            let merged = merge(Some(&config), cli(&flag)).unwrap();
            assert_eq!(field(&merged), from_flag, "{line} with {flag:?}");
            let merged = merge(None, cli(&[])).unwrap();
            assert_eq!(field(&merged), default, "neither {line} nor {flag:?}");
            let merged = merge(None, cli(&flag)).unwrap();
            assert_eq!(field(&merged), from_flag, "{flag:?} alone");
        }
    }

    /// Every key of the file is in the table above (a key added without a
    /// case fails here: deploy/tetherscope.toml plus the three baseline keys
    /// and the two lists are every key `FileKeys` takes).
    #[test]
    fn every_key_has_a_case() {
        let all: String = cases()
            .iter()
            .map(|c| format!("{}\n", c.0))
            .chain(["history_password = \"secret\"\ncatalog = [\"a.toml\"]\n\
                 [[device]]\nname = \"x\"\n"
                .into()])
            .collect();
        let keys = file(&all).keys;
        assert!(!keys.device.is_empty());
        let debug = format!("{keys:?}");
        // The devices' own fields may be left out: only the file's keys count.
        let top = &debug[..debug.find("device:").unwrap_or(debug.len())];
        assert!(
            !top.contains(": None") && !top.contains(": []"),
            "a key without a case: {debug}"
        );
    }

    /// The password is the file's alone: no flag can put it on a command
    /// line another user can read.
    #[test]
    fn the_history_password_comes_from_the_file_only() {
        let config = file("history_password = \"secret\"");
        let merged = merge(Some(&config), cli(&[])).unwrap();
        assert_eq!(merged.history.password.as_deref(), Some("secret"));
        assert!(merge(None, cli(&[])).unwrap().history.password.is_none());
        let args = ["tetherscope", "run", "--history-password", "x"];
        assert!(Cli::try_parse_from(args).is_err());
    }

    #[test]
    fn catalogs_add_up_relative_to_the_file_and_devices_come_from_it() {
        let config = file(
            "catalog = [\"local.toml\", \"/abs/lists.toml\"]\n\
             [[device]]\nmac = \"da:a1:19:42:00:23\"\nprofile = \"mine\"\n",
        );
        let merged = merge(Some(&config), cli(&["--catalog", "cli.toml"])).unwrap();
        assert_eq!(
            merged.catalog.files,
            [
                PathBuf::from("cli.toml"),
                PathBuf::from("/etc/tetherscope/local.toml"),
                PathBuf::from("/abs/lists.toml"),
            ]
        );
        assert_eq!(merged.devices.len(), 1);
        assert_eq!(merged.devices[0].profile.as_deref(), Some("mine"));
        assert!(merge(None, cli(&[])).unwrap().devices.is_empty());
    }

    #[test]
    fn the_file_cannot_listen_off_loopback_but_the_command_line_can() {
        let config = file("listen = \"0.0.0.0:9433\"");
        let err = merge(Some(&config), cli(&[])).unwrap_err().0;
        assert!(
            err.starts_with("/etc/tetherscope/tetherscope.toml: ")
                && err.contains("not a loopback address")
                && err.contains("--listen 0.0.0.0:9433"),
            "{err}"
        );
        let merged = merge(Some(&config), cli(&["--listen", "0.0.0.0:9433"])).unwrap();
        assert_eq!(merged.listen.to_string(), "0.0.0.0:9433");
    }

    #[test]
    fn a_bad_duration_in_the_file_names_the_file_and_the_key() {
        for key in ["label_idle", "learn_for", "retain"] {
            let config = file(&format!("{key} = \"3 fortnights\""));
            let err = merge(Some(&config), cli(&[])).unwrap_err().0;
            assert!(
                err.starts_with(&format!("/etc/tetherscope/tetherscope.toml: {key}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn the_baseline_settings_follow_the_merge() {
        let merged = merge(
            Some(&file(
                "learn_for = \"0\"\nretain = \"1w\"\nmax_destinations = 0",
            )),
            cli(&[]),
        )
        .unwrap();
        let b = merged.baseline();
        assert_eq!(b.learn_for_ns, 0);
        assert_eq!(b.retain_ns, 7 * 86_400 * tetherscope_baseline::SECOND);
        // At least one destination per device, as before.
        assert_eq!(b.max_destinations, 1);
    }
}
