//! Registrable domains (eTLD+1), the bounded fallback for the `site` label.
//!
//! Only the ICANN section of the public suffix list counts: its private
//! section makes every CloudFront distribution or GitHub page a "registrable
//! domain" of its own, which would scatter one operator over thousands of
//! labels that mean nothing to the user.

use std::borrow::Cow;

/// The registrable domain of `name` (`www.example.co.uk` → `example.co.uk`,
/// `d3nj9ptoklgw8o.cloudfront.net` → `cloudfront.net`); the name itself when
/// it has none.
pub fn registrable_domain(name: &str) -> &str {
    let name = name.trim_end_matches('.');
    // Label-aligned suffixes, shortest first: "a.b.c" -> "c", "b.c", "a.b.c".
    let starts = name
        .rmatch_indices('.')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(0));
    // The answer is the suffix one label longer than the longest ICANN
    // public suffix; `None` while that label is still to come.
    let mut answer = None;
    let mut previous_was_suffix = false;
    for start in starts {
        if previous_was_suffix {
            answer = Some(start);
        }
        let candidate = &name[start..];
        previous_was_suffix = matches!(
            psl::suffix(candidate.as_bytes()),
            Some(s) if s.as_bytes() == candidate.as_bytes() && s.typ() == Some(psl::Type::Icann)
        );
        if previous_was_suffix {
            answer = None;
        }
    }
    answer.map_or(name, |start| &name[start..])
}

/// [`registrable_domain`] of a name in any case, lower-cased: borrowed from
/// the name unless it holds capitals.
pub fn registrable_domain_lowercase(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(registrable_domain(&name.to_ascii_lowercase()).to_owned())
    } else {
        Cow::Borrowed(registrable_domain(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etld_plus_one() {
        assert_eq!(
            registrable_domain("d3nj9ptoklgw8o.cloudfront.net"),
            "cloudfront.net"
        );
        assert_eq!(registrable_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(
            registrable_domain("beacon.tracker.example.com"),
            "example.com"
        );
        assert_eq!(registrable_domain("example.com"), "example.com");
        assert_eq!(registrable_domain("co.uk"), "co.uk");
        assert_eq!(registrable_domain("localhost"), "localhost");
        assert_eq!(registrable_domain("b.a.co.uk."), "a.co.uk");
        // A wildcard rule: `*.ck`.
        assert_eq!(registrable_domain("foo.bar.ck"), "foo.bar.ck");
        assert_eq!(registrable_domain(""), "");
        assert_eq!(
            registrable_domain_lowercase("CDN.Example.CO.UK"),
            "example.co.uk"
        );
    }
}
