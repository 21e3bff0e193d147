//! Zero-copy dissectors for the packets a Wi-Fi hotspot sees.
//!
//! Every parser here takes borrowed bytes and either returns a typed view or a
//! [`Error`] naming why the bytes were refused. Nothing here performs I/O, keeps
//! global state or allocates per packet, and no input can make a parser panic:
//! every length, count and pointer read from the wire is checked before use.
//! The crate is the bottom layer of tetherscope (capture → **wire** → flow →
//! classify → export) and knows nothing about flows.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytes;
pub mod dhcp;
pub mod dns;
pub mod ech;
pub mod error;
pub mod gquic;
pub mod gtp;
pub mod hpack;
pub mod http;
pub mod http2;
pub mod ip;
pub mod ja4;
pub mod link;
pub mod mdns;
pub mod quic;
pub mod tcp;
pub mod tls;
pub mod tunnel;
pub mod udp;

pub use error::{Error, Result};
