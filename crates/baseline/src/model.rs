//! The in-memory baseline: devices, their destinations, novelty.

/// Maps and sets keyed by MACs and names: looked up for every finished
/// flow, so with a fast hasher (the keys are the device's own traffic, and
/// the table sizes are capped).
pub type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
type HashSet<T> = std::collections::HashSet<T, ahash::RandomState>;

use std::borrow::Cow;
use std::sync::Arc;

pub use compact_str::CompactString;

mod changes;
mod clients;
mod paging;
mod vocabulary;

pub use changes::{Batch, Changed, Rows};
pub use clients::{
    valid_fingerprint, Client, ClientObservation, ClientOutcome, MAX_CLIENT_DESTINATIONS,
    MAX_FINGERPRINT_LEN,
};
pub use vocabulary::Labels;

use changes::Changes;
use paging::PageIndex;
use vocabulary::Vocabulary;

use crate::view::{Entry, Triage};
use crate::{format_mac, is_randomised, nanos, Novelty, State, SECOND};

/// Limits and learning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long each device learns, from its first packet (0: no learning).
    pub learn_for_ns: u64,
    /// Destinations not seen for this long are forgotten (0: kept).
    pub retain_ns: u64,
    /// Most destinations per device; the least recently seen go first.
    pub max_destinations: usize,
    /// Most devices (MACs are cheap to forge).
    pub max_devices: usize,
    /// Most client fingerprints per device (a ClientHello is whatever the
    /// device sends); the least recently seen untriaged go first.
    pub max_clients: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            learn_for_ns: 48 * 3600 * SECOND,
            retain_ns: 90 * 24 * 3600 * SECOND,
            max_destinations: 10_000,
            max_devices: 1024,
            max_clients: 64,
        }
    }
}

/// Full names kept per destination.
pub const MAX_NAMES: usize = 16;
/// DHCP host names kept per device.
pub const MAX_HOST_NAMES: usize = 8;
/// Longest name or destination kept, in bytes.
const MAX_NAME_LEN: usize = 253;
/// How far past this machine's clock a time from packets, imports or the
/// store may lie. A capture or an import dated decades ahead would
/// otherwise move retention's "now" there and forget the whole baseline.
pub const CLOCK_MARGIN_NS: u64 = 24 * 3600 * SECOND;
/// The largest counter the store can hold (SQLite integers are signed).
const MAX_COUNTER: u64 = i64::MAX as u64;

/// This machine's clock, Unix nanoseconds.
fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One finished flow, as the baseline sees it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The client's MAC address.
    pub mac: [u8; 6],
    /// The device's DHCP host name, when known.
    pub host_name: Option<&'a str>,
    /// Registrable domain of the flow's name, or the server address.
    pub destination: &'a str,
    /// The flow's full name, when it has one.
    pub name: Option<&'a str>,
    /// Purpose from the catalog.
    pub purpose: &'a str,
    /// Owner from the catalog.
    pub owner: Option<&'a str>,
    /// Catalog display name of the matching rule.
    pub service: Option<&'a str>,
    /// The device's profile expects this flow.
    pub expected: bool,
    /// Packet time of the flow's first packet, Unix nanoseconds.
    pub first_seen_ns: u64,
    /// Packet time of its last packet.
    pub last_seen_ns: u64,
    /// Bytes from the device.
    pub bytes_up: u64,
    /// Bytes to the device.
    pub bytes_down: u64,
    /// Bytes of the flow if it is cleartext, else 0.
    pub cleartext_bytes: u64,
}

/// What observing a flow decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The flow's novelty.
    pub novelty: Novelty,
    /// This flow made the destination `new` (count it, alert once).
    pub became_new: bool,
}

/// Names seen under a destination: nearly always one, kept in place.
pub type Names = smallvec::SmallVec<[CompactString; 1]>;

/// One destination of one device. Kept small: every finished flow reads
/// one, among thousands the processor's caches do not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    /// Triage state.
    pub state: State,
    /// Purpose, owner and catalog display name of the latest flow, shared
    /// with every destination that has the same (see [`Vocabulary`]).
    pub labels: Arc<Labels>,
    /// First flow, packet time.
    pub first_seen_ns: u64,
    /// Latest flow, packet time.
    pub last_seen_ns: u64,
    /// Flows seen.
    pub flows: u64,
    /// Bytes from the device.
    pub bytes_up: u64,
    /// Bytes to the device.
    pub bytes_down: u64,
    /// Bytes of cleartext flows.
    pub cleartext_bytes: u64,
    /// Full names seen under it (bounded). Inline strings, the first in
    /// place: a flow compares its name with these, and most fit where a
    /// pointer to them would be, so the comparison reads no other memory.
    pub names: Names,
    /// Changed since the writer last took it (see [`Changes`]).
    pub(crate) unsaved: bool,
}

/// One device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Device {
    /// First packet time; learning runs from here.
    pub first_seen_ns: u64,
    /// Latest packet time.
    pub last_seen_ns: u64,
    /// DHCP host names it used (bounded, latest last).
    pub host_names: Vec<String>,
    /// Its destinations. Keys are inline strings (a registrable domain
    /// nearly always fits), so finding one compares bytes already in the
    /// table instead of following a pointer per candidate.
    pub destinations: HashMap<CompactString, Destination>,
    /// Its TLS clients by fingerprint (see [`Client`]).
    pub clients: HashMap<CompactString, Client>,
    /// Clients that became `new` since this process started (the
    /// `tetherscope_new_clients_total` counter).
    pub new_clients: u64,
    /// Changed since the writer last took it (see [`Changes`]).
    pub(crate) unsaved: bool,
}

