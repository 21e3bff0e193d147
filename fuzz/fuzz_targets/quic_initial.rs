//! QUIC Initial packets of a datagram: header parsing, key derivation,
//! header-protection removal, AEAD opening and CRYPTO frames. Random bytes
//! rarely authenticate, so the fuzzer mostly exercises everything up to the
//! tag check; seeds from real Initials reach the frames.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tetherscope_wire::quic;

fuzz_target!(|data: &[u8]| {
    let mut scratch = vec![0u8; 65_536];
    for pkt in quic::initial_packets(data).take(8) {
        let Ok(pkt) = pkt else { break };
        let Ok(keys) = quic::InitialKeys::new(pkt.version, pkt.dcid, quic::Side::Client) else {
            continue;
        };
        if let Ok(plain) = pkt.open(&keys, &mut scratch) {
            for frame in quic::crypto_frames(plain).take(1024) {
                if frame.is_err() {
                    break;
                }
            }
            let _ = quic::google_handshake_data(plain);
        }
    }
});
