//! Bytes per purpose over time, in a bounded number of buckets: the last
//! hour for the live page, a whole capture for a report.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::view::secs;

/// Bytes per purpose in time buckets.
///
/// `sliding` keeps the last `len` buckets of a fixed width (the live page);
/// `growing` starts at a fixed origin and doubles the width whenever the
/// data outgrows `len` buckets (a report of a capture of any length).
#[derive(Debug, Clone)]
pub struct Timeline {
    width_ns: u64,
    len: usize,
    sliding: bool,
    /// Start of the first bucket.
    origin: Option<u64>,
    buckets: VecDeque<BTreeMap<String, u64>>,
}

/// A timeline as the page and report draw it.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineView {
    /// Bucket width, seconds.
    pub bucket_seconds: f64,
    /// Start of each bucket, Unix seconds.
    pub starts: Vec<f64>,
    /// Purposes in drawing order (largest first).
    pub purposes: Vec<String>,
    /// Per bucket, bytes per purpose in `purposes` order.
    pub bytes: Vec<Vec<u64>>,
}

impl Timeline {
    /// The last `len` buckets of `width_ns`.
    pub fn sliding(width_ns: u64, len: usize) -> Self {
        Timeline {
            width_ns: width_ns.max(1),
            len: len.max(1),
            sliding: true,
            origin: None,
            buckets: VecDeque::new(),
        }
    }

    /// At most `len` buckets from `origin`, widened as needed.
    pub fn growing(origin: u64, width_ns: u64, len: usize) -> Self {
        Timeline {
            origin: Some(origin),
            sliding: false,
            ..Timeline::sliding(width_ns, len.max(2))
        }
    }

    /// Whether this is a live window (flows count at their last packet)
    /// rather than a capture's span (flows count at their first).
    pub fn is_sliding(&self) -> bool {
        self.sliding
    }

    /// Adds `bytes` of `purpose` at `at`.
    pub fn add(&mut self, at: u64, purpose: &str, bytes: u64) {
        let origin = *self.origin.get_or_insert(at - at % self.width_ns);
        // Late arrivals before the window count in its first bucket.
        let mut index = (at.saturating_sub(origin) / self.width_ns) as usize;
        if index >= self.len {
            if self.sliding {
                let shift = index + 1 - self.len;
                for _ in 0..shift.min(self.buckets.len()) {
                    self.buckets.pop_front();
                }
                self.origin = Some(origin + shift as u64 * self.width_ns);
                index = self.len - 1;
            } else {
                while index >= self.len {
                    self.coarsen();
                    index = (at.saturating_sub(origin) / self.width_ns) as usize;
                }
            }
        }
        while self.buckets.len() <= index {
            self.buckets.push_back(BTreeMap::new());
        }
        *self.buckets[index].entry(purpose.to_owned()).or_default() += bytes;
    }

    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        for (i, b) in old.into_iter().enumerate() {
            if i % 2 == 0 {
                self.buckets.push_back(b);
            } else if let Some(last) = self.buckets.back_mut() {
                for (k, v) in b {
                    *last.entry(k).or_default() += v;
                }
            }
        }
        self.width_ns *= 2;
    }

    /// The drawable form.
    pub fn view(&self) -> TimelineView {
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for b in &self.buckets {
            for (k, v) in b {
                *totals.entry(k).or_default() += v;
            }
        }
        let mut purposes: Vec<(&str, u64)> = totals.into_iter().collect();
        purposes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        // A live chart always spans its whole window, newest on the right.
        let pad = if self.sliding && !self.buckets.is_empty() {
            self.len - self.buckets.len()
        } else {
            0
        };
        let origin = self
            .origin
            .unwrap_or(0)
            .saturating_sub(pad as u64 * self.width_ns);
        let empty = BTreeMap::new();
        TimelineView {
            bucket_seconds: secs(self.width_ns),
            starts: (0..pad + self.buckets.len())
                .map(|i| secs(origin + i as u64 * self.width_ns))
                .collect(),
            bytes: std::iter::repeat_n(&empty, pad)
                .chain(self.buckets.iter())
                .map(|b| {
                    purposes
                        .iter()
                        .map(|(p, _)| b.get(*p).copied().unwrap_or(0))
                        .collect()
                })
                .collect(),
            purposes: purposes.into_iter().map(|(p, _)| p.to_owned()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_timeline_keeps_the_last_buckets() {
        let mut t = Timeline::sliding(10, 3);
        t.add(100, "dns", 1);
        t.add(115, "push", 2);
        t.add(135, "dns", 4);
        let v = t.view();
        assert_eq!(v.starts, vec![secs(110), secs(120), secs(130)]);
        assert_eq!(v.purposes, vec!["dns", "push"]);
        assert_eq!(v.bytes, vec![vec![0, 2], vec![0, 0], vec![4, 0]]);
        let mut young = Timeline::sliding(10, 3);
        young.add(100, "dns", 1);
        let v = young.view();
        assert_eq!(
            v.starts,
            vec![secs(80), secs(90), secs(100)],
            "padded to the window"
        );
        assert_eq!(v.bytes, vec![vec![0], vec![0], vec![1]]);
    }

    #[test]
    fn growing_timeline_widens_and_keeps_every_byte() {
        let mut t = Timeline::growing(0, 10, 4);
        for at in (0..1000).step_by(10) {
            t.add(at, "dns", 1);
        }
        let v = t.view();
        assert!(v.starts.len() <= 4, "{:?}", v.starts);
        assert_eq!(v.bytes.iter().map(|b| b[0]).sum::<u64>(), 100);
        assert!(v.bucket_seconds >= secs(250));
    }
}
