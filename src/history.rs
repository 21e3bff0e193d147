//! Starts the flow history sink (crates/history) from `run`'s and
//! `replay`'s options, and hands its counters to the exporter.

use std::path::PathBuf;
use std::time::Duration;

use tetherscope_exporter::Shared;

use crate::settings::Settings;
use crate::UsageError;

/// How long the end of `run` or `replay` goes on sending the spool.
const FINISH_GRACE: Duration = Duration::from_secs(10);

/// The sink, when `--history-url` (or `history_url`) asks for one.
pub fn start(
    settings: &Settings,
    shared: &Shared,
) -> anyhow::Result<Option<tetherscope_history::Sink>> {
    let args = &settings.history;
    let Some(url) = args.url.clone() else {
        return Ok(None);
    };
    let bad = |e: String| UsageError(e);
    if !args.batch_secs.is_finite() || !(0.05..=3600.0).contains(&args.batch_secs) {
        return Err(bad(format!(
            "history batch delay {} s: give 0.05 to 3600 seconds",
            args.batch_secs
        ))
        .into());
    }
    let sensor = match &args.sensor {
        Some(s) => s.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host name to use as the sensor name: give --sensor".into()))?,
    };
    let spool_dir = match &args.spool {
        Some(d) => d.clone(),
        None => settings
            .state
            .clone()
            .or_else(crate::state::default_path)
            .and_then(|p| p.parent().map(|d| d.join("history-spool")))
            .unwrap_or_else(|| PathBuf::from("history-spool")),
    };
    let password = args
        .password
        .clone()
        .or_else(|| std::env::var("TETHERSCOPE_HISTORY_PASSWORD").ok())
        .unwrap_or_default();
    let config = tetherscope_history::Config {
        target: tetherscope_history::Target {
            url,
            table: args.table.clone(),
            user: args.user.clone().unwrap_or_default(),
            password,
        },
        sensor,
        spool_dir,
        spool_max_bytes: args.spool_mib.saturating_mul(1 << 20),
        batch_rows: args.batch_rows,
        batch_delay: Duration::from_secs_f64(args.batch_secs),
        finish_grace: FINISH_GRACE,
    };
    let sink = tetherscope_history::Sink::start(config).map_err(|e| bad(e.to_string()))?;
    let _ = shared.history.set(sink.stats());
    Ok(Some(sink))
}
