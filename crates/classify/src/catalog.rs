//! The domain catalog: rules, the suffix index, and profiles.
//!
//! ```toml
//! [[rule]]
//! name = "qualcomm-xtra"              # unique id; a later file with the same name overrides
//! display = "Qualcomm XTRA"           # the bounded `site` label (default: registrable domain)
//! domains = ["izatcloud.net"]         # "d" = d and its subdomains, "*.d" = subdomains only, "=d" = exactly d
//! purpose = "gnss-assistance"         # see Purpose
//! owner = "Qualcomm"
//! description = "..."                 # what the source says, in one line
//! source = "..."                      # where that comes from
//! transport = "tcp"                   # optional constraints
//! ports = [80, 443]
//! http_path_prefix = "/generate_204"
//! app = "dns"                         # application protocol (domain-less rules)
//! server = "local"                    # "local" or "remote" (domain-less rules)
//! cleartext_known = true              # its plain-text traffic is documented
//! examples = ["xtrapath1.izatcloud.net"] # names the source mentions; a test holds them to this rule
//!
//! [[profile]]
//! name = "calyxos"
//! extends = "..."                     # optional
//! expect_rules = ["qualcomm-xtra"]
//! expect_purposes = ["dns"]
//! expect_owners = ["Qualcomm"]        # every rule of these owners
//!
//! [[list]]
//! path = "easylist-domains.txt"       # relative to the catalog file
//! purpose = "tracking"
//! format = "auto"                     # auto, hosts, domains, adblock
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::classify::Transport;
use crate::lists::{self, ListFormat, ListStats};
use crate::purpose::Purpose;

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    /// The built-in catalog.
    Builtin,
    /// A user catalog file.
    User(PathBuf),
    /// An imported domain list.
    List(PathBuf),
}

/// Which servers a domain-less rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locality {
    /// The hotspot and the local network.
    Local,
    /// Anything beyond it.
    Remote,
}

impl std::str::FromStr for Locality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Locality::Local),
            "remote" => Ok(Locality::Remote),
            other => Err(format!("server must be local or remote, not {other:?}")),
        }
    }
}

/// One catalog rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id.
    pub name: String,
    /// Display name, the bounded `site` label.
    pub display: Option<String>,
    /// Domain patterns as written.
    pub domains: Vec<String>,
    /// Purpose.
    pub purpose: Purpose,
    /// Who runs the destination.
    pub owner: String,
    /// What the source says about it.
    pub description: String,
    /// Where that comes from.
    pub source: String,
    /// Transport constraint.
    pub transport: Option<Transport>,
    /// Server port constraint.
    pub ports: Vec<u16>,
    /// HTTP path prefix constraint.
    pub http_path_prefix: Option<String>,
    /// Application protocol constraint.
    pub app: Option<String>,
    /// Server locality constraint.
    pub server: Option<Locality>,
    /// Cleartext traffic to it is documented.
    pub cleartext_known: bool,
    /// Names the source mentions that this rule must answer for.
    pub examples: Vec<String>,
    /// Where it came from.
    pub origin: RuleOrigin,
}

impl Rule {
    pub(crate) fn priority(&self) -> u8 {
        match self.origin {
            RuleOrigin::Builtin => 0,
            RuleOrigin::List(_) => 1,
            RuleOrigin::User(_) => 2,
        }
    }

    pub(crate) fn constraint_count(&self) -> u8 {
        u8::from(self.transport.is_some())
            + u8::from(!self.ports.is_empty())
            + u8::from(self.http_path_prefix.is_some())
            + u8::from(self.app.is_some())
            + u8::from(self.server.is_some())
    }
}

/// How a pattern matches names under its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatternKind {
    /// The domain and its subdomains.
    Suffix,
    /// Subdomains only (`*.d`).
    Subdomains,
    /// Exactly the domain (`=d`).
    Exact,
}

/// A named set of expected rules and purposes.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Rules whose flows are expected.
    pub expect_rules: HashSet<String>,
    /// Purposes whose flows are expected.
    pub expect_purposes: HashSet<Purpose>,
    /// Owners all of whose rules are expected: a vendor profile expects
    /// its vendor's own services.
    pub expect_owners: HashSet<String>,
}

impl Profile {
    /// Whether flows matching `rule` are expected under this profile.
    /// Imported list entries never are: a list names what to watch.
    pub fn expects(&self, rule: &Rule) -> bool {
        self.expect_rules.contains(&rule.name)
            || self.expect_purposes.contains(&rule.purpose)
            || (!matches!(rule.origin, RuleOrigin::List(_))
                && self.expect_owners.contains(&rule.owner))
    }
}

