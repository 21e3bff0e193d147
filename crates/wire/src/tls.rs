//! TLS records and the ClientHello (RFC 8446 §4.1.2).
//!
//! ```text
//! struct {
//!     ProtocolVersion legacy_version;
//!     Random random;                                   // 32 bytes
//!     opaque legacy_session_id<0..32>;
//!     CipherSuite cipher_suites<2..2^16-2>;
//!     opaque legacy_compression_methods<1..2^8-1>;
//!     Extension extensions<8..2^16-1>;
//! } ClientHello;
//! ```
//!
//! Unknown extensions (GREASE included) are skipped, never fatal: a monitor
//! reads values, it does not enforce the protocol.

use crate::bytes::{be16, Reader};
use crate::{Error, Result};

/// TLS content type of a handshake record.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
pub const CLIENT_HELLO: u8 = 1;
/// Longest record payload a peer may send (2^14 plus expansion slack).
pub const MAX_RECORD: usize = 16_384 + 2_048;

/// server_name extension (RFC 6066 §3).
pub const EXT_SERVER_NAME: u16 = 0;
/// signature_algorithms extension (RFC 8446 §4.2.3).
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
/// application_layer_protocol_negotiation extension (RFC 7301).
pub const EXT_ALPN: u16 = 16;
/// supported_versions extension (RFC 8446 §4.2.1).
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;

/// A TLS record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type (22 = handshake).
    pub content_type: u8,
    /// Legacy record version.
    pub version: u16,
    /// Payload length.
    pub length: u16,
}

impl RecordHeader {
    /// Size of the header on the wire.
    pub const LEN: usize = 5;

    /// Parses a record header, refusing anything that cannot start a TLS
    /// handshake (wrong content type, version outside SSL3..TLS1.3 framing,
    /// oversized length).
    pub fn parse_handshake(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        let h = RecordHeader {
            content_type: bytes[0],
            version: be16(bytes, 1)?,
            length: be16(bytes, 3)?,
        };
        if h.content_type != CONTENT_HANDSHAKE
            || h.version >> 8 != 3
            || usize::from(h.length) > MAX_RECORD
        {
            return Err(Error::NotTlsHandshake);
        }
        Ok(h)
    }
}

/// Whether bytes could be the start of a TLS handshake record.
pub fn looks_like_handshake(bytes: &[u8]) -> bool {
    bytes.len() >= 3 && bytes[0] == CONTENT_HANDSHAKE && bytes[1] == 3 && bytes[2] <= 4
}

/// Reads the handshake message header: type and body length.
pub fn handshake_header(bytes: &[u8]) -> Result<(u8, usize)> {
    let mut r = Reader::new(bytes);
    let kind = r.u8()?;
    let len = r.u24()? as usize;
    Ok((kind, len))
}

/// What a ClientHello says that names or describes a flow.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientHello<'a> {
    /// legacy_version field.
    pub legacy_version: u16,
    /// The first host_name in server_name (with ECH, the outer name).
    pub sni: Option<&'a [u8]>,
    /// The raw ALPN protocol list, for [`ClientHello::alpn`].
    alpn_list: Option<&'a [u8]>,
    /// Whether an encrypted_client_hello extension is present.
    pub ech: bool,
    /// The raw cipher_suites vector (2 bytes per suite), for fingerprints.
    pub cipher_suites: &'a [u8],
    /// The raw extensions block (type, length, data, ...), for fingerprints;
    /// empty for a hello without extensions.
    pub extensions: &'a [u8],
}

impl<'a> ClientHello<'a> {
    /// The offered ALPN protocol ids, in order.
    pub fn alpn(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut r = Reader::new(self.alpn_list.unwrap_or(&[]));
        core::iter::from_fn(move || r.vec8().ok())
    }
}

/// Parses a complete handshake message (type, 24-bit length, body) holding
/// a ClientHello. Trailing bytes after the message are ignored.
pub fn parse_client_hello_message(msg: &[u8]) -> Result<ClientHello<'_>> {
    let (kind, len) = handshake_header(msg)?;
    if kind != CLIENT_HELLO {
        return Err(Error::NotClientHello);
    }
    let body = msg.get(4..4 + len).ok_or(Error::Truncated)?;
    parse_client_hello_body(body)
}

/// Parses the body of a ClientHello.
pub fn parse_client_hello_body(body: &[u8]) -> Result<ClientHello<'_>> {
    let mut r = Reader::new(body);
    let legacy_version = r.u16()?;
    r.skip(32)?; // random
    r.vec8()?; // session id
    let cipher_suites = r.vec16()?;
    r.vec8()?; // compression methods
    let mut hello = ClientHello {
        legacy_version,
        cipher_suites,
        ..ClientHello::default()
    };
    if r.remaining() == 0 {
        return Ok(hello); // SSLv3-style hello without extensions
    }
    hello.extensions = r.vec16()?;
    let mut exts = Reader::new(hello.extensions);
    while exts.remaining() > 0 {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        match kind {
            EXT_SERVER_NAME => hello.sni = first_host_name(data)?,
            EXT_ALPN => hello.alpn_list = Some(Reader::new(data).vec16()?),
            EXT_ENCRYPTED_CLIENT_HELLO => hello.ech = true,
            _ => {}
        }
    }
    Ok(hello)
}

fn first_host_name(data: &[u8]) -> Result<Option<&[u8]>> {
    if data.is_empty() {
        return Ok(None); // the empty form a server echoes
    }
    let mut list = Reader::new(Reader::new(data).vec16()?);
    while list.remaining() > 0 {
        let name_type = list.u8()?;
        let name = list.vec16()?;
        if name_type == 0 && !name.is_empty() {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tetherscope_testkit::tls::ClientHello as HelloBuilder;

    /// A Chrome-like ClientHello handshake message (GREASE first, a
    /// 32-byte session id, two suites) with the given SNI, ALPN and extras.
    pub(crate) fn client_hello(sni: &[u8], alpn: &[&[u8]], ech: bool, padding: usize) -> Vec<u8> {
        let hello = HelloBuilder::new()
            .grease()
            .sni(sni)
            .alpn(alpn)
            .padding(padding)
            .session_id(&[9; 32])
            .cipher_suites(&[0x1301, 0x1302]);
        if ech {
            hello.ech(&[0xaa, 0xbb]).message()
        } else {
            hello.message()
        }
    }

    #[test]
    fn reads_sni_alpn_and_ech() {
        let msg = client_hello(b"www.example.org", &[b"h2", b"http/1.1"], true, 0);
        let hello = parse_client_hello_message(&msg).unwrap();
        assert_eq!(hello.sni, Some(&b"www.example.org"[..]));
        assert_eq!(hello.alpn().collect::<Vec<_>>(), [&b"h2"[..], b"http/1.1"]);
        assert!(hello.ech);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let msg = client_hello(b"a.example", &[b"h2"], false, 100);
        for n in 0..msg.len() {
            assert!(parse_client_hello_message(&msg[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn record_header_rejects_non_handshake() {
        assert_eq!(
            RecordHeader::parse_handshake(&[23, 3, 3, 0, 5]).unwrap_err(),
            Error::NotTlsHandshake
        );
        assert_eq!(
            RecordHeader::parse_handshake(&[22, 3, 1, 0xff, 0xff]).unwrap_err(),
            Error::NotTlsHandshake
        );
        assert_eq!(
            RecordHeader::parse_handshake(&[22, 3, 1, 2, 0])
                .unwrap()
                .length,
            512
        );
    }
}
