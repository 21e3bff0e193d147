//! The state store options shared by `read`, `run` (and what runs like it),
//! and opening the store with one clear error when it cannot be used.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use tetherscope_baseline::{
    Baseline, DnsAnswer, DnsAnswerRef, Persister, Settings, Store, StoreError, SECOND,
};
use tetherscope_exporter::novelty::BaselineHandle;

use crate::cli::parse_duration;
use crate::UsageError;

/// How often the writer commits a batch.
pub const BATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The batch interval: [`BATCH_INTERVAL`], or `TETHERSCOPE_STATE_BATCH_MS`
/// (tests make batches frequent to kill the writer in the middle of one).
fn batch_interval() -> Duration {
    std::env::var("TETHERSCOPE_STATE_BATCH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(BATCH_INTERVAL, |ms: u64| Duration::from_millis(ms.max(1)))
}

/// Per-device baseline options.
#[derive(Debug, Clone, Default, Args)]
pub struct StateArgs {
    /// The state store (SQLite): per-device baselines, triage, saved DNS
    /// answers. `run` defaults to $STATE_DIRECTORY/state.db under systemd,
    /// else $XDG_STATE_HOME/tetherscope/state.db (~/.local/state/...);
    /// `read` and `replay` keep no state without it.
    #[arg(long = "state", value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// How long each device learns from its first packet (packet time), its
    /// destinations entering the baseline silently; 0 = no learning
    /// [default: 48h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub learn_for: Option<Duration>,
    /// Forget destinations not seen for this long (packet time); 0 = never
    /// [default: 90d].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retain: Option<Duration>,
    /// Most destinations kept per device; the least recently seen go first
    /// [default: 10000].
    #[arg(long)]
    pub max_destinations: Option<usize>,
}

/// Learning time without `--learn-for`.
pub const DEFAULT_LEARN_FOR: Duration = Duration::from_secs(48 * 3600);
/// Retention without `--retain`.
pub const DEFAULT_RETAIN: Duration = Duration::from_secs(90 * 86_400);
/// Destinations per device without `--max-destinations`.
pub const DEFAULT_MAX_DESTINATIONS: usize = 10_000;

impl StateArgs {
    /// The baseline's settings, defaults filling what was left out.
    pub fn settings(&self) -> Settings {
        baseline_settings(
            self.learn_for.unwrap_or(DEFAULT_LEARN_FOR),
            self.retain.unwrap_or(DEFAULT_RETAIN),
            self.max_destinations.unwrap_or(DEFAULT_MAX_DESTINATIONS),
        )
    }
}

/// The baseline's settings from the three options.
pub fn baseline_settings(
    learn_for: Duration,
    retain: Duration,
    max_destinations: usize,
) -> Settings {
    Settings {
        learn_for_ns: learn_for.as_secs() * SECOND + u64::from(learn_for.subsec_nanos()),
        retain_ns: retain.as_secs() * SECOND,
        max_destinations: max_destinations.max(1),
        ..Settings::default()
    }
}

/// Where `run` keeps its state without `--state`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd's StateDirectory= (several are ':'-separated: the first).
        let dir = PathBuf::from(dir);
        let first = dir
            .to_str()
            .and_then(|s| s.split(':').next())
            .map_or(dir.clone(), PathBuf::from);
        return Some(first.join("state.db"));
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("tetherscope/state.db"))
}

/// Opens a store to write; its problems are the user's to fix (exit 64).
pub fn open_store(path: &Path) -> anyhow::Result<Store> {
    Store::open(path).map_err(|e| UsageError(e.to_string()).into())
}

/// A loaded baseline and the writer persisting it.
pub struct Running {
    /// Shared with the exporter.
    pub handle: BaselineHandle,
    /// The writer thread.
    pub persister: Persister,
    /// DNS answers saved by the last run, for the pipeline's cache.
    pub saved_dns: Vec<DnsAnswer>,
}

