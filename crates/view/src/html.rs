//! HTML and SVG for a `View`: the live page's first paint and the
//! self-contained report are drawn by the same functions.
//!
//! Every string that can come from the wire (names, paths, DHCP host names,
//! methods) goes through `text` or `attr`, which escape markup characters
//! and show control characters as visible `\xNN` and invisible or
//! reordering ones as `\u{XXXX}` (see `tetherscope_record::visible`), so nothing a phone
//! sends can become markup, an attribute or a script, nor pass for another
//! name.

use std::fmt::Write as _;

/// The stylesheet of the page and of reports (inlined into them).
pub const CSS: &str = include_str!("../assets/page.css");

use crate::view::{Destination, DeviceView, TimelineView, View};
use tetherscope_record::record::rfc3339;

/// Escapes text for HTML element content and quoted attribute values, in
/// SVG too. Control characters become a visible `\xNN`, format characters
/// `\u{XXXX}`.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if tetherscope_record::visible::is_hidden(c) => {
                tetherscope_record::visible::push_escape(&mut out, c)
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes a quoted attribute value (same rules as `text`).
pub fn attr(s: &str) -> String {
    text(s)
}

/// Bytes in a short human form (`1.2 MB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Unix seconds as `2023-11-14 22:13:20` UTC.
pub fn time(secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    let t = rfc3339((secs * 1e9) as u64);
    format!("{} {}", &t[..10], &t[11..19])
}

/// A colour per purpose, stable across page and report.
pub fn colour(purpose: &str) -> &'static str {
    match purpose {
        "os-update" => "#4e79a7",
        "filter-update" => "#76b7b2",
        "location" => "#59a14f",
        "gnss-assistance" => "#8cd17d",
        "connectivity-check" => "#b6992d",
        "time-sync" => "#f1ce63",
        "device-registration" => "#499894",
        "key-attestation" => "#86bcb6",
        "push" => "#f28e2b",
        "app-store" => "#ffbe7d",
        "google-services" => "#a0cbe8",
        "dns" => "#bab0ac",
        "encrypted-dns" => "#79706e",
        "local-network" => "#d4a6c8",
        "tracking" => "#e15759",
        "advertising" => "#ff9d9a",
        "analytics" => "#b07aa1",
        "malware" => "#9d2222",
        _ => "#9c755f",
    }
}

/// Traffic by purpose over time as a stacked bar chart.
pub fn timeline_svg(t: &TimelineView) -> String {
    let (w, h, left, bottom) = (640.0, 220.0, 56.0, 24.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="timeline-title"><title id="timeline-title">Bytes by purpose over time</title>"#
    );
    let totals: Vec<u64> = t.bytes.iter().map(|b| b.iter().sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = t.starts.len().max(1) as f64;
    let bar = (w - left) / n;
    let plot = h - bottom - 8.0;
    let _ = write!(
        out,
        r##"<text x="{}" y="14" class="axis">{}</text><line x1="{left}" y1="{}" x2="{w}" y2="{}" stroke="#888"/>"##,
        4,
        text(&bytes(max as u64)),
        h - bottom,
        h - bottom
    );
    for (i, b) in t.bytes.iter().enumerate() {
        let mut y = h - bottom;
        for (p, v) in t.purposes.iter().zip(b) {
            if *v == 0 {
                continue;
            }
            let bh = plot * (*v as f64) / max;
            y -= bh;
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                left + i as f64 * bar,
                (bar - 1.0).max(1.0),
                colour(p),
                text(p),
                text(&bytes(*v))
            );
        }
    }
    if let (Some(first), Some(last)) = (t.starts.first(), t.starts.last()) {
        let _ = write!(
            out,
            r#"<text x="{left}" y="{}" class="axis">{}</text><text x="{w}" y="{}" class="axis" text-anchor="end">{}</text>"#,
            h - 6.0,
            text(&time(*first)),
            h - 6.0,
            text(&time(*last + t.bucket_seconds))
        );
    }
    out.push_str("</svg>");
    out.push_str(&legend(&t.purposes));
    out
}

