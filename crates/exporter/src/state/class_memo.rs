//! The class memo: classifications of one scrape, by the inputs that
//! decide them, so each distinct destination is classified once.

use std::borrow::Cow;

use tetherscope_classify::{Purpose, Verdict as ClassVerdict};
use tetherscope_flow::flow::NameSource;
use tetherscope_flow::Flow;

use super::budget::is_reserved;
use super::labels::{
    domain_label_ref, label_name, owner_label, rcode_key, rcode_name, service_label, verdict_label,
    DomainLabel, FlowLabels, OTHER, UNKNOWN_OWNER,
};
use crate::annotate::Annotator;
use crate::facts;

/// The labels a classification gives, besides the device, as small ids:
/// hashed and compared once per new classification, so free of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LabelKey {
    /// Index into [`ClassMemo::domains`].
    domain: u32,
    /// Index into [`ClassMemo::services`].
    service: u32,
    /// Index into [`ClassMemo::owners`].
    owner: u32,
    purpose: Purpose,
    unexpected: bool,
    /// The `rcode` label itself ([`rcode_name`]): response codes that
    /// share a label share a label set.
    rcode: &'static str,
}

/// What classification and labelling read from a flow, to recognise
/// repeats. Strings live in [`ClassMemo::text`], so a new classification
/// costs no allocation of its own.
struct ClassInputs {
    transport: tetherscope_flow::Transport,
    server_port: u16,
    server_is_local: bool,
    app: tetherscope_flow::AppProto,
    name: Option<TextRange>,
    /// Identity of the shared DNS answer (its CNAME chain matters too).
    resolution: Option<*const tetherscope_flow::dns_cache::Resolution>,
    http_path: Option<TextRange>,
    rcode: u16,
    /// Identity of the device's own profile, if it has one.
    profile: Option<*const tetherscope_classify::Profile>,
}

/// A string kept in [`ClassMemo::text`]: start and end.
type TextRange = (u32, u32);

/// Classifications of one scrape, by the inputs that decide them.
///
/// Ids whose inputs share a hash are chained through `next`, so a new
/// destination costs one push per vector rather than an allocation of its
/// own. Classifications that end in the same labels share a label id, and
/// once the `domain` label set is full an expected domain outside it is
/// `other` from the start: a flood of distinct names aggregates into a
/// handful of label sets during the pass over the table, not after it.
#[derive(Default)]
pub(super) struct ClassMemo {
    /// First classification id per input hash.
    by_hash: ahash::HashMap<u64, u32>,
    /// Per id: its inputs and the next id with the same hash.
    inputs: Vec<(ClassInputs, u32)>,
    /// The strings of `inputs`, end to end.
    text: String,
    /// Per id: what the flows of that classification are labelled.
    pub(super) classes: Vec<Class>,
    /// Label sets by label id, and the reverse.
    labels: Vec<LabelKey>,
    label_ids: ahash::HashMap<LabelKey, u32>,
    /// `domain` values by [`LabelKey::domain`] (`other` first), and the
    /// reverse. Only values that keep their name are here.
    domains: Vec<String>,
    domain_ids: ahash::HashMap<String, u32>,
    /// `service` values by [`LabelKey::service`] (`""` first).
    services: RuleValues,
    /// `owner` values by [`LabelKey::owner`] (`unknown` first).
    owners: RuleValues,
    /// `domain` label values admitted when the scrape began, with their
    /// admission times.
    admitted: ahash::HashMap<String, u64>,
    /// How many more classifications of values without a place may keep
    /// their name for admission to decide; after that, newcomers fold here,
    /// so a burst of new names costs at most this many label sets.
    newcomer_places: usize,
    /// Packet time of the previous scrape: flows started later are
    /// newcomers, which admission may give a place.
    pub(super) since: u64,
    domain_label: DomainLabel,
    hasher: ahash::RandomState,
}

/// How the flows of one classification are labelled.
#[derive(Debug, Clone, Copy)]
pub(super) struct Class {
    /// Label id under the flow's own domain.
    pub(super) label: u32,
    /// Label id under `other`.
    pub(super) folded: u32,
    pub(super) purpose: Purpose,
    pub(super) cleartext_known: bool,
    /// When the domain was admitted, if it holds a place.
    pub(super) admitted_at: Option<u64>,
}

/// End of a chain of ids.
const NO_CLASS: u32 = u32::MAX;

/// [`LabelKey::domain`] of `other`.
const OTHER_ID: u32 = 0;

impl ClassMemo {
    /// A memo for one scrape.
    pub(super) fn new(
        admitted: ahash::HashMap<String, u64>,
        newcomer_places: usize,
        since: u64,
        domain_label: DomainLabel,
        expected_classes: usize,
    ) -> Self {
        let mut memo = ClassMemo {
            admitted,
            newcomer_places,
            since,
            domain_label,
            ..ClassMemo::default()
        };
        memo.by_hash.reserve(expected_classes);
        memo.inputs.reserve(expected_classes);
        memo.classes.reserve(expected_classes);
        memo.domains.push(OTHER.to_owned());
        memo.domain_ids.insert(OTHER.to_owned(), OTHER_ID);
        memo.services = RuleValues::new(String::new());
        memo.owners = RuleValues::new(UNKNOWN_OWNER.to_owned());
        memo
    }

