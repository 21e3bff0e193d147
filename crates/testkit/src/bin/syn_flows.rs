//! Writes a capture that leaves many flows active, for benchmarks of a
//! large flow table: SYN-only TCP flows from four phones (10.42.0.10-13)
//! to servers in 198.51.100.0/24 and 203.0.113.0/24, the ports varying so
//! every flow is distinct, one microsecond apart.
//!
//! `cargo run --release -p tetherscope-testkit --bin syn-flows OUT.pcap FLOWS`

#![forbid(unsafe_code)]

use std::io::BufWriter;
use std::process::ExitCode;

use tetherscope_testkit::frame::{ethernet, tcp, Ipv4, ETHERTYPE_IPV4, SYN, TCP};
use tetherscope_testkit::pcap::PcapWriter;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(out), Some(Ok(flows))) = (args.first(), args.get(1).map(|n| n.parse::<u32>())) else {
        eprintln!("usage: syn-flows OUT.pcap FLOWS");
        return ExitCode::FAILURE;
    };
    let file = match std::fs::File::create(out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("syn-flows: {out}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut w = PcapWriter::new(BufWriter::new(file));
    for i in 0..flows {
        let phone = (i % 4) as u8;
        let server = if i % 2 == 1 {
            [198, 51, 100, 1 + ((i / 2) % 250) as u8]
        } else {
            [203, 0, 113, 1 + ((i / 2) % 250) as u8]
        };
        let sport = 1024 + ((i / 4) % 60_000) as u16;
        let dport = 1 + ((i / 500) % 65_000) as u16;
        let ip = Ipv4 {
            ident: i as u16,
            checksum: false,
        }
        .packet(
            [10, 42, 0, 10 + phone],
            server,
            TCP,
            &tcp(sport, dport, i, 0, SYN, &[]),
        );
        let frame = ethernet(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 0x10 + phone],
            ETHERTYPE_IPV4,
            &ip,
        );
        w.record(1_700_000_000_000_000 + u64::from(i), &frame);
    }
    w.finish();
    ExitCode::SUCCESS
}
