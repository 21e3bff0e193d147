//! TLS ClientHellos (RFC 8446 §4.1.2) with the extensions tetherscope
//! reads: server_name, ALPN, GREASE, encrypted_client_hello and padding;
//! records around them, split however a test needs; and ECH configurations
//! (draft-ietf-tls-esni, version 0xfe0d) as DNS HTTPS records carry them.

/// The payload of an outer `encrypted_client_hello` extension: type outer,
/// HKDF-SHA256, AES-128-GCM, configuration 0x42 (enc and payload left out:
/// tetherscope only notes that the extension is there).
pub const ECH_OUTER: [u8; 6] = [0, 0, 1, 0, 1, 0x42];

/// Extension type of encrypted_client_hello.
pub const EXT_ECH: u16 = 0xfe0d;

/// A ClientHello being described; [`ClientHello::message`] writes the
/// handshake message, [`ClientHello::record`] one record around it.
///
/// Extensions are written in this order: GREASE, server_name, ALPN,
/// encrypted_client_hello, padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    sni: Option<Vec<u8>>,
    alpn: Vec<Vec<u8>>,
    grease: bool,
    ech: Option<Vec<u8>>,
    padding: usize,
    random: [u8; 32],
    session_id: Vec<u8>,
    cipher_suites: Vec<u16>,
}

impl Default for ClientHello {
    fn default() -> Self {
        ClientHello {
            sni: None,
            alpn: Vec::new(),
            grease: false,
            ech: None,
            padding: 0,
            random: [7; 32],
            session_id: Vec::new(),
            cipher_suites: vec![0x1301],
        }
    }
}

impl ClientHello {
    /// A ClientHello with no extensions, random `[7; 32]`, no session id
    /// and one cipher suite (TLS_AES_128_GCM_SHA256).
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the server (any bytes: tests give hostile names too).
    pub fn sni(mut self, name: impl AsRef<[u8]>) -> Self {
        self.sni = Some(name.as_ref().to_vec());
        self
    }

    /// Offers these application protocols, in order.
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: &[P]) -> Self {
        self.alpn = protocols.iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// Starts the extensions with an empty GREASE extension (0x0a0a, RFC
    /// 8701), as Chrome does.
    pub fn grease(mut self) -> Self {
        self.grease = true;
        self
    }

    /// Adds an encrypted_client_hello extension holding `payload`
    /// ([`ECH_OUTER`] for an outer hello).
    pub fn ech(mut self, payload: &[u8]) -> Self {
        self.ech = Some(payload.to_vec());
        self
    }

    /// Adds a padding extension of `len` zero bytes (none when 0).
    pub fn padding(mut self, len: usize) -> Self {
        self.padding = len;
        self
    }

    /// Sets the 32 random bytes.
    pub fn random(mut self, random: [u8; 32]) -> Self {
        self.random = random;
        self
    }

    /// Sets the legacy session id.
    pub fn session_id(mut self, id: &[u8]) -> Self {
        self.session_id = id.to_vec();
        self
    }

    /// Sets the offered cipher suites.
    pub fn cipher_suites(mut self, suites: &[u16]) -> Self {
        self.cipher_suites = suites.to_vec();
        self
    }

    /// The extensions block's contents (without its length).
    fn extensions(&self) -> Vec<u8> {
        let mut exts = Vec::new();
        if self.grease {
            extension(&mut exts, 0x0a0a, &[]);
        }
        if let Some(name) = &self.sni {
            let mut entry = vec![0]; // host_name
            entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
            entry.extend_from_slice(name);
            extension(&mut exts, 0, &with_u16_len(&entry));
        }
        if !self.alpn.is_empty() {
            let mut list = Vec::new();
            for p in &self.alpn {
                list.push(p.len() as u8);
                list.extend_from_slice(p);
            }
            extension(&mut exts, 16, &with_u16_len(&list));
        }
        if let Some(payload) = &self.ech {
            extension(&mut exts, EXT_ECH, payload);
        }
        if self.padding > 0 {
            extension(&mut exts, 21, &vec![0; self.padding]);
        }
        exts
    }

    /// The handshake message: type 1, 24-bit length, body.
    pub fn message(&self) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&self.random);
        body.push(self.session_id.len() as u8);
        body.extend_from_slice(&self.session_id);
        body.extend_from_slice(&((self.cipher_suites.len() * 2) as u16).to_be_bytes());
        for s in &self.cipher_suites {
            body.extend_from_slice(&s.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]); // compression: null only
        body.extend_from_slice(&with_u16_len(&self.extensions()));
        let mut msg = vec![1];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    /// The message in one handshake record.
    pub fn record(&self) -> Vec<u8> {
        handshake_record(&self.message())
    }
}

