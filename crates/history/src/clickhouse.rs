//! ClickHouse's HTTP interface, as far as the sink uses it: a gzip-compressed
//! `INSERT … FORMAT JSONEachRow` and a count of one batch's rows.
//!
//! Checked against clickhouse-server 18.16 (Debian 12): a request body with
//! `Content-Encoding: gzip` is decompressed by the server; a refused request
//! answers a status other than 200 with `Code: N, e.displayText() = …`.
//! Credentials go in an `Authorization: Basic` header, never in the URL.

use std::time::Duration;

/// Where and as whom the sink writes.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` of the server's HTTP interface.
    pub url: String,
    /// `database.table` (or `table` in the user's default database).
    pub table: String,
    /// ClickHouse user (the server's `default` when empty).
    pub user: String,
    /// Its password.
    pub password: String,
}

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The server answered and refused (bad credentials, unknown table,
    /// schema mismatch): nothing of the request was stored.
    #[error("ClickHouse refused it (HTTP {status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's first line.
        message: String,
    },
    /// No answer (connection refused, reset, timed out): the request may or
    /// may not have been carried out.
    #[error("ClickHouse did not answer: {0}")]
    NoAnswer(String),
}

/// A bad `--history-*` setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadTarget(pub String);

impl Target {
    /// Checks the URL (plain `http://host[:port]`) and table name, which
    /// are put into requests as they are.
    pub fn check(&self) -> Result<(), BadTarget> {
        let Some(rest) = self.url.strip_prefix("http://") else {
            return Err(BadTarget(format!(
                "history URL {:?}: give http://HOST:PORT (no TLS is built in: see docs/flow-history.md)",
                self.url
            )));
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
            return Err(BadTarget(format!(
                "history URL {:?}: give http://HOST:PORT, without a path or credentials",
                self.url
            )));
        }
        let ok =
            |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        let parts: Vec<&str> = self.table.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| ok(p)) {
            return Err(BadTarget(format!(
                "history table {:?}: give DATABASE.TABLE of letters, digits and _",
                self.table
            )));
        }
        Ok(())
    }
}

/// A client of one server.
pub struct Client {
    target: Target,
    agent: ureq::Agent,
    auth: Option<String>,
    /// A shorter limit for every request (connection included), once set.
    limit: std::cell::Cell<Option<Duration>>,
}

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one request's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for one request's answer while the sink stops: a server that
/// accepts and never answers must not hold up the end of `run`.
pub const STOPPING_TIMEOUT: Duration = Duration::from_secs(5);

impl Client {
    /// A client for `target` (checked by [`Target::check`]).
    pub fn new(target: Target) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build();
        let auth = (!target.user.is_empty()).then(|| {
            format!(
                "Basic {}",
                base64(format!("{}:{}", target.user, target.password).as_bytes())
            )
        });
        Client {
            target,
            agent,
            auth,
            limit: std::cell::Cell::new(None),
        }
    }

    /// From now on, every request (connecting included) gives up after
    /// `limit`, or [`REQUEST_TIMEOUT`] if that is shorter.
    pub fn limit_requests(&self, limit: Duration) {
        self.limit.set(Some(limit.min(REQUEST_TIMEOUT)));
    }

    /// The table rows go to.
    pub fn table(&self) -> &str {
        &self.target.table
    }

    /// POSTs `body`; with `query`, the body is that query's data (the
    /// server reads the URL's query followed by the body).
    fn post(&self, query: Option<&str>, body: &[u8], gzip: bool) -> Result<String, RequestError> {
        let base = self.target.url.trim_end_matches('/');
        let mut req = self.agent.post(&format!("{base}/"));
        if let Some(limit) = self.limit.get() {
            req = req.timeout(limit);
        }
        if let Some(q) = query {
            req = req.query("query", q);
        }
        // Rows written by a newer tetherscope carry keys an older table
        // lacks: they are ignored rather than refusing the batch.
        req = req.query("input_format_skip_unknown_fields", "1");
        if gzip {
            req = req.set("Content-Encoding", "gzip");
        }
        if let Some(a) = &self.auth {
            req = req.set("Authorization", a);
        }
        match req.send_bytes(body) {
            Ok(resp) => resp
                .into_string()
                .map_err(|e| RequestError::NoAnswer(e.to_string())),
            Err(ureq::Error::Status(status, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                Err(RequestError::Refused {
                    status,
                    message: first_line(&text),
                })
            }
            // Without the URL: the same failure logs the same line
            // whichever request met it.
            Err(ureq::Error::Transport(t)) => {
                let cause = std::error::Error::source(&t)
                    .map(|e| e.to_string())
                    .or_else(|| t.message().map(str::to_owned))
                    .unwrap_or_default();
                Err(RequestError::NoAnswer(format!("{}: {cause}", t.kind())))
            }
        }
    }

    /// Inserts a gzip-compressed JSONEachRow body.
    pub fn insert(&self, gzip_body: &[u8]) -> Result<(), RequestError> {
        let query = format!("INSERT INTO {} FORMAT JSONEachRow", self.target.table);
        self.post(Some(&query), gzip_body, true).map(drop)
    }

    /// Rows of batch `id` of `sensor` stored on `day` (days since 1970):
    /// the day confines the count to one partition.
    pub fn stored_rows(&self, sensor: &str, id: &str, day: u64) -> Result<u64, RequestError> {
        let query = format!(
            "SELECT count() FROM {} WHERE toDate(first_seen) = toDate({day}) AND sensor = {} AND batch_id = {}",
            self.target.table,
            quote(sensor),
            quote(id),
        );
        let text = self.query(&query)?;
        text.trim()
            .parse()
            .map_err(|_| RequestError::NoAnswer(format!("count answered {:?}", first_line(&text))))
    }

    /// Runs any query; its answer as text (TabSeparated unless it says).
    pub fn query(&self, sql: &str) -> Result<String, RequestError> {
        self.post(None, sql.as_bytes(), false)
    }
}

/// A ClickHouse string literal: quotes and backslashes escaped.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('\'');
    for c in s.chars() {
        match c {
            '\'' => q.push_str("\\'"),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => q.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
            c => q.push(c),
        }
    }
    q.push('\'');
    q
}

/// The first line of a server message, bounded.
fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// Standard base64 (RFC 4648, section 4) for the Basic credentials.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(A[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn literals_are_escaped_and_targets_checked() {
        assert_eq!(quote("a'b\\c\n"), "'a\\'b\\\\c\\x0a'");
        let t = |url: &str, table: &str| Target {
            url: url.into(),
            table: table.into(),
            user: String::new(),
            password: String::new(),
        };
        assert!(t("http://127.0.0.1:8123", "tetherscope.flows")
            .check()
            .is_ok());
        assert!(t("http://127.0.0.1:8123/", "flows").check().is_ok());
        assert!(t("https://db:8443", "t.f").check().is_err());
        assert!(t("http://u:p@db:8123", "t.f").check().is_err());
        assert!(t("http://db:8123/x", "t.f").check().is_err());
        assert!(t("http://db:8123", "t.f; DROP TABLE x").check().is_err());
        assert!(t("http://db:8123", "a.b.c").check().is_err());
    }
}
