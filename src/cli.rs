//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::state::StateArgs;

/// Passive monitor that names what a tethered phone talks to, and why.
#[derive(Debug, Parser)]
#[command(name = "tetherscope", version, about)]
pub struct Cli {
    /// More logging (-v info, -vv debug); TETHERSCOPE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a capture file (pcap, pcapng, optionally gzip) and list its flows.
    Read(ReadArgs),
    /// Write a self-contained HTML report of a capture file.
    Report(ReportArgs),
    /// Watch the hotspot interface live and serve metrics to Prometheus.
    Run(RunArgs),
    /// Feed a capture file through the live monitor (exporter, API, flow log)
    /// at the capture's own clock, then keep serving until SIGINT/SIGTERM.
    Replay(ReplayArgs),
    /// Run the live monitor on a simulated hotspot (needs root; no phone needed).
    Demo(DemoArgs),
    /// Inspect the domain catalog.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// List and triage each device's destinations in the state store.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Print the page's login address (it allows triage from the browser),
    /// read from the running monitor's token file.
    Open(OpenArgs),
}

/// Arguments of `open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The running monitor's store (the token file is beside it) [default:
    /// this user's default store, else the service's /var/lib/tetherscope].
    #[arg(long = "state", value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Where the monitor listens.
    #[arg(long, default_value = "127.0.0.1:9433")]
    pub listen: std::net::SocketAddr,
    /// Also open it in the desktop's browser with xdg-open, through a page
    /// only this user can read (never the address on a command line).
    #[arg(long)]
    pub browser: bool,
}

/// Which store and device a `baseline` subcommand works on.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The state store [default: the one `run` uses].
    #[arg(long = "state", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

