//! Label values: what each label of a series holds, made safe and short.

use std::borrow::Cow;

use tetherscope_flow::Flow;

/// Label value for domains past the cap, or whose place was given back.
pub const OTHER: &str = "other";
/// Label value for flows nothing names.
pub use tetherscope_record::UNNAMED;

/// What the `domain` label holds for a named flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DomainLabel {
    /// The registrable domain (eTLD+1) of the flow's name: `izatcloud.net`.
    #[default]
    Registrable,
    /// The full name: `xtrapath3.izatcloud.net`.
    Fqdn,
}

/// Label value for flows without a known device.
pub const UNKNOWN_DEVICE: &str = "unknown";

/// Labels of one flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowLabels {
    /// DHCP name or MAC.
    pub device: String,
    /// The bounded DNS-name label: registrable domain (or full name) of
    /// what the flow was attributed to, `unnamed` or `other`.
    pub domain: String,
    /// The catalog's display name of the matching rule ("" when none).
    pub service: String,
    /// Purpose.
    pub purpose: &'static str,
    /// Expected or not.
    pub verdict: &'static str,
    /// DNS flows: the response code of the first answer ("" for others).
    pub rcode: &'static str,
    /// Who runs the destination: the matching rule's owner (a catalog
    /// entity or a list's name), [`UNKNOWN_OWNER`] or [`OTHER`] past the
    /// owner budget.
    pub owner: String,
}

/// Label value for flows no rule names an owner for.
pub const UNKNOWN_OWNER: &str = "unknown";

/// The `owner` label of a classification: its rule's owner, made safe (list
/// names are the user's, so they get the same care as names from the wire).
pub(super) fn owner_label(rule: Option<&tetherscope_classify::Rule>) -> String {
    let owner = rule
        .map(|r| sanitize_or_empty(&r.owner))
        .unwrap_or_default();
    if owner.is_empty() {
        UNKNOWN_OWNER.to_owned()
    } else {
        owner
    }
}

/// The name the `domain` label is made of: the flow's domain (given, as
/// the caller has it), or for a DNS flow the name it asked about.
pub(super) fn label_name<'f>(flow: &'f Flow, domain: Option<&'f str>) -> Option<&'f str> {
    domain.or_else(|| {
        flow.names
            .as_deref()
            .and_then(|n| n.dns_query.as_deref())
            .filter(|q| !q.is_empty())
    })
}

/// The `domain` label of a name: its registrable domain or the full name,
/// made safe as a label value.
pub fn domain_label(name: Option<&str>, mode: DomainLabel) -> String {
    domain_label_ref(name, mode).into_owned()
}

/// [`domain_label`], borrowed from the name when it is safe as it is (most
/// names): a scrape looks up many more names than it keeps.
pub(super) fn domain_label_ref(name: Option<&str>, mode: DomainLabel) -> Cow<'_, str> {
    match name {
        None => Cow::Borrowed(UNNAMED),
        Some(n) => {
            let n = match mode {
                DomainLabel::Registrable => tetherscope_classify::registrable_domain(n),
                DomainLabel::Fqdn => n,
            };
            if is_safe_label(n) {
                Cow::Borrowed(n)
            } else {
                Cow::Owned(sanitize(n))
            }
        }
    }
}

/// Whether [`sanitize`] would return the value unchanged.
pub(super) fn is_safe_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= SANITIZED_MAX_CHARS
        && !s.chars().any(|c| {
            if c.is_ascii() {
                c.is_ascii_control() || c == '"' || c == '\\'
            } else {
                crate::visible::is_hidden(c)
            }
        })
}

/// What decides the `rcode` label, as a number: 0 for flows that are not
/// DNS, [`RCODE_NONE`] for no answer yet, else 0x100 | the response code.
pub(super) fn rcode_key(flow: &Flow) -> u16 {
    match flow.names.as_deref().filter(|n| n.dns_query.is_some()) {
        None => 0,
        Some(n) => n.dns_rcode.map_or(RCODE_NONE, |r| 0x100 | u16::from(r)),
    }
}

