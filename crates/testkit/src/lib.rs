//! The one place to build test traffic for tetherscope: Ethernet, IPv4,
//! IPv6, TCP and UDP frames ([`frame`]), TLS ClientHellos and ECH
//! configurations ([`tls`]), DNS queries and answers ([`dns`]), protected
//! QUIC Initials ([`quic`]), DHCP requests ([`dhcp`]), mDNS announcements
//! ([`mdns`]), classic pcap and pcapng files ([`pcap`]), HTTP/2 frames
//! ([`http2`]), small MaxMind DB files ([`mmdb`]), and the recipes of the
//! checked-in capture
//! fixtures ([`fixtures`], written by the `make-fixtures` program).
//!
//! Everything here is a pure builder: it depends on nothing in the
//! workspace, so the crates under test can use it as a dev-dependency. Its
//! output is checked by dissecting it back in those crates' tests.
//! Checksums are left zero unless asked for: tetherscope never checks them.

#![forbid(unsafe_code)]

pub mod dhcp;
pub mod dns;
pub mod fixtures;
pub mod frame;
pub mod http2;
pub mod mdns;
pub mod mmdb;
pub mod pcap;
pub mod quic;
pub mod tls;
