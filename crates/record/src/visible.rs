//! Names from the wire as people read them: characters that draw nothing
//! or reorder what follows are shown as visible escapes, so that
//! `gsta\u{200b}tic.com` never passes for `gstatic.com` and a right-to-left
//! override cannot make `moc.elgoog` read as `google.com`.
//!
//! Control characters become `\xNN`; format characters (Unicode category
//! Cf: bidirectional overrides and isolates, zero-width spaces and joiners,
//! the byte-order mark, ...) and the line and paragraph separators become
//! `\u{XXXX}`. Every human-facing surface (the page, both as drawn by the
//! server and by `page.js`, the report, the tables of `read` and
//! `baseline list`) uses these rules; JSON keeps the real string, whose
//! escapes are already unambiguous.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Unicode's format characters (general category Cf, Unicode 15.1), as
/// inclusive ranges.
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `c` is shown escaped rather than as itself.
pub fn is_hidden(c: char) -> bool {
    let u = u32::from(c);
    c.is_control()
        || matches!(u, 0x2028 | 0x2029)
        || FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&u))
}

/// Appends the visible escape of a hidden character.
pub fn push_escape(out: &mut String, c: char) {
    let u = u32::from(c);
    if c.is_control() {
        let _ = write!(out, "\\x{u:02x}");
    } else {
        let _ = write!(out, "\\u{{{u:04x}}}");
    }
}

/// `s` with every hidden character shown as its escape; unchanged (and not
/// copied) when it holds none.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_hidden(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_reordering_characters_are_escaped() {
        assert_eq!(visible("gsta\u{200b}tic.com"), "gsta\\u{200b}tic.com");
        assert_eq!(visible("\u{202e}moc.elgoog"), "\\u{202e}moc.elgoog");
        assert_eq!(
            visible("a\u{feff}b\u{2066}c\u{2060}d"),
            "a\\u{feff}b\\u{2066}c\\u{2060}d"
        );
        assert_eq!(visible("tag\u{e0041}"), "tag\\u{e0041}");
        assert_eq!(visible("soft\u{ad}hyphen"), "soft\\u{00ad}hyphen");
        assert_eq!(visible("bell\u{7}\u{85}"), "bell\\x07\\x85");
        assert_eq!(visible("line\u{2028}break"), "line\\u{2028}break");
    }

    #[test]
    fn ordinary_names_are_left_alone() {
        for s in [
            "gstatic.com",
            "bücher.example",
            "例え.テスト",
            "مثال.إختبار",
            "a-b_c",
        ] {
            assert!(matches!(visible(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn every_range_is_in_order_and_holds_only_hidden_characters() {
        for w in FORMAT.windows(2) {
            assert!(w[0].1 < w[1].0, "{w:?}");
        }
        for &(lo, hi) in FORMAT {
            assert!(lo <= hi);
            for u in lo..=hi {
                let c = char::from_u32(u).unwrap();
                assert!(!c.is_alphanumeric() && !c.is_whitespace(), "{u:#x}");
            }
        }
    }
}
