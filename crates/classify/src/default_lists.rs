//! Tracker and advertising lists the system already has, loaded with no
//! configuration.
//!
//! Debian's uBlock Origin package (`webext-ublock-origin-firefox`) ships
//! EasyPrivacy and EasyList (GPL-3.0 / CC BY-SA 3.0, by the EasyList
//! authors). They are read where the package installs them, at start-up,
//! never copied: `scripts/setup.sh` and the .deb's `Recommends:` install the
//! package, and a distribution update refreshes them. Only the whole-domain
//! entries are used (see the list parser). Lists licensed for
//! non-commercial use only are never loaded by default.

use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, CatalogError};
use crate::lists::{ListFormat, ListStats};
use crate::purpose::Purpose;

/// Directories where distributions install uBlock Origin's copies of the
/// EasyList lists, in the order they are tried.
pub const DEFAULT_LIST_DIRS: &[&str] = &[
    // Debian/Ubuntu: webext-ublock-origin-firefox
    "/usr/share/mozilla/extensions/{ec8030f7-c20a-464f-9b0e-13a3a9e97384}/uBlock0@raymondhill.net/assets/thirdparties/easylist",
    // Debian/Ubuntu: webext-ublock-origin-chromium
    "/usr/share/chromium/extensions/ublock-origin/assets/thirdparties/easylist",
    "/usr/share/webext/ublock-origin/assets/thirdparties/easylist",
];

/// The lists loaded by default: file name in the directory, and the purpose
/// its entries get.
pub const DEFAULT_LISTS: &[(&str, Purpose)] = &[
    ("easyprivacy.txt", Purpose::Tracking),
    ("easylist.txt", Purpose::Advertising),
];

/// The first of `dirs` that holds at least one default list.
pub fn find_default_list_dir<'a>(dirs: &'a [&'a str]) -> Option<&'a Path> {
    dirs.iter()
        .map(|d| Path::new(*d))
        .find(|d| DEFAULT_LISTS.iter().any(|(f, _)| d.join(f).is_file()))
}

impl Catalog {
    /// Loads the default lists from the first directory of
    /// [`DEFAULT_LIST_DIRS`] that has them. Returns each list file tried
    /// and what loading it did; nothing when the machine has none.
    pub fn load_default_lists(&mut self) -> Vec<(PathBuf, Result<ListStats, CatalogError>)> {
        match find_default_list_dir(DEFAULT_LIST_DIRS) {
            Some(dir) => self.load_default_lists_from(dir),
            None => Vec::new(),
        }
    }

    /// Loads the default lists present in `dir` (see
    /// [`Catalog::load_default_lists`]).
    pub fn load_default_lists_from(
        &mut self,
        dir: &Path,
    ) -> Vec<(PathBuf, Result<ListStats, CatalogError>)> {
        let mut done = Vec::new();
        for (file, purpose) in DEFAULT_LISTS {
            let path = dir.join(file);
            if !path.is_file() {
                continue;
            }
            let result = self.import_list(&path, *purpose, ListFormat::Adblock);
            if result.is_ok() {
                self.mark_last_list_default();
            }
            done.push((path, result));
        }
        done
    }
}
