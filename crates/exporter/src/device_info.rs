//! `tetherscope_device_info{device,os,vendor} 1`: what each device is, one
//! series per device the (capped) device table tracks, built at scrape
//! time. Label values are sanitised like every other label; an unknown OS
//! or vendor is `unknown`.

use tetherscope_view::identity::Identity;

use crate::state::{sanitize, Shared};

/// Device identity (info-style gauge, always 1).
pub const DEVICE_INFO: &str = "tetherscope_device_info";
/// Its help text.
pub const HELP: &str = "1 for each device, with the OS its DHCP vendor class names and the vendor of its MAC block (unknown when not known, or the MAC is randomised).";
/// Its labels.
pub const LABELS: [&str; 3] = ["device", "os", "vendor"];

const UNKNOWN: &str = "unknown";

/// The series: one per device label (the first device wins when two
/// share a label, as for the other per-device gauges).
pub fn rows(shared: &Shared) -> Vec<(Vec<String>, i64)> {
    let mut rows: Vec<(Vec<String>, i64)> = shared
        .devices
        .snapshot()
        .iter()
        .filter_map(|d| {
            let label = shared.devices.label(&d.mac)?;
            let id = Identity::of_installed(d);
            let or_unknown = |v: Option<String>| sanitize(v.as_deref().unwrap_or(UNKNOWN));
            Some((
                vec![sanitize(&label), or_unknown(id.os), or_unknown(id.vendor)],
                1,
            ))
        })
        .collect();
    rows.sort();
    rows.dedup_by(|a, b| a.0[0] == b.0[0]);
    rows
}
