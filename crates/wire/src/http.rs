//! HTTP/1.x request heads (RFC 9112 §3): method, target, Host.
//!
//! The parser works on a prefix of the stream: it returns as soon as the
//! request line and the Host header are complete, and says
//! [`Head::Incomplete`] when more bytes are needed.

use crate::{Error, Result};

const METHODS: [&[u8]; 10] = [
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"PATCH",
    b"TRACE",
    b"PROPFIND",
];

/// Whether bytes start like an HTTP/1.x request (a known method and a space).
pub fn looks_like_request(bytes: &[u8]) -> bool {
    METHODS
        .iter()
        .any(|m| bytes.len() > m.len() && bytes.starts_with(m) && bytes[m.len()] == b' ')
}

/// A request head, as far as tetherscope needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// Method token.
    pub method: &'a [u8],
    /// Request target as sent (origin-form path, absolute URI, or authority).
    pub target: &'a [u8],
    /// Host header value (or the authority of an absolute/CONNECT target).
    pub host: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    /// The path part of the target (absolute URIs lose their scheme and host).
    pub fn path(&self) -> &'a [u8] {
        match split_absolute(self.target) {
            Some((_, path)) => path,
            None => self.target,
        }
    }
}

/// Result of reading a request head from a stream prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head<'a> {
    /// Enough was read.
    Complete(Request<'a>),
    /// The request line or the headers are not complete yet.
    Incomplete,
}

/// Parses a request head from the start of a client stream.
pub fn parse_request(bytes: &[u8]) -> Result<Head<'_>> {
    if !looks_like_request(bytes) {
        return Err(Error::NotHttpRequest);
    }
    let mut lines = Lines { rest: bytes };
    let Some(line) = lines.next() else {
        return Ok(Head::Incomplete);
    };
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    if target.is_empty() || !version.starts_with(b"HTTP/") {
        return Err(Error::NotHttpRequest);
    }
    let mut req = Request {
        method,
        target,
        host: None,
    };
    if method == b"CONNECT" {
        req.host = Some(target);
        return Ok(Head::Complete(req));
    }
    if let Some((authority, _)) = split_absolute(target) {
        req.host = Some(authority);
    }
    for line in lines.by_ref() {
        if line.is_empty() {
            return Ok(Head::Complete(req));
        }
        if let Some(value) = header_value(line, b"host") {
            req.host = Some(value);
            return Ok(Head::Complete(req));
        }
    }
    Ok(Head::Incomplete)
}

/// Splits `http://authority/path` into its authority and path.
fn split_absolute(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest =
        strip_prefix_ci(target, b"http://").or_else(|| strip_prefix_ci(target, b"https://"))?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let path = if end == rest.len() {
        &b"/"[..]
    } else {
        &rest[end..]
    };
    Some((&rest[..end], path))
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

fn header_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    if !line[..colon].trim_ascii().eq_ignore_ascii_case(name) {
        return None;
    }
    Some(line[colon + 1..].trim_ascii())
}

/// Complete lines (ending in LF, optional CR stripped); a partial last line is
/// not yielded.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let lf = self.rest.iter().position(|&b| b == b'\n')?;
        let line = &self.rest[..lf];
        self.rest = &self.rest[lf + 1..];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// Strips an optional `:port` from a Host value, keeping IPv6 literals whole.
pub fn host_without_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[1..end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) if host[colon + 1..].iter().all(u8::is_ascii_digit) => &host[..colon],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_method_path_host() {
        let req = b"GET /generate_204 HTTP/1.1\r\nUser-Agent: x\r\nHost: www.google.com\r\n\r\n";
        let Head::Complete(r) = parse_request(req).unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.method, r.path(), r.host),
            (
                &b"GET"[..],
                &b"/generate_204"[..],
                Some(&b"www.google.com"[..])
            )
        );
    }

    #[test]
    fn split_head_is_incomplete_until_host_line_ends() {
        let full = b"GET /x HTTP/1.1\r\nAccept: */*\r\nHost: example.org:8080\r\n\r\n";
        for n in 0..full.len() {
            match parse_request(&full[..n]) {
                Ok(Head::Complete(r)) => {
                    assert!(n >= full.len() - 2);
                    assert_eq!(host_without_port(r.host.unwrap()), b"example.org");
                }
                Ok(Head::Incomplete) | Err(Error::NotHttpRequest) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn absolute_uri_and_connect() {
        let Head::Complete(r) =
            parse_request(b"GET http://Proxy.Example/a?b HTTP/1.1\r\n\r\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (r.host, r.path()),
            (Some(&b"Proxy.Example"[..]), &b"/a?b"[..])
        );
        let Head::Complete(r) = parse_request(b"CONNECT api.example:443 HTTP/1.1\r\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(host_without_port(r.host.unwrap()), b"api.example");
    }

    #[test]
    fn not_http() {
        assert_eq!(
            parse_request(b"\x16\x03\x01").unwrap_err(),
            Error::NotHttpRequest
        );
        assert_eq!(
            parse_request(b"GET  HTTP/1.1\r\n").unwrap_err(),
            Error::NotHttpRequest
        );
        assert_eq!(host_without_port(b"[2001:db8::1]:80"), b"2001:db8::1");
    }
}
