//! Handshake reassembly from segments at arbitrary offsets (overlaps, gaps,
//! storms). Invariants: never more than the cap held, and the contiguous
//! prefix only grows until consumed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tetherscope_flow::reassembly::Reassembler;

fuzz_target!(|data: &[u8]| {
    let cap = 4096;
    let mut r = Reassembler::new(cap);
    let mut rest = data;
    let mut prefix = 0;
    while rest.len() >= 4 {
        let offset = u64::from(u16::from_be_bytes([rest[0], rest[1]])) * 7;
        let len = usize::from(rest[2]).min(rest.len() - 3);
        let consume = rest[3] == 0xff;
        r.insert(offset, &rest[4.min(rest.len())..(4 + len).min(rest.len())]);
        assert!(r.held() <= cap + 64 * 1024, "held {}", r.held());
        let now = r.contiguous().len();
        assert!(now >= prefix, "prefix shrank");
        prefix = now;
        if consume {
            r.consume(now / 2);
            prefix = r.contiguous().len();
        }
        rest = &rest[(4 + len).min(rest.len())..];
    }
});
