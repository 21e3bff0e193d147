//! The device table: which phone is behind which address.
//!
//! Learned from frames (source MAC ↔ source IP of hotspot clients) and from
//! DHCP host names seen on the wire; the live monitor adds names from the
//! DHCP server's lease file. Bounded, because MACs are cheap to forge.
//!
//! A DHCP host name is a claim any station can make. The first device to
//! send one holds it while it uses it; another that sends the same name is
//! named `NAME (MAC)`, so it shares no label, no configured profile or
//! display label, and no baseline entry with the first. "First" spans
//! restarts: the baseline's remembered holders are given to the table at
//! start ([`DeviceTable::remember_holder`]), so the one rule the baseline
//! applies (first seen ever) is the table's too, whoever speaks first in
//! this run.
//!
//! Beside the name, a device's identity is what it says about itself: the
//! vendor class (option 60) and parameter request list (option 55) of its
//! DHCP requests, and the host name, instance name and model it announces
//! over mDNS. Only a DHCP request whose client hardware address is the
//! frame's source MAC counts (the pipeline checks), and only mDNS records
//! for the sender's own address. The table keeps the facts; what they
//! mean (an OS family, a vendor) is decided above it, at display time.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;

/// What is known about one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    /// Hardware address.
    pub mac: [u8; 6],
    /// Host name from DHCP (option 12 or the lease file), with the MAC
    /// after it when another device held that name first; shared, as it
    /// is asked for every finished flow.
    pub name: Option<Arc<str>>,
    /// Addresses seen for it (most recent last, a few kept).
    pub addresses: Vec<IpAddr>,
    /// DHCP option 60 of its latest request that had one.
    pub vendor_class: Option<Arc<str>>,
    /// DHCP option 55 of its latest request that had one: the option
    /// codes it asks for, in its order (at most 255).
    pub parameter_list: Option<Arc<[u8]>>,
    /// The host name it announces over mDNS (without `.local`).
    pub mdns_host: Option<Arc<str>>,
    /// The name of its mDNS device-info record (a name its user gave it).
    pub mdns_name: Option<Arc<str>>,
    /// The `model=` of its mDNS device-info record.
    pub model: Option<Arc<str>>,
}

/// What an mDNS announcement said about its sender, already checked
/// ([`mdns_text`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announced {
    /// Host name without `.local`.
    pub host: Option<String>,
    /// Device-info instance name.
    pub name: Option<String>,
    /// Device-info model.
    pub model: Option<String>,
}

/// Longest text kept from an mDNS announcement: one DNS label (RFC 1035
/// §2.3.4), which is all a host name or instance name can be.
pub const MAX_MDNS_TEXT: usize = 63;

/// An announced name or model as the table keeps it, or `None` (to be
/// counted as rejected) when it is not UTF-8, is empty, has a control
/// character or is longer than [`MAX_MDNS_TEXT`]. Markup is kept: every
/// view escapes it.
pub fn mdns_text(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    (!text.is_empty() && text.len() <= MAX_MDNS_TEXT && !text.chars().any(char::is_control))
        .then(|| text.to_owned())
}

/// Formats a DHCP parameter request list as its codes joined by commas
/// (`1,3,6,15`), the way RFC 2132 numbers them.
pub fn format_parameter_list(list: &[u8]) -> String {
    let mut out = String::with_capacity(list.len() * 4);
    for (i, code) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&code.to_string());
    }
    out
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
    /// Host name → the device holding it (one name per device at most, so
    /// bounded by the device cap).
    holders: DashMap<Arc<str>, [u8; 6], ahash::RandomState>,
    /// Host name → the device that held it in an earlier run, until that
    /// device is seen using another name (bounded by the device cap).
    remembered: DashMap<Arc<str>, [u8; 6], ahash::RandomState>,
    capacity: usize,
}

/// A host name as the table keeps it: no control characters, at most 64
/// characters.
fn clean(name: &str) -> Arc<str> {
    name.chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect::<String>()
        .into()
}