/// Why a triage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriageError {
    /// No device answers to that MAC or name.
    #[error("no device {0:?} in the baseline")]
    UnknownDevice(String),
    /// No such client fingerprint (on that device).
    #[error("{device} has no client {client:?}")]
    UnknownClient {
        /// The device as asked (`any device` when none was).
        device: String,
        /// The fingerprint as asked.
        client: String,
    },
    /// The device has no such destination.
    #[error("device {device} has no destination {destination:?}")]
    UnknownDestination {
        /// The device as asked.
        device: String,
        /// The destination as asked.
        destination: String,
    },
    /// An imported entry is not usable.
    #[error("bad entry: {0}")]
    BadEntry(String),
    /// More than one device uses that name: only a MAC says which.
    #[error("{name:?} is the name of more than one device ({}); give the MAC", macs.join(", "))]
    Ambiguous {
        /// The name as asked.
        name: String,
        /// The devices that use it, sorted.
        macs: Vec<String>,
    },
}

/// Parses `aa:bb:cc:dd:ee:ff` (or `-` separated), any case.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    // Asked of every finished flow's host name: no allocation.
    let mut parts = s.split([':', '-']);
    let mut mac = [0u8; 6];
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// `s` as kept: at most [`MAX_NAME_LEN`] bytes, without control
/// characters; borrowed when it already is (nearly always: it is asked for
/// every finished flow).
pub(crate) fn clip(s: &str) -> Cow<'_, str> {
    // Control characters are U+0000–U+001F, U+007F and U+0080–U+009F, the
    // last encoded C2 80–C2 9F: no such byte, no such character.
    if s.len() <= MAX_NAME_LEN && !s.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2) {
        return Cow::Borrowed(s);
    }
    let mut end = s.len().min(MAX_NAME_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(s[..end].chars().filter(|c| !c.is_control()).collect())
}

/// All devices and destinations, with what changed since the last write.
#[derive(Debug, Default)]
pub struct Baseline {
    settings: Settings,
    devices: HashMap<[u8; 6], Device>,
    /// Configured device names and labels → MAC.
    aliases: HashMap<String, [u8; 6]>,
    /// Configured display labels.
    labels: HashMap<[u8; 6], String>,
    /// Configured display labels of devices known by DHCP host name.
    host_labels: HashMap<String, String>,
    changes: Changes,
    vocabulary: Vocabulary,
    /// Every destination in page order, so a page of `/api/baseline` costs
    /// the page under the lock the capture thread needs, not the baseline.
    index: PageIndex,
    /// Latest packet time seen: retention counts back from here.
    now_ns: u64,
    /// Times beyond this are clamped to it: this machine's clock plus
    /// [`CLOCK_MARGIN_NS`] when last read (0: not read yet).
    clock_limit_ns: u64,
    /// Packet time of the last retention pass.
    expired_at_ns: u64,
    /// Destinations dropped because their device had too many.
    pub evicted: u64,
    /// Destinations dropped by retention.
    pub expired: u64,
    /// Flows of devices past the device cap (not tracked).
    pub untracked_flows: u64,
    /// Clients dropped because their device had too many.
    pub clients_evicted: u64,
    /// Clients dropped by retention.
    pub clients_expired: u64,
    /// Client fingerprints refused as malformed (see [`valid_fingerprint`]).
    pub clients_refused: u64,
    /// Times from packets or the store that lay beyond this machine's clock
    /// (plus [`CLOCK_MARGIN_NS`]) and were clamped to it.
    pub clamped: u64,
}

impl Baseline {
    /// An empty baseline.
    pub fn new(settings: Settings) -> Self {
        Baseline {
            settings,
            ..Baseline::default()
        }
    }

    /// An empty baseline no writer will ever save: it keeps no record of
    /// what changed.
    pub fn in_memory(settings: Settings) -> Self {
        let mut baseline = Baseline::new(settings);
        baseline.changes.off = true;
        baseline
    }

    /// The limits in force.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Gives a device a configured name (resolvable in triage) and display
    /// label.
    pub fn configure_device(&mut self, mac: [u8; 6], name: Option<&str>, label: Option<&str>) {
        for n in [name, label].into_iter().flatten() {
            self.aliases.insert(n.to_owned(), mac);
        }
        if let Some(l) = label.or(name) {
            self.labels.insert(mac, l.to_owned());
        }
    }

    /// Gives the device that uses DHCP host name `host` a display label.
    pub fn configure_host_name(&mut self, host: &str, label: &str) {
        self.host_labels.insert(host.to_owned(), label.to_owned());
        self.aliases.remove(host);
    }

    /// Devices and their destinations.
    pub fn devices(&self) -> &HashMap<[u8; 6], Device> {
        &self.devices
    }

    /// Destinations over all devices.
    pub fn len(&self) -> usize {
        self.devices.values().map(|d| d.destinations.len()).sum()
    }

    /// No destinations.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The labels every destination with these values shares (for
    /// destinations read from the store).
    pub(crate) fn shared_labels(
        &mut self,
        purpose: &str,
        owner: Option<&str>,
        service: Option<&str>,
    ) -> Arc<Labels> {
        self.vocabulary.get(purpose, owner, service)
    }

    /// Inserts a device and its destinations as loaded from the store
    /// (nothing becomes dirty), their labels already shared (the store's
    /// load takes them from the baseline's vocabulary).
    /// Times from the future (a store written before they were clamped)
    /// are clamped like packet times.
    pub fn load_device(&mut self, mac: [u8; 6], mut device: Device) {
        device.first_seen_ns = self.trusted_time(device.first_seen_ns);
        device.last_seen_ns = self.trusted_time(device.last_seen_ns);
        for d in device.destinations.values_mut() {
            d.first_seen_ns = self.trusted_time(d.first_seen_ns);
            d.last_seen_ns = self.trusted_time(d.last_seen_ns);
        }
        for c in device.clients.values_mut() {
            c.first_seen_ns = self.trusted_time(c.first_seen_ns);
            c.last_seen_ns = self.trusted_time(c.last_seen_ns);
        }
        self.now_ns = self.now_ns.max(device.last_seen_ns);
        if let Some(old) = self.devices.remove(&mac) {
            for (name, d) in &old.destinations {
                self.index.remove(mac, name, d.state);
            }
        }
        for (name, d) in &device.destinations {
            self.index.insert(mac, name, d.state);
        }
        self.devices.insert(mac, device);
    }

