//! What the capture side shares with the exporter, and the aggregation of
//! flows into labelled totals.
//!
//! Metrics are built when scraped: active flows are read from the flow table,
//! finished flows were folded into `Retired` totals when they left it. Every
//! series is reported as the maximum of what it was last time and what it is
//! now, so a counter never goes backwards, whatever races a scrape has with
//! the capture thread moving a flow from active to finished.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use tetherscope_classify::{Catalog, Classification, Purpose, Verdict as ClassVerdict};
use tetherscope_flow::{DeviceTable, Flow, FlowTable, Pipeline, Stats};

use crate::facts;
use crate::record::FlowRecord;

/// Label value for domains past the cap.
pub const OTHER: &str = "other";
/// Label value for flows without a known device.
pub const UNKNOWN_DEVICE: &str = "unknown";

/// Labels of one flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowLabels {
    /// DHCP name or MAC.
    pub device: String,
    /// The bounded site label.
    pub domain: String,
    /// Purpose.
    pub purpose: &'static str,
    /// Expected or not.
    pub verdict: &'static str,
}

/// Per-label-set totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Flows.
    pub flows: u64,
    /// Bytes client → server.
    pub bytes_up: u64,
    /// Bytes server → client.
    pub bytes_down: u64,
    /// Bytes of cleartext flows.
    pub cleartext_bytes: u64,
    /// Bytes of cleartext flows the catalog does not document.
    pub unknown_cleartext_bytes: u64,
    /// Bytes of flows nothing could name.
    pub unnamed_bytes: u64,
    /// DNS flows with a question.
    pub dns_queries: u64,
    /// Capture time of the earliest flow, Unix nanoseconds (0: none).
    pub first_seen_ns: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.flows += o.flows;
        self.bytes_up += o.bytes_up;
        self.bytes_down += o.bytes_down;
        self.cleartext_bytes += o.cleartext_bytes;
        self.unknown_cleartext_bytes += o.unknown_cleartext_bytes;
        self.unnamed_bytes += o.unnamed_bytes;
        self.dns_queries += o.dns_queries;
        self.first_seen_ns = match (self.first_seen_ns, o.first_seen_ns) {
            (0, t) | (t, 0) => t,
            (a, b) => a.min(b),
        };
    }
}

/// Live capture status.
#[derive(Debug, Default)]
pub struct CaptureStatus {
    /// Interface name.
    pub interface: Mutex<String>,
    /// Whether a capture handle is open.
    pub attached: AtomicBool,
    /// Packets seen by libpcap (cumulative across re-attachments).
    pub packets: AtomicU64,
    /// Dropped in the kernel buffer (cumulative).
    pub dropped_kernel: AtomicU64,
    /// Dropped by the interface (cumulative).
    pub dropped_interface: AtomicU64,
    /// Wall-clock time of the last packet, Unix nanoseconds.
    pub last_packet_unix_ns: AtomicU64,
    /// Times the capture was (re)attached.
    pub attachments: AtomicU64,
}

/// Everything the exporter reads.
pub struct Shared {
    /// Active flows.
    pub table: Arc<FlowTable>,
    /// Devices.
    pub devices: Arc<DeviceTable>,
    /// Pipeline counters.
    pub stats: Arc<Stats>,
    /// The catalog and active profile.
    pub catalog: Arc<Catalog>,
    /// Capture status.
    pub capture: CaptureStatus,
    /// Most distinct `domain` label values.
    pub max_domains: usize,
    inner: Mutex<Inner>,
    /// Serialises scrapes and holds what the last one reported per series,
    /// so counters never go backwards.
    pub(crate) reported: Mutex<HashMap<(&'static str, Vec<String>), u64>>,
    /// Finished flows folded for the page (`crate::view`).
    view: Mutex<crate::view::Aggregate>,
}

#[derive(Default)]
struct Inner {
    retired: HashMap<FlowLabels, Totals>,
    domains: HashSet<String>,
    overflow: u64,
    recent: VecDeque<FlowRecord>,
}

/// Finished flows kept for `/api/flows`.
const RECENT: usize = 1000;

impl Shared {
    /// Shares a pipeline's tables with the exporter.
    pub fn new(pipeline: &Pipeline, catalog: Arc<Catalog>, max_domains: usize) -> Self {
        Shared {
            table: pipeline.table.clone(),
            devices: pipeline.devices.clone(),
            stats: pipeline.stats.clone(),
            catalog,
            capture: CaptureStatus::default(),
            max_domains,
            inner: Mutex::new(Inner::default()),
            reported: Mutex::new(HashMap::new()),
            view: Mutex::new(crate::view::Aggregate::live()),
        }
    }

