//! ECH configurations as DNS publishes them: the `ech` SvcParam (key 5) of
//! SVCB/HTTPS records holds an ECHConfigList (draft-ietf-tls-esni §4,
//! draft-ietf-tls-svcb-ech), and each configuration names the
//! `public_name` a client puts in the outer ClientHello's SNI.
//!
//! ```text
//! ECHConfig ECHConfigList<4..2^16-1>;
//! struct { uint16 version; uint16 length; opaque contents[length]; } ECHConfig;
//! struct {                                   // version 0xfe0d
//!     uint8 config_id; uint16 kem_id;
//!     opaque public_key<1..2^16-1>;
//!     HpkeSymmetricCipherSuite cipher_suites<4..2^16-4>;
//!     uint8 maximum_name_length;
//!     opaque public_name<1..255>;
//!     ECHConfigExtension extensions<0..2^16-1>;
//! } ECHConfigContents;
//! ```
//!
//! Configurations of other versions are skipped by their length, as the
//! specification asks of clients.

use crate::bytes::Reader;
use crate::{Error, Result};

/// SvcParamKey of `ech` (RFC 9460 §14.3.2).
pub const SVC_PARAM_ECH: u16 = 5;
/// The ECHConfig version this module reads.
pub const VERSION: u16 = 0xfe0d;

/// The value of the `ech` SvcParam in an SVCB/HTTPS record's parameters,
/// if there is one.
pub fn service_ech_param(params: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(params);
    while r.remaining() > 0 {
        let key = r.u16().ok()?;
        let value = r.vec16().ok()?;
        if key == SVC_PARAM_ECH {
            return Some(value);
        }
    }
    None
}

/// The `public_name` of every configuration of a version this module reads
/// in an ECHConfigList, in order; an error ends the walk.
pub fn public_names(list: &[u8]) -> impl Iterator<Item = Result<&[u8]>> {
    let mut outer = Reader::new(list);
    let mut configs = match outer.vec16() {
        Ok(c) => Ok(Reader::new(c)),
        Err(e) => Err(e),
    };
    core::iter::from_fn(move || {
        let r = match &mut configs {
            Ok(r) => r,
            Err(e) => {
                let e = *e;
                configs = Ok(Reader::new(&[]));
                return Some(Err(e));
            }
        };
        while r.remaining() > 0 {
            let step = (|| -> Result<Option<&[u8]>> {
                let version = r.u16()?;
                let contents = r.vec16()?;
                if version != VERSION {
                    return Ok(None);
                }
                public_name(contents).map(Some)
            })();
            match step {
                Ok(Some(name)) => return Some(Ok(name)),
                Ok(None) => {}
                Err(e) => {
                    *r = Reader::new(&[]);
                    return Some(Err(e));
                }
            }
        }
        None
    })
}

fn public_name(contents: &[u8]) -> Result<&[u8]> {
    let mut c = Reader::new(contents);
    c.skip(3)?; // config_id, kem_id
    c.vec16()?; // public_key
    c.vec16()?; // cipher_suites
    c.u8()?; // maximum_name_length
    let name = c.vec8()?;
    if name.is_empty() {
        return Err(Error::BadLength);
    }
    Ok(name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One ECHConfig (version 0xfe0d) with `public_name`.
    pub(crate) fn config(public_name: &[u8]) -> Vec<u8> {
        let mut c = vec![0x2a, 0x00, 0x20]; // config_id, KEM X25519
        c.extend_from_slice(&32u16.to_be_bytes());
        c.extend_from_slice(&[0x11; 32]);
        c.extend_from_slice(&[0, 4, 0, 1, 0, 1]); // HKDF-SHA256, AES-128-GCM
        c.push(0);
        c.push(public_name.len() as u8);
        c.extend_from_slice(public_name);
        c.extend_from_slice(&[0, 0]);
        let mut out = VERSION.to_be_bytes().to_vec();
        out.extend_from_slice(&(c.len() as u16).to_be_bytes());
        out.extend_from_slice(&c);
        out
    }

    fn list(configs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = configs.concat();
        let mut l = (body.len() as u16).to_be_bytes().to_vec();
        l.extend_from_slice(&body);
        l
    }

    #[test]
    fn reads_public_names_and_skips_other_versions() {
        let mut unknown = vec![0xfe, 0x0a, 0, 3, 1, 2, 3];
        unknown.extend_from_slice(&config(b"cover.example.net"));
        let l = list(&[config(b"ech.example.net"), unknown]);
        let names: Vec<_> = public_names(&l).collect::<Result<_>>().unwrap();
        assert_eq!(names, [&b"ech.example.net"[..], b"cover.example.net"]);
    }

    #[test]
    fn finds_the_ech_param_among_others() {
        let l = list(&[config(b"ech.example.net")]);
        let mut params = vec![0, 1, 0, 3, 2, b'h', b'3']; // alpn
        params.extend_from_slice(&[0, 5]);
        params.extend_from_slice(&(l.len() as u16).to_be_bytes());
        params.extend_from_slice(&l);
        assert_eq!(service_ech_param(&params), Some(&l[..]));
        assert_eq!(service_ech_param(&params[..7]), None);
    }

    #[test]
    fn every_truncation_is_an_error_or_fewer_names() {
        let l = list(&[config(b"a.example"), config(b"b.example")]);
        for n in 0..l.len() {
            let names: Vec<_> = public_names(&l[..n]).collect();
            assert!(names.iter().filter(|r| r.is_ok()).count() < 2, "prefix {n}");
        }
    }
}