    /// The latest time taken from packets or the store as it is: this
    /// machine's clock plus [`CLOCK_MARGIN_NS`].
    fn clock_limit(&mut self) -> u64 {
        self.clock_limit_ns = wall_clock_ns().saturating_add(CLOCK_MARGIN_NS);
        self.clock_limit_ns
    }

    /// `t`, or the clock limit when `t` lies beyond it (counted, and said
    /// once): packet times are the sender's word, and one from decades
    /// ahead would make retention forget everything else.
    fn trusted_time(&mut self, t: u64) -> u64 {
        // The limit only grows, so reading the clock again is needed only
        // for a time past the limit last read.
        if t <= self.clock_limit_ns || t <= self.clock_limit() {
            return t;
        }
        if self.clamped == 0 {
            tracing::warn!(
                "a time {} s after this machine's clock (packet or store time); \
                 such times are taken as the clock plus a day",
                (t - self.clock_limit_ns + CLOCK_MARGIN_NS) / SECOND
            );
        }
        self.clamped += 1;
        self.clock_limit_ns
    }

    /// The display name: configured label, else latest DHCP name, else MAC.
    /// A DHCP name is a claim any station can make: one another device
    /// made first (see [`Baseline::name_owners`]) is shown with the MAC,
    /// and the label configured for that name is not this device's.
    pub fn display_name(&self, mac: &[u8; 6]) -> String {
        let host = self.devices.get(mac).and_then(|d| d.host_names.last());
        let owners = host.map(|h| self.name_owners(Some(h))).unwrap_or_default();
        self.display_name_among(mac, &owners)
    }

    /// [`Baseline::display_name`] with the owners of latest host names in
    /// hand (listing every entry asks for each device's).
    fn display_name_among(&self, mac: &[u8; 6], owners: &HashMap<&str, [u8; 6]>) -> String {
        if let Some(l) = self.labels.get(mac) {
            return l.clone();
        }
        let Some(host) = self.devices.get(mac).and_then(|d| d.host_names.last()) else {
            return format_mac(mac);
        };
        if owners.get(host.as_str()).is_some_and(|owner| owner != mac) {
            return format!("{host} ({})", format_mac(mac));
        }
        match self.host_labels.get(host) {
            Some(l) => l.clone(),
            None => host.clone(),
        }
    }

    /// Who holds each DHCP host name (the device that claimed it first, see
    /// [`Baseline::name_owners`]), sorted by name: given to the device table
    /// at start, so that a station that speaks first after a restart does
    /// not take a name the baseline gives another.
    pub fn name_holders(&self) -> Vec<(String, [u8; 6])> {
        let mut holders: Vec<(String, [u8; 6])> = self
            .name_owners(None)
            .into_iter()
            .map(|(name, mac)| (name.to_owned(), mac))
            .collect();
        holders.sort();
        holders
    }

    /// For each latest DHCP host name (only `only`, if given), the device
    /// that claimed it first: seen first, the lower MAC on a tie.
    fn name_owners(&self, only: Option<&str>) -> HashMap<&str, [u8; 6]> {
        let mut owners: HashMap<&str, ([u8; 6], u64)> = HashMap::default();
        for (mac, d) in &self.devices {
            let Some(host) = d.host_names.last() else {
                continue;
            };
            if only.is_some_and(|o| o != host) {
                continue;
            }
            let claim = (*mac, d.first_seen_ns);
            owners
                .entry(host.as_str())
                .and_modify(|held| {
                    if (claim.1, claim.0) < (held.1, held.0) {
                        *held = claim;
                    }
                })
                .or_insert(claim);
        }
        owners.into_iter().map(|(h, (mac, _))| (h, mac)).collect()
    }

    /// Finds a device by MAC, DHCP host name or configured name. A host
    /// name more than one device used is refused with their MACs: any
    /// station can send any name.
    pub fn resolve(&self, query: &str) -> Result<[u8; 6], TriageError> {
        if let Some(mac) = parse_mac(query) {
            if self.devices.contains_key(&mac) {
                return Ok(mac);
            }
        }
        if let Some(mac) = self.aliases.get(query) {
            return Ok(*mac);
        }
        let host = self
            .host_labels
            .iter()
            .find(|(_, l)| *l == query)
            .map_or(query, |(h, _)| h.as_str());
        let mut found: Vec<&[u8; 6]> = self
            .devices
            .iter()
            .filter(|(_, d)| d.host_names.iter().any(|n| n == host))
            .map(|(m, _)| m)
            .collect();
        found.sort();
        match found[..] {
            [] => Err(TriageError::UnknownDevice(query.to_owned())),
            [mac] => Ok(*mac),
            _ => Err(TriageError::Ambiguous {
                name: query.to_owned(),
                macs: found.iter().map(|m| format_mac(m)).collect(),
            }),
        }
    }

