//! What a device is, as shown: the operating system its DHCP vendor class
//! names, the vendor of its MAC block, and what it announces over mDNS.
//!
//! Decided here, from the facts the device table keeps, each time a view
//! is drawn (a few string checks and one hash lookup per device). Values
//! are as the device sent them, without control characters: every view
//! escapes them.

use serde::Serialize;
use tetherscope_classify::os::os_from_vendor_class;
use tetherscope_classify::oui::{self, Registry};
use tetherscope_flow::devices::format_parameter_list;
use tetherscope_flow::Device;

/// A device's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Operating system family and version (`Android 14`), when the DHCP
    /// vendor class has a documented shape.
    pub os: Option<String>,
    /// The family alone (`Android`).
    pub os_family: Option<&'static str>,
    /// The version alone (`14`).
    pub os_version: Option<String>,
    /// The organisation the MAC's block is registered to (IEEE registry);
    /// none for a randomised MAC.
    pub vendor: Option<String>,
    /// DHCP option 60.
    pub vendor_class: Option<String>,
    /// DHCP option 55, as codes joined by commas.
    pub parameter_list: Option<String>,
    /// Host name announced over mDNS.
    pub mdns_host: Option<String>,
    /// Device-info instance name announced over mDNS.
    pub mdns_name: Option<String>,
    /// Model announced over mDNS.
    pub model: Option<String>,
}

impl Identity {
    /// The identity of `device`, with vendors from `registry`.
    pub fn of(device: &Device, registry: Option<&Registry>) -> Identity {
        let os = device
            .vendor_class
            .as_deref()
            .and_then(os_from_vendor_class);
        let owned = |s: &Option<std::sync::Arc<str>>| s.as_deref().map(str::to_owned);
        Identity {
            os: os.as_ref().map(|o| o.label()),
            os_family: os.as_ref().map(|o| o.family.name()),
            os_version: os.and_then(|o| o.version),
            vendor: registry
                .and_then(|r| r.vendor(&device.mac))
                .map(str::to_owned),
            vendor_class: owned(&device.vendor_class),
            parameter_list: device.parameter_list.as_deref().map(format_parameter_list),
            mdns_host: owned(&device.mdns_host),
            mdns_name: owned(&device.mdns_name),
            model: owned(&device.model),
        }
    }

    /// The identity of `device`, with vendors from the installed IEEE
    /// registry (Debian's ieee-data), if any.
    pub fn of_installed(device: &Device) -> Identity {
        Identity::of(device, oui::system())
    }

    /// One line for people: `Android 14 · Google, Inc. · Pixel 7a`, the
    /// parts known; empty when nothing is.
    pub fn summary(&self) -> String {
        [
            self.os.as_deref(),
            self.vendor.as_deref(),
            self.model.as_deref(),
            self.mdns_name.as_deref().or(self.mdns_host.as_deref()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_android_phone_with_a_randomised_mac() {
        let mut registry = Registry::default();
        registry.add_csv("h\nMA-L,0CAFE0,Example Phones,\n");
        let mut d = Device {
            mac: [0x0e, 0xaf, 0xe0, 0, 0, 1],
            vendor_class: Some("android-dhcp-14".into()),
            parameter_list: Some(vec![1, 3, 6, 15].into()),
            model: Some("Pixel 7a".into()),
            ..Device::default()
        };
        let id = Identity::of(&d, Some(&registry));
        assert_eq!(id.os.as_deref(), Some("Android 14"));
        assert_eq!(id.os_family, Some("Android"));
        assert_eq!(id.os_version.as_deref(), Some("14"));
        assert_eq!(id.vendor, None);
        assert_eq!(id.parameter_list.as_deref(), Some("1,3,6,15"));
        assert_eq!(id.summary(), "Android 14 · Pixel 7a");
        // The same card with its burnt-in address has a vendor.
        d.mac[0] = 0x0c;
        let id = Identity::of(&d, Some(&registry));
        assert_eq!(id.vendor.as_deref(), Some("Example Phones"));
        // An unknown vendor class names no OS.
        d.vendor_class = Some("udhcp 1.36.1".into());
        assert_eq!(Identity::of(&d, None).os, None);
    }
}
