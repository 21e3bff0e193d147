//! Which client software a JA4 fingerprint belongs to, from a table of
//! fingerprints measured here (`data/ja4.toml`, written by
//! `scripts/measure-ja4.sh` from the TLS clients Debian installs, each with
//! the program and version it was measured from).
//!
//! A fingerprint the table does not hold is shown as itself: a label is
//! never guessed from a resemblance. Android stacks get a label only where
//! a public source documents their fingerprint; none is listed yet.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

const TABLE: &str = include_str!("../data/ja4.toml");

/// One measured client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Client {
    /// Its JA4 fingerprint.
    pub ja4: String,
    /// The program (or library) that sent the ClientHello.
    pub program: String,
    /// The version it was measured from.
    pub version: String,
}

#[derive(Deserialize)]
struct TableToml {
    #[serde(default)]
    client: Vec<Client>,
}

/// Fingerprint → clients measured with it (several programs can share one
/// TLS library, hence one fingerprint).
#[derive(Debug, Default)]
pub struct ClientLabels {
    by_ja4: HashMap<String, Vec<Client>>,
}

/// A table that failed to load.
#[derive(Debug, thiserror::Error)]
#[error("JA4 client table: {0}")]
pub struct TableError(String);

impl ClientLabels {
    /// Reads a table in the `data/ja4.toml` format.
    pub fn parse(text: &str) -> Result<Self, TableError> {
        let table: TableToml = toml::from_str(text).map_err(|e| TableError(e.to_string()))?;
        let mut by_ja4: HashMap<String, Vec<Client>> = HashMap::new();
        for c in table.client {
            if !looks_like_ja4(&c.ja4) {
                return Err(TableError(format!("not a JA4 fingerprint: {:?}", c.ja4)));
            }
            by_ja4.entry(c.ja4.clone()).or_default().push(c);
        }
        Ok(ClientLabels { by_ja4 })
    }

    /// The table built into the binary.
    pub fn builtin() -> &'static ClientLabels {
        static LABELS: OnceLock<ClientLabels> = OnceLock::new();
        // The built-in table is checked by this crate's tests; should it
        // ever fail to load, fingerprints are shown unlabelled.
        LABELS.get_or_init(|| ClientLabels::parse(TABLE).unwrap_or_default())
    }

    /// Number of fingerprints with a label.
    pub fn len(&self) -> usize {
        self.by_ja4.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_ja4.is_empty()
    }

    /// The clients measured with `ja4`, if any.
    pub fn clients(&self, ja4: &str) -> &[Client] {
        self.by_ja4.get(ja4).map(Vec::as_slice).unwrap_or_default()
    }

    /// What to show for a fingerprint: `program version` (several joined
    /// by ` / `) when measured, the fingerprint itself otherwise.
    pub fn label(&self, ja4: &str) -> String {
        let clients = self.clients(ja4);
        if clients.is_empty() {
            return ja4.to_owned();
        }
        let names: Vec<String> = clients
            .iter()
            .map(|c| format!("{} {}", c.program, c.version))
            .collect();
        names.join(" / ")
    }
}

/// `a_b_c` with a 10-character `a` and 12-hex-digit `b` and `c`.
fn looks_like_ja4(s: &str) -> bool {
    let b = s.as_bytes();
    let hex = |p: &[u8]| {
        p.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    b.len() == 36 && b[10] == b'_' && b[23] == b'_' && hex(&b[11..23]) && hex(&b[24..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_loads_and_every_entry_names_program_and_version() {
        let t = ClientLabels::parse(TABLE).expect("data/ja4.toml loads");
        assert!(!t.is_empty());
        for clients in t.by_ja4.values() {
            for c in clients {
                assert!(!c.program.is_empty() && !c.version.is_empty(), "{c:?}");
            }
        }
        assert_eq!(ClientLabels::builtin().len(), t.len());
    }

    #[test]
    fn an_unlabelled_fingerprint_is_shown_as_itself() {
        let t = ClientLabels::parse(
            "[[client]]\nja4 = \"t13d1516h2_8daaf6152771_e5627efa2ab1\"\nprogram = \"x\"\nversion = \"1\"\n\
             [[client]]\nja4 = \"t13d1516h2_8daaf6152771_e5627efa2ab1\"\nprogram = \"y\"\nversion = \"2\"\n",
        )
        .unwrap();
        assert_eq!(t.label("t13d1516h2_8daaf6152771_e5627efa2ab1"), "x 1 / y 2");
        // One character off is another client, not a near miss.
        assert_eq!(
            t.label("t13d1516h2_8daaf6152771_e5627efa2ab2"),
            "t13d1516h2_8daaf6152771_e5627efa2ab2"
        );
    }

    #[test]
    fn a_malformed_fingerprint_is_refused() {
        let bad = "[[client]]\nja4 = \"<script>\"\nprogram = \"x\"\nversion = \"1\"\n";
        assert!(ClientLabels::parse(bad).is_err());
    }
}