    /// Records one finished flow and says what it was to its device; `None`
    /// when the device is past the device cap.
    pub fn observe(&mut self, o: &Observation<'_>) -> Option<Outcome> {
        let (first_seen_ns, last_seen_ns) = (
            self.trusted_time(o.first_seen_ns),
            self.trusted_time(o.last_seen_ns),
        );
        let o = &Observation {
            first_seen_ns,
            last_seen_ns,
            ..*o
        };
        let s = self.settings;
        let full = self.devices.len() >= s.max_devices;
        let device = match self.devices.get_mut(&o.mac) {
            Some(device) => device,
            None if full => {
                self.untracked_flows += 1;
                return None;
            }
            None => self.devices.entry(o.mac).or_insert_with(|| Device {
                first_seen_ns: o.first_seen_ns,
                ..Device::default()
            }),
        };
        self.now_ns = self.now_ns.max(o.last_seen_ns);
        device.first_seen_ns = device.first_seen_ns.min(o.first_seen_ns);
        device.last_seen_ns = device.last_seen_ns.max(o.last_seen_ns);
        if let Some(h) = o.host_name {
            if device.host_names.last().map(String::as_str) != Some(h) {
                device.host_names.retain(|n| n != h);
                device.host_names.push(clip(h).into_owned());
                if device.host_names.len() > MAX_HOST_NAMES {
                    device.host_names.remove(0);
                }
            }
        }
        self.changes.device(o.mac, device);
        let learning =
            s.learn_for_ns > 0 && o.first_seen_ns < device.first_seen_ns + s.learn_for_ns;
        let mut became_new = false;
        let key = clip(o.destination);
        let dest = match device.destinations.get_mut(&*key) {
            Some(d) => d,
            None => {
                let state = if learning || o.expected {
                    State::Baseline
                } else {
                    became_new = true;
                    State::New
                };
                if device.destinations.len() >= s.max_destinations {
                    self.evicted += evict_oldest(device, o.mac, &mut self.changes, &mut self.index);
                }
                self.changes.removed.remove(o.mac, &key);
                self.index.insert(o.mac, &key, state);
                device
                    .destinations
                    .entry(CompactString::from(&*key))
                    .or_insert(Destination {
                        state,
                        labels: self.vocabulary.get(o.purpose, o.owner, o.service),
                        first_seen_ns: o.first_seen_ns,
                        last_seen_ns: o.last_seen_ns,
                        flows: 0,
                        bytes_up: 0,
                        bytes_down: 0,
                        cleartext_bytes: 0,
                        names: Names::new(),
                        unsaved: false,
                    })
            }
        };
        // A destination the profile expects is known even if it once was new.
        if o.expected && dest.state == State::New {
            dest.state = State::Baseline;
            self.index.restate(o.mac, &key, State::New, State::Baseline);
        }
        self.vocabulary
            .set(&mut dest.labels, o.purpose, o.owner, o.service);
        dest.first_seen_ns = dest.first_seen_ns.min(o.first_seen_ns);
        dest.last_seen_ns = dest.last_seen_ns.max(o.last_seen_ns);
        dest.flows += 1;
        dest.bytes_up += o.bytes_up;
        dest.bytes_down += o.bytes_down;
        dest.cleartext_bytes += o.cleartext_bytes;
        if let Some(n) = o.name {
            // Compared as kept: a name clipping changes is then kept once.
            let n = clip(n);
            if dest.names.len() < MAX_NAMES && !dest.names.iter().any(|x| *x == *n) {
                dest.names.push(n.into());
            }
        }
        let novelty = match dest.state {
            State::Flagged => Novelty::Flagged,
            _ if learning => Novelty::Learning,
            State::New => Novelty::New,
            State::Baseline | State::Accepted => Novelty::Known,
        };
        self.changes.destination(o.mac, &key, dest);
        Some(Outcome {
            novelty,
            became_new,
        })
    }

    /// What a flow to `destination` would be now, without recording it
    /// (for flows still active).
    pub fn peek(&self, mac: &[u8; 6], destination: &str, expected: bool, ts_ns: u64) -> Novelty {
        let Some(device) = self.devices.get(mac) else {
            return if self.settings.learn_for_ns > 0 {
                Novelty::Learning
            } else if expected {
                Novelty::Known
            } else {
                Novelty::New
            };
        };
        let learning = self.settings.learn_for_ns > 0
            && ts_ns < device.first_seen_ns + self.settings.learn_for_ns;
        match device.destinations.get(destination).map(|d| d.state) {
            Some(State::Flagged) => Novelty::Flagged,
            _ if learning => Novelty::Learning,
            Some(State::Baseline | State::Accepted) => Novelty::Known,
            _ if expected => Novelty::Known,
            _ => Novelty::New,
        }
    }

    /// Accepts, flags or forgets a destination of a device.
    pub fn triage(
        &mut self,
        op: Triage,
        device: &str,
        destination: &str,
    ) -> Result<Option<Entry>, TriageError> {
        let mac = self.resolve(device)?;
        let dev = self
            .devices
            .get_mut(&mac)
            .ok_or_else(|| TriageError::UnknownDevice(device.to_owned()))?;
        let unknown = || TriageError::UnknownDestination {
            device: device.to_owned(),
            destination: destination.to_owned(),
        };
        match op {
            Triage::Forget => {
                let old = dev.destinations.remove(destination).ok_or_else(unknown)?;
                self.changes.destination_removed(mac, destination);
                self.index.remove(mac, destination, old.state);
                Ok(Some(self.entry(&mac, destination, &old)))
            }
            Triage::Accept | Triage::Flag => {
                let dest = dev.destinations.get_mut(destination).ok_or_else(unknown)?;
                let was = dest.state;
                dest.state = if op == Triage::Accept {
                    State::Accepted
                } else {
                    State::Flagged
                };
                self.index.restate(mac, destination, was, dest.state);
                self.changes.destination(mac, destination, dest);
                Ok(self.entry_of(&mac, destination))
            }
        }
    }

