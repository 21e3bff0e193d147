//! Registrable domains (eTLD+1), the bounded fallback for the `site` label.
//!
//! Only the ICANN section of the public suffix list counts: its private
//! section makes every CloudFront distribution or GitHub page a "registrable
//! domain" of its own, which would scatter one operator over thousands of
//! labels that mean nothing to the user.

/// The registrable domain of `name` (`www.example.co.uk` → `example.co.uk`,
/// `d3nj9ptoklgw8o.cloudfront.net` → `cloudfront.net`); the name itself when
/// it has none.
pub fn registrable_domain(name: &str) -> &str {
    let name = name.trim_end_matches('.');
    // Label starts, rightmost first: "a.b.c" -> [4, 2, 0].
    let mut starts: Vec<usize> = name.match_indices('.').map(|(i, _)| i + 1).collect();
    starts.insert(0, 0);
    starts.reverse();
    let mut icann_suffix_start = None;
    for &start in &starts {
        let candidate = &name[start..];
        match psl::suffix(candidate.as_bytes()) {
            Some(s)
                if s.as_bytes() == candidate.as_bytes() && s.typ() == Some(psl::Type::Icann) =>
            {
                icann_suffix_start = Some(start);
            }
            _ => {}
        }
    }
    let Some(suffix_start) = icann_suffix_start else {
        return name;
    };
    // One more label to the left of the ICANN suffix.
    match starts
        .iter()
        .position(|&s| s == suffix_start)
        .and_then(|i| starts.get(i + 1))
    {
        Some(&start) => &name[start..],
        None => name,
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
    }
}
