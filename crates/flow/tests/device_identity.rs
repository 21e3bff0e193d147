//! A device's identity from its own DHCP requests and mDNS announcements,
//! and from no one else's.

mod support;
use support::*;
use tetherscope_flow::stats::{DHCP_CLIENT_MISMATCH, MDNS_NAME_REJECTED};
use tetherscope_flow::{Device, Pipeline};
use tetherscope_testkit::dhcp::{Request, AOSP_PARAMETERS};
use tetherscope_testkit::mdns::Announcement;

const PHONE_MAC: [u8; 6] = [2, 0, 0x5e, 0, 0, 7];
const ROGUE_MAC: [u8; 6] = [2, 0, 0x5e, 0, 0, 0x66];

fn device(p: &Pipeline, mac: [u8; 6]) -> Option<Device> {
    p.devices.snapshot().into_iter().find(|d| d.mac == mac)
}

fn count(p: &Pipeline, reason: &str) -> u64 {
    p.stats
        .parse_errors()
        .into_iter()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| n)
}

#[test]
fn an_android_request_gives_name_vendor_class_and_parameters() {
    let mut p = pipeline();
    let request = Request::android(PHONE_MAC, b"pixel-7a", b"android-dhcp-14");
    feed(&mut p, &[request.frame()]);
    let d = device(&p, PHONE_MAC).expect("the phone is tracked");
    assert_eq!(d.name.as_deref(), Some("pixel-7a"));
    assert_eq!(d.vendor_class.as_deref(), Some("android-dhcp-14"));
    assert_eq!(d.parameter_list.as_deref(), Some(AOSP_PARAMETERS));
    assert_eq!(count(&p, DHCP_CLIENT_MISMATCH), 0);
}

#[test]
fn a_request_for_another_mac_renames_no_one_and_is_counted() {
    let mut p = pipeline();
    feed(
        &mut p,
        &[Request::android(PHONE_MAC, b"pixel-7a", b"android-dhcp-14").frame()],
    );
    // Another station sends a request claiming the phone's hardware
    // address, with another name and vendor class.
    let forged = Request {
        vendor_class: Some(b"MSFT 5.0"),
        ..Request::named(PHONE_MAC, b"evil")
    };
    feed(&mut p, &[forged.frame_from(ROGUE_MAC)]);
    let d = device(&p, PHONE_MAC).unwrap();
    assert_eq!(d.name.as_deref(), Some("pixel-7a"));
    assert_eq!(d.vendor_class.as_deref(), Some("android-dhcp-14"));
    assert!(device(&p, ROGUE_MAC).is_none(), "the rogue got an entry");
    assert_eq!(count(&p, DHCP_CLIENT_MISMATCH), 1);
    // A request claiming a hardware address no one uses makes no device.
    feed(
        &mut p,
        &[Request::named([2, 0, 0, 0, 0, 9], b"ghost").frame_from(ROGUE_MAC)],
    );
    assert_eq!(p.devices.snapshot().len(), 1);
    assert_eq!(count(&p, DHCP_CLIENT_MISMATCH), 2);
}

#[test]
fn an_announcement_gives_its_senders_host_name_and_model() {
    let mut p = pipeline();
    let a = Announcement {
        host: b"Pixel-7a",
        address: PHONE.into(),
        device_info: Some((b"Kim's <b>phone</b>", b"Pixel 7a")),
    };
    feed(&mut p, &[a.frame(PHONE_MAC)]);
    let d = device(&p, PHONE_MAC).unwrap();
    assert_eq!(d.mdns_host.as_deref(), Some("Pixel-7a"));
    assert_eq!(d.mdns_name.as_deref(), Some("Kim's <b>phone</b>"));
    assert_eq!(d.model.as_deref(), Some("Pixel 7a"));
    assert_eq!(count(&p, MDNS_NAME_REJECTED), 0);
}

#[test]
fn hostile_announced_names_are_dropped_and_counted() {
    let mut p = pipeline();
    let a = Announcement {
        host: b"phone\x1b[31m",
        address: PHONE.into(),
        device_info: Some((&[b'x'; 63], &[0xff, 0xfe])),
    };
    feed(&mut p, &[a.frame(PHONE_MAC)]);
    let d = device(&p, PHONE_MAC).expect("the sender is still tracked");
    assert_eq!(d.mdns_host, None);
    assert_eq!(d.model, None);
    assert_eq!(d.mdns_name.as_deref().map(str::len), Some(63));
    assert_eq!(count(&p, MDNS_NAME_REJECTED), 2);
    // An announcement of another address names no one.
    let proxy = Announcement {
        host: b"printer",
        address: [10, 42, 0, 99].into(),
        device_info: None,
    };
    let mut frame = proxy.frame(PHONE_MAC);
    // Sent from the phone's address, announcing the printer's.
    frame[14 + 12..14 + 16].copy_from_slice(&PHONE);
    feed(&mut p, &[frame]);
    assert_eq!(device(&p, PHONE_MAC).unwrap().mdns_host, None);
}