    /// Merges exported entries: state as given, counters and times widened.
    /// Returns how many entries were taken.
    /// Every entry is checked before any is taken: a bad one is refused,
    /// naming it, and nothing changes.
    pub fn import(&mut self, entries: &[Entry]) -> Result<usize, TriageError> {
        let limit = self.clock_limit();
        for (i, e) in entries.iter().enumerate() {
            check_entry(e, limit).map_err(|why| {
                TriageError::BadEntry(format!(
                    "entry {} ({} {:?}): {why}",
                    i + 1,
                    e.mac,
                    e.destination
                ))
            })?;
        }
        for e in entries {
            let (Some(mac), Some(state)) = (parse_mac(&e.mac), State::parse(&e.state)) else {
                continue;
            };
            if !self.devices.contains_key(&mac) && self.devices.len() >= self.settings.max_devices {
                return Err(TriageError::BadEntry("too many devices".into()));
            }
            let (first, last) = (
                nanos(e.first_seen),
                nanos(e.last_seen).max(nanos(e.first_seen)),
            );
            self.now_ns = self.now_ns.max(last);
            let device = self.devices.entry(mac).or_insert_with(|| Device {
                first_seen_ns: first,
                last_seen_ns: last,
                ..Device::default()
            });
            device.first_seen_ns = device.first_seen_ns.min(first);
            device.last_seen_ns = device.last_seen_ns.max(last);
            // A name shown with its MAC (another device claimed it first)
            // is not this device's name.
            let is_name = e.device != e.mac
                && parse_mac(&e.device).is_none()
                && !e.device.ends_with(&format!(" ({})", format_mac(&mac)));
            if is_name && !device.host_names.contains(&e.device) {
                device.host_names.insert(0, clip(&e.device).into_owned());
                device.host_names.truncate(MAX_HOST_NAMES);
            }
            let key = CompactString::from(clip(&e.destination));
            if !device.destinations.contains_key(&key)
                && device.destinations.len() >= self.settings.max_destinations
            {
                self.evicted += evict_oldest(device, mac, &mut self.changes, &mut self.index);
            }
            let was = device.destinations.get(&key).map(|d| d.state);
            let dest = device
                .destinations
                .entry(key.clone())
                .or_insert_with(|| Destination {
                    state,
                    labels: self.vocabulary.get(
                        &e.purpose,
                        e.owner.as_deref(),
                        e.service.as_deref(),
                    ),
                    first_seen_ns: first,
                    last_seen_ns: last,
                    flows: 0,
                    bytes_up: 0,
                    bytes_down: 0,
                    cleartext_bytes: 0,
                    names: Names::new(),
                    unsaved: false,
                });
            dest.state = state;
            match was {
                Some(was) => self.index.restate(mac, &key, was, state),
                None => self.index.insert(mac, &key, state),
            }
            dest.first_seen_ns = dest.first_seen_ns.min(first);
            dest.last_seen_ns = dest.last_seen_ns.max(last);
            dest.flows = dest.flows.max(e.flows);
            dest.bytes_up = dest.bytes_up.max(e.bytes_up);
            dest.bytes_down = dest.bytes_down.max(e.bytes_down);
            dest.cleartext_bytes = dest.cleartext_bytes.max(e.cleartext_bytes);
            for n in &e.names {
                let n = clip(n);
                if dest.names.len() < MAX_NAMES && !dest.names.iter().any(|x| *x == *n) {
                    dest.names.push(n.into());
                }
            }
            self.changes.removed.remove(mac, &key);
            self.changes.destination(mac, &key, dest);
            self.changes.device(mac, device);
        }
        Ok(entries.len())
    }

    /// Forgets destinations not seen for the retention period (counting
    /// back from the latest packet time seen), and devices left with none.
    /// What the user accepted or flagged is kept: only the user forgets it.
    /// Walks everything, so it runs at most once a minute of packet time.
    pub fn expire(&mut self) {
        if self.settings.retain_ns == 0 || self.now_ns < self.expired_at_ns + 60 * SECOND {
            return;
        }
        self.expired_at_ns = self.now_ns;
        let cutoff = self.now_ns.saturating_sub(self.settings.retain_ns);
        self.expire_clients(cutoff);
        let mut gone_devices = Vec::new();
        for (mac, device) in &mut self.devices {
            let before = device.destinations.len();
            device.destinations.retain(|name, d| {
                let keep =
                    d.last_seen_ns >= cutoff || matches!(d.state, State::Accepted | State::Flagged);
                if !keep {
                    self.changes.destination_removed(*mac, name);
                    self.index.remove(*mac, name, d.state);
                }
                keep
            });
            self.expired += (before - device.destinations.len()) as u64;
            if device.destinations.is_empty()
                && device.clients.is_empty()
                && device.last_seen_ns < cutoff
            {
                gone_devices.push(*mac);
            }
        }
        for mac in gone_devices {
            self.devices.remove(&mac);
            self.changes.device_removed(mac);
        }
    }

    /// One destination as shown.
    pub fn entry_of(&self, mac: &[u8; 6], destination: &str) -> Option<Entry> {
        let d = self.devices.get(mac)?.destinations.get(destination)?;
        Some(self.entry(mac, destination, d))
    }

    /// The state of one destination of one device, if the baseline has it.
    pub fn state_of(&self, mac: &[u8; 6], destination: &str) -> Option<State> {
        Some(self.devices.get(mac)?.destinations.get(destination)?.state)
    }

    fn entry(&self, mac: &[u8; 6], destination: &str, d: &Destination) -> Entry {
        Entry::new(
            self.display_name(mac),
            mac,
            is_randomised(mac),
            destination,
            d,
        )
    }