/// Appends one extension (type, length, data).
fn extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// `data` after its length as two bytes.
fn with_u16_len(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

/// A handshake record (content type 22, legacy version 3.1) around `msg`.
pub fn handshake_record(msg: &[u8]) -> Vec<u8> {
    let mut r = vec![22, 3, 1];
    r.extend_from_slice(&with_u16_len(msg));
    r
}

/// `msg` split over handshake records of at most `max` bytes each, back to
/// back (as a server-imposed maximum fragment length would split it).
pub fn handshake_records(msg: &[u8], max: usize) -> Vec<u8> {
    msg.chunks(max.max(1)).flat_map(handshake_record).collect()
}

/// One ECHConfig of version 0xfe0d for `public_name`: an X25519 key of
/// 0x11 bytes, HKDF-SHA256 with AES-128-GCM, no extensions.
pub fn ech_config(config_id: u8, public_name: &str) -> Vec<u8> {
    let mut c = vec![config_id, 0x00, 0x20]; // id, DHKEM(X25519)
    c.extend_from_slice(&with_u16_len(&[0x11; 32]));
    c.extend_from_slice(&[0, 4, 0, 1, 0, 1]); // HKDF-SHA256, AES-128-GCM
    c.push(0); // maximum name length
    c.push(public_name.len() as u8);
    c.extend_from_slice(public_name.as_bytes());
    c.extend_from_slice(&[0, 0]); // no extensions
    let mut config = EXT_ECH.to_be_bytes().to_vec();
    config.extend_from_slice(&with_u16_len(&c));
    config
}

/// An ECHConfigList holding `configs`.
pub fn ech_config_list(configs: &[Vec<u8>]) -> Vec<u8> {
    with_u16_len(&configs.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_add_up() {
        let hello = ClientHello::new()
            .grease()
            .sni("example.com")
            .alpn(&["h2", "http/1.1"])
            .ech(&ECH_OUTER)
            .padding(10);
        let m = hello.message();
        let body_len = u32::from_be_bytes([0, m[1], m[2], m[3]]) as usize;
        assert_eq!(body_len + 4, m.len());
        // version, random, empty session id, 2 suites bytes + suite, compression
        let ext_at = 4 + 2 + 32 + 1 + 2 + 2 + 2;
        let ext_len = u16::from_be_bytes([m[ext_at], m[ext_at + 1]]) as usize;
        assert_eq!(ext_at + 2 + ext_len, m.len());
        let r = hello.record();
        assert_eq!(&r[5..], &m[..]);
        assert_eq!(u16::from_be_bytes([r[3], r[4]]) as usize, m.len());
    }

    #[test]
    fn split_records_carry_the_whole_message() {
        let m = ClientHello::new().sni("a.example").message();
        let split = handshake_records(&m, 16);
        let mut joined = Vec::new();
        let mut at = 0;
        while at < split.len() {
            let len = u16::from_be_bytes([split[at + 3], split[at + 4]]) as usize;
            assert!(len <= 16);
            joined.extend_from_slice(&split[at + 5..at + 5 + len]);
            at += 5 + len;
        }
        assert_eq!(joined, m);
    }
}