fn legend(purposes: &[String]) -> String {
    let mut out = String::from(r#"<ul class="legend">"#);
    for p in purposes {
        let _ = write!(
            out,
            r#"<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{}"/></svg> {}</li>"#,
            colour(p),
            text(p)
        );
    }
    out.push_str("</ul>");
    out
}

/// The busiest destinations as horizontal bars.
pub fn top_svg(view: &View) -> String {
    let rows = &view.top_destinations;
    let (w, row) = (640.0, 22.0);
    let h = (rows.len().max(1) as f64) * row + 4.0;
    let max = rows.iter().map(|r| r.bytes).max().unwrap_or(0).max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="top-title"><title id="top-title">Busiest destinations</title>"#
    );
    let label_w = 220.0;
    for (i, r) in rows.iter().enumerate() {
        let y = i as f64 * row + 2.0;
        let bw = ((w - label_w - 80.0) * r.bytes as f64 / max).max(1.0);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="label">{}</text><rect x="{label_w}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{}"><title>{}</title></rect><text x="{:.1}" y="{:.1}" class="axis">{}</text>"#,
            label_w - 6.0,
            y + 15.0,
            text(&shorten(&r.destination, 28)),
            row - 6.0,
            colour(&r.purpose),
            text(&r.purpose),
            label_w + bw + 4.0,
            y + 15.0,
            text(&bytes(r.bytes))
        );
    }
    out.push_str("</svg>");
    out
}

/// At most `n` characters, with an ellipsis when cut.
pub fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The header row of a destinations table.
pub const DESTINATION_COLUMNS: [&str; 9] = [
    "Destination",
    "Purpose",
    "Owner / service",
    "Verdict",
    "Novelty",
    "Cleartext",
    "Bytes up / down",
    "Flows",
    "First / last seen",
];

