//! An HTTP/1.x request head. Invariant: method, target and Host are bytes
//! of the input (never synthesised).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tetherscope_wire::http;

fn inside(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(http::Head::Complete(r)) = http::parse_request(data) {
        assert!(inside(r.method, data) && inside(r.target, data));
        if let Some(host) = r.host {
            assert!(inside(host, data));
            let _ = http::host_without_port(host);
        }
        let _ = r.path();
    }
});
