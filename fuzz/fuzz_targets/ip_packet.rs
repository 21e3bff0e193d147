//! IPv4/IPv6 headers, options, extension headers and fragments.
//! Invariant: the payload lies inside the packet.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tetherscope_wire::ip;
use tetherscope_wire::link::NetProto;

fuzz_target!(|data: &[u8]| {
    for proto in [NetProto::Ipv4, NetProto::Ipv6] {
        if let Ok(p) = ip::parse(proto, data) {
            let start = data.as_ptr() as usize;
            let at = p.payload.as_ptr() as usize;
            assert!(at >= start && at + p.payload.len() <= start + data.len());
        }
    }
});
