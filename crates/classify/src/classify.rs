//! From flow facts to a classification.

use crate::catalog::{Catalog, Locality, PatternKind, Rule};
use crate::purpose::Purpose;
use crate::site::registrable_domain_lowercase;

/// Transport, as the classifier sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Anything else.
    Other,
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            other => Err(format!("transport must be tcp or udp, not {other:?}")),
        }
    }
}

/// What the classifier needs to know about a flow.
#[derive(Debug, Clone, Copy)]
pub struct FlowFacts<'a> {
    /// Transport.
    pub transport: Transport,
    /// Server port.
    pub server_port: Option<u16>,
    /// Whether the server is the hotspot or on the local network.
    pub server_is_local: bool,
    /// Application protocol ("dns", "tls", "http", ...).
    pub app: Option<&'a str>,
    /// Names of the destination in precedence order: the flow's domain
    /// (SNI, Host, or the name the client asked for), then every name of
    /// the CNAME chain behind it.
    pub names: &'a [&'a str],
    /// HTTP request path.
    pub http_path: Option<&'a str>,
}

/// `expected` or `unexpected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The active profile expects this flow.
    Expected,
    /// It does not.
    Unexpected,
}

impl Verdict {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Expected => "expected",
            Verdict::Unexpected => "unexpected",
        }
    }
}

/// The answer for one flow.
#[derive(Debug, Clone)]
pub struct Classification<'c> {
    /// The rule that matched.
    pub rule: Option<&'c Rule>,
    /// Its purpose, or `unknown`.
    pub purpose: Purpose,
    /// Under the active profile.
    pub verdict: Verdict,
    /// Bounded display name: the rule's display name, else the registrable
    /// domain of the flow's name, else `unnamed`.
    pub site: String,
    /// The rule documents cleartext to this destination.
    pub cleartext_known: bool,
    /// The name that matched, if any.
    pub matched_name: Option<String>,
}

/// What [`Catalog::judge`] decides of one flow.
#[derive(Debug, Clone, Copy)]
pub struct Judgement<'c> {
    /// The rule that matched.
    pub rule: Option<&'c Rule>,
    /// Its purpose, or `unknown`.
    pub purpose: Purpose,
    /// Under the active profile.
    pub verdict: Verdict,
    /// The rule documents cleartext to this destination.
    pub cleartext_known: bool,
}

/// Site label of flows no name could be given to.
pub const UNNAMED_SITE: &str = "unnamed";

impl Catalog {
    /// Classifies one flow.
    pub fn classify<'c>(&'c self, facts: &FlowFacts<'_>) -> Classification<'c> {
        let (judgement, matched) = self.judge_with_name(facts);
        let Judgement {
            rule,
            purpose,
            verdict,
            cleartext_known,
        } = judgement;
        let site = match (rule.and_then(|r| r.display.as_deref()), facts.names.first()) {
            (Some(display), _) => display.to_owned(),
            (None, Some(name)) => registrable_domain_lowercase(name).into_owned(),
            (None, None) => rule.map_or_else(|| UNNAMED_SITE.to_owned(), |r| r.name.clone()),
        };
        Classification {
            rule,
            purpose,
            verdict,
            site,
            cleartext_known,
            matched_name: matched.map(str::to_owned),
        }
    }

    /// The rule, purpose and verdict of one flow: [`Catalog::classify`]
    /// without the strings, for callers that classify many flows and label
    /// them their own way.
    pub fn judge<'c>(&'c self, facts: &FlowFacts<'_>) -> Judgement<'c> {
        self.judge_with_name(facts).0
    }

    /// [`Catalog::judge`], and the name the rule matched.
    fn judge_with_name<'c, 'f>(
        &'c self,
        facts: &FlowFacts<'f>,
    ) -> (Judgement<'c>, Option<&'f str>) {
        // A catalog rule for any of the names beats a list entry for any of
        // them: the catalog says why, a list only that someone objects.
        let found = [false, true].into_iter().find_map(|lists| {
            facts.names.iter().find_map(|name| {
                let name = name.trim_end_matches('.');
                self.match_name(name, facts, lists).map(|r| (r, name))
            })
        });
        let (rule, matched) = match found {
            Some((r, n)) => (Some(r), Some(n)),
            None => (self.match_flow(facts), None),
        };
        let expected = rule.is_some_and(|r| self.active.expects(r));
        let judgement = Judgement {
            rule,
            purpose: rule.map_or(Purpose::Unknown, |r| r.purpose),
            verdict: if expected {
                Verdict::Expected
            } else {
                Verdict::Unexpected
            },
            cleartext_known: rule.is_some_and(|r| r.cleartext_known),
        };
        (judgement, matched)
    }

    /// The most specific rule for one name: walk its label-aligned suffixes
    /// from the longest, one hash lookup each; at the first suffix with a
    /// usable rule, prefer user rules, then constrained ones, then exact.
    /// `lists` chooses between catalog rules (false) and list entries (true).
    pub(crate) fn match_name(
        &self,
        name: &str,
        facts: &FlowFacts<'_>,
        lists: bool,
    ) -> Option<&Rule> {
        let lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        if lists {
            return self.match_list(name);
        }
        let mut start = 0;
        loop {
            let suffix = &name[start..];
            if let Some(entries) = self.index.get(suffix) {
                let best = entries
                    .iter()
                    .filter(|(_, kind)| match kind {
                        PatternKind::Suffix => true,
                        PatternKind::Subdomains => start > 0,
                        PatternKind::Exact => start == 0,
                    })
                    .map(|(i, kind)| (&self.rules[*i as usize], *kind))
                    .filter(|(r, _)| constraints_hold(r, facts))
                    .max_by_key(|(r, kind)| {
                        (
                            r.priority(),
                            r.constraint_count(),
                            *kind == PatternKind::Exact,
                        )
                    });
                if let Some((rule, _)) = best {
                    return Some(rule);
                }
            }
            match suffix.find('.') {
                Some(dot) => start += dot + 1,
                None => return None,
            }
        }
    }

    /// The list entry for `name` (lowercase) or its closest listed parent.
    fn match_list(&self, name: &str) -> Option<&Rule> {
        if self.list_index.is_empty() {
            return None;
        }
        let mut start = 0;
        loop {
            if let Some(i) = self.list_index.get(&name[start..]) {
                return Some(&self.rules[*i as usize]);
            }
            start += name[start..].find('.')? + 1;
        }
    }

    /// Domain-less rules (hotspot DNS, DoT port, local network, ...): the
    /// most constrained one that holds.
    fn match_flow(&self, facts: &FlowFacts<'_>) -> Option<&Rule> {
        self.flow_rules
            .iter()
            .map(|i| &self.rules[*i as usize])
            .filter(|r| constraints_hold(r, facts))
            .max_by_key(|r| (r.priority(), r.constraint_count()))
    }
}

fn constraints_hold(rule: &Rule, facts: &FlowFacts<'_>) -> bool {
    rule.transport.is_none_or(|t| t == facts.transport)
        && (rule.ports.is_empty() || facts.server_port.is_some_and(|p| rule.ports.contains(&p)))
        && rule
            .http_path_prefix
            .as_deref()
            .is_none_or(|prefix| facts.http_path.is_some_and(|p| p.starts_with(prefix)))
        && rule.app.as_deref().is_none_or(|a| facts.app == Some(a))
        && rule
            .server
            .is_none_or(|s| (s == Locality::Local) == facts.server_is_local)
}
