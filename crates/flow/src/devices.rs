//! The device table: which phone is behind which address.
//!
//! Learned from frames (source MAC ↔ source IP of hotspot clients) and from
//! DHCP host names seen on the wire; the live monitor adds names from the
//! DHCP server's lease file. Bounded, because MACs are cheap to forge.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;

/// What is known about one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    /// Hardware address.
    pub mac: [u8; 6],
    /// Host name from DHCP (option 12 or the lease file); shared, as it is
    /// asked for every finished flow.
    pub name: Option<Arc<str>>,
    /// Addresses seen for it (most recent last, a few kept).
    pub addresses: Vec<IpAddr>,
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

const MAX_ADDRESSES: usize = 8;

/// MAC → device, and address → MAC.
#[derive(Debug)]
pub struct DeviceTable {
    by_mac: DashMap<[u8; 6], Device, ahash::RandomState>,
    by_ip: DashMap<IpAddr, [u8; 6], ahash::RandomState>,
    capacity: usize,
}

impl DeviceTable {
    /// A table of at most `capacity` devices.
    pub fn new(capacity: usize) -> Self {
        DeviceTable {
            by_mac: DashMap::default(),
            by_ip: DashMap::default(),
            capacity,
        }
    }

    /// Notes that `mac` uses `ip`.
    pub fn observe(&self, mac: [u8; 6], ip: IpAddr) {
        if self.by_ip.get(&ip).is_some_and(|m| *m == mac) {
            return;
        }
        if !self.by_mac.contains_key(&mac) && self.by_mac.len() >= self.capacity {
            return;
        }
        self.by_ip.insert(ip, mac);
        let mut dev = self.by_mac.entry(mac).or_insert_with(|| Device {
            mac,
            ..Device::default()
        });
        dev.addresses.retain(|a| *a != ip);
        dev.addresses.push(ip);
        if dev.addresses.len() > MAX_ADDRESSES {
            dev.addresses.remove(0);
        }
    }

    /// Names the device with `mac`.
    pub fn set_name(&self, mac: [u8; 6], name: &str) {
        if !self.by_mac.contains_key(&mac) && self.by_mac.len() >= self.capacity {
            return;
        }
        let clean: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        self.by_mac
            .entry(mac)
            .or_insert_with(|| Device {
                mac,
                ..Device::default()
            })
            .name = Some(clean.into());
    }

    /// The MAC behind an address.
    pub fn mac_of(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.by_ip.get(&ip).map(|m| *m)
    }

    /// The DHCP host name of a tracked device, if it gave one.
    pub fn host_name(&self, mac: &[u8; 6]) -> Option<Arc<str>> {
        self.by_mac.get(mac)?.name.clone()
    }

    /// The device label: DHCP name if known, else the MAC; `None` for a MAC
    /// the (capped) table does not track, so label values stay bounded even
    /// when frames carry forged addresses.
    pub fn label(&self, mac: &[u8; 6]) -> Option<String> {
        let dev = self.by_mac.get(mac)?;
        Some(
            dev.name
                .as_deref()
                .map_or_else(|| format_mac(mac), str::to_owned),
        )
    }

    /// A snapshot of all devices.
    pub fn snapshot(&self) -> Vec<Device> {
        let mut v: Vec<Device> = self.by_mac.iter().map(|d| d.value().clone()).collect();
        v.sort_by_key(|d| d.mac);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bounds() {
        let t = DeviceTable::new(2);
        let ip = "10.42.0.5".parse().unwrap();
        t.observe([2, 0, 0, 0, 0, 1], ip);
        assert_eq!(t.label(&[2, 0, 0, 0, 0, 1]).unwrap(), "02:00:00:00:00:01");
        t.set_name([2, 0, 0, 0, 0, 1], "pixel\u{7}-7");
        assert_eq!(t.label(&t.mac_of(ip).unwrap()).unwrap(), "pixel-7");
        t.observe([2, 0, 0, 0, 0, 2], "10.42.0.6".parse().unwrap());
        t.observe([2, 0, 0, 0, 0, 3], "10.42.0.7".parse().unwrap());
        assert_eq!(t.snapshot().len(), 2);
        // Past the cap a MAC gets no label of its own.
        assert_eq!(t.label(&[2, 0, 0, 0, 0, 3]), None);
    }
}
