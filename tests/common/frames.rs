//! Frames and classic pcap files built by the tests themselves: Ethernet,
//! IPv4, TCP and a TLS ClientHello naming a server (checksums left zero:
//! tetherscope never checks them).

use std::io::Write;
use std::net::Ipv4Addr;

/// The phone's MAC address.
pub const PHONE_MAC: [u8; 6] = [0xda, 0xa1, 0x19, 0x42, 0, 0x23];
/// The hotspot's MAC address.
pub const HOTSPOT_MAC: [u8; 6] = [0x02, 0x42, 0, 0, 0, 1];
/// The phone's address on the hotspot.
pub const PHONE: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 23);

/// A classic little-endian pcap (Ethernet, microseconds) being written.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> Self {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
        out.write_all(&[2, 0, 4, 0]).unwrap();
        out.write_all(&[0; 8]).unwrap();
        out.write_all(&65_535u32.to_le_bytes()).unwrap();
        out.write_all(&1u32.to_le_bytes()).unwrap();
        PcapWriter { out }
    }

    /// Writes one record at `ts_us` (Unix microseconds).
    pub fn record(&mut self, ts_us: u64, frame: &[u8]) {
        let (sec, usec) = ((ts_us / 1_000_000) as u32, (ts_us % 1_000_000) as u32);
        let len = frame.len() as u32;
        for v in [sec, usec, len, len] {
            self.out.write_all(&v.to_le_bytes()).unwrap();
        }
        self.out.write_all(frame).unwrap();
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> W {
        self.out.flush().unwrap();
        self.out
    }
}

/// An IPv4 frame between the phone and `server` carrying `l4`.
fn ipv4_frame(from_phone: bool, server: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let (dst_mac, src_mac, src, dst) = if from_phone {
        (HOTSPOT_MAC, PHONE_MAC, PHONE, server)
    } else {
        (PHONE_MAC, HOTSPOT_MAC, server, PHONE)
    };
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&(20 + l4.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(l4);
    f
}

/// A TCP segment between the phone's `port` and `server`:443.
pub fn tcp(
    from_phone: bool,
    server: Ipv4Addr,
    port: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let (sport, dport) = if from_phone { (port, 443) } else { (443, port) };
    let mut l4 = Vec::with_capacity(20 + payload.len());
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&seq.to_be_bytes());
    l4.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    l4.extend_from_slice(payload);
    ipv4_frame(from_phone, server, 6, &l4)
}

/// TCP flags.
pub const SYN: u8 = 0x02;
/// SYN+ACK.
pub const SYN_ACK: u8 = 0x12;
/// PSH+ACK.
pub const PSH_ACK: u8 = 0x18;
/// RST.
pub const RST: u8 = 0x04;

/// A TLS record holding a ClientHello that names `sni`.
pub fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = vec![0, 0]; // server_name
    ext.extend_from_slice(&(name.len() as u16 + 5).to_be_bytes());
    ext.extend_from_slice(&(name.len() as u16 + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]); // random
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]); // session id, suites, compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(body.len() as u16 + 4).to_be_bytes());
    record.push(1);
    record.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    record.extend_from_slice(&body);
    record
}

/// A whole short TLS connection from the phone to `server` named `sni`,
/// starting at `ts_us`: handshake, ClientHello, a reply, reset.
pub fn tls_connection(
    w: &mut PcapWriter<impl Write>,
    ts_us: u64,
    server: Ipv4Addr,
    port: u16,
    sni: &str,
) {
    w.record(ts_us, &tcp(true, server, port, 1, SYN, &[]));
    w.record(ts_us + 20_000, &tcp(false, server, port, 9, SYN_ACK, &[]));
    w.record(
        ts_us + 40_000,
        &tcp(true, server, port, 2, PSH_ACK, &client_hello(sni)),
    );
    w.record(
        ts_us + 60_000,
        &tcp(false, server, port, 10, PSH_ACK, &[0x16; 300]),
    );
    w.record(ts_us + 80_000, &tcp(true, server, port, 400, RST, &[]));
}
