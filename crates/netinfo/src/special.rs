//! Address ranges no public network serves, which therefore never have an
//! owner: private, shared, loopback, link-local, multicast and reserved space
//! (IANA's IPv4 and IPv6 Special-Purpose Address Registries, RFC 6890), and
//! separately the documentation ranges (RFC 5737, RFC 3849).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is in a range that is never routed on the Internet
/// (documentation ranges excluded: see [`is_documentation`]).
pub fn is_unroutable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_unroutable_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_unroutable_v4(v4),
            None => is_unroutable_v6(v6),
        },
    }
}

/// Whether `ip` is in a range reserved for documentation and examples:
/// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32.
pub fn is_documentation(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_documentation_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_documentation_v4(v4),
            None => {
                let s = v6.segments();
                s[0] == 0x2001 && s[1] == 0x0db8
            }
        },
    }
}

fn is_documentation_v4(v4: Ipv4Addr) -> bool {
    matches!(
        v4.octets(),
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]
    )
}

fn is_unroutable_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    a == 0                                    // "this network"
        || a == 10                            // private
        || (a == 100 && (b & 0xc0) == 64)     // shared address space (carrier NAT)
        || a == 127                           // loopback
        || (a == 169 && b == 254)             // link-local
        || (a == 172 && (b & 0xf0) == 16)     // private
        || (a == 192 && b == 168)             // private
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18)     // benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

fn is_unroutable_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    v6.is_unspecified()
        || v6.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard-only
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)
    // IPv4-compatible, deprecated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_local_ranges_are_unroutable() {
        for s in [
            "10.42.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.3.4",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.251",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::fb",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_unroutable(ip(s)), "{s} should be unroutable");
        }
    }

    #[test]
    fn public_addresses_are_routable() {
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "11.0.0.1",
            "2001:4860:4860::8888",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_unroutable(ip(s)), "{s} should be public");
            assert!(!is_documentation(ip(s)), "{s} is not documentation");
        }
    }

    #[test]
    fn documentation_ranges_are_recognised() {
        for s in [
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.255",
            "2001:db8::1",
            "::ffff:192.0.2.9",
        ] {
            assert!(is_documentation(ip(s)), "{s} is documentation");
            assert!(
                !is_unroutable(ip(s)),
                "{s} is documentation, not unroutable"
            );
        }
        assert!(!is_documentation(ip("192.0.3.1")));
        assert!(!is_documentation(ip("2001:db9::1")));
    }
}
