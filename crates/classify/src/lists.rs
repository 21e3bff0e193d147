//! Domain lists in the formats people already have.
//!
//! * hosts files: `0.0.0.0 ads.example.com` (any address, several names)
//! * plain lists: one domain per line
//! * Adblock-style: `||ads.example.com^` (only whole-domain blocks, alone or
//!   with options that do not narrow them to some pages or resource types:
//!   `$third-party`, `$important`, `$all`; other syntax — paths, narrowing
//!   options, exceptions, cosmetic rules — is skipped and counted)
//!
//! `#` and `!` start comments. Invalid names are skipped and counted.

use std::str::FromStr;

/// The format of a list file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// Decide per line.
    Auto,
    /// hosts file.
    Hosts,
    /// One domain per line.
    Domains,
    /// Adblock filter syntax.
    Adblock,
}

impl FromStr for ListFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ListFormat::Auto),
            "hosts" => Ok(ListFormat::Hosts),
            "domains" => Ok(ListFormat::Domains),
            "adblock" => Ok(ListFormat::Adblock),
            _ => Err(format!(
                "unknown list format {s:?} (auto, hosts, domains, adblock)"
            )),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Domains added.
    pub domains: usize,
    /// Lines skipped: unsupported syntax or invalid names.
    pub skipped: usize,
}

fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && d.parse::<std::net::IpAddr>().is_err()
}

/// Names that hosts files map to themselves, never meant as entries.
const HOSTS_NOISE: [&str; 6] = [
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
];

/// The domain of an Adblock `||domain^` rule (after the `||`) when it
/// blocks the whole domain for every page: its options, if any, are only
/// ones that do not narrow it (a phone's flows are all third-party).
fn whole_domain_block(rest: &str) -> Option<&str> {
    let (domain, options) = match rest.split_once("^$") {
        Some((d, o)) => (d, Some(o)),
        None => (rest.strip_suffix('^')?, None),
    };
    let wide = |o: &str| matches!(o, "third-party" | "3p" | "important" | "all");
    options
        .is_none_or(|o| o.split(',').all(wide))
        .then_some(domain)
}

/// A list's own title: the value of its `! Title:` header line, if the
/// first lines have one.
pub(crate) fn title(text: &str) -> Option<String> {
    text.lines().take(40).find_map(|line| {
        let t = line
            .strip_prefix('!')?
            .trim_start()
            .strip_prefix("Title:")?;
        let t = t.trim();
        (!t.is_empty() && t.len() <= 100 && !t.chars().any(char::is_control)).then(|| t.to_owned())
    })
}

/// The modification date of `path` as `YYYY-MM-DD` (UTC).
pub(crate) fn modified_date(path: &std::path::Path) -> Option<String> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let secs = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, public domain).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses `text`, calling `add` with each lowercased domain.
pub(crate) fn parse(text: &str, format: ListFormat, mut add: impl FnMut(&str)) -> ListStats {
    let mut stats = ListStats::default();
    let mut lower = String::new();
    let mut push = |d: &str, stats: &mut ListStats| {
        lower.clear();
        lower.push_str(d.trim_end_matches('.'));
        lower.make_ascii_lowercase();
        if valid_domain(&lower) && !HOSTS_NOISE.contains(&lower.as_str()) {
            add(&lower);
            stats.domains += 1;
        } else {
            stats.skipped += 1;
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.contains("##") || line.contains("#@#") {
            stats.skipped += 1; // cosmetic filter, not a domain
            continue;
        }
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with('!')
            || line.starts_with('[')
        {
            continue;
        }
        let adblock = line.starts_with("||");
        match (format, adblock) {
            (ListFormat::Adblock | ListFormat::Auto, true) => {
                let rest = &line[2..];
                match whole_domain_block(rest) {
                    Some(domain) if !domain.contains(['/', '*', '$', '^']) => {
                        push(domain, &mut stats)
                    }
                    _ => stats.skipped += 1,
                }
            }
            (ListFormat::Adblock, false) => stats.skipped += 1,
            _ => {
                let line = line.split('#').next().unwrap_or("").trim();
                let mut fields = line.split_whitespace();
                let Some(first) = fields.next() else { continue };
                if first.parse::<std::net::IpAddr>().is_ok() {
                    if format == ListFormat::Domains {
                        stats.skipped += 1;
                        continue;
                    }
                    for name in fields {
                        push(name, &mut stats);
                    }
                } else if format == ListFormat::Hosts || fields.next().is_some() {
                    stats.skipped += 1;
                } else {
                    push(first, &mut stats);
                }
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str, format: ListFormat) -> (Vec<String>, ListStats) {
        let mut v = Vec::new();
        let stats = parse(text, format, |d| v.push(d.to_owned()));
        (v, stats)
    }

    #[test]
    fn hosts_file() {
        let (v, s) = collect("# comment\n127.0.0.1 localhost\n0.0.0.0 Ads.Example.com track.example.net # x\n::1 ip6-localhost\n", ListFormat::Auto);
        assert_eq!(v, ["ads.example.com", "track.example.net"]);
        assert_eq!(s.skipped, 2);
    }

    #[test]
    fn plain_domains() {
        let (v, s) = collect(
            "tracker.example\nexample.org.\nnot a domain\n10.0.0.1\n",
            ListFormat::Domains,
        );
        assert_eq!(v, ["tracker.example", "example.org"]);
        assert_eq!(s.skipped, 2);
    }

    #[test]
    fn adblock() {
        let text = "[Adblock Plus 2.0]\n! title\n||ads.example.com^\n||cdn.example.com/banner^\n@@||good.example^\n##.ad\n||x.example^$third-party\n||y.example^$script,domain=news.example\n||z.example^$3p,important\n";
        let (v, s) = collect(text, ListFormat::Adblock);
        assert_eq!(v, ["ads.example.com", "x.example", "z.example"]);
        assert_eq!(s.skipped, 4);
    }

    #[test]
    fn title_and_dates() {
        assert_eq!(
            title("[Adblock Plus 2.0]\n! Title: EasyPrivacy\n! Last modified: %timestamp%\n"),
            Some("EasyPrivacy".into())
        );
        assert_eq!(title("||a.example^\n"), None);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_392), (2025, 10, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
