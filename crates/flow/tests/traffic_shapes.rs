//! Shapes of real traffic that hide names: payload that contradicts the
//! ports, handshakes in SYNs, tunnels, proxies and local name protocols.

mod support;
use support::*;
use tetherscope_testkit::http2;

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
    assert_eq!(
        with_flow(&p, 80, |f| f.app),
        tetherscope_flow::AppProto::Http
    );
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
    feed(
        &mut p,
        &[udp_frame((PHONE, 53), (SERVER, 443), true, &initial)],
    );
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
            tcp_frame(
                (PHONE, 45_000),
                (SERVER, 443),
                true,
                1001 + 300,
                ACK | PSH,
                rest,
            ),
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

// === tunnels ===

const OUTER_A: [u8; 4] = [192, 0, 2, 1];
const OUTER_B: [u8; 4] = [192, 0, 2, 2];
const INNER_CLIENT: [u8; 4] = [10, 99, 0, 5];
const INNER_SERVER: [u8; 4] = [203, 0, 113, 30];

/// An inner IPv4 TCP segment carrying a ClientHello for `sni`.
fn inner_hello(sni: &str) -> Vec<u8> {
    let hello = tls_record(&client_hello(sni, false, 0));
    ipv4(
        INNER_CLIENT,
        INNER_SERVER,
        6,
        &tcp_seg(46_000, 443, 1, ACK | PSH, &hello),
    )
}

fn outer_udp(port: u16, payload: &[u8]) -> Vec<u8> {
    eth(
        true,
        0x0800,
        &ipv4(OUTER_A, OUTER_B, 17, &udp_seg(50_000, port, payload)),
    )
}

fn outer_ip(proto: u8, payload: &[u8]) -> Vec<u8> {
    eth(true, 0x0800, &ipv4(OUTER_A, OUTER_B, proto, payload))
}

/// Feeds one frame and checks that only the inner flow exists, named.
fn inner_flow_is_named(frame: Vec<u8>, sni_wanted: &str) {
    let mut p = pipeline();
    feed(&mut p, &[frame]);
    assert_eq!(flow_count(&p), 1, "only the inner flow is reported");
    assert_eq!(sni(&p, 443).as_deref(), Some(sni_wanted));
    let client = with_flow(&p, 443, |f| f.client.ip());
    assert_eq!(client, std::net::IpAddr::from(INNER_CLIENT));
}

#[test]
fn vxlan_is_opened() {
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    vx.extend_from_slice(&eth(true, 0x0800, &inner_hello("vxlan.example.com")));
    inner_flow_is_named(outer_udp(4789, &vx), "vxlan.example.com");
}

#[test]
fn geneve_with_options_is_opened() {
    let mut gv = vec![0x01, 0, 0x08, 0x00, 0, 0, 42, 0, 0x01, 0x02, 0x80, 0x00];
    gv.extend_from_slice(&inner_hello("geneve.example.com"));
    inner_flow_is_named(outer_udp(6081, &gv), "geneve.example.com");
}

#[test]
fn gre_with_key_and_sequence_is_opened() {
    let mut g = vec![0x30, 0x00, 0x08, 0x00, 0, 0, 0, 7, 0, 0, 0, 1];
    g.extend_from_slice(&inner_hello("gre.example.com"));
    inner_flow_is_named(outer_ip(47, &g), "gre.example.com");
}

#[test]
fn gre_carrying_ethernet_is_opened() {
    let mut g = vec![0x00, 0x00, 0x65, 0x58];
    g.extend_from_slice(&eth(true, 0x0800, &inner_hello("teb.example.com")));
    inner_flow_is_named(outer_ip(47, &g), "teb.example.com");
}

#[test]
fn ip_in_ip_is_opened() {
    inner_flow_is_named(
        outer_ip(4, &inner_hello("ipip.example.com")),
        "ipip.example.com",
    );
}

