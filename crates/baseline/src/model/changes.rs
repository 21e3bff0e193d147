//! The change journal: what changed in the baseline since the writer last
//! took it, and the rows the store writes from it.

use super::{Baseline, Client, CompactString, Destination, Device, HashMap, HashSet};

/// (device, destination) pairs, looked up without allocating.
#[derive(Debug, Default)]
pub(super) struct KeySet(HashMap<[u8; 6], HashSet<String>>);

impl KeySet {
    pub(super) fn insert(&mut self, mac: [u8; 6], name: &str) {
        let set = self.0.entry(mac).or_default();
        if !set.contains(name) {
            set.insert(name.to_owned());
        }
    }

    pub(super) fn remove(&mut self, mac: [u8; 6], name: &str) {
        if let Some(set) = self.0.get_mut(&mac) {
            set.remove(name);
        }
    }

    pub(super) fn drain(&mut self) -> Vec<([u8; 6], String)> {
        self.0
            .drain()
            .flat_map(|(mac, set)| set.into_iter().map(move |n| (mac, n)))
            .collect()
    }
}

/// What changed since the writer last took it. A device or destination
/// carries its own `unsaved` mark, so a flow to something already marked
/// costs one test of a flag it has in hand; the lists say where the marks
/// are. An entry whose device or destination is gone since, or whose mark
/// was already taken (it was marked again after a removal), is skipped.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// Nothing takes the changes (a baseline kept in memory only), so none
    /// are kept: the lists would only grow.
    pub(super) off: bool,
    pub(super) devices: Vec<[u8; 6]>,
    pub(super) destinations: Vec<([u8; 6], CompactString)>,
    pub(super) removed: KeySet,
    pub(super) removed_devices: HashSet<[u8; 6]>,
    pub(super) clients: Vec<([u8; 6], CompactString)>,
    pub(super) removed_clients: KeySet,
}

impl Changes {
    pub(super) fn device(&mut self, mac: [u8; 6], device: &mut Device) {
        if !device.unsaved && !self.off {
            device.unsaved = true;
            self.devices.push(mac);
        }
    }

    pub(super) fn destination(&mut self, mac: [u8; 6], name: &str, destination: &mut Destination) {
        if !destination.unsaved && !self.off {
            destination.unsaved = true;
            self.destinations.push((mac, name.into()));
        }
    }

    pub(super) fn destination_removed(&mut self, mac: [u8; 6], name: &str) {
        if !self.off {
            self.removed.insert(mac, name);
        }
    }

    pub(super) fn device_removed(&mut self, mac: [u8; 6]) {
        if !self.off {
            self.removed_devices.insert(mac);
        }
    }

    pub(super) fn client(&mut self, mac: [u8; 6], fingerprint: &str, client: &mut Client) {
        if !client.unsaved && !self.off {
            client.unsaved = true;
            self.clients.push((mac, fingerprint.into()));
        }
    }

    pub(super) fn client_removed(&mut self, mac: [u8; 6], fingerprint: &str) {
        if !self.off {
            self.removed_clients.insert(mac, fingerprint);
        }
    }
}

/// What changed since the last write.
#[derive(Debug, Default)]
pub struct Batch {
    /// Devices to upsert.
    pub devices: Vec<([u8; 6], Device)>,
    /// Destinations to upsert (device MAC, destination).
    pub destinations: Vec<([u8; 6], String, Destination)>,
    /// Destinations to delete.
    pub removed: Vec<([u8; 6], String)>,
    /// Devices to delete (with their clients).
    pub removed_devices: Vec<[u8; 6]>,
    /// Clients to upsert (device MAC, fingerprint).
    pub clients: Vec<([u8; 6], String, Client)>,
    /// Clients to delete.
    pub removed_clients: Vec<([u8; 6], String)>,
}

/// What the store writes, borrowed: from a [`Batch`], or straight from the
/// baseline when nothing else needs it any more (the last write).
#[derive(Debug, Default)]
pub struct Rows<'a> {
    /// Devices to upsert.
    pub devices: Vec<([u8; 6], &'a Device)>,
    /// Destinations to upsert.
    pub destinations: Vec<([u8; 6], &'a str, &'a Destination)>,
    /// Destinations to delete.
    pub removed: &'a [([u8; 6], String)],
    /// Devices to delete (with their clients).
    pub removed_devices: &'a [[u8; 6]],
    /// Clients to upsert.
    pub clients: Vec<([u8; 6], &'a str, &'a Client)>,
    /// Clients to delete.
    pub removed_clients: &'a [([u8; 6], String)],
}

/// Where the changes are, taken from the baseline by
/// [`Baseline::take_changes`]; [`Baseline::rows`] reads them.
#[derive(Debug, Default)]
pub struct Changed {
    devices: Vec<[u8; 6]>,
    destinations: Vec<([u8; 6], CompactString)>,
    removed: Vec<([u8; 6], String)>,
    removed_devices: Vec<[u8; 6]>,
    clients: Vec<([u8; 6], CompactString)>,
    removed_clients: Vec<([u8; 6], String)>,
}