impl DeviceTable {
    /// A table of at most `capacity` devices.
    pub fn new(capacity: usize) -> Self {
        DeviceTable {
            by_mac: DashMap::default(),
            by_ip: DashMap::default(),
            holders: DashMap::default(),
            remembered: DashMap::default(),
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

    /// Records that `mac` held host name `name` in an earlier run (the
    /// baseline remembers who claimed each name first): it holds it again
    /// from the start, so a station that sends the name before it does in
    /// this run is the one shown as `name (MAC)`.
    pub fn remember_holder(&self, mac: [u8; 6], name: &str) {
        let name = clean(name);
        if self.remembered.contains_key(&name) || self.remembered.len() < self.capacity {
            self.remembered.insert(name, mac);
        }
    }

    /// Names the device with `mac`: `name` if no other device holds it
    /// (now, or remembered from an earlier run), else `name (MAC)`.
    pub fn set_name(&self, mac: [u8; 6], name: &str) {
        if !self.by_mac.contains_key(&mac) && self.by_mac.len() >= self.capacity {
            return;
        }
        let clean = clean(name);
        // A remembered holder now using another name lets its old one go.
        if !self.remembered.is_empty() {
            self.remembered.retain(|n, h| *h != mac || *n == clean);
        }
        // Guards are copied out before the other map is touched.
        let remembered = self.remembered.get(&clean).map(|h| *h);
        let holder = self.holders.get(&clean).map(|h| *h);
        let held_by_another = remembered.is_some_and(|h| h != mac)
            || holder.is_some_and(|h| {
                h != mac
                    && self
                        .by_mac
                        .get(&h)
                        .is_some_and(|d| d.name.as_deref() == Some(&*clean))
            });
        let shown: Arc<str> = if held_by_another {
            format!("{clean} ({})", format_mac(&mac)).into()
        } else {
            self.holders.insert(clean.clone(), mac);
            clean
        };
        let previous = self
            .by_mac
            .entry(mac)
            .or_insert_with(|| Device {
                mac,
                ..Device::default()
            })
            .name
            .replace(shown.clone());
        // A name it no longer uses is free again.
        if let Some(previous) = previous.filter(|p| *p != shown) {
            self.holders.remove_if(&previous, |_, h| *h == mac);
        }
    }

    /// The device's entry, made if the table has room.
    fn entry(&self, mac: [u8; 6]) -> Option<dashmap::mapref::one::RefMut<'_, [u8; 6], Device>> {
        if !self.by_mac.contains_key(&mac) && self.by_mac.len() >= self.capacity {
            return None;
        }
        Some(self.by_mac.entry(mac).or_insert_with(|| Device {
            mac,
            ..Device::default()
        }))
    }

    /// Records what a DHCP request from `mac` said about its client: its
    /// vendor class and parameter request list (each kept when present;
    /// a request without one leaves the earlier value).
    pub fn set_dhcp_identity(
        &self,
        mac: [u8; 6],
        vendor_class: Option<&[u8]>,
        parameter_list: Option<&[u8]>,
    ) {
        if vendor_class.is_none() && parameter_list.is_none() {
            return;
        }
        let Some(mut dev) = self.entry(mac) else {
            return;
        };
        if let Some(vc) = vendor_class {
            let vc = clean(&String::from_utf8_lossy(vc));
            if dev.vendor_class.as_deref() != Some(&*vc) {
                dev.vendor_class = Some(vc);
            }
        }
        if let Some(list) = parameter_list {
            if dev.parameter_list.as_deref() != Some(list) {
                dev.parameter_list = Some(list.into());
            }
        }
    }

    /// Records what `mac` announced about itself over mDNS (each part
    /// kept when present).
    pub fn set_announced(&self, mac: [u8; 6], announced: Announced) {
        if announced == Announced::default() {
            return;
        }
        let Some(mut dev) = self.entry(mac) else {
            return;
        };
        let keep = |slot: &mut Option<Arc<str>>, value: Option<String>| {
            if let Some(v) = value.filter(|v| slot.as_deref() != Some(v.as_str())) {
                *slot = Some(v.into());
            }
        };
        keep(&mut dev.mdns_host, announced.host);
        keep(&mut dev.mdns_name, announced.name);
        keep(&mut dev.model, announced.model);
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

    #[test]
    fn a_name_another_device_holds_is_shown_with_the_mac() {
        let t = DeviceTable::new(8);
        let (phone, rogue, other) = (
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 0x66],
            [2, 0, 0, 0, 0, 7],
        );
        t.set_name(phone, "pixel-7a");
        t.set_name(rogue, "pixel-7a");
        assert_eq!(t.label(&phone).unwrap(), "pixel-7a");
        assert_eq!(t.label(&rogue).unwrap(), "pixel-7a (02:00:00:00:00:66)");
        assert_eq!(
            t.host_name(&rogue).as_deref(),
            Some("pixel-7a (02:00:00:00:00:66)")
        );
        // Sent again, still not the rogue's; the holder keeps it.
        t.set_name(rogue, "pixel-7a");
        t.set_name(phone, "pixel-7a");
        assert_eq!(t.label(&phone).unwrap(), "pixel-7a");
        assert_eq!(t.label(&rogue).unwrap(), "pixel-7a (02:00:00:00:00:66)");
        // Once the holder takes another name, the old one is free.
        t.set_name(phone, "pixel-8");
        t.set_name(other, "pixel-7a");
        assert_eq!(t.label(&other).unwrap(), "pixel-7a");
        assert_eq!(t.label(&phone).unwrap(), "pixel-8");
        // Bounded: one held name per device.
        assert_eq!(t.holders.len(), 2);
    }

    #[test]
    fn a_remembered_holder_keeps_its_name_whoever_speaks_first() {
        let t = DeviceTable::new(8);
        let (phone, rogue, other) = (
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 0x66],
            [2, 0, 0, 0, 0, 7],
        );
        t.remember_holder(phone, "pixel-7a");
        // The rogue speaks first in this run: the name is still the phone's.
        t.set_name(rogue, "pixel-7a");
        t.set_name(phone, "pixel-7a");
        assert_eq!(t.label(&rogue).unwrap(), "pixel-7a (02:00:00:00:00:66)");
        assert_eq!(t.label(&phone).unwrap(), "pixel-7a");
        // Once the phone takes another name, the old one is free.
        t.set_name(phone, "pixel-8");
        t.set_name(other, "pixel-7a");
        assert_eq!(t.label(&other).unwrap(), "pixel-7a");
        // A remembered holder seen first under another name lets its
        // remembered one go as well.
        let t = DeviceTable::new(8);
        t.remember_holder(phone, "pixel-7a");
        t.set_name(phone, "pixel-9");
        t.set_name(rogue, "pixel-7a");
        assert_eq!(t.label(&rogue).unwrap(), "pixel-7a");
        // Bounded by the device cap.
        let t = DeviceTable::new(2);
        for i in 0..10u8 {
            t.remember_holder([2, 0, 0, 0, 0, i], &format!("name-{i}"));
        }
        assert_eq!(t.remembered.len(), 2);
    }

