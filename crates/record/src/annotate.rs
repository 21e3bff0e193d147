//! The one step from a flow to what every reader says of it: its
//! classification under its device's profile, its record, why nothing names
//! it, and (for a finished flow) what its destination is to the device's
//! baseline.
//!
//! `tetherscope read`, `tetherscope report`, the live monitor's retire path
//! (flow log, metrics, page), `/api/flows` and the page's view of active
//! flows all annotate flows here, so they cannot disagree about a flow.
//!
//! With network tables ([`Annotator::with_network`]) each record also gets
//! the AS number, AS organisation and country of its server address: one
//! lookup per record built (a record is built once per finished flow, and
//! for an active one when a view is drawn), never per packet.

use tetherscope_baseline::{Baseline, Novelty, Outcome};
use tetherscope_classify::{Catalog, Classification, Profile, Rule, Verdict};
use tetherscope_flow::{BlindSpot, DeviceTable, Flow};
use tetherscope_netinfo::NetInfo;

use crate::facts;
use crate::novelty::{self, BaselineHandle, DeviceProfiles};
use crate::record::FlowRecord;

/// What annotating a flow needs: the catalog (rules and active profile),
/// the device table (DHCP host names) and, when there is one, the baseline
/// with the profiles configured per device.
#[derive(Clone, Copy)]
pub struct Annotator<'a> {
    catalog: &'a Catalog,
    devices: &'a DeviceTable,
    baseline: Option<&'a BaselineHandle>,
    network: Option<&'a NetInfo>,
}

/// One flow, annotated.
pub struct Annotation<'c> {
    /// Its classification; the verdict is its device's profile's.
    pub class: Classification<'c>,
    /// Its record, novelty included for a finished flow judged against a
    /// baseline.
    pub record: FlowRecord,
    /// Why nothing names it, for a flow that should have a name.
    pub blind_spot: Option<BlindSpot>,
    /// What the baseline made of it (finished flows with a device only).
    pub outcome: Option<Outcome>,
}

/// What judging an active flow against the baseline needs, taken while the
/// flow table is walked so the baseline's lock is never held meanwhile.
#[derive(Debug, Clone)]
pub struct Peek {
    mac: [u8; 6],
    destination: String,
    expected: bool,
    first_seen: u64,
    local: bool,
}

impl Peek {
    /// The destination's state for its device, without recording anything.
    pub fn novelty(&self, baseline: &Baseline) -> Novelty {
        if self.local {
            Novelty::Known
        } else {
            baseline.peek(&self.mac, &self.destination, self.expected, self.first_seen)
        }
    }
}

impl<'a> Annotator<'a> {
    /// Annotates under `catalog`'s rules and active profile, with device
    /// names from `devices` and, when given, the baseline and its devices'
    /// own profiles.
    pub fn new(
        catalog: &'a Catalog,
        devices: &'a DeviceTable,
        baseline: Option<&'a BaselineHandle>,
    ) -> Self {
        Annotator {
            catalog,
            devices,
            baseline,
            network: None,
        }
    }

    /// Also looks each record's server address up in `network` (public
    /// addresses only: the tables answer nothing for the others).
    pub fn with_network(mut self, network: &'a NetInfo) -> Self {
        self.network = Some(network);
        self
    }

    /// A record of `flow` under `class`, with its server's network.
    fn record(&self, flow: &Flow, class: &Classification<'_>) -> FlowRecord {
        let mut record = FlowRecord::new(flow, facts::verdict_fields(class));
        if let Some(found) = self.network.and_then(|n| n.lookup(flow.server.ip())) {
            record.set_network(&found);
        }
        record
    }