/// `baseline` subcommands.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// List destinations per device (with --clients: TLS clients).
    List {
        /// Only this device (MAC, DHCP host name or configured name).
        #[arg(long)]
        device: Option<String>,
        /// List the TLS clients (JA4 fingerprints) per device instead, with
        /// the destinations each contacted.
        #[arg(long)]
        clients: bool,
        /// Output format (default: table on a terminal, json otherwise).
        #[arg(long, value_enum)]
        format: Option<ListFormat>,
        /// The monitor's config file: its `[[device]]` profiles and its
        /// `profile` say which profile judges each device.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The profile the monitor runs with (as `run --profile`) [default:
        /// the config file's, else calyxos].
        #[arg(long)]
        profile: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The destination is fine for this device: it never alerts again.
    Accept(TriageArgs),
    /// The destination is bad for this device: every new flow to it alerts.
    Flag(TriageArgs),
    /// Forget the destination: its next flow is judged afresh.
    Forget(TriageArgs),
    /// Write every destination (or one device's) as JSON to stdout.
    Export {
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Merge destinations exported elsewhere (JSON file, "-" for stdin).
    Import {
        /// The exported JSON.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// A destination of a device, or a TLS client of one device or of all.
#[derive(Debug, Clone, Args)]
pub struct TriageArgs {
    /// The destination (registrable domain or server address).
    #[arg(required_unless_present = "client")]
    pub destination: Option<String>,
    /// A TLS client fingerprint (JA4) instead of a destination: new
    /// software on the device (every device that used it, without
    /// --device).
    #[arg(long, value_name = "JA4", conflicts_with = "destination")]
    pub client: Option<String>,
    /// The device: MAC, DHCP host name or configured name (required for a
    /// destination).
    #[arg(long, required_unless_present = "client")]
    pub device: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Output formats of `baseline list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
}

/// Catalog and profile options shared by commands that classify.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// A catalog file (TOML) adding or overriding rules, profiles and lists; repeatable.
    #[arg(long = "catalog", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The profile that decides which flows are expected.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    pub profile: String,
    /// Do not load the tracker and advertising lists the system provides
    /// (EasyPrivacy and EasyList from the uBlock Origin package).
    #[arg(long)]
    pub no_default_lists: bool,
}

/// The profile flows are judged by unless a flag or the config file names
/// another.
pub const DEFAULT_PROFILE: &str = "calyxos";

/// Catalog options of `run` and `replay`: as [`CatalogArgs`], but a profile
/// left out here may come from the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct MonitorCatalogArgs {
    /// A catalog file (TOML) adding or overriding rules, profiles and lists;
    /// repeatable (added to the config file's).
    #[arg(long = "catalog", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The profile that decides which flows are expected [default: calyxos].
    #[arg(long)]
    pub profile: Option<String>,
    /// Do not load the tracker and advertising lists the system provides
    /// (EasyPrivacy and EasyList from the uBlock Origin package).
    #[arg(long)]
    pub no_default_lists: bool,
}

/// The offline tables naming each server address's network and country.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkDbArgs {
    /// An ASN table to use instead of the installed one: a MaxMind-format
    /// .mmdb (GeoLite2-ASN, DB-IP lite, IPinfo lite) or an ip-location-db CSV.
    #[arg(long, value_name = "FILE")]
    pub asn_db: Option<PathBuf>,
    /// A country .mmdb to use instead of the installed one (GeoLite2-Country,
    /// DB-IP lite, IPinfo lite).
    #[arg(long, value_name = "FILE")]
    pub country_db: Option<PathBuf>,
    /// Do not use the installed ip-location-db snapshot (see docs/catalog.md).
    #[arg(long)]
    pub no_default_network_db: bool,
}

/// `catalog` subcommands.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// List purposes, rules and profiles.
    List(CatalogArgs),
    /// Say which rule a name falls under, and why.
    Explain {
        /// A domain name.
        name: String,
        /// Server port, for rules constrained by port.
        #[arg(long)]
        port: Option<u16>,
        /// HTTP path, for rules constrained by path.
        #[arg(long)]
        path: Option<String>,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// Check catalog files; exit 64 with file:line: problem when one is bad.
    Check {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Output formats of `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns (default on a terminal).
    Table,
    /// One JSON object per flow (default when piped).
    Jsonl,
}

/// Arguments of `read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The capture file.
    pub capture: PathBuf,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Most flows tracked at once; the least recently active are evicted.
    #[arg(long, default_value_t = 262_144)]
    pub max_flows: usize,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub network_db: NetworkDbArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// No summary or progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The capture file.
    pub capture: PathBuf,
    /// Where to write the report [default: the capture's name with .html].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Most flows tracked at once; the least recently active are evicted.
    #[arg(long, default_value_t = 262_144)]
    pub max_flows: usize,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub network_db: NetworkDbArgs,
    /// No progress or summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Arguments of `run`. Options the config file may also set are `Option`s
/// here: left out, the file's value or else the default applies (see
/// [`crate::settings::merge`]), so a flag given with the default's value
/// still wins over the file.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Interface to watch (default: the device of NetworkManager's active shared connection, else the one holding 10.42.0.1).
    #[arg(long, short)]
    pub interface: Option<String>,
    /// Where the exporter listens [default: 127.0.0.1:9433]. Anything but
    /// loopback exposes what your phone does to whoever can reach that
    /// address, so only this option (not the config file) can choose one.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// A TOML config file (keys: interface, listen, catalog, profile,
    /// max_flows, max_domains, domain_label, label_idle, flow_log,
    /// flow_log_max_mib, flow_log_keep, buffer_mib, filter, leases, state,
    /// learn_for, retain, max_destinations, history_url, history_table,
    /// history_user, history_password, sensor, history_spool,
    /// history_spool_mib, history_batch_rows, history_batch_secs,
    /// [[device]]); options given here win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub catalog: MonitorCatalogArgs,
    #[command(flatten)]
    pub network_db: NetworkDbArgs,
    /// Most flows tracked at once [default: 262144].
    #[arg(long)]
    pub max_flows: Option<usize>,
    /// Most distinct `domain` label values (besides "unnamed" and "other");
    /// past it, a new domain is "other" unless an idle value gives its place
    /// back or it is unexpected and takes the place of the least recently
    /// active expected one [default: 500].
    #[arg(long)]
    pub max_domains: Option<usize>,
    /// What `domain` holds: the registrable domain (izatcloud.net) or the
    /// full name (xtrapath3.izatcloud.net) [default: registrable].
    #[arg(long, value_enum)]
    pub domain_label: Option<DomainLabelArg>,
    /// Packet time without traffic after which a `domain` value gives its
    /// place back (its totals count under "other" from then on): 90s, 30m,
    /// 24h, 7d, 2w [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub label_idle: Option<std::time::Duration>,
    /// Append one JSON line per finished flow to FILE ("-" for stdout).
    #[arg(long, value_name = "FILE")]
    pub flow_log: Option<PathBuf>,
    /// Rotate the flow log file (FILE → FILE.1 → …) before it passes this
    /// size, in MiB (fractions allowed; 0: never) [default: 100].
    #[arg(long, value_name = "MIB")]
    pub flow_log_max_mib: Option<f64>,
    /// Rotated flow log files kept (FILE.1 … FILE.N); older ones are
    /// removed [default: 5].
    #[arg(long, value_name = "N")]
    pub flow_log_keep: Option<u32>,
    /// Send every finished flow record to ClickHouse's HTTP interface at
    /// this address (http://HOST:PORT; docs/flow-history.md). The password,
    /// if any, comes from the config file's `history_password` or
    /// TETHERSCOPE_HISTORY_PASSWORD, never the command line.
    #[arg(long, value_name = "URL")]
    pub history_url: Option<String>,
    /// The table flow records go to [default: tetherscope.flows].
    #[arg(long, value_name = "DB.TABLE")]
    pub history_table: Option<String>,
    /// ClickHouse user of the flow history.
    #[arg(long, value_name = "USER")]
    pub history_user: Option<String>,
    /// This sensor's name on every flow history row (the `sensor` of the
    /// Prometheus agent) [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Where flow history batches wait for ClickHouse [default:
    /// history-spool beside the state store].
    #[arg(long, value_name = "DIR")]
    pub history_spool: Option<PathBuf>,
    /// Largest flow history spool, MiB; past it the oldest batches are
    /// dropped and counted [default: 256].
    #[arg(long, value_name = "MIB")]
    pub history_spool_mib: Option<u64>,
    /// Flow records that close a flow history batch [default: 10000].
    #[arg(long, value_name = "N")]
    pub history_batch_rows: Option<usize>,
    /// Longest a flow record waits before its batch is spooled and sent,
    /// seconds [default: 2].
    #[arg(long, value_name = "SECS")]
    pub history_batch_secs: Option<f64>,
    /// Kernel capture buffer, MiB [default: 32].
    #[arg(long)]
    pub buffer_mib: Option<u32>,
    /// BPF filter expression.
    #[arg(long)]
    pub filter: Option<String>,
    /// dnsmasq lease file naming devices (default: NetworkManager's for the interface).
    #[arg(long)]
    pub leases: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture file (pcap, pcapng, optionally gzip).
    pub capture: PathBuf,
    /// Playback speed in capture time per wall time: 1 = real time, 3600 =
    /// an hour a second. Default: as fast as it can be read.
    #[arg(long, value_parser = parse_speed)]
    pub speed: Option<f64>,
    /// The same options as `run` (`--interface`, `--buffer-mib` and `--filter`
    /// have no effect on a file).
    #[command(flatten)]
    pub monitor: RunArgs,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive speed (1 = real time)")),
    }
}

/// What the `domain` label holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainLabelArg {
    /// The registrable domain (eTLD+1).
    Registrable,
    /// The full name.
    Fqdn,
}

