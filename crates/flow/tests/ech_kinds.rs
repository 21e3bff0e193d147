//! ECH: real when the outer SNI is a public name the client was given in an
//! HTTPS answer for the name it resolved, GREASE otherwise.

mod support;
use support::*;
use tetherscope_flow::flow::NameSource;
use tetherscope_flow::{Ech, Pipeline};

const HTTPS: u16 = 65;
const A: u16 = 1;
const ECH_SERVER: [u8; 4] = [203, 0, 113, 80];
const OTHER_SERVER: [u8; 4] = [203, 0, 113, 81];

fn ech_of(p: &Pipeline, sport: u16) -> (Option<Ech>, Option<(String, NameSource)>, Option<String>) {
    with_client_port(p, sport, |f| {
        let n = f.names.as_deref();
        (
            n.and_then(|n| n.ech),
            f.domain().map(|(d, s)| (d.to_owned(), s)),
            n.and_then(|n| n.sni.as_deref().map(str::to_owned)),
        )
    })
}

fn resolved_private_site() -> Vec<Vec<u8>> {
    let list = ech_config_list("cover.example.net");
    let mut frames = Vec::new();
    frames.extend(dns_exchange(
        1,
        "private.example.com",
        HTTPS,
        &[(HTTPS, https_rdata(ECH_SERVER, Some(&list)))],
    ));
    frames.extend(dns_exchange(
        2,
        "private.example.com",
        A,
        &[(A, ECH_SERVER.to_vec())],
    ));
    frames.extend(dns_exchange(
        3,
        "plain.example.org",
        A,
        &[(A, OTHER_SERVER.to_vec())],
    ));
    frames
}

#[test]
fn outer_sni_matching_the_resolved_names_config_is_real_ech_named_by_dns() {
    let mut frames = resolved_private_site();
    let hello = tls_record(&client_hello("cover.example.net", true, 0));
    frames.extend(tcp_connection(51_000, ECH_SERVER, 443, &hello));
    let mut p = pipeline();
    feed(&mut p, &frames);
    let (ech, domain, sni) = ech_of(&p, 51_000);
    assert_eq!(ech, Some(Ech::Real));
    assert_eq!(
        domain,
        Some(("private.example.com".to_owned(), NameSource::Dns))
    );
    assert_eq!(sni.as_deref(), Some("cover.example.net"));
}

#[test]
fn real_ech_over_quic_too() {
    let mut frames = resolved_private_site();
    let hello = client_hello("cover.example.net", true, 0);
    let dcid = [9u8; 8];
    let initial = client_initial(1, &dcid, &dcid, &[], 0, &crypto_frame(0, &hello));
    frames.push(udp_frame(
        (PHONE, 52_000),
        (ECH_SERVER, 443),
        true,
        &initial,
    ));
    let mut p = pipeline();
    feed(&mut p, &frames);
    let (ech, domain, _) = ech_of(&p, 52_000);
    assert_eq!(ech, Some(Ech::Real));
    assert_eq!(
        domain,
        Some(("private.example.com".to_owned(), NameSource::Dns))
    );
}

#[test]
fn the_extension_with_the_destination_in_the_sni_is_grease() {
    let mut frames = resolved_private_site();
    let hello = tls_record(&client_hello("plain.example.org", true, 0));
    frames.extend(tcp_connection(51_001, OTHER_SERVER, 443, &hello));
    // The public name sent to an address resolved for another name is not
    // a configuration this client was given for it.
    let hello = tls_record(&client_hello("cover.example.net", true, 0));
    frames.extend(tcp_connection(51_002, OTHER_SERVER, 443, &hello));
    let no_ech = tls_record(&client_hello("plain.example.org", false, 0));
    frames.extend(tcp_connection(51_003, OTHER_SERVER, 443, &no_ech));
    let mut p = pipeline();
    feed(&mut p, &frames);
    let (ech, domain, _) = ech_of(&p, 51_001);
    assert_eq!(ech, Some(Ech::Grease));
    assert_eq!(
        domain,
        Some(("plain.example.org".to_owned(), NameSource::TlsSni))
    );
    assert_eq!(ech_of(&p, 51_002).0, Some(Ech::Grease));
    assert_eq!(ech_of(&p, 51_003).0, None);
}

#[test]
fn real_ech_without_a_dns_answer_for_the_flow_is_unnamed() {
    let mut frames = resolved_private_site();
    // An address the phone never resolved here (its answer predates the
    // capture), reached with the public name of a known configuration.
    let hello = tls_record(&client_hello("cover.example.net", true, 0));
    frames.extend(tcp_connection(51_004, [203, 0, 113, 99], 443, &hello));
    let mut p = pipeline();
    feed(&mut p, &frames);
    let (ech, domain, sni) = ech_of(&p, 51_004);
    assert_eq!(ech, Some(Ech::Real));
    assert_eq!(domain, None);
    assert_eq!(sni.as_deref(), Some("cover.example.net"));
}