/// A domain list the catalog imported, for naming it wherever its matches
/// are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedList {
    /// The list's own title (its `! Title:` header), else the file stem.
    pub title: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// The file's modification date, `YYYY-MM-DD`, when known: lists
    /// shipped by a distribution carry a template instead of a date.
    pub date: Option<String>,
    /// The purpose its entries get.
    pub purpose: Purpose,
    /// What the import did.
    pub stats: ListStats,
    /// Loaded without configuration (a list the system provides).
    pub default: bool,
}

/// Errors loading a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file could not be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file says something invalid.
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A profile name that no catalog defines.
    #[error("unknown profile {0:?}")]
    UnknownProfile(String),
}

/// Rules, their index, and profiles.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) rules: Vec<Rule>,
    /// Pattern domain → (rule index, kind).
    pub(crate) index: HashMap<Box<str>, Vec<(u32, PatternKind)>>,
    /// Rules without domains, matched on flow facts alone.
    pub(crate) flow_rules: Vec<u32>,
    /// Imported list entries: domain → the rule of the first list naming
    /// it. Apart from the catalog's index, so that lists of 100,000 names
    /// cost one small allocation per name, and rules always win.
    pub(crate) list_index: HashMap<Box<str>, u32>,
    profiles: HashMap<String, Profile>,
    pub(crate) active: Profile,
    lists: Vec<LoadedList>,
}

const BUILTIN: &[(&str, &str)] = &[
    ("calyxos.toml", include_str!("../catalog/calyxos.toml")),
    ("android.toml", include_str!("../catalog/android.toml")),
    ("network.toml", include_str!("../catalog/network.toml")),
    ("gnss.toml", include_str!("../catalog/gnss.toml")),
    ("sdks.toml", include_str!("../catalog/sdks.toml")),
    ("aosp.toml", include_str!("../catalog/aosp.toml")),
    ("vendors.toml", include_str!("../catalog/vendors.toml")),
    ("profiles.toml", include_str!("../catalog/profiles.toml")),
];

