//! Link-layer decoding under every supported link type (the first byte
//! picks it). Invariant: the network payload lies inside the frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tetherscope_wire::link::{decode, LinkType};

const TYPES: [u32; 9] = [1, 113, 276, 101, 12, 14, 0, 108, 9];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else { return };
    let link = LinkType::from_header_field(TYPES[usize::from(pick) % TYPES.len()]);
    if let Ok(f) = decode(link, frame) {
        let (start, end) = (frame.as_ptr() as usize, frame.as_ptr() as usize + frame.len());
        let p = f.payload.as_ptr() as usize;
        assert!(p >= start && p + f.payload.len() <= end);
    }
});
