//! A whole DNS message: question, every record and its data. Invariants:
//! names stay within RFC 1035's 255 bytes, and every label of the question
//! name occurs in the message bytes (compression only reuses bytes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tetherscope_wire::dns::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else { return };
    if let Ok(Some(q)) = m.first_question() {
        let name = q.name.as_bytes();
        assert!(name.len() <= 255);
        for label in name.split(|&b| b == b'.').filter(|l| !l.is_empty()) {
            let found = data.windows(label.len()).any(|w| w.eq_ignore_ascii_case(label));
            assert!(found, "label {label:?} not in the message");
        }
    }
    for rec in m.answers().take(4096) {
        let Ok(rec) = rec else { break };
        let _ = m.rdata(&rec);
    }
});
