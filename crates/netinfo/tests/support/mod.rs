//! The kit's MaxMind DB writer: tests build the small `.mmdb` files they
//! read instead of committing binaries.

#![allow(unused_imports)]

pub use tetherscope_testkit::mmdb::*;
