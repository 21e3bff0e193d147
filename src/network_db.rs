//! Loading the offline network tables (AS number, organisation and country
//! of a server address) for the commands that look flows up.

use std::sync::Arc;

use tetherscope_netinfo::{Config, NetInfo};

use crate::cli::NetworkDbArgs;
use crate::UsageError;

/// The installed snapshot and the user's files, as the options ask. A named
/// file that is missing or damaged (or a damaged installed one) is a usage
/// error: one line, exit 64. Nothing installed is not an error.
pub fn load(args: &NetworkDbArgs) -> anyhow::Result<Arc<NetInfo>> {
    let mut config = if args.no_default_network_db {
        Config::default()
    } else {
        Config::standard()
    };
    config.asn_db.clone_from(&args.asn_db);
    config.country_db.clone_from(&args.country_db);
    // The compiled table is kept for the user's own files too.
    config.cache_dir = tetherscope_netinfo::default_cache_dir();
    let info = NetInfo::load(&config).map_err(|e| UsageError(format!("network table {e}")))?;
    if info.is_compiled() {
        tracing::debug!("network tables read from their compiled file");
    }
    for source in info.sources() {
        tracing::info!(
            kind = ?source.kind,
            snapshot = source.snapshot.as_deref().unwrap_or("undated"),
            "network table loaded from {}",
            source.path.display()
        );
    }
    Ok(Arc::new(info))
}
