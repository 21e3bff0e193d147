//! What each device is — OS from its DHCP request, vendor from the IEEE
//! registry (scripts/setup.sh installs ieee-data), names and model from
//! mDNS — in `/api/devices`, `/metrics` and the page.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tetherscope_classify::Catalog;
use tetherscope_exporter::Shared;
use tetherscope_flow::{Pipeline, PipelineConfig};
use tetherscope_testkit::dhcp;
use tetherscope_testkit::mdns::Announcement;
use tower::ServiceExt;

async fn get(shared: &Arc<Shared>, path: &str) -> String {
    let resp = tetherscope_exporter::router(shared.clone())
        .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// A randomised MAC, as Android uses per network.
const PHONE: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x82];
/// A burnt-in MAC in Cisco's first block (00:00:0C), registered since
/// the registry began.
const LAPTOP: [u8; 6] = [0x00, 0x00, 0x0c, 0x12, 0x34, 0x56];

fn shared() -> Arc<Shared> {
    let mut p = Pipeline::new(&PipelineConfig::default());
    let frames = [
        dhcp::Request::android(PHONE, b"pixel-7a", b"android-dhcp-14").frame(),
        dhcp::Request {
            vendor_class: Some(b"dhcpcd-9.4.1:Linux-6.1.0:x86_64:GenuineIntel"),
            ..dhcp::Request::named(LAPTOP, b"laptop")
        }
        .frame(),
        Announcement {
            host: b"Pixel-7a",
            address: [10, 42, 0, 182].into(),
            device_info: Some((b"<script>x</script>", b"Pixel 7a")),
        }
        .frame(PHONE),
    ];
    for (i, f) in frames.iter().enumerate() {
        p.ingest(1_700_000_000_000_000_000 + i as u64, 1, f.len() as u32, f);
    }
    Arc::new(Shared::new(&p, Arc::new(Catalog::builtin()), 500))
}

#[tokio::test]
async fn api_devices_shows_os_vendor_and_announced_names() {
    let shared = shared();
    let body = get(&shared, "/api/devices").await;
    let devices: serde_json::Value = serde_json::from_str(&body).unwrap();
    let by_mac = |mac: &str| {
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["mac"] == mac)
            .cloned()
            .unwrap_or_else(|| panic!("{mac} not in {body}"))
    };
    let phone = by_mac("02:00:5e:00:01:82");
    assert_eq!(phone["os"], "Android 14");
    assert_eq!(phone["os_family"], "Android");
    assert_eq!(phone["os_version"], "14");
    assert_eq!(phone["vendor"], serde_json::Value::Null, "randomised MAC");
    assert_eq!(phone["vendor_class"], "android-dhcp-14");
    assert_eq!(
        phone["parameter_list"],
        "1,3,6,15,26,28,51,58,59,43,114,108"
    );
    assert_eq!(phone["mdns_host"], "Pixel-7a");
    assert_eq!(phone["mdns_name"], "<script>x</script>");
    assert_eq!(phone["model"], "Pixel 7a");
    let laptop = by_mac("00:00:0c:12:34:56");
    assert_eq!(laptop["os"], "Linux 6.1.0");
    let vendor = laptop["vendor"].as_str().unwrap_or_else(|| {
        panic!("no vendor for a registered block: is ieee-data installed (scripts/setup.sh)?")
    });
    assert!(vendor.contains("Cisco"), "{vendor}");
}

#[tokio::test]
async fn device_info_metric_has_one_series_per_device() {
    let shared = shared();
    let metrics = get(&shared, "/metrics").await;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("tetherscope_device_info{"))
        .collect();
    assert_eq!(series.len(), 2, "{series:?}");
    assert!(
        series.contains(
            &r#"tetherscope_device_info{device="pixel-7a",os="Android 14",vendor="unknown"} 1"#
        ),
        "{series:?}"
    );
    assert!(
        series.iter().any(|l| l.starts_with(
            r#"tetherscope_device_info{device="laptop",os="Linux 6.1.0",vendor="Cisco"#
        )),
        "{series:?}"
    );
}

#[tokio::test]
async fn the_page_shows_identity_as_text() {
    let shared = shared();
    let page = get(&shared, "/").await;
    assert!(
        page.contains("Android 14 · Pixel 7a · &lt;script&gt;x&lt;/script&gt;"),
        "identity not on the page"
    );
    assert!(
        !page.contains("<script>x"),
        "an announced name was not escaped"
    );
}
