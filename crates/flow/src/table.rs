//! The concurrent flow table.
//!
//! A sharded hash map (dashmap): the capture thread inserts and updates, the
//! exporter iterates it at scrape time, and neither blocks the other for more
//! than the shards of one small batch of flows. The table is bounded by `max_flows`: expired flows go
//! first, then the least recently active ones; every eviction is counted by
//! reason.

use dashmap::DashMap;

use crate::flow::{Flow, TcpState};
use crate::key::{FlowKey, Transport};
use crate::{Nanos, SECOND};

/// Flows per call of [`FlowTable::for_each_batch`].
pub const BATCH: usize = 16;

/// Idle timeouts by flow state, in packet time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP with no completed handshake.
    pub tcp_handshake: Nanos,
    /// Established TCP.
    pub tcp_established: Nanos,
    /// TCP after FIN or RST.
    pub tcp_closed: Nanos,
    /// UDP and other transports.
    pub udp: Nanos,
    /// DNS over UDP (one query, one answer).
    pub dns: Nanos,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_handshake: 30 * SECOND,
            tcp_established: 600 * SECOND,
            tcp_closed: 10 * SECOND,
            udp: 120 * SECOND,
            dns: 30 * SECOND,
        }
    }
}

impl Timeouts {
    /// The idle timeout that applies to `flow`.
    pub fn for_flow(&self, flow: &Flow) -> Nanos {
        match flow.tcp {
            TcpState::SynSent | TcpState::SynReceived => self.tcp_handshake,
            TcpState::Established | TcpState::Closing => self.tcp_established,
            TcpState::Closed | TcpState::Reset => self.tcp_closed,
            TcpState::None if flow.server.port() == 53 && flow.transport == Transport::Udp => {
                self.dns
            }
            TcpState::None => self.udp,
        }
    }
}

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictReason {
    /// Idle longer than its timeout.
    Idle,
    /// The same endpoints started a new connection.
    Reused,
    /// The table was full.
    Capacity,
    /// End of input or shutdown.
    Shutdown,
}

impl EvictReason {
    /// Every reason.
    pub const ALL: [EvictReason; 4] = [
        EvictReason::Idle,
        EvictReason::Reused,
        EvictReason::Capacity,
        EvictReason::Shutdown,
    ];

    /// Label value.
    pub fn name(self) -> &'static str {
        match self {
            EvictReason::Idle => "idle_timeout",
            EvictReason::Reused => "reused",
            EvictReason::Capacity => "capacity",
            EvictReason::Shutdown => "shutdown",
        }
    }
}

/// The flow table.
#[derive(Debug)]
pub struct FlowTable {
    /// Flows are boxed: a bucket is then 48 bytes, and the half-empty
    /// buckets hashbrown keeps after growing cost little.
    pub(crate) map: DashMap<FlowKey, Box<Flow>, ahash::RandomState>,
    /// Most flows held at once.
    pub max_flows: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
}

impl FlowTable {
    /// An empty table.
    pub fn new(max_flows: usize, timeouts: Timeouts) -> Self {
        FlowTable {
            map: DashMap::with_hasher(ahash::RandomState::new()),
            max_flows: max_flows.max(16),
            timeouts,
        }
    }

    /// Adds a flow built elsewhere (replays, benchmarks), replacing any with
    /// the same endpoints. Ignores `max_flows`: the pipeline enforces it.
    pub fn insert(&self, flow: Flow) {
        let key = FlowKey::new(flow.transport, flow.client, flow.server);
        self.map.insert(key, Box::new(flow));
    }

    /// Active flows.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no flow is active.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Calls `f` on every active flow; holds one shard's read lock at a time.
    pub fn for_each(&self, mut f: impl FnMut(&Flow)) {
        for entry in self.map.iter() {
            f(entry.value());
        }
    }

    /// Calls `f` on every active flow, [`BATCH`] at a time (fewer at the
    /// end). Each flow sits behind a pointer of its own, so a caller that
    /// first reads a little of every flow in the batch, then does its real
    /// work, lets the processor fetch the batch's memory in parallel rather
    /// than waiting for it one flow after another. Holds the read locks of
    /// the shards one batch spans while `f` runs: one or two in a busy
    /// table, up to all of them in a sparse one.
    pub fn for_each_batch(&self, mut f: impl FnMut(&[&Flow])) {
        let mut iter = self.map.iter();
        loop {
            let entries: Vec<_> = iter.by_ref().take(BATCH).collect();
            if entries.is_empty() {
                return;
            }
            let flows: Vec<&Flow> = entries.iter().map(|e| &**e.value()).collect();
            f(&flows);
        }
    }

    /// Removes flows idle past their timeout, returning them.
    pub(crate) fn take_expired(&self, now: Nanos, out: &mut Vec<crate::pipeline::Finished>) {
        let timeouts = self.timeouts;
        let keys: Vec<FlowKey> = self
            .map
            .iter()
            .filter(|e| now.saturating_sub(e.last_seen) > timeouts.for_flow(e.value()))
            .map(|e| *e.key())
            .collect();
        for k in keys {
            if let Some((_, f)) = self.map.remove(&k) {
                out.push((f, EvictReason::Idle));
            }
        }
    }

    /// Makes room for one more flow: drops about an eighth of the table,
    /// least recently active first.
    pub(crate) fn evict_for_capacity(&self, out: &mut Vec<crate::pipeline::Finished>) {
        let mut ages: Vec<Nanos> = self.map.iter().map(|e| e.last_seen).collect();
        if ages.is_empty() {
            return;
        }
        let target = (ages.len() / 8).max(1);
        let (_, cut, _) = ages.select_nth_unstable(target - 1);
        let cut = *cut;
        let keys: Vec<FlowKey> = self
            .map
            .iter()
            .filter(|e| e.last_seen <= cut)
            .map(|e| *e.key())
            .take(target.max(1))
            .collect();
        for k in keys {
            if let Some((_, f)) = self.map.remove(&k) {
                out.push((f, EvictReason::Capacity));
            }
        }
    }

    /// Removes every flow (end of input).
    pub fn drain(&self, out: &mut Vec<crate::pipeline::Finished>) {
        let keys: Vec<FlowKey> = self.map.iter().map(|e| *e.key()).collect();
        for k in keys {
            if let Some((_, f)) = self.map.remove(&k) {
                out.push((f, EvictReason::Shutdown));
            }
        }
    }
}