    /// The catalog flows are classified by.
    pub fn catalog(&self) -> &'a Catalog {
        self.catalog
    }

    /// A flow's classification, its verdict decided by its device's own
    /// profile when one is configured, else by the active profile.
    pub fn classify(&self, flow: &Flow) -> Classification<'a> {
        let mut class = facts::classify(self.catalog, flow);
        if let Some(profile) = self.own_profile(flow.client_mac) {
            class.verdict = verdict_under(profile, class.rule);
        }
        class
    }

    /// The profile configured for the device behind `mac`, if any.
    pub fn own_profile(&self, mac: Option<[u8; 6]>) -> Option<&'a Profile> {
        let profiles: &'a DeviceProfiles = &self.baseline?.profiles;
        let mac = mac?;
        if let Some(p) = profiles.by_mac.get(&mac) {
            return Some(p);
        }
        if profiles.by_host.is_empty() {
            return None;
        }
        let host = novelty::host_name(self.devices, &mac)?;
        profiles.by_host.get(&*host)
    }

    /// A finished flow: classified, recorded, and judged against the
    /// baseline (which remembers it).
    pub fn finished(&self, flow: &Flow) -> Annotation<'a> {
        let class = self.classify(flow);
        let mut record = self.record(flow, &class);
        let outcome = self.baseline.and_then(|b| {
            let host = flow
                .client_mac
                .and_then(|m| novelty::host_name(self.devices, &m));
            b.judge(flow, &class, host.as_deref())
        });
        record.novelty = outcome.map(|o| o.novelty.as_str());
        Annotation {
            blind_spot: facts::blind_spot(flow, class.purpose),
            class,
            record,
            outcome,
        }
    }

    /// An active flow: classified and recorded; the baseline is not
    /// touched (see [`Annotator::peek`]), so its record has no novelty.
    pub fn active(&self, flow: &Flow) -> Annotation<'a> {
        let class = self.classify(flow);
        let record = self.record(flow, &class);
        Annotation {
            blind_spot: facts::blind_spot(flow, class.purpose),
            class,
            record,
            outcome: None,
        }
    }

    /// What judging an active flow of a device needs, for
    /// [`Peek::novelty`]; `None` without a device.
    pub fn peek(&self, flow: &Flow, class: &Classification<'_>) -> Option<Peek> {
        flow.client_mac.map(|mac| Peek {
            mac,
            destination: novelty::destination_of(flow),
            expected: class.verdict == Verdict::Expected,
            first_seen: flow.first_seen,
            local: facts::is_on_local_network(flow.server.ip()),
        })
    }
}

