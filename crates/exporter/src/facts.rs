//! The bridge from a flow to the classifier's facts about it.

use std::net::IpAddr;

use tetherscope_classify::{Catalog, Classification, FlowFacts, Purpose, Transport};
use tetherscope_flow::flow::NameSource;
use tetherscope_flow::{BlindSpot, Flow};

use crate::record::Verdict;

/// Whether an address is the hotspot or on its local network.
pub fn is_local(ip: IpAddr) -> bool {
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
    let mut names: Vec<&str> = Vec::with_capacity(4);
    let domain = flow.domain();
    if let Some((d, _)) = domain {
        names.push(d);
    }
    if let Some(r) = flow.names.as_deref().and_then(|n| n.resolution.as_deref()) {
        // The chain belongs to the flow only if DNS named it or agrees with it.
        if domain.is_some_and(|(d, src)| src == NameSource::Dns || d == &*r.query) {
            names.extend(r.cname_chain.iter().map(|c| &**c));
        }
    }
    let facts = FlowFacts {
        transport: match flow.transport {
            tetherscope_flow::Transport::Tcp => Transport::Tcp,
            tetherscope_flow::Transport::Udp => Transport::Udp,
            _ => Transport::Other,
        },
        server_port: Some(flow.server.port()),
        server_is_local: is_local(flow.server.ip()),
        app: flow.app.name(),
        names: &names,
        http_path: flow.names.as_deref().and_then(|n| n.http_path.as_deref()),
    };
    catalog.classify(&facts)
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
        rule: c.rule.map(|r| r.name.clone()),
        verdict: Some(c.verdict.as_str().to_owned()),
        site: Some(c.site.clone()),
        cleartext_known: Some(c.cleartext_known),
    }
}
