//! Flow keys: transport plus both endpoints, the same in either direction.

use std::net::{IpAddr, SocketAddr};

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP or ICMPv6.
    Icmp,
    /// Any other IP protocol, by number.
    Other(u8),
}

impl Transport {
    /// From an IP protocol number.
    pub fn from_protocol(p: u8) -> Self {
        match p {
            6 => Transport::Tcp,
            17 => Transport::Udp,
            1 | 58 => Transport::Icmp,
            n => Transport::Other(n),
        }
    }
    /// Name used in output.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
            Transport::Other(_) => "other",
        }
    }
}

/// A direction-independent flow key: the lower endpoint comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Transport.
    pub transport: Transport,
    /// The lower endpoint.
    pub lo: SocketAddr,
    /// The higher endpoint.
    pub hi: SocketAddr,
}

impl FlowKey {
    /// The key for a packet from `src` to `dst`.
    pub fn new(transport: Transport, src: SocketAddr, dst: SocketAddr) -> Self {
        if order(&src) <= order(&dst) {
            FlowKey {
                transport,
                lo: src,
                hi: dst,
            }
        } else {
            FlowKey {
                transport,
                lo: dst,
                hi: src,
            }
        }
    }
}

fn order(a: &SocketAddr) -> (IpAddr, u16) {
    (a.ip(), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_both_ways() {
        let a: SocketAddr = "10.42.0.7:40509".parse().unwrap();
        let b: SocketAddr = "192.0.2.1:443".parse().unwrap();
        assert_eq!(
            FlowKey::new(Transport::Tcp, a, b),
            FlowKey::new(Transport::Tcp, b, a)
        );
        assert_ne!(
            FlowKey::new(Transport::Tcp, a, b),
            FlowKey::new(Transport::Udp, a, b)
        );
    }
}