impl Changed {
    /// Destinations changed.
    pub fn destinations(&self) -> usize {
        self.destinations.len()
    }
}

impl Batch {
    /// The batch as the store writes it.
    pub fn rows(&self) -> Rows<'_> {
        Rows {
            devices: self.devices.iter().map(|(m, d)| (*m, d)).collect(),
            destinations: self
                .destinations
                .iter()
                .map(|(m, n, d)| (*m, n.as_str(), d))
                .collect(),
            removed: &self.removed,
            removed_devices: &self.removed_devices,
            clients: self
                .clients
                .iter()
                .map(|(m, f, c)| (*m, f.as_str(), c))
                .collect(),
            removed_clients: &self.removed_clients,
        }
    }

    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
            && self.destinations.is_empty()
            && self.removed.is_empty()
            && self.removed_devices.is_empty()
            && self.clients.is_empty()
            && self.removed_clients.is_empty()
    }
}

impl Baseline {
    /// Takes what changed since the last call, for the writer: a copy, so
    /// the baseline's lock is held only while it is made.
    pub fn take_dirty(&mut self) -> Batch {
        let changed = self.take_changes();
        let rows = self.rows(&changed);
        Batch {
            devices: rows
                .devices
                .iter()
                .map(|(mac, d)| {
                    let copy = Device {
                        first_seen_ns: d.first_seen_ns,
                        last_seen_ns: d.last_seen_ns,
                        host_names: d.host_names.clone(),
                        destinations: HashMap::default(),
                        clients: HashMap::default(),
                        new_clients: d.new_clients,
                        unsaved: false,
                    };
                    (*mac, copy)
                })
                .collect(),
            destinations: rows
                .destinations
                .iter()
                .map(|(mac, name, d)| (*mac, (*name).to_owned(), (*d).clone()))
                .collect(),
            clients: rows
                .clients
                .iter()
                .map(|(mac, fp, c)| (*mac, (*fp).to_owned(), (*c).clone()))
                .collect(),
            removed: changed.removed,
            removed_devices: changed.removed_devices,
            removed_clients: changed.removed_clients,
        }
    }

    /// Takes the marks of what changed since the last call: each changed
    /// device and destination once, and what was removed.
    pub fn take_changes(&mut self) -> Changed {
        let mut changed = Changed::default();
        for mac in std::mem::take(&mut self.changes.devices) {
            if let Some(d) = self.devices.get_mut(&mac).filter(|d| d.unsaved) {
                d.unsaved = false;
                changed.devices.push(mac);
            }
        }
        for (mac, name) in std::mem::take(&mut self.changes.destinations) {
            if let Some(d) = self
                .devices
                .get_mut(&mac)
                .and_then(|d| d.destinations.get_mut(&name))
                .filter(|d| d.unsaved)
            {
                d.unsaved = false;
                changed.destinations.push((mac, name));
            }
        }
        for (mac, fp) in std::mem::take(&mut self.changes.clients) {
            if let Some(c) = self
                .devices
                .get_mut(&mac)
                .and_then(|d| d.clients.get_mut(&fp))
                .filter(|c| c.unsaved)
            {
                c.unsaved = false;
                changed.clients.push((mac, fp));
            }
        }
        changed.removed = self.changes.removed.drain();
        changed.removed_devices = self.changes.removed_devices.drain().collect();
        changed.removed_clients = self.changes.removed_clients.drain();
        changed
    }

    /// The rows of `changed`, borrowed from the baseline.
    pub fn rows<'a>(&'a self, changed: &'a Changed) -> Rows<'a> {
        Rows {
            devices: changed
                .devices
                .iter()
                .filter_map(|mac| Some((*mac, self.devices.get(mac)?)))
                .collect(),
            destinations: changed
                .destinations
                .iter()
                .filter_map(|(mac, name)| {
                    let d = self.devices.get(mac)?.destinations.get(name)?;
                    Some((*mac, name.as_str(), d))
                })
                .collect(),
            removed: &changed.removed,
            removed_devices: &changed.removed_devices,
            clients: changed
                .clients
                .iter()
                .filter_map(|(mac, fp)| {
                    let c = self.devices.get(mac)?.clients.get(fp)?;
                    Some((*mac, fp.as_str(), c))
                })
                .collect(),
            removed_clients: &changed.removed_clients,
        }
    }