impl Running {
    /// Stops the writer and writes what is left with the pipeline's DNS
    /// answers still valid at `now` (replacing those saved before), in one
    /// transaction; an error here is worth a non-zero exit.
    pub fn finish(self, pipeline: &tetherscope_flow::Pipeline, now: u64) -> anyhow::Result<()> {
        let valid = pipeline.dns_answers(now);
        let answers: Vec<DnsAnswerRef<'_>> = valid
            .iter()
            .map(|a| DnsAnswerRef {
                client: a.client,
                addresses: &a.addresses,
                query: &a.resolution.query,
                cname_chain: &a.resolution.cname_chain,
                expires_ns: a.expires,
            })
            .collect();
        self.persister
            .finish(&answers)
            .map(drop)
            .map_err(|e| anyhow::anyhow!("state not saved: {e}"))
    }
}

/// Loads the baseline and the saved DNS answers from `path` and starts its
/// writer, on one connection (opening checks the file each time).
pub fn start(path: &Path, settings: Settings) -> anyhow::Result<Running> {
    let store = open_store(path)?;
    let baseline = load(&store, settings)?;
    let saved_dns = store
        .dns_answers(0)
        .map_err(|e| UsageError(e.to_string()))?;
    let baseline = Arc::new(Mutex::new(baseline));
    let persister = Persister::spawn(store, baseline.clone(), batch_interval())?;
    Ok(Running {
        handle: BaselineHandle {
            baseline,
            path: Some(path.to_owned()),
            profiles: Arc::default(),
        },
        persister,
        saved_dns,
    })
}

/// The baseline in the store, with requests queued while nobody held it
/// applied.
pub fn load(store: &Store, settings: Settings) -> anyhow::Result<Baseline> {
    let mut baseline = store
        .load(settings)
        .map_err(|e| UsageError(e.to_string()))?;
    for r in store
        .pending_requests()
        .map_err(|e| UsageError(e.to_string()))?
    {
        let _ = tetherscope_baseline::apply_request(&mut baseline, &r);
    }
    Ok(baseline)
}

/// `run` without `--state`: the default store, unless it cannot even be
/// created (no writable home): then a warning and a baseline in memory.
/// A file there that must not be touched is still an error.
pub fn start_default(settings: Settings) -> anyhow::Result<Option<Running>> {
    let Some(path) = default_path() else {
        tracing::warn!("no state directory (no HOME); the baseline lives in memory only");
        return Ok(None);
    };
    owner_only_default_dir(&path);
    match Store::open(&path) {
        Ok(store) => {
            drop(store);
            start(&path, settings).map(Some)
        }
        Err(e @ (StoreError::Other { .. } | StoreError::ReadOnly(_))) => {
            tracing::warn!("{e}; the baseline lives in memory only (give --state PATH)");
            Ok(None)
        }
        Err(e) => Err(UsageError(e.to_string()).into()),
    }
}

