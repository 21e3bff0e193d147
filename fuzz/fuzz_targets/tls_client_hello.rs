//! A TLS ClientHello message. Invariant: the SNI and every ALPN value
//! reported are bytes of the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tetherscope_wire::tls;

fn inside(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = tls::parse_client_hello_message(data) {
        if let Some(sni) = hello.sni {
            assert!(inside(sni, data));
        }
        for alpn in hello.alpn() {
            assert!(inside(alpn, data));
        }
    }
    let _ = tls::RecordHeader::parse_handshake(data);
});
