//! The benchmark's ceiling: a raw libpcap read loop that only counts
//! packets and bytes (`pcap_next_ex` through the `pcap` crate, libpcap's own
//! file reader and buffering). No dissection, no flows.
//!
//! `cargo run --release -p tetherscope-capture --example pcap_count -- FILE`

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: pcap_count FILE");
        std::process::exit(64);
    };
    let mut cap = match pcap::Capture::from_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pcap_count: {path}: {e}");
            std::process::exit(2);
        }
    };
    let (mut packets, mut bytes) = (0u64, 0u64);
    loop {
        match cap.next_packet() {
            Ok(p) => {
                packets += 1;
                bytes += u64::from(p.header.caplen);
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                eprintln!("pcap_count: {path}: {e}");
                std::process::exit(2);
            }
        }
    }
    println!("{packets} packets, {bytes} bytes");
}
