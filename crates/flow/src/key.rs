//! Flow keys: transport plus both endpoints, the same in either direction.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// The IP protocol number.
    pub fn protocol(self) -> u8 {
        match self {
            Transport::Tcp => 6,
            Transport::Udp => 17,
            Transport::Icmp => 1,
            Transport::Other(n) => n,
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

/// One end of a flow, stored compactly: 20 bytes where a `SocketAddr` takes
/// 32 (a million flows hold two each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    v6: bool,
    addr: [u8; 16],
    port: u16,
}

impl Endpoint {
    /// The address.
    pub fn ip(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.addr))
        } else {
            let [a, b, c, d] = [self.addr[12], self.addr[13], self.addr[14], self.addr[15]];
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        }
    }

    /// The port (0 for transports without ports).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// As a standard socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip(), self.port)
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Self {
        let (v6, addr) = match a.ip() {
            IpAddr::V4(v4) => (false, v4.to_ipv6_mapped().octets()),
            IpAddr::V6(v6) => (true, v6.octets()),
        };
        Endpoint {
            v6,
            addr,
            port: a.port(),
        }
    }
}

impl PartialEq<SocketAddr> for Endpoint {
    fn eq(&self, other: &SocketAddr) -> bool {
        *self == Endpoint::from(*other)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.socket_addr().fmt(f)
    }
}

/// A direction-independent flow key: the lower endpoint comes first.
///
/// Packed into 38 bytes with alignment 1, so a table bucket (key and a
/// boxed flow) is 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    protocol: u8,
    v6: bool,
    lo: [u8; 18],
    hi: [u8; 18],
}

impl FlowKey {
    /// The key for a packet from `src` to `dst`.
    pub fn new(transport: Transport, src: impl Into<Endpoint>, dst: impl Into<Endpoint>) -> Self {
        let (a, b) = (src.into(), dst.into());
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let pack = |e: Endpoint| {
            let mut out = [0u8; 18];
            out[..16].copy_from_slice(&e.addr);
            out[16..].copy_from_slice(&e.port.to_be_bytes());
            out
        };
        FlowKey {
            protocol: transport.protocol(),
            v6: lo.v6,
            lo: pack(lo),
            hi: pack(hi),
        }
    }
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
        assert_eq!(std::mem::size_of::<FlowKey>(), 38);
    }

    #[test]
    fn endpoints_round_trip() {
        for text in [
            "10.42.0.7:40509",
            "[2001:db8::1]:443",
            "[::ffff:192.0.2.1]:80",
        ] {
            let a: SocketAddr = text.parse().unwrap();
            let e = Endpoint::from(a);
            assert_eq!(e.socket_addr(), a);
            assert_eq!(e.to_string(), a.to_string());
            assert_eq!(e, a);
        }
        // A v4-mapped IPv6 address is not the IPv4 address.
        let v4: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:80".parse().unwrap();
        assert_ne!(Endpoint::from(v4), Endpoint::from(mapped));
    }
}
