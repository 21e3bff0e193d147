//! The labels destinations share: purposes, owners and service names, each
//! combination kept once.

use std::sync::Arc;

use super::{clip, HashMap};

/// What the catalog said of a destination's latest flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// Purpose.
    pub purpose: Box<str>,
    /// Owner.
    pub owner: Option<Box<str>>,
    /// Catalog display name of the matching rule.
    pub service: Option<Box<str>>,
}

impl Labels {
    /// Labels of their own (not shared with other destinations), clipped
    /// like every text the baseline keeps (imports bring any text).
    pub fn new(purpose: &str, owner: Option<&str>, service: Option<&str>) -> Arc<Labels> {
        Arc::new(Labels {
            purpose: clip(purpose).into(),
            owner: owner.map(|s| clip(s).into()),
            service: service.map(|s| clip(s).into()),
        })
    }

    /// Whether these are `purpose`, `owner` and `service`.
    pub fn are(&self, purpose: &str, owner: Option<&str>, service: Option<&str>) -> bool {
        *self.purpose == *purpose
            && self.owner.as_deref() == owner
            && self.service.as_deref() == service
    }
}

/// Purposes, owners and service names: a handful of combinations repeated
/// over thousands of destinations, each kept once and shared. A flow
/// compares its labels with ones every destination shares (warm in the
/// cache) rather than with copies of its own, and a new destination
/// allocates none.
#[derive(Debug, Default)]
pub(super) struct Vocabulary {
    by_hash: HashMap<u64, Vec<Arc<Labels>>>,
    pub(super) len: usize,
    /// Labels handed out unshared since the last pruning.
    unshared: usize,
    /// Pruned at least once.
    pruned: bool,
    hasher: ahash::RandomState,
}

impl Vocabulary {
    /// Combinations kept; imports can bring any text, so past this (and
    /// once those no destination uses any more are dropped) labels are no
    /// longer shared: still correct, just not deduplicated.
    pub(super) const MAX: usize = 4096;

    /// Drops the labels only the vocabulary still holds. Walks everything,
    /// so it runs the first time the vocabulary is full and then only after
    /// a quarter of its size was handed out unshared.
    fn prune(&mut self) {
        self.by_hash.retain(|_, shared| {
            shared.retain(|l| Arc::strong_count(l) > 1);
            !shared.is_empty()
        });
        self.len = self.by_hash.values().map(Vec::len).sum();
        self.unshared = 0;
        self.pruned = true;
    }

    pub(super) fn get(
        &mut self,
        purpose: &str,
        owner: Option<&str>,
        service: Option<&str>,
    ) -> Arc<Labels> {
        // Looked up as kept (see `Labels::new`), so an over-long label
        // finds its clipped self instead of adding another.
        let (purpose, owner, service) = (clip(purpose), owner.map(clip), service.map(clip));
        let (purpose, owner, service) = (&*purpose, owner.as_deref(), service.as_deref());
        let hash = self.hasher.hash_one((purpose, owner, service));
        let same = |l: &&Arc<Labels>| l.are(purpose, owner, service);
        if let Some(shared) = self.by_hash.get(&hash).and_then(|v| v.iter().find(same)) {
            return shared.clone();
        }
        let labels = Labels::new(purpose, owner, service);
        let first_time_full = !self.pruned && self.len >= Self::MAX;
        if first_time_full || self.unshared >= Self::MAX / 4 {
            self.prune();
        }
        if self.len < Self::MAX {
            self.by_hash.entry(hash).or_default().push(labels.clone());
            self.len += 1;
        } else {
            self.unshared += 1;
        }
        labels
    }

    /// `slot` set to these labels, unless it already holds them.
    pub(super) fn set(
        &mut self,
        slot: &mut Arc<Labels>,
        purpose: &str,
        owner: Option<&str>,
        service: Option<&str>,
    ) {
        if !slot.are(purpose, owner, service) {
            *slot = self.get(purpose, owner, service);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::MAX_NAME_LEN;
    use super::*;

    #[test]
    fn vocabulary_is_bounded_and_drops_labels_nobody_uses() {
        let mut v = Vocabulary::default();
        let kept: Vec<Arc<Labels>> = (0..100)
            .map(|i| v.get(&format!("kept-{i}"), None, None))
            .collect();
        // A flood of labels nothing keeps (an import of junk, say).
        for i in 0..3 * Vocabulary::MAX {
            drop(v.get(&format!("junk-{i}"), Some("owner"), None));
            assert!(v.len <= Vocabulary::MAX);
        }
        // Sharing resumes: the junk is dropped within a quarter of the
        // vocabulary's size of requests.
        let mut tries = 0;
        while !Arc::ptr_eq(
            &v.get("after-flood", None, None),
            &v.get("after-flood", None, None),
        ) {
            tries += 1;
            assert!(tries <= Vocabulary::MAX / 4, "labels no longer shared");
        }
        // What destinations still hold is still shared.
        for (i, k) in kept.iter().enumerate() {
            assert!(Arc::ptr_eq(k, &v.get(&format!("kept-{i}"), None, None)));
        }
        // Text is kept clipped, and found again by its unclipped form.
        let long = "p".repeat(400);
        let a = v.get(&long, Some("bad\u{7}owner"), None);
        assert_eq!(a.purpose.len(), MAX_NAME_LEN);
        assert_eq!(a.owner.as_deref(), Some("badowner"));
        assert!(Arc::ptr_eq(&a, &v.get(&long, Some("bad\u{7}owner"), None)));
    }
}