/// The default profile.
pub const DEFAULT_PROFILE: &str = "calyxos";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    rule: Vec<RuleToml>,
    #[serde(default)]
    profile: Vec<ProfileToml>,
    #[serde(default)]
    list: Vec<ListToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleToml {
    name: Spanned<String>,
    display: Option<String>,
    #[serde(default)]
    domains: Vec<Spanned<String>>,
    purpose: Spanned<String>,
    owner: String,
    description: String,
    source: String,
    transport: Option<Spanned<String>>,
    #[serde(default)]
    ports: Vec<u16>,
    http_path_prefix: Option<String>,
    app: Option<String>,
    server: Option<Spanned<String>>,
    #[serde(default)]
    cleartext_known: bool,
    #[serde(default)]
    examples: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileToml {
    name: String,
    #[serde(default)]
    description: String,
    extends: Option<Spanned<String>>,
    #[serde(default)]
    expect_rules: Vec<Spanned<String>>,
    #[serde(default)]
    expect_purposes: Vec<Spanned<String>>,
    #[serde(default)]
    expect_owners: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListToml {
    path: Spanned<String>,
    purpose: Spanned<String>,
    #[serde(default)]
    format: Option<Spanned<String>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A value from a catalog file, parsed, or an error naming its line.
fn parsed<T: std::str::FromStr<Err = String>>(
    v: &Spanned<String>,
    path: &Path,
    text: &str,
) -> Result<T, CatalogError> {
    v.get_ref()
        .parse()
        .map_err(|message| CatalogError::Invalid {
            file: path.to_owned(),
            line: line_of(text, v.span().start),
            message,
        })
}

/// Checks a domain pattern and splits off its kind.
fn parse_pattern(raw: &str) -> Result<(String, PatternKind), String> {
    let (kind, domain) = if let Some(d) = raw.strip_prefix("*.") {
        (PatternKind::Subdomains, d)
    } else if let Some(d) = raw.strip_prefix('=') {
        (PatternKind::Exact, d)
    } else {
        (PatternKind::Suffix, raw)
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(format!("invalid domain pattern {raw:?}"));
    }
    Ok((domain, kind))
}

impl Catalog {
    /// The built-in catalog with the default profile active.
    pub fn builtin() -> Self {
        let mut c = Catalog {
            rules: Vec::new(),
            index: HashMap::new(),
            flow_rules: Vec::new(),
            list_index: HashMap::new(),
            profiles: HashMap::new(),
            active: Profile::default(),
            lists: Vec::new(),
        };
        for (name, text) in BUILTIN {
            c.load_str(Path::new(name), text, RuleOrigin::Builtin, None)
                .unwrap_or_else(|e| panic!("built-in catalog is invalid: {e}"));
        }
        c.set_profile(DEFAULT_PROFILE)
            .expect("default profile exists");
        c
    }

    /// Loads a user catalog file: its rules add to or override the loaded
    /// ones, its profiles are added, its lists imported.
    pub fn load_file(&mut self, path: &Path) -> Result<Vec<ListStats>, CatalogError> {
        let text = crate::input::read_text_file(path).map_err(|source| CatalogError::Io {
            file: path.to_owned(),
            source,
        })?;
        let active = self.active.name.clone();
        let stats = self.load_str(
            path,
            &text,
            RuleOrigin::User(path.to_owned()),
            path.parent(),
        )?;
        // Re-resolve the active profile: the file may have redefined it.
        let _ = self.set_profile(&active);
        Ok(stats)
    }

    /// Loads catalog TOML from a string; `path` names it in errors.
    pub fn load_str(
        &mut self,
        path: &Path,
        text: &str,
        origin: RuleOrigin,
        base_dir: Option<&Path>,
    ) -> Result<Vec<ListStats>, CatalogError> {
        let invalid = |offset: usize, message: String| CatalogError::Invalid {
            file: path.to_owned(),
            line: line_of(text, offset),
            message,
        };
        let file: FileToml = toml::from_str(text).map_err(|e| CatalogError::Invalid {
            file: path.to_owned(),
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().trim().replace('\n', "; "),
        })?;
        for r in file.rule {
            let purpose: Purpose = parsed(&r.purpose, path, text)?;
            let transport = r
                .transport
                .as_ref()
                .map(|v| parsed(v, path, text))
                .transpose()?;
            let server = r
                .server
                .as_ref()
                .map(|v| parsed(v, path, text))
                .transpose()?;
            let mut patterns = Vec::new();
            for d in &r.domains {
                patterns.push(parse_pattern(d.get_ref()).map_err(|e| invalid(d.span().start, e))?);
            }
            if patterns.is_empty()
                && transport.is_none()
                && r.ports.is_empty()
                && r.app.is_none()
                && server.is_none()
            {
                return Err(invalid(
                    r.name.span().start,
                    format!(
                        "rule {:?} has no domains and no constraints",
                        r.name.get_ref()
                    ),
                ));
            }
            let rule = Rule {
                name: r.name.into_inner(),
                display: r.display,
                domains: r.domains.into_iter().map(Spanned::into_inner).collect(),
                purpose,
                owner: r.owner,
                description: r.description,
                source: r.source,
                transport,
                ports: r.ports,
                http_path_prefix: r.http_path_prefix,
                app: r.app,
                server,
                cleartext_known: r.cleartext_known,
                examples: r.examples,
                origin: origin.clone(),
            };
            self.add_rule(rule, &patterns);
        }
        let mut stats = Vec::new();
        for l in file.list {
            let purpose: Purpose = parsed(&l.purpose, path, text)?;
            let format = l
                .format
                .as_ref()
                .map(|v| parsed(v, path, text))
                .transpose()?
                .unwrap_or(ListFormat::Auto);
            let list_path = base_dir.unwrap_or(Path::new(".")).join(l.path.get_ref());
            stats.push(self.import_list(&list_path, purpose, format)?);
        }
        for p in file.profile {
            let mut profile = match &p.extends {
                Some(base) => self.profiles.get(base.get_ref()).cloned().ok_or_else(|| {
                    invalid(
                        base.span().start,
                        format!("profile extends unknown profile {:?}", base.get_ref()),
                    )
                })?,
                None => Profile::default(),
            };
            profile.name = p.name;
            if !p.description.is_empty() {
                profile.description = p.description;
            }
            for r in p.expect_rules {
                if !self.rules.iter().any(|rule| rule.name == *r.get_ref()) {
                    return Err(invalid(
                        r.span().start,
                        format!("profile expects unknown rule {:?}", r.get_ref()),
                    ));
                }
                profile.expect_rules.insert(r.into_inner());
            }
            profile.expect_owners.extend(p.expect_owners);
            for purpose in p.expect_purposes {
                profile
                    .expect_purposes
                    .insert(parsed(&purpose, path, text)?);
            }
            self.profiles.insert(profile.name.clone(), profile);
        }
        Ok(stats)
    }

    fn add_rule(&mut self, rule: Rule, patterns: &[(String, PatternKind)]) {
        // Same name: the new rule replaces the old one everywhere.
        if let Some(old) = self.rules.iter().position(|r| r.name == rule.name) {
            let old = old as u32;
            for entries in self.index.values_mut() {
                entries.retain(|(i, _)| *i != old);
            }
            self.flow_rules.retain(|i| *i != old);
            self.rules[old as usize] = rule;
            self.index_rule(old, patterns);
            return;
        }
        let idx = self.rules.len() as u32;
        self.rules.push(rule);
        self.index_rule(idx, patterns);
    }

    fn index_rule(&mut self, idx: u32, patterns: &[(String, PatternKind)]) {
        if patterns.is_empty() {
            self.flow_rules.push(idx);
        }
        for (domain, kind) in patterns {
            self.index
                .entry(domain.as_str().into())
                .or_default()
                .push((idx, *kind));
        }
    }

    /// Imports a domain list as one rule per list, tagged with `purpose`.
    pub fn import_list(
        &mut self,
        path: &Path,
        purpose: Purpose,
        format: ListFormat,
    ) -> Result<ListStats, CatalogError> {
        let text = crate::input::read_text_file(path).map_err(|source| CatalogError::Io {
            file: path.to_owned(),
            source,
        })?;
        let stats = self.import_list_str(path, &text, purpose, format);
        if let Some(list) = self.lists.last_mut() {
            list.date = crate::lists::modified_date(path);
        }
        Ok(stats)
    }

    /// Imports a list from text (see [`Catalog::import_list`]).
    pub fn import_list_str(
        &mut self,
        path: &Path,
        text: &str,
        purpose: Purpose,
        format: ListFormat,
    ) -> ListStats {
        let stem = path
            .file_stem()
            .map_or_else(|| "list".into(), |s| s.to_string_lossy().into_owned());
        let title = lists::title(text).unwrap_or_else(|| stem.clone());
        let rule = Rule {
            name: format!("list:{stem}"),
            display: None,
            domains: Vec::new(),
            purpose,
            owner: stem.clone(),
            description: format!("listed in {title} ({})", path.display()),
            source: path.display().to_string(),
            transport: None,
            ports: Vec::new(),
            http_path_prefix: None,
            app: None,
            server: None,
            cleartext_known: false,
            examples: Vec::new(),
            origin: RuleOrigin::List(path.to_owned()),
        };
        let idx = match self.rules.iter().position(|r| r.name == rule.name) {
            Some(i) => {
                self.rules[i] = rule;
                i as u32
            }
            None => {
                self.rules.push(rule);
                (self.rules.len() - 1) as u32
            }
        };
        let index = &mut self.list_index;
        // About one entry per 30 bytes in EasyList-style files.
        index.reserve(text.len() / 30);
        let stats = lists::parse(text, format, |domain| {
            if !index.contains_key(domain) {
                index.insert(domain.into(), idx);
            }
        });
        self.lists.retain(|l| l.path != path);
        self.lists.push(LoadedList {
            title,
            path: path.to_owned(),
            date: None,
            purpose,
            stats: stats.clone(),
            default: false,
        });
        stats
    }

    /// Every list imported so far, in load order.
    pub fn lists(&self) -> &[LoadedList] {
        &self.lists
    }

    /// Marks the most recently imported list as one loaded by default.
    pub(crate) fn mark_last_list_default(&mut self) {
        if let Some(list) = self.lists.last_mut() {
            list.default = true;
        }
    }

    /// Makes `name` the active profile.
    pub fn set_profile(&mut self, name: &str) -> Result<(), CatalogError> {
        self.active = self
            .profiles
            .get(name)
            .cloned()
            .ok_or_else(|| CatalogError::UnknownProfile(name.to_owned()))?;
        Ok(())
    }

    /// A profile by name.
    pub fn named_profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// The active profile.
    pub fn profile(&self) -> &Profile {
        &self.active
    }

    /// All profiles, by name.
    pub fn profiles(&self) -> Vec<&Profile> {
        let mut v: Vec<_> = self.profiles.values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// All rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A rule by name.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
}
