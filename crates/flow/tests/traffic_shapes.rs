//! Shapes of real traffic that hide names: payload that contradicts the
//! ports, handshakes in SYNs, tunnels, proxies and local name protocols.

mod support;
use support::*;

fn http_host(p: &tetherscope_flow::Pipeline, port: u16) -> Option<String> {
    with_flow(p, port, |f| {
        f.names
            .as_deref()
            .and_then(|n| n.http_host.as_deref().map(str::to_owned))
    })
}

#[test]
fn payload_beats_ports_an_http_request_from_source_port_53() {
    let get = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
    let mut p = pipeline();
    feed(&mut p, &tcp_connection(53, SERVER, 80, get));
    assert_eq!(http_host(&p, 80).as_deref(), Some("www.example.com"));
    assert_eq!(with_flow(&p, 80, |f| f.app), tetherscope_flow::AppProto::Http);
}

#[test]
fn payload_beats_ports_a_client_hello_from_source_port_53() {
    let hello = tls_record(&client_hello("tls.example.com", false, 0));
    let mut p = pipeline();
    feed(&mut p, &tcp_connection(53, SERVER, 443, &hello));
    assert_eq!(sni(&p, 443).as_deref(), Some("tls.example.com"));
}

#[test]
fn payload_beats_ports_a_quic_initial_from_source_port_53() {
    let dcid = [3u8; 8];
    let hello = client_hello("quic.example.com", false, 0);
    let initial = client_initial(1, &dcid, &dcid, &[], 0, &crypto_frame(0, &hello));
    let mut p = pipeline();
    feed(&mut p, &[udp_frame((PHONE, 53), (SERVER, 443), true, &initial)]);
    assert_eq!(sni(&p, 443).as_deref(), Some("quic.example.com"));
}

#[test]
fn dns_over_tcp_is_still_read() {
    let q = dns_query(7, "tcp.example.org", 1);
    let mut msg = (q.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(&q);
    let mut p = pipeline();
    feed(&mut p, &tcp_connection(40_123, RESOLVER, 53, &msg));
    let query = with_flow(&p, 53, |f| {
        f.names
            .as_deref()
            .and_then(|n| n.dns_query.as_deref().map(str::to_owned))
    });
    assert_eq!(query.as_deref(), Some("tcp.example.org"));
}

#[test]
fn tcp_fast_open_client_hello_starts_in_the_syn() {
    let hello = tls_record(&client_hello("tfo.example.com", false, 600));
    let (first, rest) = hello.split_at(300);
    let mut p = pipeline();
    feed(
        &mut p,
        &[
            tcp_frame((PHONE, 45_000), (SERVER, 443), true, 1000, SYN, first),
            tcp_frame((SERVER, 443), (PHONE, 45_000), false, 5000, SYN | ACK, &[]),
            tcp_frame((PHONE, 45_000), (SERVER, 443), true, 1001 + 300, ACK | PSH, rest),
        ],
    );
    assert_eq!(sni(&p, 443).as_deref(), Some("tfo.example.com"));
}

#[test]
fn tcp_fast_open_whole_request_in_the_syn() {
    let get = b"GET / HTTP/1.1\r\nHost: tfo.example.org\r\n\r\n";
    let mut p = pipeline();
    feed(
        &mut p,
        &[tcp_frame((PHONE, 45_001), (SERVER, 80), true, 77, SYN, get)],
    );
    assert_eq!(http_host(&p, 80).as_deref(), Some("tfo.example.org"));
}
