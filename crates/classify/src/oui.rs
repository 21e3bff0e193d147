//! The vendor of a network card from the IEEE registration authority's
//! public registry of MAC address blocks, as Debian's `ieee-data` package
//! ships it (`/usr/share/ieee-data`: `oui.csv` for MA-L 24-bit blocks,
//! `mam.csv` for MA-M 28-bit, `oui36.csv` for MA-S 36-bit and `iab.csv`
//! for the older 36-bit IAB blocks). Read at run time, never embedded.
//!
//! A locally administered MAC (the one Android, iOS and Windows randomise
//! per network) has no registered vendor, and none is given for it.
//!
//! Bounded: at most [`MAX_ENTRIES`] blocks, organisation names of at most
//! [`MAX_NAME`] characters without control characters, each file at most
//! [`crate::input::MAX_INPUT_BYTES`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Where Debian's `ieee-data` puts the registry.
pub const DEFAULT_DIR: &str = "/usr/share/ieee-data";
/// The registry files read, most specific block size first is not needed:
/// lookups try 36, 28 then 24 bits.
pub const FILES: [&str; 4] = ["oui.csv", "mam.csv", "oui36.csv", "iab.csv"];
/// Most blocks kept (the 2022 registry has about 46,600).
pub const MAX_ENTRIES: usize = 200_000;
/// Longest organisation name kept, in characters.
pub const MAX_NAME: usize = 64;

/// Block sizes of the registry, in bits of the address.
const BITS: [u32; 3] = [36, 28, 24];

/// MAC address blocks → organisation names.
#[derive(Debug, Default)]
pub struct Registry {
    /// Key: bits << 40 | the address's top `bits` bits.
    blocks: HashMap<u64, Arc<str>>,
}

/// Whether `mac` is locally administered (randomised, or set by hand):
/// bit 1 of the first octet (IEEE 802, "U/L bit").
pub fn is_local(mac: &[u8; 6]) -> bool {
    mac[0] & 0x02 != 0
}

fn key(bits: u32, prefix: u64) -> u64 {
    u64::from(bits) << 40 | prefix
}

fn mac_bits(mac: &[u8; 6]) -> u64 {
    mac.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b))
}

/// The first three fields of a CSV line (RFC 4180 quoting: a quoted field
/// may hold commas, `""` is a quote). Borrowed unless the line has quotes.
fn first_fields(line: &str) -> [Cow<'_, str>; 3] {
    if !line.contains('"') {
        let mut f = line.splitn(4, ',');
        let mut next = || Cow::Borrowed(f.next().unwrap_or(""));
        return [next(), next(), next()];
    }
    let mut out: [String; 3] = Default::default();
    let mut field = 0;
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out[field].push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => {
                field += 1;
                if field == out.len() {
                    break;
                }
            }
            c => out[field].push(c),
        }
    }
    out.map(Cow::Owned)
}

/// One copy of each organisation's name, however many blocks it has.
type Names = HashMap<Box<str>, Arc<str>>;

impl Registry {
    /// Loads every registry file present in `dir`; an error when none is.
    pub fn load_dir(dir: &Path) -> io::Result<Registry> {
        let mut registry = Registry::default();
        let mut names = Names::new();
        let mut found = false;
        for file in FILES {
            match crate::input::read_text_file(&dir.join(file)) {
                Ok(text) => {
                    found = true;
                    registry.add_csv_with(&text, &mut names);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("{file}: {e}"))),
            }
        }
        if found {
            Ok(registry)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no IEEE registry in {} (install ieee-data)", dir.display()),
            ))
        }
    }

    /// Adds the blocks of one registry CSV
    /// (`Registry,Assignment,Organization Name,Organization Address`);
    /// returns how many. Lines that are not a block are skipped.
    pub fn add_csv(&mut self, text: &str) -> usize {
        let mut names: Names = self
            .blocks
            .values()
            .map(|n| (Box::from(&**n), n.clone()))
            .collect();
        self.add_csv_with(text, &mut names)
    }

    fn add_csv_with(&mut self, text: &str, names: &mut Names) -> usize {
        let mut added = 0;
        let mut clean = String::new();
        for line in text.lines().skip(1) {
            if self.blocks.len() >= MAX_ENTRIES {
                break;
            }
            let [_registry, assignment, organisation] = first_fields(line);
            let bits = assignment.len() as u32 * 4;
            if !BITS.contains(&bits) {
                continue;
            }
            let Ok(prefix) = u64::from_str_radix(&assignment, 16) else {
                continue;
            };
            clean.clear();
            clean.extend(
                organisation
                    .trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_NAME),
            );
            if clean.is_empty() {
                continue;
            }
            let name = match names.get(clean.as_str()) {
                Some(n) => n.clone(),
                None => {
                    let n: Arc<str> = Arc::from(clean.as_str());
                    names.insert(Box::from(clean.as_str()), n.clone());
                    n
                }
            };
            self.blocks.insert(key(bits, prefix), name);
            added += 1;
        }
        added
    }

    /// Blocks known.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether no block is known.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The organisation the block of `mac` is registered to; `None` for a
    /// locally administered or group address, or an unregistered block.
    pub fn vendor(&self, mac: &[u8; 6]) -> Option<&str> {
        if is_local(mac) || mac[0] & 0x01 != 0 {
            return None;
        }
        let all = mac_bits(mac);
        BITS.iter()
            .find_map(|&bits| self.blocks.get(&key(bits, all >> (48 - bits))))
            .map(|n| &**n)
    }
}

