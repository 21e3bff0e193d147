//! What the live page and `tetherscope report` show: flows folded into
//! devices, destinations, a timeline, blind spots and DNS answers
//! ([`view`]), their HTML ([`html`]) and the data sources they credit
//! ([`sources`]). It reads flow records
//! (`tetherscope-record`) and knows nothing of HTTP or metrics.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod html;
pub mod identity;
pub mod sources;
pub mod timeline;
pub mod view;