    /// Finished flows folded for the page so far.
    pub fn view_aggregate(&self) -> MutexGuard<'_, crate::view::Aggregate> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token the page embeds for state-changing requests, when this
    /// build has a baseline store to change.
    pub fn page_token(&self) -> Option<&str> {
        None
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device label of a flow's client MAC. Untracked MACs (the device
    /// table is full) share one label.
    fn device_label(&self, mac: Option<[u8; 6]>) -> String {
        match mac {
            None => UNKNOWN_DEVICE.to_owned(),
            Some(m) => self
                .devices
                .label(&m)
                .map_or_else(|| OTHER.to_owned(), |l| sanitize(&l)),
        }
    }

    /// Labels (domain not yet folded) and totals of one flow.
    fn measure(&self, flow: &Flow) -> (FlowLabels, Totals) {
        let class = facts::classify(&self.catalog, flow);
        let (domain, purpose, verdict) = class_labels(&class);
        let labels = FlowLabels {
            device: self.device_label(flow.client_mac),
            domain,
            purpose,
            verdict,
        };
        (labels, totals(flow, class.purpose, class.cleartext_known))
    }

    /// Folds the domain label into `other` once `max_domains` values exist.
    fn admit(&self, inner: &mut Inner, mut labels: FlowLabels, count_overflow: bool) -> FlowLabels {
        if !inner.domains.contains(&labels.domain) {
            if inner.domains.len() < self.max_domains {
                inner.domains.insert(labels.domain.clone());
            } else {
                if count_overflow {
                    inner.overflow += 1;
                }
                labels.domain = OTHER.to_owned();
            }
        }
        labels
    }

    /// Folds a finished flow into the retired totals and the recent list;
    /// returns its record (for the flow log).
    pub fn retire(&self, flow: &Flow) -> FlowRecord {
        let class = facts::classify(&self.catalog, flow);
        let record = FlowRecord::new(flow, facts::verdict_fields(&class));
        let (labels, totals) = self.measure(flow);
        let mut inner = self.lock();
        let labels = self.admit(&mut inner, labels, true);
        inner.retired.entry(labels).or_default().add(&totals);
        if inner.recent.len() >= RECENT {
            inner.recent.pop_front();
        }
        inner.recent.push_back(record.clone());
        drop(inner);
        self.view_aggregate()
            .add(&crate::view::Seen::of(flow), &record);
        record
    }

    /// Active flows and recently finished ones, as records.
    pub fn flow_records(&self) -> Vec<FlowRecord> {
        let mut out: Vec<FlowRecord> = self.lock().recent.iter().cloned().collect();
        self.table.for_each(|f| {
            let class = facts::classify(&self.catalog, f);
            out.push(FlowRecord::new(f, facts::verdict_fields(&class)));
        });
        out
    }

    /// Totals per label set (finished + active flows), active flows per
    /// device, and the overflow count. Active flows are measured without
    /// holding any lock the capture thread needs.
    ///
    /// Flows with the same classification inputs share one classification,
    /// and classifications with the same labels one label set, so a scrape
    /// classifies each distinct destination once, allocates nothing per
    /// flow, and aggregates per label set.
    pub fn snapshot(&self) -> Snapshot {
        let mut memo = {
            let inner = self.lock();
            ClassMemo {
                full: inner.domains.len() >= self.max_domains,
                admitted: inner.domains.clone(),
                ..ClassMemo::default()
            }
        };
        // (client MAC, label id) → (totals, active flows)
        let mut per_key: HashMap<ActiveKey, (Totals, u64), ahash::RandomState> = HashMap::default();
        self.table.for_each(|f| {
            let class = memo.class_of(&self.catalog, f);
            let (label, purpose, known) = memo.classes[class as usize];
            let entry = per_key.entry((f.client_mac, label)).or_default();
            entry.0.add(&totals(f, purpose, known));
            entry.1 += 1;
        });
        let mut devices: HashMap<Option<[u8; 6]>, String> = HashMap::new();
        let mut inner = self.lock();
        let mut totals = inner.retired.clone();
        let mut active: HashMap<String, u64> = HashMap::new();
        for ((mac, label), (t, flows)) in per_key {
            let device = devices
                .entry(mac)
                .or_insert_with(|| self.device_label(mac))
                .clone();
            let (domain, purpose, verdict) = memo.labels[label as usize].clone();
            let labels = FlowLabels {
                device,
                domain,
                purpose,
                verdict,
            };
            // Overflow is counted once per flow, when it finishes.
            let labels = self.admit(&mut inner, labels, false);
            *active.entry(labels.device.clone()).or_default() += flows;
            totals.entry(labels).or_default().add(&t);
        }
        Snapshot {
            totals,
            active,
            overflow: inner.overflow,
        }
    }
}

/// Active flows are summed by client MAC and label id.
type ActiveKey = (Option<[u8; 6]>, u32);

/// Domain, purpose and verdict labels.
type ClassLabels = (String, &'static str, &'static str);

/// The totals one flow contributes.
fn totals(flow: &Flow, purpose: Purpose, cleartext_known: bool) -> Totals {
    let bytes = flow.bytes_up + flow.bytes_down;
    let cleartext = flow.cleartext() == Some(true);
    let unnamed = flow.domain().is_none()
        && flow.app.name() != Some("dns")
        && !matches!(
            purpose,
            Purpose::LocalNetwork | Purpose::Dns | Purpose::EncryptedDns
        );
    Totals {
        flows: 1,
        bytes_up: flow.bytes_up,
        bytes_down: flow.bytes_down,
        cleartext_bytes: if cleartext { bytes } else { 0 },
        unknown_cleartext_bytes: if cleartext && !cleartext_known {
            bytes
        } else {
            0
        },
        unnamed_bytes: if unnamed { bytes } else { 0 },
        dns_queries: u64::from(flow.names.as_deref().is_some_and(|n| n.dns_query.is_some())),
        first_seen_ns: flow.first_seen,
    }
}

/// The domain, purpose and verdict labels of a classification.
fn class_labels(class: &Classification<'_>) -> ClassLabels {
    (
        sanitize(&class.site),
        class.purpose.as_str(),
        match class.verdict {
            ClassVerdict::Expected => "expected",
            ClassVerdict::Unexpected => "unexpected",
        },
    )
}

/// What classification reads from a flow, owned, to recognise repeats.
#[derive(PartialEq, Eq)]
struct ClassInputs {
    transport: tetherscope_flow::Transport,
    server_port: u16,
    server_is_local: bool,
    app: Option<&'static str>,
    domain: Option<Box<str>>,
    /// Identity of the shared DNS answer (its CNAME chain matters too).
    resolution: Option<*const tetherscope_flow::dns_cache::Resolution>,
    http_path: Option<Box<str>>,
}

/// Classifications of one scrape, by the inputs that decide them.
///
/// Ids whose inputs share a hash are chained through `next`, so a new
/// destination costs one push per vector rather than an allocation of its
/// own. Classifications that end in the same labels share a label id, and
/// once the `domain` label set is full a domain outside it is `other` from
/// the start: a flood of distinct names aggregates into a handful of label
/// sets during the pass over the table, not after it.
#[derive(Default)]
struct ClassMemo {
    /// First classification id per input hash.
    by_hash: ahash::HashMap<u64, u32>,
    /// Per id: its inputs and the next id with the same hash.
    inputs: Vec<(ClassInputs, u32)>,
    /// Per id: label id, purpose and cleartext-known.
    classes: Vec<(u32, Purpose, bool)>,
    /// Label sets by label id, and the reverse.
    labels: Vec<ClassLabels>,
    label_ids: ahash::HashMap<ClassLabels, u32>,
    /// `domain` label values admitted when the scrape began, and whether
    /// the set was full then (it never shrinks, so it stays full).
    admitted: HashSet<String>,
    full: bool,
    hasher: ahash::RandomState,
}

/// End of a chain of ids.
const NO_CLASS: u32 = u32::MAX;

impl ClassMemo {
    fn class_of(&mut self, catalog: &Catalog, f: &Flow) -> u32 {
        let names = f.names.as_deref();
        let domain = f.domain().map(|(d, _)| d);
        let resolution = names
            .and_then(|n| n.resolution.as_ref())
            .map(std::sync::Arc::as_ptr);
        let http_path = names.and_then(|n| n.http_path.as_deref());
        let server_is_local = facts::is_local(f.server.ip());
        let app = f.app.name();
        let hash = self.hasher.hash_one((
            f.transport,
            f.server.port(),
            server_is_local,
            app,
            domain,
            resolution,
            http_path,
        ));
        let same = |k: &ClassInputs| {
            k.transport == f.transport
                && k.server_port == f.server.port()
                && k.server_is_local == server_is_local
                && k.app == app
                && k.domain.as_deref() == domain
                && k.resolution == resolution
                && k.http_path.as_deref() == http_path
        };
        let head = self.by_hash.get(&hash).copied().unwrap_or(NO_CLASS);
        let mut at = head;
        while at != NO_CLASS {
            let (inputs, next) = &self.inputs[at as usize];
            if same(inputs) {
                return at;
            }
            at = *next;
        }
        let class = facts::classify(catalog, f);
        let id = self.classes.len() as u32;
        let mut labels = class_labels(&class);
        if self.full && !self.admitted.contains(&labels.0) {
            labels.0 = OTHER.to_owned();
        }
        let label = match self.label_ids.get(&labels) {
            Some(&label) => label,
            None => {
                let label = self.labels.len() as u32;
                self.labels.push(labels.clone());
                self.label_ids.insert(labels, label);
                label
            }
        };
        self.classes
            .push((label, class.purpose, class.cleartext_known));
        self.inputs.push((
            ClassInputs {
                transport: f.transport,
                server_port: f.server.port(),
                server_is_local,
                app,
                domain: domain.map(Into::into),
                resolution,
                http_path: http_path.map(Into::into),
            },
            head,
        ));
        self.by_hash.insert(hash, id);
        id
    }
}

/// A consistent view for one scrape.
pub struct Snapshot {
    /// Totals per label set.
    pub totals: HashMap<FlowLabels, Totals>,
    /// Active flows per device.
    pub active: HashMap<String, u64>,
    /// Flows whose domain was folded into `other`.
    pub overflow: u64,
}

/// Makes a label value safe: control characters and quotes removed, length
/// capped. (The Prometheus text encoder escapes too; this keeps values short
/// and readable.)
pub fn sanitize(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(128)
        .collect();
    if clean.is_empty() {
        "unnamed".to_owned()
    } else {
        clean
    }
}
