//! Where the data shown comes from: every list the catalog loaded (its
//! file and date) and every network table (its file, snapshot date and the
//! credit its licence asks for: the ip-location-db snapshot is CC BY 4.0,
//! which requires naming its sources wherever the data is shown). The page
//! and the report end with it.

use std::fmt::Write as _;

use serde::Serialize;
use tetherscope_classify::Catalog;
use tetherscope_netinfo::{Kind, NetInfo};

use crate::html::text;

/// One data file in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataSource {
    /// What it says: "list EasyPrivacy (tracking)", "network data: AS
    /// numbers and organisations", "network data: countries".
    pub what: String,
    /// The file.
    pub file: String,
    /// Its date (a list's, or a network table's snapshot), when known.
    pub date: Option<String>,
    /// The credit the data's licence asks for, when it asks.
    pub credit: Option<String>,
}

/// The lists `catalog` loaded and the tables `network` holds.
pub fn data_sources(catalog: &Catalog, network: &NetInfo) -> Vec<DataSource> {
    let lists = catalog.lists().iter().map(|l| DataSource {
        what: format!("list {} ({})", l.title, l.purpose.as_str()),
        file: l.path.display().to_string(),
        date: l.date.clone(),
        credit: None,
    });
    let tables = network.sources().iter().map(|s| DataSource {
        what: match s.kind {
            Kind::Asn => "network data: AS numbers and organisations".to_owned(),
            Kind::Country => "network data: countries".to_owned(),
        },
        file: s.path.display().to_string(),
        date: s.snapshot.clone(),
        credit: s.attribution.map(str::to_owned),
    });
    lists.chain(tables).collect()
}

/// The footer naming every source, escaped (file names are the user's,
/// and a table's contents are a download's).
pub fn footer(sources: &[DataSource]) -> String {
    let mut out = String::from(r#"<footer id="sources"><h2>Data sources</h2><ul class="sources">"#);
    if !sources.iter().any(|s| s.what.starts_with("list ")) {
        out.push_str("<li>lists: none loaded</li>");
    }
    if !sources.iter().any(|s| s.what.starts_with("network data")) {
        out.push_str("<li>network data: none loaded (servers are shown by address)</li>");
    }
    for s in sources {
        let _ = write!(
            out,
            "<li>{}: <code>{}</code>, {}",
            text(&s.what),
            text(&s.file),
            text(&match &s.date {
                Some(d) => format!("dated {d}"),
                None => "undated".to_owned(),
            })
        );
        if let Some(credit) = &s.credit {
            let _ = write!(out, r#"<div class="meta">{}</div>"#, text(credit));
        }
        out.push_str("</li>");
    }
    out.push_str("</ul></footer>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footer_names_each_source_with_its_date_and_credit_escaped() {
        let sources = [
            DataSource {
                what: "list <b>Mine</b> (tracking)".into(),
                file: "/tmp/a&b.txt".into(),
                date: Some("2026-06-01".into()),
                credit: None,
            },
            DataSource {
                what: "network data: countries".into(),
                file: "/x/c.mmdb".into(),
                date: None,
                credit: Some("Country data: CC BY 4.0".into()),
            },
        ];
        let html = footer(&sources);
        assert!(html.contains(
            "<li>list &lt;b&gt;Mine&lt;/b&gt; (tracking): <code>/tmp/a&amp;b.txt</code>, dated 2026-06-01</li>"
        ));
        assert!(html.contains(
            r#"<li>network data: countries: <code>/x/c.mmdb</code>, undated<div class="meta">Country data: CC BY 4.0</div></li>"#
        ));
        let empty = footer(&[]);
        assert!(
            empty.contains("lists: none loaded") && empty.contains("network data: none loaded")
        );
    }

    #[test]
    fn sources_come_from_the_catalog_and_the_tables() {
        let sources = data_sources(&Catalog::builtin(), &NetInfo::empty());
        let lists = Catalog::builtin().lists().len();
        assert_eq!(sources.len(), lists, "no network table loaded");
        assert!(sources.iter().all(|s| s.what.starts_with("list ")));
    }
}
