//! What the state module's tests share: a small monitor and flows to feed it.

use std::collections::HashSet;
use std::sync::Arc;

use tetherscope_classify::Catalog;
use tetherscope_flow::{AppProto, Flow, Names, Pipeline, PipelineConfig, Transport};

use super::{DomainLabel, LabelPolicy, Shared, DEFAULT_MAX_OWNERS};

/// An hour of packet time.
pub const HOUR: u64 = 3600 * 1_000_000_000;

/// A monitor with the builtin catalog, `max_domains` places and an hour's idle time.
pub fn shared(max_domains: usize) -> Shared {
    let pipeline = Pipeline::new(&PipelineConfig::default());
    Shared::with_labels(
        &pipeline,
        Arc::new(Catalog::builtin()),
        LabelPolicy {
            max_domains,
            idle_ns: HOUR,
            domain: DomainLabel::Registrable,
            max_owners: DEFAULT_MAX_OWNERS,
        },
    )
}

/// A finished TLS flow to `sni` whose last packet was at `at`.
pub fn tls_flow(sni: &str, at: u64) -> Flow {
    let mut f = Flow::new(
        Transport::Tcp,
        "10.42.0.23:40000".parse().unwrap(),
        "203.0.113.9:443".parse().unwrap(),
        at,
    );
    f.app = AppProto::Tls;
    f.bytes_up = 100;
    f.names = Some(Box::new(Names {
        sni: Some(sni.into()),
        ..Names::default()
    }));
    f
}

/// The `domain` values of `tetherscope_flows_total` in an exposition.
pub fn domains(text: &str) -> HashSet<String> {
    text.lines()
        .filter(|l| l.starts_with("tetherscope_flows_total{"))
        .filter_map(|l| Some(l.split("domain=\"").nth(1)?.split('"').next()?.to_owned()))
        .collect()
}

/// The sum of `tetherscope_flows_total` in an exposition.
pub fn flows_sum(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("tetherscope_flows_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// A flow from the phone at `at`, named `sni` (TLS) or unnamed.
pub fn flow_at(sni: Option<&str>, transport: Transport, port: u16, sport: u16, at: u64) -> Flow {
    let mut f = Flow::new(
        transport,
        format!("10.42.0.23:{sport}").parse().unwrap(),
        format!("203.0.113.9:{port}").parse().unwrap(),
        at,
    );
    f.bytes_up = 100;
    if let Some(sni) = sni {
        f.app = AppProto::Tls;
        f.names = Some(Box::new(Names {
            sni: Some(sni.into()),
            ..Names::default()
        }));
    }
    f
}
