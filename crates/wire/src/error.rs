//! The one error type of the dissectors.

/// Why a dissector refused some bytes.
///
/// Each variant is one countable reason: the pipeline turns it into
/// `tetherscope_parse_errors_total{reason}` through [`Error::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than the header or a length field says there are.
    Truncated,
    /// A length field is smaller than its own header, or otherwise inconsistent.
    BadLength,
    /// A version field holds a value this parser does not read.
    BadVersion,
    /// The link type is not one tetherscope dissects.
    UnknownLinkType,
    /// The frame carries something other than IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp,
    /// Too many nested headers (VLAN tags, MPLS labels, IPv6 extensions).
    TooDeep,
    /// A DNS compression pointer that does not point strictly backwards.
    DnsPointerLoop,
    /// A DNS label or name longer than RFC 1035 allows.
    DnsNameTooLong,
    /// A DNS label type other than a plain label or a pointer.
    DnsBadLabel,
    /// Bytes that are not a TLS handshake record.
    NotTlsHandshake,
    /// A TLS handshake message that is not a ClientHello.
    NotClientHello,
    /// Bytes that are not an HTTP/1.x request head.
    NotHttpRequest,
    /// A QUIC packet that is not a client Initial we can open.
    NotQuicInitial,
    /// A QUIC Initial whose authentication tag did not verify.
    QuicDecrypt,
    /// A QUIC frame type not allowed in an Initial packet.
    QuicBadFrame,
    /// Bytes that are not a DHCP message.
    NotDhcp,
    /// An mDNS message that is not a standard response.
    NotMdnsResponse,
}

impl Error {
    /// Every variant, so counters can start every reason at zero.
    pub const ALL: [Error; 17] = [
        Error::Truncated,
        Error::BadLength,
        Error::BadVersion,
        Error::UnknownLinkType,
        Error::NotIp,
        Error::TooDeep,
        Error::DnsPointerLoop,
        Error::DnsNameTooLong,
        Error::DnsBadLabel,
        Error::NotTlsHandshake,
        Error::NotClientHello,
        Error::NotHttpRequest,
        Error::NotQuicInitial,
        Error::QuicDecrypt,
        Error::QuicBadFrame,
        Error::NotDhcp,
        Error::NotMdnsResponse,
    ];

    /// A short, stable, label-safe name for the reason.
    pub fn reason(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadLength => "bad_length",
            Error::BadVersion => "bad_version",
            Error::UnknownLinkType => "unknown_link_type",
            Error::NotIp => "not_ip",
            Error::TooDeep => "too_deep",
            Error::DnsPointerLoop => "dns_pointer_loop",
            Error::DnsNameTooLong => "dns_name_too_long",
            Error::DnsBadLabel => "dns_bad_label",
            Error::NotTlsHandshake => "not_tls_handshake",
            Error::NotClientHello => "not_client_hello",
            Error::NotHttpRequest => "not_http_request",
            Error::NotQuicInitial => "not_quic_initial",
            Error::QuicDecrypt => "quic_decrypt",
            Error::QuicBadFrame => "quic_bad_frame",
            Error::NotDhcp => "not_dhcp",
            Error::NotMdnsResponse => "not_mdns_response",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Error {}

/// Result of a dissector.
pub type Result<T> = core::result::Result<T, Error>;