/// [`rcode_key`] of a DNS flow without an answer.
const RCODE_NONE: u16 = 0x200;

/// The `rcode` of a DNS flow: the first answer's response code, `none`
/// when no answer was seen; "" for flows that are not DNS.
pub(super) fn rcode_label(flow: &Flow) -> &'static str {
    rcode_name(rcode_key(flow))
}

/// The `rcode` label of an [`rcode_key`].
pub(super) fn rcode_name(key: u16) -> &'static str {
    match key {
        0 => "",
        RCODE_NONE => "none",
        0x100 => "noerror",
        0x102 => "servfail",
        0x103 => "nxdomain",
        0x105 => "refused",
        _ => "other",
    }
}

/// The `service` label of a classification: its rule's display name.
pub(super) fn service_label(rule: Option<&tetherscope_classify::Rule>) -> String {
    rule.map(|r| sanitize_or_empty(r.display.as_deref().unwrap_or(&r.name)))
        .unwrap_or_default()
}

/// The `verdict` label.
pub(super) fn verdict_label(unexpected: bool) -> &'static str {
    if unexpected {
        "unexpected"
    } else {
        "expected"
    }
}

/// Makes a label value safe: control characters and quotes removed, length
/// capped. (The Prometheus text encoder escapes too; this keeps values short
/// and readable.)
pub fn sanitize(s: &str) -> String {
    let clean = sanitize_or_empty(s);
    if clean.is_empty() {
        UNNAMED.to_owned()
    } else {
        clean
    }
}

/// [`sanitize`], but an empty result stays empty.
fn sanitize_or_empty(s: &str) -> String {
    let mut out = String::new();
    for c in s
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(SANITIZED_MAX_CHARS)
    {
        // Characters that draw nothing or reorder the text are written out,
        // as on the page: `gsta\u{200b}tic.com` never passes for
        // `gstatic.com` in a dashboard.
        if crate::visible::is_hidden(c) {
            crate::visible::push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest label value [`sanitize`] keeps, in characters.
const SANITIZED_MAX_CHARS: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::test_support::*;
    use crate::state::LabelPolicy;

    #[test]
    fn label_values_show_invisible_characters() {
        for (name, shown) in [
            ("gsta\u{200b}tic.com", "gsta\\u{200b}tic.com"),
            ("\u{202e}moc.elgoog", "\\u{202e}moc.elgoog"),
            ("plain.example", "plain.example"),
            ("b\"a\\d\n.example", "bad.example"),
        ] {
            assert!(!is_safe_label(name) || name == "plain.example", "{name:?}");
            assert_eq!(sanitize(name), shown, "{name:?}");
            assert_eq!(
                domain_label_ref(Some(name), DomainLabel::Fqdn),
                shown,
                "{name:?}"
            );
        }
    }

    #[test]
    fn domain_label_is_the_registrable_domain_and_the_display_name_is_the_service() {
        let s = shared(10);
        let (labels, _) = s.measure(&tls_flow("xtrapath3.izatcloud.net", 0), true);
        assert_eq!(labels.domain, "izatcloud.net");
        assert_eq!(labels.service, "Qualcomm XTRA");
        let mut fqdn = shared(10);
        fqdn.labels = LabelPolicy {
            domain: DomainLabel::Fqdn,
            ..s.labels
        };
        let (labels, _) = fqdn.measure(&tls_flow("xtrapath3.izatcloud.net", 0), true);
        assert_eq!(labels.domain, "xtrapath3.izatcloud.net");
        let (labels, _) = s.measure(&tls_flow("beacon.tracker.example.com", 0), true);
        assert_eq!(
            (labels.domain.as_str(), labels.service.as_str()),
            ("example.com", "")
        );
    }
}
