//! Pages of the baseline for `/api/baseline`, at a cost that grows with the
//! page and not with the baseline.
//!
//! The baseline's lock is the one the capture thread takes for every
//! finished flow, so a page must not walk every destination under it. The
//! [`PageIndex`] keeps every (state, MAC, destination) in order, updated
//! wherever a destination appears, changes state or goes; a page is then a
//! range walk of at most `limit + 1` keys per state.

use std::collections::BTreeSet;
use std::ops::Bound;

use compact_str::CompactString;

use crate::State;

/// Every state, in the index's order.
const STATES: [State; 4] = [State::Baseline, State::Accepted, State::New, State::Flagged];

/// Every destination of every device, ordered by state, then MAC, then
/// destination.
#[derive(Debug, Default)]
pub(crate) struct PageIndex(BTreeSet<(State, [u8; 6], CompactString)>);

/// One entry a page lists: its MAC and destination.
pub(crate) type PageKey<'a> = ([u8; 6], &'a str);

impl PageIndex {
    /// A destination appeared.
    pub(crate) fn insert(&mut self, mac: [u8; 6], name: &str, state: State) {
        self.0.insert((state, mac, CompactString::from(name)));
    }

    /// A destination went.
    pub(crate) fn remove(&mut self, mac: [u8; 6], name: &str, state: State) {
        self.0.remove(&(state, mac, CompactString::from(name)));
    }

    /// A destination changed state.
    pub(crate) fn restate(&mut self, mac: [u8; 6], name: &str, from: State, to: State) {
        if from != to {
            let name = CompactString::from(name);
            self.0.remove(&(from, mac, name.clone()));
            self.0.insert((to, mac, name));
        }
    }

    /// Entries indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// At most `limit` keys in (MAC, destination) order after `after`,
    /// only of device `only` and state `state` when given, and whether more
    /// follow. Walks at most `limit + 1` keys of each state.
    pub(crate) fn page(
        &self,
        only: Option<[u8; 6]>,
        state: Option<State>,
        after: Option<PageKey<'_>>,
        limit: usize,
    ) -> (Vec<PageKey<'_>>, bool) {
        let limit = limit.max(1);
        let wanted = limit.saturating_add(1);
        let mut keys: Vec<PageKey<'_>> = Vec::with_capacity(wanted.min(1 << 12));
        for s in STATES {
            if state.is_some_and(|wanted| wanted != s) {
                continue;
            }
            // Where this state's walk starts: past the cursor, and at the
            // device when only one is asked for.
            let from = match (after, only) {
                (Some((m, _)), Some(o)) if o > m => {
                    Bound::Included((s, o, CompactString::default()))
                }
                (Some((m, n)), _) => Bound::Excluded((s, m, CompactString::from(n))),
                (None, Some(o)) => Bound::Included((s, o, CompactString::default())),
                (None, None) => Bound::Included((s, [0; 6], CompactString::default())),
            };
            let walked = self
                .0
                .range((from, Bound::Unbounded))
                .take_while(|(st, mac, _)| *st == s && only.is_none_or(|o| o == *mac))
                .take(wanted)
                .map(|(_, mac, name)| (*mac, name.as_str()));
            keys.extend(walked);
        }
        // Each state's run is in order; one sort merges them.
        keys.sort_unstable();
        let more = keys.len() > limit;
        keys.truncate(limit);
        (keys, more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn index() -> PageIndex {
        let mut i = PageIndex::default();
        for (mac, name, state) in [
            (A, "a.example", State::New),
            (A, "b.example", State::Baseline),
            (A, "c.example", State::Flagged),
            (B, "a.example", State::Accepted),
            (B, "d.example", State::New),
        ] {
            i.insert(mac, name, state);
        }
        i
    }

    #[test]
    fn pages_merge_the_states_in_mac_then_destination_order() {
        let i = index();
        let (keys, more) = i.page(None, None, None, 3);
        assert_eq!(keys, [(A, "a.example"), (A, "b.example"), (A, "c.example")]);
        assert!(more);
        let (keys, more) = i.page(None, None, Some((A, "c.example")), 3);
        assert_eq!(keys, [(B, "a.example"), (B, "d.example")]);
        assert!(!more);
        let (keys, _) = i.page(None, Some(State::New), None, 10);
        assert_eq!(keys, [(A, "a.example"), (B, "d.example")]);
        let (keys, _) = i.page(Some(B), None, None, 10);
        assert_eq!(keys, [(B, "a.example"), (B, "d.example")]);
        // A cursor on another device than the one asked for.
        let (keys, _) = i.page(Some(B), None, Some((A, "z.example")), 10);
        assert_eq!(keys.len(), 2);
        let (keys, _) = i.page(Some(A), None, Some((B, "a.example")), 10);
        assert!(keys.is_empty());
    }

    #[test]
    fn restate_and_remove_keep_one_key_per_destination() {
        let mut i = index();
        i.restate(A, "a.example", State::New, State::Accepted);
        i.restate(A, "a.example", State::Accepted, State::Accepted);
        assert_eq!(i.len(), 5);
        let (keys, _) = i.page(None, Some(State::Accepted), None, 10);
        assert_eq!(keys, [(A, "a.example"), (B, "a.example")]);
        i.remove(A, "a.example", State::Accepted);
        assert_eq!(i.len(), 4);
    }
}