    /// Every destination (of one device, if given), sorted by device then
    /// first seen.
    pub fn entries(&self, device: Option<&str>) -> Result<Vec<Entry>, TriageError> {
        let only = device.map(|d| self.resolve(d)).transpose()?;
        let owners = self.name_owners(None);
        let mut out: Vec<Entry> = self
            .devices
            .iter()
            .filter(|(mac, _)| only.is_none_or(|m| m == **mac))
            .flat_map(|(mac, dev)| {
                let shown = self.display_name_among(mac, &owners);
                dev.destinations.iter().map(move |(name, d)| {
                    Entry::new(shown.clone(), mac, is_randomised(mac), name, d)
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.mac.as_str(), a.first_seen, a.destination.as_str())
                .partial_cmp(&(b.mac.as_str(), b.first_seen, b.destination.as_str()))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Ok(out)
    }
}

/// Why an imported entry cannot be taken: every field checked, so that
/// nothing absurd (a time in 2100, a count past what the store holds)
/// reaches the baseline.
fn check_entry(e: &Entry, clock_limit_ns: u64) -> Result<(), String> {
    if parse_mac(&e.mac).is_none() {
        return Err(format!("mac {:?} is not a MAC address", e.mac));
    }
    if State::parse(&e.state).is_none() {
        return Err(format!(
            "state {:?} is not one of baseline, accepted, new, flagged",
            e.state
        ));
    }
    if e.destination.is_empty() {
        return Err("empty destination".into());
    }
    let limit_s = clock_limit_ns / SECOND;
    for (field, t) in [("first_seen", e.first_seen), ("last_seen", e.last_seen)] {
        if !t.is_finite() || t < 0.0 {
            return Err(format!("{field} {t} is not a time"));
        }
        if t > limit_s as f64 {
            return Err(format!(
                "{field} {t} is more than a day after this machine's clock"
            ));
        }
    }
    for (field, n) in [
        ("flows", e.flows),
        ("bytes_up", e.bytes_up),
        ("bytes_down", e.bytes_down),
        ("cleartext_bytes", e.cleartext_bytes),
    ] {
        if n > MAX_COUNTER {
            return Err(format!("{field} {n} is more than the store holds"));
        }
    }
    Ok(())
}

/// Drops the least recently seen sixteenth (at least one) of a full
/// device's destinations; returns how many. Dropping a batch at once keeps
/// a flood of new destinations from paying a full scan per flow.
fn evict_oldest(
    device: &mut Device,
    mac: [u8; 6],
    changes: &mut Changes,
    index: &mut PageIndex,
) -> u64 {
    let n = (device.destinations.len() / 16).max(1);
    // What the user decided goes last: a device flooding new destinations
    // evicts untriaged ones first, and triaged ones only when nothing else
    // is left to keep the cap.
    let mut by_age: Vec<((bool, u64), &CompactString)> = device
        .destinations
        .iter()
        .map(|(name, d)| {
            let triaged = matches!(d.state, State::Accepted | State::Flagged);
            ((triaged, d.last_seen_ns), name)
        })
        .collect();
    if n < by_age.len() {
        by_age.select_nth_unstable(n);
    }
    let oldest: Vec<CompactString> = by_age
        .into_iter()
        .take(n)
        .map(|(_, name)| name.clone())
        .collect();
    for name in &oldest {
        if let Some(gone) = device.destinations.remove(name.as_str()) {
            index.remove(mac, name, gone.state);
        }
        changes.destination_removed(mac, name);
    }
    oldest.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const MAC: [u8; 6] = [0xda, 0xa1, 0x19, 0x42, 0, 0x23];
    pub(super) const HOUR: u64 = 3600 * SECOND;

    pub(super) fn obs(dest: &str, t: u64) -> Observation<'_> {
        Observation {
            mac: MAC,
            host_name: Some("pixel-7a"),
            destination: dest,
            name: Some(dest),
            purpose: "unknown",
            owner: None,
            service: None,
            expected: false,
            first_seen_ns: t,
            last_seen_ns: t + SECOND,
            bytes_up: 10,
            bytes_down: 20,
            cleartext_bytes: 0,
        }
    }

    impl Baseline {
        pub(super) fn retain_for_test(&mut self, retain_ns: u64) {
            self.settings.retain_ns = retain_ns;
        }
    }

    fn base() -> Baseline {
        Baseline::new(Settings {
            learn_for_ns: 48 * HOUR,
            ..Settings::default()
        })
    }

    #[test]
    fn labels_are_shared_and_follow_the_latest_flow() {
        let mut b = base();
        let xtra = |dest| Observation {
            purpose: "gnss-assistance",
            owner: Some("Qualcomm"),
            service: Some("Qualcomm XTRA"),
            ..obs(dest, 0)
        };
        b.observe(&xtra("izatcloud.net")).unwrap();
        b.observe(&xtra("gpsonextra.net")).unwrap();
        b.observe(&obs("example.org", 0)).unwrap();
        let d = &b.devices[&MAC].destinations;
        assert!(Arc::ptr_eq(
            &d["izatcloud.net"].labels,
            &d["gpsonextra.net"].labels
        ));
        assert!(d["izatcloud.net"].labels.are(
            "gnss-assistance",
            Some("Qualcomm"),
            Some("Qualcomm XTRA")
        ));
        assert!(d["example.org"].labels.are("unknown", None, None));
        // A later flow classified otherwise relabels its destination only.
        b.observe(&obs("gpsonextra.net", HOUR)).unwrap();
        let d = &b.devices[&MAC].destinations;
        assert!(Arc::ptr_eq(
            &d["gpsonextra.net"].labels,
            &d["example.org"].labels
        ));
        assert_eq!(&*d["izatcloud.net"].labels.purpose, "gnss-assistance");
        // Names: each once, in the order seen, at most MAX_NAMES.
        for i in 0..2 * MAX_NAMES {
            let name = format!("n{}.example.org", i % (MAX_NAMES + 3));
            b.observe(&Observation {
                name: Some(&name),
                ..obs("example.org", HOUR)
            })
            .unwrap();
        }
        let names = &b.devices[&MAC].destinations["example.org"].names;
        assert_eq!(names.len(), MAX_NAMES);
        // A name kept clipped is kept once, however often it comes.
        for _ in 0..3 {
            b.observe(&Observation {
                name: Some("evil\u{1b}[31m.example.net"),
                ..obs("example.net", HOUR)
            })
            .unwrap();
        }
        let names = &b.devices[&MAC].destinations["example.net"].names;
        assert_eq!(names.as_slice(), ["evil[31m.example.net"]);
        let names = &b.devices[&MAC].destinations["example.org"].names;
        assert_eq!(names[0], "example.org");
        assert_eq!(names[1], "n0.example.org");
    }

    #[test]
    fn learns_then_flags_new_once() {
        let mut b = base();
        let t0 = 1_700_000_000 * SECOND;
        let o = b.observe(&obs("a.example", t0)).unwrap();
        assert_eq!(o.novelty, Novelty::Learning);
        assert!(!o.became_new);
        let o = b.observe(&obs("a.example", t0 + 50 * HOUR)).unwrap();
        assert_eq!(o.novelty, Novelty::Known);
        let o = b.observe(&obs("b.example", t0 + 50 * HOUR)).unwrap();
        assert_eq!((o.novelty, o.became_new), (Novelty::New, true));
        let o = b.observe(&obs("b.example", t0 + 51 * HOUR)).unwrap();
        assert_eq!((o.novelty, o.became_new), (Novelty::New, false));
        let mut expected = obs("c.example", t0 + 51 * HOUR);
        expected.expected = true;
        assert_eq!(b.observe(&expected).unwrap().novelty, Novelty::Known);
    }

    #[test]
    fn triage_by_host_name_and_mac() {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 0,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        b.observe(&obs("b.example", t0)).unwrap();
        let e = b
            .triage(Triage::Accept, "pixel-7a", "b.example")
            .unwrap()
            .unwrap();
        assert_eq!(e.state, "accepted");
        assert_eq!(
            b.observe(&obs("b.example", t0 + HOUR)).unwrap().novelty,
            Novelty::Known
        );
        b.triage(Triage::Flag, "DA:A1:19:42:00:23", "b.example")
            .unwrap();
        assert_eq!(
            b.observe(&obs("b.example", t0 + HOUR)).unwrap().novelty,
            Novelty::Flagged
        );
        assert!(matches!(
            b.triage(Triage::Accept, "nobody", "b.example"),
            Err(TriageError::UnknownDevice(_))
        ));
        assert!(matches!(
            b.triage(Triage::Accept, "pixel-7a", "zzz.example"),
            Err(TriageError::UnknownDestination { .. })
        ));
        b.triage(Triage::Forget, "pixel-7a", "b.example").unwrap();
        let o = b.observe(&obs("b.example", t0 + 2 * HOUR)).unwrap();
        assert_eq!((o.novelty, o.became_new), (Novelty::New, true));
    }

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(parse_mac("da:a1:19:42:00:23"), Some(MAC));
        assert_eq!(parse_mac("DA-A1-19-42-00-23"), Some(MAC));
        for bad in [
            "",
            "da:a1:19:42:00",
            "da:a1:19:42:00:23:01",
            "da:a1:19:42:00:+3",
            "da:a1:19:42:0:023",
            "pixel-7a",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn clip_keeps_names_and_drops_control_characters() {
        let slow = |s: &str| -> String {
            let mut end = s.len().min(MAX_NAME_LEN);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].chars().filter(|c| !c.is_control()).collect()
        };
        let long = "a".repeat(300);
        let multibyte_at_cut = format!("{}é", "a".repeat(MAX_NAME_LEN - 1));
        for s in [
            "www.example.com",
            "a\u{a0}b",
            "caf\u{e9}.example",
            "a\u{85}b",
            "a\u{9f}b",
            "a\u{7f}b",
            "a\nb",
            "\u{0}",
            long.as_str(),
            multibyte_at_cut.as_str(),
        ] {
            assert_eq!(clip(s), slow(s), "{s:?}");
            assert!(!clip(s).chars().any(char::is_control), "{s:?}");
        }
        assert!(matches!(clip("www.example.com"), Cow::Borrowed(_)));
    }

    #[test]
    fn cap_evicts_least_recently_seen_and_retention_expires() {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 0,
            max_destinations: 3,
            retain_ns: 10 * HOUR,
            max_devices: 1,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        for (i, d) in ["a", "b", "c", "d"].iter().enumerate() {
            b.observe(&obs(d, t0 + i as u64 * HOUR)).unwrap();
        }
        assert_eq!(b.evicted, 1);
        assert!(!b.devices[&MAC].destinations.contains_key("a"));
        let mut other = obs("x", t0);
        other.mac = [2, 0, 0, 0, 0, 9];
        assert_eq!(b.observe(&other), None, "device cap");
        b.observe(&obs("d", t0 + 12 * HOUR)).unwrap();
        b.expire();
        assert_eq!(b.expired, 1, "b (last seen t0+1h) is older than 10 h");
        let batch = b.take_dirty();
        assert!(batch.removed.contains(&(MAC, "a".to_owned())));
        assert!(batch.removed.contains(&(MAC, "b".to_owned())));
        assert!(!batch
            .destinations
            .iter()
            .any(|(_, n, _)| n == "a" || n == "b"));
    }

    #[test]
    fn the_cap_evicts_untriaged_destinations_before_triaged_ones() {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 0,
            max_destinations: 3,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        for (i, d) in ["good.example", "bad.example", "c.example"]
            .iter()
            .enumerate()
        {
            b.observe(&obs(d, t0 + i as u64 * HOUR)).unwrap();
        }
        b.triage(Triage::Accept, "DA:A1:19:42:00:23", "good.example")
            .unwrap();
        b.triage(Triage::Flag, "DA:A1:19:42:00:23", "bad.example")
            .unwrap();
        // A flood of new destinations, each more recent than the triaged ones.
        for i in 0..10 {
            b.observe(&obs(&format!("flood{i}.example"), t0 + (10 + i) * HOUR))
                .unwrap();
        }
        let kept = &b.devices[&MAC].destinations;
        assert!(kept.len() <= 3);
        assert_eq!(kept["good.example"].state, State::Accepted);
        assert_eq!(kept["bad.example"].state, State::Flagged);
    }

    /// 1 January 2100, Unix seconds.
    const Y2100: u64 = 4_102_444_800;

    /// A baseline a week old with one entry of each triage state.
    fn triaged() -> (Baseline, u64) {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 0,
            retain_ns: 90 * 24 * HOUR,
            ..Settings::default()
        });
        let t0 = wall_clock_ns() - 7 * 24 * HOUR;
        for d in [
            "kept.example",
            "good.example",
            "bad.example",
            "seen.example",
        ] {
            b.observe(&obs(d, t0)).unwrap();
        }
        b.triage(Triage::Accept, "pixel-7a", "good.example")
            .unwrap();
        b.triage(Triage::Flag, "pixel-7a", "bad.example").unwrap();
        (b, t0)
    }