    /// Puts a batch that could not be written back, so it is tried again.
    pub fn restore_dirty(&mut self, batch: &Batch) {
        for (mac, _) in &batch.devices {
            if let Some(d) = self.devices.get_mut(mac) {
                self.changes.device(*mac, d);
            }
        }
        for (mac, name, _) in &batch.destinations {
            if let Some(d) = self
                .devices
                .get_mut(mac)
                .and_then(|d| d.destinations.get_mut(name.as_str()))
            {
                self.changes.destination(*mac, name, d);
            }
        }
        // A row seen again since it was removed is written by its upsert
        // (the store deletes before it upserts, too).
        for (mac, name) in &batch.removed {
            let back = self
                .devices
                .get(mac)
                .is_some_and(|d| d.destinations.contains_key(name.as_str()));
            if !back {
                self.changes.destination_removed(*mac, name);
            }
        }
        for mac in &batch.removed_devices {
            if !self.devices.contains_key(mac) {
                self.changes.device_removed(*mac);
            }
        }
        for (mac, fp, _) in &batch.clients {
            if let Some(c) = self
                .devices
                .get_mut(mac)
                .and_then(|d| d.clients.get_mut(fp.as_str()))
            {
                self.changes.client(*mac, fp, c);
            }
        }
        for (mac, fp) in &batch.removed_clients {
            let back = self
                .devices
                .get(mac)
                .is_some_and(|d| d.clients.contains_key(fp.as_str()));
            if !back {
                self.changes.client_removed(*mac, fp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{obs, MAC};
    use super::super::Settings;
    use super::*;
    use crate::{Triage, SECOND};

    #[test]
    fn each_change_written_once_and_a_failed_write_again() {
        let mut b = Baseline::new(Settings::default());
        let t0 = 1_700_000_000 * SECOND;
        let names = |batch: &Batch| {
            let mut n: Vec<String> = batch
                .destinations
                .iter()
                .map(|(_, n, _)| n.clone())
                .collect();
            n.sort();
            n
        };
        for i in 0..3 {
            b.observe(&obs("a", t0 + i)).unwrap();
            b.observe(&obs("b", t0 + i)).unwrap();
        }
        let batch = b.take_dirty();
        assert_eq!(names(&batch), ["a", "b"]);
        assert_eq!(batch.destinations[0].2.flows, 3);
        assert_eq!(batch.devices.len(), 1);
        assert!(b.take_dirty().is_empty(), "nothing changed since");

        // Forgotten and seen again before the next write: one row, the new
        // one (its upsert replaces the old row; no deletion needed).
        b.observe(&obs("a", t0 + 10)).unwrap();
        b.triage(Triage::Forget, "pixel-7a", "a").unwrap();
        b.observe(&obs("a", t0 + 11)).unwrap();
        let batch = b.take_dirty();
        assert_eq!(names(&batch), ["a"]);
        assert_eq!(batch.destinations[0].2.flows, 1);
        assert!(batch.removed.is_empty());
        // Forgotten after a write: the deletion alone.
        b.triage(Triage::Forget, "pixel-7a", "a").unwrap();
        let batch = b.take_dirty();
        assert!(batch.destinations.is_empty());
        assert_eq!(batch.removed, [(MAC, "a".to_owned())]);

        // A write that failed comes back with the next one, once.
        b.observe(&obs("b", t0 + 12)).unwrap();
        let failed = b.take_dirty();
        b.restore_dirty(&failed);
        let batch = b.take_dirty();
        assert_eq!(names(&batch), ["b"]);
        assert_eq!(batch.devices.len(), 1);
        b.restore_dirty(&batch);
        b.observe(&obs("b", t0 + 13)).unwrap();
        b.observe(&obs("c", t0 + 13)).unwrap();
        let batch = b.take_dirty();
        assert_eq!(names(&batch), ["b", "c"]);
        assert_eq!(batch.devices.len(), 1);
        assert!(b.take_dirty().is_empty());

        // A removal whose write failed, of a destination seen again while
        // it was being written: the row is written, not deleted.
        b.triage(Triage::Forget, "pixel-7a", "c").unwrap();
        let failed = b.take_dirty();
        assert_eq!(failed.removed, [(MAC, "c".to_owned())]);
        b.observe(&obs("c", t0 + 14)).unwrap();
        b.restore_dirty(&failed);
        let batch = b.take_dirty();
        assert_eq!(names(&batch), ["c"]);
        assert!(batch.removed.is_empty());
    }

    #[test]
    fn in_memory_keeps_no_changes() {
        let mut b = Baseline::in_memory(Settings {
            max_destinations: 4,
            ..Settings::default()
        });
        let t0 = 1_700_000_000 * SECOND;
        for i in 0..40 {
            b.observe(&obs(&format!("d{i}.example"), t0 + i)).unwrap();
        }
        assert!(b.evicted > 0);
        b.triage(Triage::Forget, "pixel-7a", "d39.example").unwrap();
        assert!(b.changes.destinations.is_empty() && b.changes.devices.is_empty());
        assert!(b.take_dirty().is_empty());
    }
}