/// The registry in [`DEFAULT_DIR`], loaded on first use; `None` when it is
/// not installed.
pub fn system() -> Option<&'static Registry> {
    static SYSTEM: OnceLock<Option<Registry>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| Registry::load_dir(Path::new(DEFAULT_DIR)).ok())
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines shaped like the registry's (documentation blocks of our own,
    // not copied entries).
    const CSV: &str = "Registry,Assignment,Organization Name,Organization Address\n\
        MA-L,0CAFE0,\"Example Phones, Inc.\",1 Main St Springfield US 00000\n\
        MA-M,0CAFE1A,\"Quote \"\"Works\"\" Ltd\",\n\
        MA-S,0CAFE1A5B,Tiny\u{7}Block,\n\
        MA-L,ZZZZZZ,Broken,\n\
        MA-L,0CAF,Too short,\n";

    #[test]
    fn finds_the_most_specific_block() {
        let mut r = Registry::default();
        assert_eq!(r.add_csv(CSV), 3);
        assert_eq!(
            r.vendor(&[0x0c, 0xaf, 0xe0, 1, 2, 3]),
            Some("Example Phones, Inc.")
        );
        assert_eq!(
            r.vendor(&[0x0c, 0xaf, 0xe1, 0xa0, 0, 1]),
            Some("Quote \"Works\" Ltd")
        );
        assert_eq!(
            r.vendor(&[0x0c, 0xaf, 0xe1, 0xa5, 0xb0, 1]),
            Some("TinyBlock")
        );
        assert_eq!(r.vendor(&[0x0c, 0xaf, 0xe2, 0, 0, 1]), None);
        // Randomised (locally administered) and group addresses: no vendor.
        assert_eq!(r.vendor(&[0x0e, 0xaf, 0xe0, 1, 2, 3]), None);
        assert_eq!(r.vendor(&[0x0d, 0xaf, 0xe0, 1, 2, 3]), None);
        assert!(is_local(&[0x02, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn names_are_bounded() {
        let mut r = Registry::default();
        let long = format!("h\nMA-L,0CAFE0,{}\n", "x".repeat(500));
        r.add_csv(&long);
        assert_eq!(
            r.vendor(&[0x0c, 0xaf, 0xe0, 0, 0, 1]).unwrap().len(),
            MAX_NAME
        );
        assert!(Registry::load_dir(Path::new("/nonexistent")).is_err());
    }

    /// The installed registry (scripts/setup.sh installs ieee-data).
    #[test]
    fn the_installed_registry_loads() {
        let dir = Path::new(DEFAULT_DIR);
        if !dir.join("oui.csv").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "ieee-data is not installed: run scripts/setup.sh"
            );
            eprintln!("SKIPPED: {DEFAULT_DIR}/oui.csv missing (install ieee-data)");
            return;
        }
        let r = Registry::load_dir(dir).unwrap();
        assert!(r.len() > 30_000, "{} blocks", r.len());
        // 00:00:0C is Cisco's first block, registered since the 1980s.
        assert!(r.vendor(&[0, 0, 0x0c, 1, 2, 3]).unwrap().contains("Cisco"));
    }
}