#[test]
fn ipv6_in_ipv4_and_teredo_are_opened() {
    let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
    let dst = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x30,
    ];
    let hello = tls_record(&client_hello("six.example.com", false, 0));
    let inner = ipv6(src, dst, 6, &tcp_seg(46_001, 443, 1, ACK | PSH, &hello));
    let mut p = pipeline();
    feed(&mut p, &[outer_ip(41, &inner)]);
    assert_eq!(flow_count(&p), 1);
    assert_eq!(sni(&p, 443).as_deref(), Some("six.example.com"));

    let mut teredo = vec![0, 0, 0xf2, 0x27, 0x3f, 0xff, 0xfc, 0xfe];
    teredo.extend_from_slice(&inner);
    let mut p = pipeline();
    feed(&mut p, &[outer_udp(3544, &teredo)]);
    assert_eq!(flow_count(&p), 1);
    assert_eq!(sni(&p, 443).as_deref(), Some("six.example.com"));
}

#[test]
fn ordinary_traffic_on_a_tunnel_port_stays_a_flow() {
    let mut p = pipeline();
    feed(
        &mut p,
        &[
            outer_udp(4789, b"not a vxlan header"),
            outer_udp(3544, b"nor teredo"),
        ],
    );
    assert!(has_flow_on_port(&p, 4789) && has_flow_on_port(&p, 3544));
}

// === mDNS and LLMNR ===

const MDNS_GROUP: [u8; 4] = [224, 0, 0, 251];
const LLMNR_GROUP: [u8; 4] = [224, 0, 0, 252];
const PRINTER: [u8; 4] = [10, 42, 0, 50];

fn dns_query_of(p: &tetherscope_flow::Pipeline, client_port: u16) -> Option<String> {
    with_client_port(p, client_port, |f| {
        f.names
            .as_deref()
            .and_then(|n| n.dns_query.as_deref().map(str::to_owned))
    })
}

/// An mDNS announcement: a response with no question and one A record.
fn announcement(owner: &str, addr: [u8; 4]) -> Vec<u8> {
    let mut m = vec![0, 0, 0x84, 0x00, 0, 0, 0, 1, 0, 0, 0, 0];
    m.extend_from_slice(&dns_name(owner));
    m.extend_from_slice(&[0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4]);
    m.extend_from_slice(&addr);
    m
}

#[test]
fn mdns_questions_and_announcements_are_recorded() {
    let mut p = pipeline();
    feed(
        &mut p,
        &[
            udp_frame(
                (PHONE, 5353),
                (MDNS_GROUP, 5353),
                true,
                &dns_query(0, "_googlecast._tcp.local", 12),
            ),
            udp_frame(
                ([10, 42, 0, 8], 5353),
                (MDNS_GROUP, 5353),
                true,
                &announcement("Pixel-7.local", [10, 42, 0, 8]),
            ),
        ],
    );
    let mdns = with_flow(&p, 5353, |f| f.app);
    assert_eq!(mdns, tetherscope_flow::AppProto::Mdns);
    let mut queries = Vec::new();
    p.table.for_each(|f| {
        queries.push(f.names.as_deref().and_then(|n| n.dns_query.clone()));
    });
    queries.sort();
    assert_eq!(
        queries,
        [
            Some("_googlecast._tcp.local".into()),
            Some("pixel-7.local".into())
        ]
    );
}

#[test]
fn llmnr_answer_to_one_client_names_its_connection_but_multicast_answers_do_not() {
    let mut p = pipeline();
    let mut frames = vec![
        // The phone asks the link who "printer" is; the printer answers it.
        udp_frame(
            (PHONE, 51_000),
            (LLMNR_GROUP, 5355),
            true,
            &dns_query(9, "printer", 1),
        ),
        udp_frame(
            (PRINTER, 5355),
            (PHONE, 51_000),
            false,
            &dns_response(9, "printer", 1, &[(1, PRINTER.to_vec())]),
        ),
        // Someone multicasts an answer for a remote address: not cached.
        udp_frame(
            ([10, 42, 0, 9], 5353),
            (MDNS_GROUP, 5353),
            false,
            &announcement("decoy.local", [203, 0, 113, 77]),
        ),
    ];
    frames.extend(tcp_connection(
        47_000,
        PRINTER,
        631,
        b"\x00\x01\x02 not http",
    ));
    frames.extend(tcp_connection(
        47_001,
        [203, 0, 113, 77],
        443,
        &[0x17, 3, 3, 0, 1, 0],
    ));
    feed(&mut p, &frames);
    assert_eq!(dns_query_of(&p, 51_000).as_deref(), Some("printer"));
    let printer = with_flow(&p, 631, |f| f.domain().map(|(d, _)| d.to_owned()));
    assert_eq!(printer.as_deref(), Some("printer"));
    let remote = with_flow(&p, 443, |f| f.domain().map(|(d, _)| d.to_owned()));
    assert_eq!(remote, None);
}

