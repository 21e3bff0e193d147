//! QUIC Initials across connection-ID changes, Retry and version
//! negotiation: the ClientHello is read whichever Initials carry it.

mod support;
use support::*;

const V1: u32 = 0x0000_0001;
const V2: u32 = 0x6b33_43cf;
const ODCID: &[u8] = &[0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8];
const SERVER_CID: &[u8] = &[0x5e, 0x5e, 0x01, 0x02, 0x03];
const RETRY_CID: &[u8] = &[0x7e, 0x7e, 0x7e, 0x01, 0x02, 0x03, 0x04, 0x05];
const CLIENT_CID: &[u8] = &[0xc1, 0xc2, 0xc3, 0xc4];

fn up(datagram: &[u8]) -> Vec<u8> {
    udp_frame((PHONE, 50_000), (SERVER, 443), true, datagram)
}

fn down(datagram: &[u8]) -> Vec<u8> {
    udp_frame((SERVER, 443), (PHONE, 50_000), false, datagram)
}

/// A ClientHello too big for one Initial (as with post-quantum key
/// shares), cut into CRYPTO frames of at most 1000 bytes.
fn split_hello(sni: &str) -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
    let hello = client_hello(sni, false, 2_100);
    let parts = hello
        .chunks(1000)
        .enumerate()
        .map(|(i, c)| ((i * 1000) as u64, crypto_frame((i * 1000) as u64, c)))
        .collect();
    (hello, parts)
}

fn quic_version(p: &tetherscope_flow::Pipeline) -> Option<u32> {
    with_flow(p, 443, |f| f.names.as_deref().and_then(|n| n.quic_version))
}

#[test]
fn later_initials_under_the_servers_connection_id_use_the_first_keys() {
    let (_, parts) = split_hello("pq.example.com");
    assert_eq!(parts.len(), 3);
    let mut p = pipeline();
    feed(
        &mut p,
        &[
            up(&client_initial(V1, ODCID, ODCID, &[], 0, &parts[0].1)),
            down(&server_initial(V1, CLIENT_CID, SERVER_CID)),
            up(&client_initial(V1, SERVER_CID, ODCID, &[], 1, &parts[1].1)),
            up(&client_initial(V1, SERVER_CID, ODCID, &[], 2, &parts[2].1)),
        ],
    );
    assert_eq!(sni(&p, 443).as_deref(), Some("pq.example.com"));
    assert_eq!(quic_version(&p), Some(V1));
}

#[test]
fn after_a_retry_the_keys_come_from_the_retry_connection_id() {
    let (_, parts) = split_hello("retried.example.com");
    let token = [0x70; 24];
    let mut p = pipeline();
    feed(
        &mut p,
        &[
            up(&client_initial(V1, ODCID, ODCID, &[], 0, &parts[0].1)),
            down(&retry(V1, CLIENT_CID, RETRY_CID, &token)),
            // The ClientHello again, under the Retry's connection ID...
            up(&client_initial(
                V1,
                RETRY_CID,
                RETRY_CID,
                &token,
                1,
                &parts[0].1,
            )),
            up(&client_initial(
                V1,
                RETRY_CID,
                RETRY_CID,
                &token,
                2,
                &parts[1].1,
            )),
            down(&server_initial(V1, CLIENT_CID, SERVER_CID)),
            // ...and its end under the server's, still with the Retry keys.
            up(&client_initial(
                V1,
                SERVER_CID,
                RETRY_CID,
                &[],
                3,
                &parts[2].1,
            )),
        ],
    );
    assert_eq!(sni(&p, 443).as_deref(), Some("retried.example.com"));
}

#[test]
fn compatible_version_negotiation_to_v2_keeps_reading_the_hello() {
    let (_, parts) = split_hello("upgraded.example.com");
    let mut p = pipeline();
    feed(
        &mut p,
        &[
            up(&client_initial(V1, ODCID, ODCID, &[], 0, &parts[0].1)),
            // The server answers in v2 (RFC 9368); the client follows, with
            // v2 keys over the original DCID.
            down(&server_initial(V2, CLIENT_CID, SERVER_CID)),
            up(&client_initial(V2, SERVER_CID, ODCID, &[], 1, &parts[1].1)),
            up(&client_initial(V2, SERVER_CID, ODCID, &[], 2, &parts[2].1)),
        ],
    );
    assert_eq!(sni(&p, 443).as_deref(), Some("upgraded.example.com"));
    // The version whose Initial carried the ClientHello's start.
    assert_eq!(quic_version(&p), Some(V1));
}

#[test]
fn after_version_negotiation_the_new_hello_is_read_alone() {
    // A first attempt in v2 whose ClientHello is cut short by a Version
    // Negotiation, then a new v1 connection with a different ClientHello.
    let abandoned = client_hello("first-try.example.com", false, 1_500);
    let fresh = client_hello("second-try.example.com", false, 10);
    let new_dcid = [0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7];
    let mut p = pipeline();
    feed(
        &mut p,
        &[
            up(&client_initial(
                V2,
                ODCID,
                ODCID,
                &[],
                0,
                &crypto_frame(0, &abandoned[..900]),
            )),
            down(&version_negotiation(CLIENT_CID, ODCID, &[V1])),
            up(&client_initial(
                V1,
                &new_dcid,
                &new_dcid,
                &[],
                0,
                &crypto_frame(0, &fresh),
            )),
        ],
    );
    assert_eq!(sni(&p, 443).as_deref(), Some("second-try.example.com"));
    assert_eq!(quic_version(&p), Some(V1));
}

#[test]
fn google_quic_q046_reports_its_version() {
    // Q046 long header: flags, version "Q046", connection IDs, packet
    // number, then the CHLO with an SNI tag.
    let mut pkt = vec![0xc3];
    pkt.extend_from_slice(b"Q046");
    pkt.push(0x50);
    pkt.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    pkt.extend_from_slice(&[0, 0, 0, 1]);
    pkt.extend_from_slice(b"\x00\x00\x00CHLO");
    pkt.extend_from_slice(&[1, 0, 0, 0]);
    pkt.extend_from_slice(b"SNI\0");
    pkt.extend_from_slice(&15u32.to_le_bytes());
    pkt.extend_from_slice(b"www.example.com");
    pkt.resize(1350, 0);
    let mut p = pipeline();
    feed(&mut p, &[up(&pkt)]);
    assert_eq!(sni(&p, 443).as_deref(), Some("www.example.com"));
    assert_eq!(quic_version(&p), Some(u32::from_be_bytes(*b"Q046")));
}