    #[test]
    fn identity_is_kept_per_device_and_bounded() {
        let t = DeviceTable::new(1);
        let phone = [2, 0, 0, 0, 0, 1];
        t.set_dhcp_identity(phone, Some(b"android-dhcp-14\x1b"), Some(&[1, 3, 6]));
        // A later request without option 60 keeps the vendor class.
        t.set_dhcp_identity(phone, None, Some(&[1, 3, 6, 15]));
        t.set_announced(
            phone,
            Announced {
                host: Some("Pixel-7a".into()),
                model: Some("Pixel 7a".into()),
                ..Announced::default()
            },
        );
        let d = &t.snapshot()[0];
        assert_eq!(d.vendor_class.as_deref(), Some("android-dhcp-14"));
        assert_eq!(d.parameter_list.as_deref(), Some(&[1u8, 3, 6, 15][..]));
        assert_eq!(format_parameter_list(&[1, 3, 6, 15]), "1,3,6,15");
        assert_eq!(d.mdns_host.as_deref(), Some("Pixel-7a"));
        assert_eq!(d.model.as_deref(), Some("Pixel 7a"));
        assert_eq!(d.mdns_name, None);
        // Past the cap a device's identity is not kept.
        t.set_dhcp_identity([2, 0, 0, 0, 0, 2], Some(b"MSFT 5.0"), None);
        assert_eq!(t.snapshot().len(), 1);
    }

    #[test]
    fn hostile_announced_text_is_refused() {
        assert_eq!(
            mdns_text(b"Kim's <b>iPhone</b>").as_deref(),
            Some("Kim's <b>iPhone</b>")
        );
        assert_eq!(mdns_text(b"phone\x1b[31m"), None);
        assert_eq!(mdns_text(b"\xff\xfe"), None);
        assert_eq!(mdns_text(b""), None);
        assert_eq!(mdns_text(&[b'a'; 64]), None);
        assert!(mdns_text(&[b'a'; 63]).is_some());
    }
}