    fn names(b: &Baseline) -> Vec<String> {
        let mut v: Vec<String> = b.devices[&MAC]
            .destinations
            .keys()
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_flow_dated_2100_is_clamped_and_retention_keeps_the_baseline() {
        let (mut b, _) = triaged();
        b.expire();
        let o = b.observe(&obs("future.example", Y2100 * SECOND));
        assert!(o.is_some());
        assert_eq!(b.clamped, 2, "its first and last packet times");
        let limit = wall_clock_ns() + CLOCK_MARGIN_NS;
        let future = &b.devices[&MAC].destinations["future.example"];
        assert!(future.last_seen_ns <= limit, "{}", future.last_seen_ns);
        assert!(b.devices[&MAC].last_seen_ns <= limit);
        b.expired_at_ns = 0;
        b.expire();
        assert_eq!(b.expired, 0);
        assert_eq!(
            names(&b),
            [
                "bad.example",
                "future.example",
                "good.example",
                "kept.example",
                "seen.example"
            ]
        );
    }

    #[test]
    fn retention_never_forgets_what_the_user_accepted_or_flagged() {
        let (mut b, t0) = triaged();
        // A year later (packet time, within this machine's clock).
        b.observe(&obs("later.example", t0 + 6 * 24 * HOUR))
            .unwrap();
        b.retain_for_test(HOUR);
        b.expire();
        assert_eq!(b.expired, 2, "the two untriaged entries of a week ago");
        assert_eq!(names(&b), ["bad.example", "good.example", "later.example"]);
        let states: Vec<State> = ["bad.example", "good.example"]
            .iter()
            .map(|d| b.devices[&MAC].destinations[*d].state)
            .collect();
        assert_eq!(states, [State::Flagged, State::Accepted]);
    }

    #[test]
    fn a_store_row_from_the_future_is_clamped_on_load() {
        let (b, _) = triaged();
        let mut device = b.devices[&MAC].clone();
        for d in device.destinations.values_mut() {
            d.last_seen_ns = Y2100 * SECOND;
        }
        device.last_seen_ns = Y2100 * SECOND;
        let mut loaded = Baseline::new(b.settings());
        loaded.load_device(MAC, device);
        let limit = wall_clock_ns() + CLOCK_MARGIN_NS;
        assert!(loaded.now_ns <= limit);
        assert_eq!(loaded.clamped, 5);
        assert!(loaded.devices[&MAC]
            .destinations
            .values()
            .all(|d| d.last_seen_ns <= limit));
    }

    #[test]
    fn import_checks_every_number_and_names_the_entry() {
        let (mut b, t0) = triaged();
        let good = b.entries(None).unwrap();
        let before = b.entries(None).unwrap();
        let t0 = t0 as f64 / SECOND as f64;
        type Spoil = fn(&mut Entry);
        let spoiled: [(Spoil, &str); 9] = [
            (|e| e.last_seen = Y2100 as f64, "last_seen"),
            (|e| e.first_seen = 1e300, "first_seen"),
            (|e| e.first_seen = -5.0, "first_seen -5"),
            (|e| e.last_seen = f64::NAN, "last_seen NaN"),
            (|e| e.last_seen = f64::INFINITY, "last_seen inf"),
            (|e| e.flows = u64::MAX, "flows 18446744073709551615"),
            (|e| e.bytes_down = 1 << 63, "bytes_down"),
            (|e| e.state = "trusted".into(), "state \"trusted\""),
            (|e| e.mac = "nope".into(), "mac \"nope\""),
        ];
        for (spoil, said) in spoiled {
            let mut list = good.clone();
            list.push(Entry {
                destination: "new.example".into(),
                first_seen: t0,
                last_seen: t0,
                ..good[0].clone()
            });
            spoil(&mut list[4]);
            let err = b.import(&list).unwrap_err().to_string();
            assert!(err.contains("entry 5 ("), "{err}");
            assert!(err.contains("\"new.example\""), "{err}");
            assert!(err.contains(said), "{said}: {err}");
            assert_eq!(b.entries(None).unwrap(), before, "nothing taken: {err}");
        }
        // A clean import is taken.
        let mut list = good.clone();
        list[0].flows = MAX_COUNTER;
        assert_eq!(b.import(&list), Ok(4));
    }

    #[test]
    fn a_host_name_is_a_claim_that_gives_nothing_of_its_owner() {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 0,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        b.configure_host_name("pixel-7a", "My phone");
        b.observe(&obs("a.example", t0)).unwrap();
        // Another station, later, sends the same DHCP name.
        const ROGUE: [u8; 6] = [2, 0, 0, 0, 0, 0x66];
        b.observe(&Observation {
            mac: ROGUE,
            ..obs("a.example", t0 + HOUR)
        })
        .unwrap();
        assert_eq!(b.display_name(&MAC), "My phone");
        assert_eq!(b.display_name(&ROGUE), "pixel-7a (02:00:00:00:00:66)");
        let shown: Vec<(String, String)> = b
            .entries(None)
            .unwrap()
            .into_iter()
            .map(|e| (e.mac, e.device))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "02:00:00:00:00:66".into(),
                    "pixel-7a (02:00:00:00:00:66)".into()
                ),
                ("da:a1:19:42:00:23".into(), "My phone".into()),
            ]
        );
        // Triage by that name says which devices use it and changes nothing.
        let err = b
            .triage(Triage::Accept, "pixel-7a", "a.example")
            .unwrap_err();
        assert_eq!(
            err,
            TriageError::Ambiguous {
                name: "pixel-7a".into(),
                macs: vec!["02:00:00:00:00:66".into(), "da:a1:19:42:00:23".into()],
            }
        );
        assert!(err
            .to_string()
            .contains("02:00:00:00:00:66, da:a1:19:42:00:23"));
        assert!(b.triage(Triage::Flag, "My phone", "a.example").is_err());
        assert!(b.entries(Some("pixel-7a")).is_err());
        assert!(b.entries(None).unwrap().iter().all(|e| e.state == "new"));
        // By MAC it works.
        b.triage(Triage::Accept, "da:a1:19:42:00:23", "a.example")
            .unwrap();
        // An export and import keeps the shown-with-MAC name off the rogue.
        let exported = b.entries(None).unwrap();
        let mut again = Baseline::new(b.settings());
        again.import(&exported).unwrap();
        assert!(again.devices[&ROGUE].host_names.is_empty());
    }
}
