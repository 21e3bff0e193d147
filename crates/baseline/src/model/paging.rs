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

use super::Baseline;
use super::TriageError;
use crate::view::Entry;
use crate::{is_randomised, State};

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

impl Baseline {
    /// One page of the entries, ordered by (MAC, destination): at most
    /// `limit` entries after `after` (a (MAC, destination) already seen),
    /// only those in `state` when given, and whether more follow. Costs the
    /// page, not the baseline (see [`PageIndex`]): the caller holds the
    /// lock the capture thread needs. Entries added between two pages are
    /// listed by the later one when they sort after its cursor.
    pub fn entries_page(
        &self,
        device: Option<&str>,
        state: Option<State>,
        after: Option<(&[u8; 6], &str)>,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), TriageError> {
        let only = device.map(|d| self.resolve(d)).transpose()?;
        let (keys, more) = self
            .index
            .page(only, state, after.map(|(m, n)| (*m, n)), limit);
        // Who holds each name: once per page, not once per entry.
        let owners = self.name_owners(None);
        let mut shown: Option<([u8; 6], String)> = None;
        let out = keys
            .into_iter()
            .filter_map(|(mac, name)| {
                let d = self.devices.get(&mac)?.destinations.get(name)?;
                let device = match &shown {
                    Some((m, s)) if *m == mac => s.clone(),
                    _ => {
                        let s = self.display_name_among(&mac, &owners);
                        shown = Some((mac, s.clone()));
                        s
                    }
                };
                Some(Entry::new(device, &mac, is_randomised(&mac), name, d))
            })
            .collect();
        Ok((out, more))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{obs, HOUR, MAC};
    use super::super::{format_mac, parse_mac, Observation, Settings};
    use super::*;
    use crate::{Triage, SECOND};

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

    /// The page index holds exactly the destinations, each in its state.
    fn assert_index_matches(b: &Baseline) {
        let mut want: Vec<(State, [u8; 6], String)> = b
            .devices
            .iter()
            .flat_map(|(mac, d)| {
                d.destinations
                    .iter()
                    .map(|(n, dest)| (dest.state, *mac, n.to_string()))
            })
            .collect();
        want.sort();
        let (all, _) = b.index.page(None, None, None, usize::MAX - 1);
        assert_eq!(all.len(), want.len());
        assert_eq!(b.index.len(), want.len());
        for s in [State::Baseline, State::Accepted, State::New, State::Flagged] {
            let (keys, _) = b.index.page(None, Some(s), None, usize::MAX - 1);
            let got: Vec<(State, [u8; 6], String)> =
                keys.iter().map(|(m, n)| (s, *m, n.to_string())).collect();
            let of_s: Vec<_> = want.iter().filter(|w| w.0 == s).cloned().collect();
            assert_eq!(got, of_s, "{s:?}");
        }
    }

    #[test]
    fn paging_is_exact_while_entries_arrive_between_pages() {
        const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 7];
        let mut b = Baseline::new(Settings {
            learn_for_ns: HOUR,
            max_destinations: 400,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        for i in 0..300 {
            for mac in [MAC, OTHER] {
                let name = format!("d{:04}.example", i * 2);
                b.observe(&Observation {
                    mac,
                    ..obs(&name, t0)
                })
                .unwrap();
            }
        }
        let before: Vec<(String, String)> = b
            .entries(None)
            .unwrap()
            .into_iter()
            .map(|e| (e.mac, e.destination))
            .collect();
        // Walk pages of 37; between two pages, destinations arrive both
        // before and after the cursor, and some change state.
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut added_after_cursor = Vec::new();
        let mut after: Option<([u8; 6], String)> = None;
        let mut round = 0u64;
        loop {
            let (page, more) = b
                .entries_page(None, None, after.as_ref().map(|(m, n)| (m, n.as_str())), 37)
                .unwrap();
            assert!(page.len() <= 37);
            seen.extend(page.iter().map(|e| (e.mac.clone(), e.destination.clone())));
            let Some(last) = page.last() else { break };
            after = Some((parse_mac(&last.mac).unwrap(), last.destination.clone()));
            if !more {
                break;
            }
            round += 1;
            let t = t0 + 2 * HOUR + round * SECOND;
            for (mac, name) in [
                (MAC, format!("d{:04}.example", 2 * round + 1)),
                (OTHER, format!("d{:04}.example", 599 - 2 * round)),
            ] {
                b.observe(&Observation {
                    mac,
                    ..obs(&name, t)
                })
                .unwrap();
                let key = (format_mac(&mac), name);
                let cursor = after.as_ref().map(|(m, n)| (format_mac(m), n.clone()));
                if cursor.is_none_or(|c| key > c) {
                    added_after_cursor.push(key);
                }
            }
            let accept = format!("d{:04}.example", (round * 14) % 600);
            let _ = b.triage(Triage::Accept, "da:a1:19:42:00:23", &accept);
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "an entry listed twice");
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, seen, "pages out of order");
        for key in before.iter().chain(&added_after_cursor) {
            assert!(seen.contains(key), "{key:?} missed");
        }
        assert!(!added_after_cursor.is_empty());
        // Filtered by state, the same walk finds exactly that state's.
        let mut new_ones = Vec::new();
        let mut after: Option<([u8; 6], String)> = None;
        loop {
            let (page, more) = b
                .entries_page(
                    Some("02:00:00:00:00:07"),
                    Some(State::New),
                    after.as_ref().map(|(m, n)| (m, n.as_str())),
                    5,
                )
                .unwrap();
            new_ones.extend(page.iter().map(|e| e.destination.clone()));
            let Some(last) = page.last() else { break };
            after = Some((parse_mac(&last.mac).unwrap(), last.destination.clone()));
            if !more {
                break;
            }
        }
        let mut want: Vec<String> = b.devices[&OTHER]
            .destinations
            .iter()
            .filter(|(_, d)| d.state == State::New)
            .map(|(n, _)| n.to_string())
            .collect();
        want.sort();
        assert_eq!(new_ones, want);
        assert!(!want.is_empty());
        assert_index_matches(&b);
    }

    #[test]
    fn the_page_index_follows_every_change() {
        let mut b = Baseline::new(Settings {
            learn_for_ns: 0,
            max_destinations: 50,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        // Past the cap: evictions.
        for i in 0..120 {
            b.observe(&obs(&format!("e{i}.example"), t0 + i * SECOND))
                .unwrap();
        }
        assert_index_matches(&b);
        // Triage: accept, flag, forget.
        let names: Vec<String> = b.devices[&MAC]
            .destinations
            .keys()
            .take(3)
            .map(|k| k.to_string())
            .collect();
        b.triage(Triage::Accept, "da:a1:19:42:00:23", &names[0])
            .unwrap();
        b.triage(Triage::Flag, "da:a1:19:42:00:23", &names[1])
            .unwrap();
        b.triage(Triage::Forget, "da:a1:19:42:00:23", &names[2])
            .unwrap();
        assert_index_matches(&b);
        // Expected by a profile: new becomes baseline.
        let new_one = b.devices[&MAC]
            .destinations
            .iter()
            .find(|(_, d)| d.state == State::New)
            .map(|(k, _)| k.to_string())
            .unwrap();
        b.observe(&Observation {
            expected: true,
            ..obs(&new_one, t0 + 200 * SECOND)
        })
        .unwrap();
        assert_eq!(b.state_of(&MAC, &new_one), Some(State::Baseline));
        assert_index_matches(&b);
        // Import: new destinations and changed states.
        let mut exported = b.entries(None).unwrap();
        for e in &mut exported {
            e.state = "flagged".into();
        }
        let mut extra = exported[0].clone();
        extra.destination = "imported.example".into();
        exported.push(extra);
        b.import(&exported).unwrap();
        assert_index_matches(&b);
        // Retention, then a device loaded again from the store.
        b.retain_for_test(HOUR);
        b.observe(&obs("late.example", t0 + 30 * HOUR)).unwrap();
        b.expire();
        assert_index_matches(&b);
        let device = b.devices[&MAC].clone();
        b.load_device(MAC, device);
        assert_index_matches(&b);
    }
}