/// The default store's own directory (`.../tetherscope`, outside systemd,
/// whose `StateDirectoryMode=` sets it) made 0700 if an older version left
/// it open to others; best effort, the store's checks follow.
fn owner_only_default_dir(store: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if std::env::var_os("STATE_DIRECTORY").is_some() {
        return;
    }
    let Some(dir) = store.parent() else { return };
    let Ok(m) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if m.is_dir() && m.permissions().mode() & 0o077 != 0 {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
}

/// A baseline without a store (the default store was unusable).
pub fn in_memory(settings: Settings) -> BaselineHandle {
    BaselineHandle::new(Baseline::in_memory(settings), None)
}

/// Writes the API token next to the store, readable by its owner only.
pub fn write_token(store: &Path, token: &str) -> Option<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = store.parent()?.join("token");
    let _ = std::fs::remove_file(&path);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(token.as_bytes()));
    match written {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!("cannot write the API token to {}: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_dns_answers_come_back_as_the_cache_held_them() {
        let answer = |client: &str, addresses: &[&str], query: &str, expires_s: u64| DnsAnswer {
            client: client.into(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            query: query.into(),
            cname_chain: vec!["edge.example.net".into()],
            expires_ns: expires_s * SECOND,
        };
        let saved = vec![
            answer(
                "10.42.0.23",
                &["192.0.2.1", "2001:db8::1"],
                "a.example",
                2_000,
            ),
            answer("10.42.0.24", &["192.0.2.1"], "a.example", 2_000),
            // Unparsable text is skipped, the rest of its row kept.
            answer(
                "10.42.0.23",
                &["192.0.2.9", "not an address"],
                "b.example",
                1_000,
            ),
            answer("nobody", &["192.0.2.7"], "c.example", 1_000),
        ];
        let mut pipeline = tetherscope_flow::Pipeline::new(&Default::default());
        assert_eq!(restore_dns(saved, &mut pipeline), 4);
        let rows: Vec<(String, Vec<String>, String, usize, u64)> = pipeline
            .dns_answers(0)
            .into_iter()
            .map(|a| {
                (
                    a.client.to_string(),
                    a.addresses.iter().map(|x| x.to_string()).collect(),
                    a.resolution.query.to_string(),
                    a.resolution.cname_chain.len(),
                    a.expires / SECOND,
                )
            })
            .collect();
        let row = |c: &str, a: &[&str], q: &str, e| {
            (
                c.to_string(),
                a.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                q.to_string(),
                1,
                e,
            )
        };
        assert_eq!(
            rows,
            [
                row(
                    "10.42.0.23",
                    &["192.0.2.1", "2001:db8::1"],
                    "a.example",
                    2_000
                ),
                row("10.42.0.24", &["192.0.2.1"], "a.example", 2_000),
                row("10.42.0.23", &["192.0.2.9"], "b.example", 1_000),
            ]
        );
    }
}

/// Puts DNS answers saved in the store back into the pipeline's cache;
/// returns how many addresses.
pub fn restore_dns(answers: Vec<DnsAnswer>, pipeline: &mut tetherscope_flow::Pipeline) -> usize {
    let mut restored = 0;
    for a in answers {
        let Ok(client) = a.client.parse() else {
            continue;
        };
        // One resolution for all the addresses of a response, as the
        // cache held it.
        let resolution = Arc::new(tetherscope_flow::dns_cache::Resolution {
            query: a.query.into(),
            cname_chain: a.cname_chain.into_iter().map(Into::into).collect(),
        });
        for address in a.addresses.iter().filter_map(|t| t.parse().ok()) {
            pipeline.restore_dns_answer(client, address, resolution.clone(), a.expires_ns);
            restored += 1;
        }
    }
    restored
}

/// A `[[device]]` of the config file: a device by MAC or DHCP host name,
/// with a display label and a profile of its own.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// `da:a1:19:42:00:23`.
    pub mac: Option<String>,
    /// The DHCP host name it uses.
    pub name: Option<String>,
    /// How it is shown.
    pub label: Option<String>,
    /// The profile its flows are judged by.
    pub profile: Option<String>,
}

/// Applies the config file's devices: labels (also names for triage) and
/// profiles. An unknown MAC syntax or profile is a usage error.
pub fn configure_devices(
    handle: &mut BaselineHandle,
    devices: &[DeviceEntry],
    catalog: &tetherscope_classify::Catalog,
) -> anyhow::Result<()> {
    let mut profiles = tetherscope_exporter::novelty::DeviceProfiles::default();
    let mut baseline = handle.lock();
    for d in devices {
        let profile =
            match &d.profile {
                None => None,
                Some(p) => Some(catalog.named_profile(p).cloned().ok_or_else(|| {
                    UsageError(format!("[[device]] profile {p:?}: no such profile"))
                })?),
            };
        match (&d.mac, &d.name) {
            (Some(mac), None) => {
                let mac = tetherscope_baseline::parse_mac(mac).ok_or_else(|| {
                    UsageError(format!("[[device]] mac {mac:?}: not a MAC address"))
                })?;
                baseline.configure_device(mac, None, d.label.as_deref());
                if let Some(p) = profile {
                    profiles.by_mac.insert(mac, p);
                }
            }
            (None, Some(name)) => {
                if let Some(label) = &d.label {
                    baseline.configure_host_name(name, label);
                }
                if let Some(p) = profile {
                    profiles.by_host.insert(name.clone(), p);
                }
            }
            _ => {
                return Err(UsageError(
                    "[[device]] needs exactly one of mac = \"..\" or name = \"..\"".into(),
                )
                .into())
            }
        }
    }
    drop(baseline);
    handle.profiles = Arc::new(profiles);
    Ok(())
}