    /// The classification id of a flow whose domain is `domain`
    /// ([`Flow::domain`], which the caller needs too).
    pub(super) fn class_of(
        &mut self,
        annotator: &Annotator<'_>,
        f: &Flow,
        domain: Option<(&str, NameSource)>,
    ) -> u32 {
        let names = f.names.as_deref();
        // A device's own profile decides its verdicts, as in its records.
        let profile = annotator.own_profile(f.client_mac);
        let profile_id = profile.map(std::ptr::from_ref);
        let name = label_name(f, domain.map(|(d, _)| d));
        let resolution = names
            .and_then(|n| n.resolution.as_ref())
            .map(std::sync::Arc::as_ptr);
        let http_path = names.and_then(|n| n.http_path.as_deref());
        let server_is_local = facts::is_on_local_network(f.server.ip());
        // Enums and numbers, not strings: this runs for every flow.
        let app = f.app;
        let rcode = rcode_key(f);
        let hash = self.hasher.hash_one((
            f.transport,
            f.server.port(),
            server_is_local,
            app,
            name,
            resolution,
            http_path,
            rcode,
            profile_id,
        ));
        let text = &self.text;
        let stored = |r: Option<TextRange>| r.map(|(a, b)| &text[a as usize..b as usize]);
        let same = |k: &ClassInputs| {
            k.transport == f.transport
                && k.server_port == f.server.port()
                && k.server_is_local == server_is_local
                && k.app == app
                && k.resolution == resolution
                && k.rcode == rcode
                && k.profile == profile_id
                && stored(k.name) == name
                && stored(k.http_path) == http_path
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
        let mut class = facts::judge(annotator.catalog(), f, domain);
        if let Some(p) = profile {
            class.verdict = crate::annotate::verdict_under(p, class.rule);
        }
        let id = self.classes.len() as u32;
        let value = domain_label_ref(name, self.domain_label);
        let admitted_at = self.admitted.get(&*value).copied();
        let mut own = true;
        if admitted_at.is_none() && !is_reserved(&value) {
            // Past a budget of names without a place, newcomers fold here.
            own = self.newcomer_places > 0;
            self.newcomer_places = self.newcomer_places.saturating_sub(1);
        }
        let key = LabelKey {
            domain: OTHER_ID,
            service: self.services.id(class.rule, service_label),
            owner: self.owners.id(class.rule, owner_label),
            purpose: class.purpose,
            unexpected: class.verdict == ClassVerdict::Unexpected,
            rcode: rcode_name(rcode),
        };
        let folded = self.label_id(key);
        let label = if own {
            let domain = self.domain_id(value);
            self.label_id(LabelKey { domain, ..key })
        } else {
            folded
        };
        self.classes.push(Class {
            label,
            folded,
            purpose: class.purpose,
            cleartext_known: class.cleartext_known,
            admitted_at,
        });
        let name = name.map(|n| self.keep(n));
        let http_path = http_path.map(|p| self.keep(p));
        self.inputs.push((
            ClassInputs {
                transport: f.transport,
                server_port: f.server.port(),
                server_is_local,
                app,
                name,
                resolution,
                http_path,
                rcode,
                profile: profile_id,
            },
            head,
        ));
        self.by_hash.insert(hash, id);
        id
    }

    /// Appends a string to `text`.
    fn keep(&mut self, s: &str) -> TextRange {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        (start, self.text.len() as u32)
    }

    /// The id of a `domain` value, new or known.
    fn domain_id(&mut self, value: Cow<'_, str>) -> u32 {
        if let Some(&id) = self.domain_ids.get(&*value) {
            return id;
        }
        let id = self.domains.len() as u32;
        self.domains.push(value.clone().into_owned());
        self.domain_ids.insert(value.into_owned(), id);
        id
    }

    /// The id of a label set, new or known.
    fn label_id(&mut self, key: LabelKey) -> u32 {
        let labels = &mut self.labels;
        *self.label_ids.entry(key).or_insert_with(|| {
            labels.push(key);
            (labels.len() - 1) as u32
        })
    }

    /// The labels of a label id, with the device's.
    pub(super) fn flow_labels(&self, label: u32, device: String) -> FlowLabels {
        let key = self.labels[label as usize];
        FlowLabels {
            device,
            domain: self.domains[key.domain as usize].clone(),
            service: self.services.values[key.service as usize].clone(),
            owner: self.owners.values[key.owner as usize].clone(),
            purpose: key.purpose.as_str(),
            verdict: verdict_label(key.unexpected),
            rcode: key.rcode,
        }
    }
}

/// The values of one label a rule decides (`service`, `owner`), as small
/// ids: each rule is looked up once per scrape, and rules that give the same
/// value share its id.
#[derive(Default)]
struct RuleValues {
    /// Values by id; id 0 is the value of flows no rule matches.
    values: Vec<String>,
    /// A rule's address to its value's id.
    by_rule: ahash::HashMap<*const tetherscope_classify::Rule, u32>,
    /// A value to its id.
    by_value: ahash::HashMap<String, u32>,
}

impl RuleValues {
    /// Values whose id 0 is `unmatched`.
    fn new(unmatched: String) -> Self {
        let mut v = RuleValues::default();
        v.by_value.insert(unmatched.clone(), 0);
        v.values.push(unmatched);
        v
    }

    /// The id of the value `label` gives `rule`; 0 without a rule.
    fn id(
        &mut self,
        rule: Option<&tetherscope_classify::Rule>,
        label: fn(Option<&tetherscope_classify::Rule>) -> String,
    ) -> u32 {
        let Some(rule) = rule else { return 0 };
        if let Some(&id) = self.by_rule.get(&(rule as *const _)) {
            return id;
        }
        let value = label(Some(rule));
        let values = &mut self.values;
        let id = *self.by_value.entry(value.clone()).or_insert_with(|| {
            values.push(value);
            (values.len() - 1) as u32
        });
        self.by_rule.insert(rule as *const _, id);
        id
    }
}