/// Parses a duration: a whole number and a unit, `s`, `m`, `h`, `d` or `w`
/// (`90s`, `30m`, `24h`, `7d`, `2w`; a bare number is seconds). The one
/// parser of every duration flag and config key.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 90s, 30m, 24h, 7d or 2w)"))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use s, m, h, d or w)"
            ))
        }
    };
    n.checked_mul(unit_secs)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Rounds of phone traffic before the demo ends by itself.
    #[arg(long, default_value_t = 60)]
    pub rounds: u32,
    /// Seconds between rounds.
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
    /// The host's loopback port for the page and metrics (0: any free one;
    /// a free one is also taken when this one is busy).
    #[arg(long, default_value_t = 9433)]
    pub port: u16,
    /// Suffix of the simulated hotspot's namespace names (ts<ID>-laptop, ...),
    /// to run several demos at once.
    #[arg(long, hide = true)]
    pub sim_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_take_every_unit() {
        for (text, secs) in [
            ("0", 0),
            ("15", 15),
            ("15s", 15),
            ("30m", 30 * 60),
            ("48h", 48 * 3600),
            ("90d", 90 * 86_400),
            ("2w", 14 * 86_400),
            (" 1w ", 7 * 86_400),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for bad in ["", "h", "3x", "1.5h", "-1s", "1 h", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// Every duration flag accepts the same units: `--label-idle` once
    /// refused weeks that `--learn-for` took.
    #[test]
    fn every_duration_flag_takes_weeks() {
        let week = Duration::from_secs(7 * 86_400);
        let cli = Cli::try_parse_from([
            "tetherscope",
            "run",
            "--label-idle",
            "1w",
            "--learn-for",
            "1w",
            "--retain",
            "1w",
        ])
        .expect("weeks are a duration");
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.label_idle, Some(week));
        assert_eq!(args.state.learn_for, Some(week));
        assert_eq!(args.state.retain, Some(week));
        let cli = Cli::try_parse_from(["tetherscope", "replay", "x.pcap", "--label-idle", "1w"])
            .expect("replay takes the same units");
        let Command::Replay(args) = cli.command else {
            panic!("not replay")
        };
        assert_eq!(args.monitor.label_idle, Some(week));
    }
}