/// The verdict of a flow matched by `rule` under `profile`.
pub fn verdict_under(profile: &Profile, rule: Option<&Rule>) -> Verdict {
    if rule.is_some_and(|r| profile.expects(r)) {
        Verdict::Expected
    } else {
        Verdict::Unexpected
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tetherscope_baseline::Settings;
    use tetherscope_classify::RuleOrigin;
    use tetherscope_flow::flow::Names;
    use tetherscope_flow::{AppProto, Transport};

    use super::*;

    const PHONE: [u8; 6] = [0x02, 0, 0x5e, 0, 1, 0x82];
    const OTHER: [u8; 6] = [0x02, 0, 0x5e, 0, 1, 0x83];

    fn tls_flow(mac: [u8; 6], sni: &str) -> Flow {
        let mut f = Flow::new(
            Transport::Tcp,
            "10.42.0.23:40000".parse().unwrap(),
            "203.0.113.9:443".parse().unwrap(),
            1_000,
        );
        f.client_mac = Some(mac);
        f.app = AppProto::Tls;
        f.bytes_up = 100;
        f.names = Some(Box::new(Names {
            sni: Some(sni.into()),
            ..Names::default()
        }));
        f
    }

    /// The built-in catalog plus a profile that expects nothing, given to
    /// the phone alone.
    fn setup() -> (Catalog, BaselineHandle) {
        let mut catalog = Catalog::builtin();
        catalog
            .load_str(
                std::path::Path::new("strict.toml"),
                "[[profile]]\nname = \"strict\"\nexpect_rules = []\n",
                RuleOrigin::User("strict.toml".into()),
                None,
            )
            .unwrap();
        let mut handle = BaselineHandle::new(Baseline::in_memory(Settings::default()), None);
        let mut profiles = DeviceProfiles::default();
        profiles
            .by_mac
            .insert(PHONE, catalog.named_profile("strict").unwrap().clone());
        handle.profiles = Arc::new(profiles);
        (catalog, handle)
    }

    #[test]
    fn a_devices_own_profile_decides_its_verdict_in_every_annotation() {
        let (catalog, handle) = setup();
        let devices = DeviceTable::new(16);
        let a = Annotator::new(&catalog, &devices, Some(&handle));
        let xtra = "xtrapath3.izatcloud.net";
        // Under the active profile XTRA is expected; under the phone's own
        // profile nothing is.
        for annotation in [
            a.active(&tls_flow(PHONE, xtra)),
            a.finished(&tls_flow(PHONE, xtra)),
        ] {
            assert_eq!(annotation.class.verdict, Verdict::Unexpected);
            assert_eq!(
                annotation.record.verdict.verdict.as_deref(),
                Some("unexpected")
            );
            assert_eq!(
                annotation.record.verdict.rule.as_deref(),
                Some("qualcomm-xtra")
            );
        }
        let other = a.finished(&tls_flow(OTHER, xtra));
        assert_eq!(other.class.verdict, Verdict::Expected);
        assert_eq!(other.record.verdict.verdict.as_deref(), Some("expected"));
        // Without the baseline's device profiles, the active profile rules.
        let plain = Annotator::new(&catalog, &devices, None);
        assert_eq!(
            plain.classify(&tls_flow(PHONE, xtra)).verdict,
            Verdict::Expected
        );
    }

    /// Tables mapping 203.0.113.0/24 to AS64500 "Example Cloud" (a
    /// documentation range, so the tables are told to answer for it).
    fn doc_tables() -> NetInfo {
        let dir = std::env::temp_dir().join(format!("record-netinfo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("asn.csv");
        std::fs::write(&csv, "203.0.113.0,203.0.113.255,64500,Example Cloud\n").unwrap();
        let info = NetInfo::load(&tetherscope_netinfo::Config {
            asn_db: Some(csv),
            documentation_ranges: true,
            ..Default::default()
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        info
    }

    #[test]
    fn every_record_carries_its_servers_network_and_a_nameless_flow_its_owner() {
        let catalog = Catalog::builtin();
        let devices = DeviceTable::new(16);
        let tables = doc_tables();
        let a = Annotator::new(&catalog, &devices, None).with_network(&tables);
        let named = tls_flow(PHONE, "xtrapath3.izatcloud.net");
        for record in [a.active(&named).record, a.finished(&named).record] {
            assert_eq!(record.asn, Some(64500));
            assert_eq!(record.as_org.as_deref(), Some("Example Cloud"));
            assert_eq!(record.verdict.owner.as_deref(), Some("Qualcomm"));
            assert_eq!(record.verdict.owner_source, Some("catalog"));
        }
        let mut direct = tls_flow(PHONE, "x");
        direct.names = None;
        let record = a.finished(&direct).record;
        assert_eq!(record.domain, None);
        assert_eq!(record.verdict.owner.as_deref(), Some("Example Cloud"));
        assert_eq!(record.verdict.owner_source, Some("network"));
        assert_eq!(
            record.network_label().as_deref(),
            Some("AS64500 Example Cloud")
        );
        // The hotspot itself is no one's network.
        let local = Flow::new(
            Transport::Udp,
            "10.42.0.182:40000".parse().unwrap(),
            "10.42.0.1:53".parse().unwrap(),
            1_000,
        );
        let record = a.finished(&local).record;
        assert_eq!(
            (record.asn, record.as_org, record.country),
            (None, None, None)
        );
        assert_ne!(record.verdict.owner_source, Some("network"));
        // Without tables nothing is looked up.
        let plain = Annotator::new(&catalog, &devices, None)
            .finished(&direct)
            .record;
        assert_eq!((plain.asn, plain.verdict.owner), (None, None));
    }

    #[test]
    fn a_finished_flow_is_judged_and_an_active_one_only_peeked() {
        let (catalog, handle) = setup();
        let devices = DeviceTable::new(16);
        let a = Annotator::new(&catalog, &devices, Some(&handle));
        let flow = tls_flow(OTHER, "beacon.tracker.example.com");
        let active = a.active(&flow);
        assert_eq!(active.record.novelty, None);
        assert!(active.outcome.is_none());
        let peek = a.peek(&flow, &active.class).unwrap();
        let _ = peek.novelty(&handle.lock());
        assert!(
            handle.lock().state_of(&OTHER, "example.com").is_none(),
            "peeking records nothing"
        );
        let finished = a.finished(&flow);
        let outcome = finished.outcome.expect("a device's flow is judged");
        assert_eq!(finished.record.novelty, Some(outcome.novelty.as_str()));
        // Judged once: the baseline now holds the destination.
        assert!(handle.lock().state_of(&OTHER, "example.com").is_some());
        assert_eq!(finished.blind_spot, None, "a named flow");
    }

    #[test]
    fn a_finished_flows_tls_client_is_learned_then_new() {
        use tetherscope_baseline::State;
        let catalog = Catalog::builtin();
        let handle = BaselineHandle::new(
            Baseline::in_memory(Settings {
                learn_for_ns: 3_600_000_000_000,
                ..Settings::default()
            }),
            None,
        );
        let devices = DeviceTable::new(16);
        let a = Annotator::new(&catalog, &devices, Some(&handle));
        let known = "t13d1516h2_8daaf6152771_e5627efa2ab1";
        let other = "t13d1715h2_5b57614c22b0_3d5424432f57";
        let with_client = |fingerprint: &str, t: u64| {
            let mut f = tls_flow(PHONE, "app.example.net");
            f.first_seen = t;
            f.last_seen = t;
            if let Some(names) = f.names.as_deref_mut() {
                names.ja4 = tetherscope_flow::Ja4::parse(fingerprint);
            }
            f
        };
        a.finished(&with_client(known, 1_000));
        // Two hours later, past the hour of learning.
        let later = 7_200_000_000_000;
        a.finished(&with_client(known, later));
        a.finished(&with_client(other, later));
        // A flow without a fingerprint (plain HTTP, say) adds no client.
        a.finished(&tls_flow(PHONE, "plain.example.org"));
        let b = handle.lock();
        assert_eq!(b.client_state(&PHONE, known), Some(State::Baseline));
        assert_eq!(b.client_state(&PHONE, other), Some(State::New));
        assert_eq!(b.devices()[&PHONE].clients.len(), 2);
        assert_eq!(b.devices()[&PHONE].new_clients, 1);
        let shown = b.client_entries(None).unwrap();
        assert_eq!(shown[1].destinations, ["example.net"]);
    }
}