/// Gives the device table the DHCP names the baseline says each device
/// holds, before any packet: one rule for who holds a name (the device that
/// claimed it first, across restarts), not one per run.
pub fn remember_holders(handle: &BaselineHandle, devices: &tetherscope_flow::DeviceTable) {
    for (name, mac) in handle.lock().name_holders() {
        devices.remember_holder(mac, &name);
    }
}

/// The baseline of `run` and `replay`, attached to their exporter.
pub struct Live {
    state: Option<Running>,
    token_file: Option<PathBuf>,
}

/// Without `--state`: the user's default store, or a baseline in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutState {
    /// `run`: the default store is the user's own (see [`default_path`]).
    DefaultStore,
    /// `replay`: a capture from anywhere must not rewrite the user's
    /// baseline, so nothing is kept.
    InMemory,
}

/// A store opened for `run` or `replay`, its baseline not yet given to the
/// exporter.
pub struct Opened {
    state: Option<Running>,
    handle: BaselineHandle,
}

/// Opens the store the settings name (or, as `without` says, the default
/// one or none) and puts its saved DNS answers back into the pipeline.
pub fn open(
    settings: &crate::settings::Settings,
    without: WithoutState,
    pipeline: &mut tetherscope_flow::Pipeline,
) -> anyhow::Result<Opened> {
    let baseline = settings.baseline();
    let mut state = match (&settings.state, without) {
        (Some(path), _) => Some(start(path, baseline)?),
        (None, WithoutState::DefaultStore) => start_default(baseline)?,
        (None, WithoutState::InMemory) => None,
    };
    if let Some(state) = &mut state {
        restore_dns(std::mem::take(&mut state.saved_dns), pipeline);
    }
    let handle = state
        .as_ref()
        .map_or_else(|| in_memory(baseline), |s| s.handle.clone());
    Ok(Opened { state, handle })
}

impl Opened {
    /// Configures the config file's devices, gives the exporter the
    /// baseline and writes the API token next to the store.
    pub fn attach(
        mut self,
        devices: &[DeviceEntry],
        shared: &mut Arc<tetherscope_exporter::Shared>,
    ) -> anyhow::Result<Live> {
        configure_devices(&mut self.handle, devices, &shared.catalog)?;
        remember_holders(&self.handle, &shared.devices);
        let store_path = self.handle.path.clone();
        Arc::get_mut(shared)
            .ok_or_else(|| anyhow::anyhow!("the exporter was shared before its baseline was set"))?
            .set_baseline(self.handle);
        let token_file = store_path
            .as_deref()
            .and_then(|p| write_token(p, shared.token()));
        if let Some(path) = &store_path {
            eprintln!("tetherscope: baseline in {}", path.display());
        }
        Ok(Live {
            state: self.state,
            token_file,
        })
    }
}

impl Live {
    /// Writes what is left, saves the pipeline's DNS answers still valid at
    /// `now`, and removes the token file.
    pub fn finish(self, pipeline: &tetherscope_flow::Pipeline, now: u64) -> anyhow::Result<()> {
        if let Some(p) = &self.token_file {
            let _ = std::fs::remove_file(p);
        }
        match self.state {
            Some(state) => state.finish(pipeline, now),
            None => Ok(()),
        }
    }
}
