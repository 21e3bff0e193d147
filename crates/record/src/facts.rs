//! The bridge from a flow to the classifier's facts about it.

use std::net::IpAddr;

use tetherscope_classify::{Catalog, Classification, FlowFacts, Judgement, Purpose, Transport};
use tetherscope_flow::flow::NameSource;
use tetherscope_flow::{BlindSpot, Flow};

use crate::record::Verdict;

/// Whether an address is the hotspot or on its local network.
pub fn is_on_local_network(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            a.is_private()
                || a.is_link_local()
                || a.is_loopback()
                || a.is_broadcast()
                || a.is_multicast()
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            (s0 & 0xfe00) == 0xfc00
                || (s0 & 0xffc0) == 0xfe80
                || a.is_loopback()
                || a.is_multicast()
        }
    }
}

/// Classifies a flow: its domain first, then what the client asked its
/// resolver and the CNAME chain behind it.
pub fn classify<'c>(catalog: &'c Catalog, flow: &Flow) -> Classification<'c> {
    with_facts(flow, flow.domain(), |facts| catalog.classify(facts))
}

/// [`classify`] without the strings, for a flow whose
/// [`Flow::domain`] the caller has already.
pub fn judge<'c>(
    catalog: &'c Catalog,
    flow: &Flow,
    domain: Option<(&str, NameSource)>,
) -> Judgement<'c> {
    with_facts(flow, domain, |facts| catalog.judge(facts))
}

/// Calls `f` with the classifier's facts about a flow whose domain is
/// `domain`.
fn with_facts<R>(
    flow: &Flow,
    domain: Option<(&str, NameSource)>,
    f: impl FnOnce(&FlowFacts<'_>) -> R,
) -> R {
    // The chain belongs to the flow only if DNS named it or agrees with it.
    let chain = flow
        .names
        .as_deref()
        .and_then(|n| n.resolution.as_deref())
        .filter(|r| domain.is_some_and(|(d, src)| src == NameSource::Dns || d == &*r.query));
    let one: [&str; 1];
    let many: Vec<&str>;
    let names: &[&str] = match (domain, chain) {
        (None, _) => &[],
        (Some((d, _)), None) => {
            one = [d];
            &one
        }
        (Some((d, _)), Some(r)) => {
            many = std::iter::once(d)
                .chain(r.cname_chain.iter().map(|c| &**c))
                .collect();
            &many
        }
    };
    f(&FlowFacts {
        transport: match flow.transport {
            tetherscope_flow::Transport::Tcp => Transport::Tcp,
            tetherscope_flow::Transport::Udp => Transport::Udp,
            _ => Transport::Other,
        },
        server_port: Some(flow.server.port()),
        server_is_local: is_on_local_network(flow.server.ip()),
        app: flow.app.name(),
        names,
        http_path: flow.names.as_deref().and_then(|n| n.http_path.as_deref()),
    })
}

/// Why nothing names a flow that should have a name, before refining
/// `no_dns_seen` for devices that use private DNS; `None` for named flows
/// and for flows that need no name (DNS itself, encrypted DNS, the local
/// network).
pub fn blind_spot(flow: &Flow, purpose: Purpose) -> Option<BlindSpot> {
    if matches!(
        purpose,
        Purpose::LocalNetwork | Purpose::Dns | Purpose::EncryptedDns
    ) {
        return None;
    }
    flow.blind_spot()
}

/// The record fields of a classification.
pub fn verdict_fields(c: &Classification<'_>) -> Verdict {
    Verdict {
        purpose: Some(c.purpose.as_str().to_owned()),
        owner: c.rule.map(|r| r.owner.clone()),
        owner_source: c.rule.map(|_| crate::record::OWNER_FROM_CATALOG),
        rule: c.rule.map(|r| r.name.clone()),
        verdict: Some(c.verdict.as_str().to_owned()),
        site: Some(c.site.clone()),
        cleartext_known: Some(c.cleartext_known),
    }
}