// === HTTP CONNECT ===

#[test]
fn client_hello_inside_an_http_connect_tunnel_gives_the_sni() {
    let connect = b"CONNECT inside.example.com:443 HTTP/1.1\r\nHost: inside.example.com:443\r\nUser-Agent: curl/8.5.0\r\nProxy-Connection: Keep-Alive\r\n\r\n";
    let established = b"HTTP/1.1 200 Connection established\r\n\r\n";
    let hello = tls_record(&client_hello("inside.example.com", false, 300));
    let c = 1001 + connect.len() as u32;
    let mut p = pipeline();
    let mut frames = tcp_connection(48_000, SERVER, 3128, connect);
    frames.push(tcp_frame(
        (SERVER, 3128),
        (PHONE, 48_000),
        false,
        5001,
        ACK,
        &[],
    ));
    frames.push(tcp_frame(
        (SERVER, 3128),
        (PHONE, 48_000),
        false,
        5001,
        ACK | PSH,
        established,
    ));
    frames.push(tcp_frame(
        (PHONE, 48_000),
        (SERVER, 3128),
        true,
        c,
        ACK,
        &[],
    ));
    // The ClientHello in two segments, as a real client sends it.
    frames.push(tcp_frame(
        (PHONE, 48_000),
        (SERVER, 3128),
        true,
        c,
        ACK | PSH,
        &hello[..100],
    ));
    frames.push(tcp_frame(
        (PHONE, 48_000),
        (SERVER, 3128),
        true,
        c + 100,
        ACK | PSH,
        &hello[100..],
    ));
    feed(&mut p, &frames);
    assert_eq!(sni(&p, 3128).as_deref(), Some("inside.example.com"));
    assert_eq!(
        with_flow(&p, 3128, |f| f.app),
        tetherscope_flow::AppProto::Tls
    );
}

// === h2c ===

#[test]
fn cleartext_http2_with_prior_knowledge_gives_host_and_path() {
    // POST http://h2c.example.com:8080/api/v1/items?page=2, HPACK with
    // Huffman strings and fields added to the dynamic table.
    let block: Vec<u8> = (0..)
        .step_by(2)
        .take_while(|i| *i < BLOCK_HEX.len())
        .map(|i| u8::from_str_radix(&BLOCK_HEX[i..i + 2], 16).unwrap())
        .collect();
    let mut stream = http2::PREFACE.to_vec();
    stream.extend_from_slice(&http2::frame(0x4, 0, 0, &[0, 4, 0, 0xff, 0xff, 0xff]));
    stream.extend_from_slice(&http2::frame(0x8, 0, 0, &[0, 0x0f, 0, 1]));
    stream.extend_from_slice(&http2::frame(0x1, 0x4, 1, &block));
    // The preface alone in the first segment, the frames in the next.
    let mut frames = tcp_connection(49_000, SERVER, 8080, &stream[..24]);
    frames.push(tcp_frame(
        (PHONE, 49_000),
        (SERVER, 8080),
        true,
        1001 + 24,
        ACK | PSH,
        &stream[24..],
    ));
    let mut p = pipeline();
    feed(&mut p, &frames);
    let (host, path, method, cleartext) = with_flow(&p, 8080, |f| {
        let n = f.names.as_deref().unwrap();
        (
            n.http_host.as_deref().map(str::to_owned),
            n.http_path.as_deref().map(str::to_owned),
            n.http_method.as_deref().map(str::to_owned),
            f.cleartext(),
        )
    });
    assert_eq!(host.as_deref(), Some("h2c.example.com"));
    assert_eq!(path.as_deref(), Some("/api/v1/items?page=2"));
    assert_eq!(method.as_deref(), Some("POST"));
    assert_eq!(cleartext, Some(true));
}

const BLOCK_HEX: &str = "8386448f6075998ee160c92d28ff2b1cc5805f418f9c445cbe474d7415721e9b8f01e07f7a8a3f59d29ad8697089707f5f8b1d75d0620d263d4c7441ea";