fn destination_row(out: &mut String, d: &Destination, novelty: &str) {
    let _ = write!(
        out,
        r#"<tr data-destination="{}"><th scope="row"><span class="dest">{}</span>"#,
        attr(&d.destination),
        text(&d.destination)
    );
    // A bare address: the network serving it says more.
    if let (Some(network), true) = (&d.network, d.names.is_empty()) {
        let _ = write!(out, r#"<div class="network">{}</div>"#, text(network));
    }
    let other_names: Vec<&String> = d.names.iter().filter(|n| **n != d.destination).collect();
    if !other_names.is_empty() {
        out.push_str(r#"<ul class="names">"#);
        for n in other_names {
            let _ = write!(out, "<li>{}</li>", text(n));
        }
        out.push_str("</ul>");
    }
    if !d.cname_chain.is_empty() {
        out.push_str(r#"<div class="cname">CNAME → "#);
        let chain: Vec<String> = d.cname_chain.iter().map(|c| text(c)).collect();
        out.push_str(&chain.join(" → "));
        out.push_str("</div>");
    }
    if !d.clients.is_empty() {
        let clients: Vec<String> = d.clients.iter().map(|c| text(c)).collect();
        let _ = write!(
            out,
            r#"<div class="meta clients">client: {}</div>"#,
            clients.join(", ")
        );
    }
    let _ = write!(
        out,
        r#"<div class="meta">{} · named by {}</div></th>"#,
        text(&d.protocols.join(", ")),
        text(&if d.name_sources.is_empty() {
            "nothing".to_owned()
        } else {
            d.name_sources.join(", ")
        })
    );
    let _ = write!(
        out,
        r#"<td><span class="purpose" data-purpose="{}">{}</span></td><td>{}<div class="meta">{}</div></td><td class="verdict-{}">{}</td><td class="novelty">{}</td>"#,
        attr(&d.purpose),
        text(&d.purpose),
        text(&d.owner_text),
        text(d.service.as_deref().unwrap_or("")),
        attr(&d.verdict),
        text(&d.verdict),
        text(novelty)
    );
    if d.cleartext_bytes > 0 {
        let _ = write!(
            out,
            r#"<td class="cleartext"><strong>cleartext</strong> {}"#,
            text(&bytes(d.cleartext_bytes))
        );
        if !d.cleartext_requests.is_empty() {
            out.push_str(r#"<ul class="requests">"#);
            for r in &d.cleartext_requests {
                let _ = write!(
                    out,
                    "<li><code>{} {}{}</code></li>",
                    text(&r.method),
                    text(&r.host),
                    text(&r.path)
                );
            }
            out.push_str("</ul>");
        }
        out.push_str("</td>");
    } else {
        out.push_str("<td>encrypted</td>");
    }
    let _ = write!(
        out,
        r#"<td class="num">{} / {}</td><td class="num">{}</td><td class="when">{}<br>{}</td></tr>"#,
        text(&bytes(d.bytes_up)),
        text(&bytes(d.bytes_down)),
        d.flows,
        text(&time(d.first_seen)),
        text(&time(d.last_seen))
    );
}

/// A table of destinations.
pub fn destinations_table(out: &mut String, list: &[&Destination], caption: &str) {
    let _ = write!(
        out,
        r#"<div class="scroll"><table class="destinations"><caption>{}</caption><thead><tr>"#,
        text(caption)
    );
    for c in DESTINATION_COLUMNS {
        let _ = write!(out, r#"<th scope="col">{c}</th>"#);
    }
    out.push_str("</tr></thead><tbody>");
    for d in list {
        destination_row(out, d, d.novelty.unwrap_or("-"));
    }
    out.push_str("</tbody></table></div>");
}

/// A device's heading: name, MAC, "randomised".
pub fn device_heading(out: &mut String, d: &DeviceView, level: u8) {
    let _ = write!(out, r#"<h{level} class="device">{}"#, text(&d.device));
    if d.dhcp_name.is_some() {
        let _ = write!(out, r#" <span class="mac">{}</span>"#, text(&d.mac));
    }
    if d.randomised {
        out.push_str(r#" <span class="badge">randomised</span>"#);
    }
    if let Some(p) = &d.profile {
        let _ = write!(out, r#" <span class="profile">profile {}</span>"#, text(p));
    }
    let identity = d.identity.summary();
    if !identity.is_empty() {
        let _ = write!(out, r#" <span class="identity">{}</span>"#, text(&identity));
    }
    let _ = write!(
        out,
        r#"<span class="meta"> {} flows, {}</span></h{level}>"#,
        d.flows,
        text(&bytes(d.bytes))
    );
}

/// Devices, each with a table of its destinations (busiest first), or
/// grouped by purpose.
pub fn devices(view: &View, by_purpose: bool) -> String {
    let mut out = String::new();
    if view.devices.is_empty() {
        out.push_str(r#"<p class="empty">No device seen yet.</p>"#);
    }
    for d in &view.devices {
        let _ = write!(
            out,
            r#"<article class="device" data-mac="{}">"#,
            attr(&d.mac)
        );
        device_heading(&mut out, d, 3);
        if by_purpose {
            let mut purposes: Vec<&str> =
                d.destinations.iter().map(|x| x.purpose.as_str()).collect();
            purposes.sort_unstable();
            purposes.dedup();
            for p in purposes {
                let list: Vec<&Destination> =
                    d.destinations.iter().filter(|x| x.purpose == p).collect();
                let _ = write!(out, r#"<h4 class="purpose-heading">{}</h4>"#, text(p));
                destinations_table(&mut out, &list, &format!("{}: {p}", d.device));
            }
        } else {
            let list: Vec<&Destination> = d.destinations.iter().collect();
            destinations_table(&mut out, &list, &format!("Destinations of {}", d.device));
        }
        if d.destinations_more > 0 {
            let _ = write!(
                out,
                r#"<p class="meta">{} more destinations, less busy, not listed.</p>"#,
                d.destinations_more
            );
        }
        if d.folded_flows > 0 {
            let _ = write!(
                out,
                r#"<p class="meta">{} more flows to destinations past the per-device limit.</p>"#,
                d.folded_flows
            );
        }
        out.push_str("</article>");
    }
    out
}

/// Blind spots by reason.
pub fn blind_spots(view: &View) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table><caption>Traffic tetherscope could not name or read</caption><thead><tr><th scope="col">Reason</th><th scope="col">What it means</th><th scope="col">Flows</th><th scope="col">Bytes</th></tr></thead><tbody>"#,
    );
    for b in &view.blind_spots {
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td>{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            text(b.reason),
            text(b.explanation),
            b.count.flows,
            text(&bytes(b.count.bytes))
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// Connections active now.
pub fn active(view: &View) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table><caption>Connections active now</caption><thead><tr><th scope="col">Device</th><th scope="col">Destination</th><th scope="col">Name</th><th scope="col">Server</th><th scope="col">Protocol</th><th scope="col">Purpose</th><th scope="col">Bytes</th><th scope="col">Last packet</th></tr></thead><tbody>"#,
    );
    for a in &view.active {
        let _ = write!(
            out,
            r#"<tr><td class="name">{}</td><th scope="row" class="dest">{}</th><td class="name">{}</td><td>{}</td><td>{}{}</td><td>{}</td><td class="num">{}</td><td class="when">{}</td></tr>"#,
            text(&a.device),
            text(&a.destination),
            text(a.name.as_deref().or(a.network.as_deref()).unwrap_or("-")),
            text(&a.server),
            text(&a.protocol),
            if a.cleartext { " (cleartext)" } else { "" },
            text(&a.purpose),
            text(&bytes(a.bytes)),
            text(&time(a.last_seen))
        );
    }
    out.push_str("</tbody></table></div>");
    if view.active.is_empty() {
        out.push_str(r#"<p class="empty">No connection is active.</p>"#);
    }
    if view.active_more > 0 {
        let _ = write!(
            out,
            r#"<p class="meta">{} more active connections, less recent, not listed.</p>"#,
            view.active_more
        );
    }
    out
}

/// The DNS questions and what they led to.
pub fn dns(view: &View) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table><caption>DNS questions and answers</caption><thead><tr><th scope="col">Question</th><th scope="col">Asked</th><th scope="col">CNAME chain</th><th scope="col">Servers connected to</th></tr></thead><tbody>"#,
    );
    for d in &view.dns {
        let chain: Vec<String> = d.cname_chain.iter().map(|c| text(c)).collect();
        let addrs: Vec<String> = d.addresses.iter().map(|c| text(c)).collect();
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td class="num">{}</td><td>{}</td><td>{}</td></tr>"#,
            text(&d.question),
            d.asked,
            chain.join(" → "),
            addrs.join(", ")
        );
    }
    out.push_str("</tbody></table></div>");
    if view.dns_folded > 0 {
        let _ = write!(
            out,
            r#"<p class="meta">{} more lookups past the question limit.</p>"#,
            view.dns_folded
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            text("<script>alert('x\")</script>\u{7}\n"),
            "&lt;script&gt;alert(&#39;x&quot;)&lt;/script&gt;\\x07\\x0a"
        );
        assert_eq!(text("a & b"), "a &amp; b");
    }

    #[test]
    fn shows_invisible_and_reordering_characters() {
        assert_eq!(text("gsta\u{200b}tic.com"), "gsta\\u{200b}tic.com");
        assert_eq!(
            text("<b>\u{202e}moc.elgoog</b>"),
            "&lt;b&gt;\\u{202e}moc.elgoog&lt;/b&gt;"
        );
        assert_eq!(attr("a\u{feff}\u{2066}"), "a\\u{feff}\\u{2066}");
    }

    /// The page's script draws names with the same escapes as the server:
    /// its `shown` is run by Node on the same strings.
    #[test]
    fn page_script_shows_names_as_the_server_does() {
        let script = include_str!("../../exporter/assets/page.js");
        let start = script
            .find("function shown(s) {")
            .expect("shown() in page.js");
        let end = start + script[start..].find("\n}\n").expect("end of shown()") + 3;
        let samples = [
            "gsta\u{200b}tic.com",
            "\u{202e}moc.elgoog",
            "a\u{202a}b\u{202b}c\u{202c}d\u{202d}e",
            "\u{2066}x\u{2067}y\u{2068}z\u{2069}",
            "zw\u{200c}nj\u{200d}lrm\u{200e}rlm\u{200f}",
            "word\u{2060}joiner\u{feff}bom\u{ad}shy",
            "tag\u{e0041}s",
            "bell\u{7}nl\n\u{85}del\u{7f}",
            "line\u{2028}para\u{2029}",
            "bücher.example",
        ];
        let program = format!(
            "{}\nconsole.log(JSON.stringify({}.map(shown)));",
            &script[start..end],
            serde_json::to_string(&samples).unwrap()
        );
        let out = match std::process::Command::new("node")
            .args(["-e", &program])
            .output()
        {
            Ok(out) => out,
            // The test suite's setup installs Node.js: there, its absence
            // is a failure, not a skip.
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipping: no node to run page.js ({e})");
                return;
            }
            Err(e) => panic!("no node to run page.js ({e})"),
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let drawn: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
        let expected: Vec<String> = samples
            .iter()
            .map(|s| tetherscope_record::visible::visible(s).into_owned())
            .collect();
        assert_eq!(drawn, expected);
        assert!(drawn
            .iter()
            .all(|d| !d.contains('\u{200b}') && !d.contains('\u{202e}')));
    }

    #[test]
    fn human_bytes() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1500), "1.5 kB");
        assert_eq!(bytes(2_000_000), "2.0 MB");
    }
}
