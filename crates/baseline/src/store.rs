//! The SQLite file behind the baseline.
//!
//! Recognised by its `application_id` (`TSCP`); `user_version` is the schema
//! version. A new file gets [`SCHEMA`]; [`MIGRATIONS`] bring any older file
//! up to date, in one transaction. A file that is not SQLite, SQLite of
//! another application, a newer schema, damaged or not writable is refused
//! with an error and left exactly as it was.
//!
//! What it holds is a picture of one's phone: the file is created 0600
//! (SQLite gives its `-wal` and `-shm` the same mode) and a directory made
//! for it 0700, whatever the umask. A store this user cannot write is
//! refused when it is opened, before anything is read into it.
//!
//! WAL journal with `synchronous = NORMAL`: a transaction is durable once
//! committed as far as a killed process goes (the OS still holds the log),
//! and readers never block the writer.

use std::borrow::Cow;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::model::{
    valid_fingerprint, Baseline, Batch, Client, CompactString, Destination, Device, Rows, Settings,
    MAX_CLIENT_DESTINATIONS,
};
use crate::{format_mac, nanos, parse_mac, seconds, AddressText, State};

/// `PRAGMA application_id` of a tetherscope store: "TSCP".
pub const APPLICATION_ID: i32 = 0x5453_4350;

/// The schema this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Devices: MAC, first and last seen, DHCP host names (JSON array).
const DEVICE_TABLE: &str = "CREATE TABLE device (
        mac        TEXT PRIMARY KEY,
        first_seen REAL NOT NULL,
        last_seen  REAL NOT NULL,
        host_names TEXT NOT NULL DEFAULT '[]'
    ) WITHOUT ROWID;";

/// Destinations per device, with their state, labels, counters and names.
const DESTINATION_TABLE: &str = "CREATE TABLE destination (
        mac             TEXT NOT NULL,
        destination     TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('baseline', 'accepted', 'new', 'flagged')),
        purpose         TEXT NOT NULL,
        owner           TEXT,
        service         TEXT,
        first_seen      REAL NOT NULL,
        last_seen       REAL NOT NULL,
        flows           INTEGER NOT NULL,
        bytes_up        INTEGER NOT NULL,
        bytes_down      INTEGER NOT NULL,
        cleartext_bytes INTEGER NOT NULL,
        names           TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (mac, destination)
    ) WITHOUT ROWID;";

/// Saved DNS answers: one row per response and client, its addresses a
/// JSON array (a response's addresses share the name, the CNAME chain and
/// the expiry), in the order the cache took them.
const DNS_ANSWER_TABLE: &str = "CREATE TABLE dns_answer (
        client      TEXT NOT NULL,
        query       TEXT NOT NULL,
        cname_chain TEXT NOT NULL DEFAULT '[]',
        addresses   TEXT NOT NULL,
        expires     REAL NOT NULL
    );";

/// TLS clients per device: the fingerprint, its state, times, flows and
/// the first destinations it contacted (JSON array).
const CLIENT_TABLE: &str = "CREATE TABLE client (
        mac          TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('baseline', 'accepted', 'new', 'flagged')),
        first_seen   REAL NOT NULL,
        last_seen    REAL NOT NULL,
        flows        INTEGER NOT NULL,
        destinations TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (mac, fingerprint)
    ) WITHOUT ROWID;";

/// Triage requests queued for the process that holds the store.
const REQUEST_TABLE: &str = "CREATE TABLE request (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        op          TEXT NOT NULL,
        mac         TEXT NOT NULL,
        destination TEXT NOT NULL,
        payload     TEXT
    );";

/// The schema of version [`SCHEMA_VERSION`], which a new file gets in one
/// step (the migrations are for files written by older builds; a test
/// checks they arrive at the same schema).
const SCHEMA: &[&str] = &[
    DEVICE_TABLE,
    DESTINATION_TABLE,
    DNS_ANSWER_TABLE,
    REQUEST_TABLE,
    CLIENT_TABLE,
];

/// `MIGRATIONS[v]` takes a store from version `v` to `v + 1`; version 0 is
/// a file with no tables yet. Only the newest may use the table constants
/// [`SCHEMA`] is made of: adding a version, write the one before it out as
/// it is.
const MIGRATIONS: &[&[&str]] = &[
    // v1: devices, destinations, saved DNS answers (a row per address),
    // queued triage requests. Written out as it was: a migration is
    // history, and must not change when the current tables do.
    &["CREATE TABLE device (
        mac        TEXT PRIMARY KEY,
        first_seen REAL NOT NULL,
        last_seen  REAL NOT NULL,
        host_names TEXT NOT NULL DEFAULT '[]'
    ) WITHOUT ROWID;
    CREATE TABLE destination (
        mac             TEXT NOT NULL,
        destination     TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('baseline', 'accepted', 'new', 'flagged')),
        purpose         TEXT NOT NULL,
        owner           TEXT,
        service         TEXT,
        first_seen      REAL NOT NULL,
        last_seen       REAL NOT NULL,
        flows           INTEGER NOT NULL,
        bytes_up        INTEGER NOT NULL,
        bytes_down      INTEGER NOT NULL,
        cleartext_bytes INTEGER NOT NULL,
        names           TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (mac, destination)
    ) WITHOUT ROWID;
    CREATE TABLE dns_answer (
        client      TEXT NOT NULL,
        address     TEXT NOT NULL,
        query       TEXT NOT NULL,
        cname_chain TEXT NOT NULL DEFAULT '[]',
        expires     REAL NOT NULL,
        PRIMARY KEY (client, address)
    ) WITHOUT ROWID;
    CREATE TABLE request (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        op          TEXT NOT NULL,
        mac         TEXT NOT NULL,
        destination TEXT NOT NULL,
        payload     TEXT
    );"],
    // v2: a saved DNS answer per response: fewer, shorter rows.
    &[
        "ALTER TABLE dns_answer RENAME TO dns_answer_v1;",
        "CREATE TABLE dns_answer (
        client      TEXT NOT NULL,
        query       TEXT NOT NULL,
        cname_chain TEXT NOT NULL DEFAULT '[]',
        addresses   TEXT NOT NULL,
        expires     REAL NOT NULL
    );",
        "INSERT INTO dns_answer (client, query, cname_chain, addresses, expires)
            SELECT client, query, cname_chain, json_group_array(address), expires
            FROM dns_answer_v1 GROUP BY client, query, cname_chain, expires ORDER BY expires;
        DROP TABLE dns_answer_v1;",
    ],
    // v3: TLS clients per device (new software on a device).
    &[CLIENT_TABLE],
];

/// Why a store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The path is a directory.
    #[error("{0}: is a directory, not a state store")]
    Directory(PathBuf),
    /// Not a SQLite file, or SQLite of another application.
    #[error("{0}: not a tetherscope state store; refusing to touch it")]
    Foreign(PathBuf),
    /// Written by a newer tetherscope.
    #[error(
        "{path}: state store schema {found} is newer than this tetherscope's ({known}); \
         refusing to touch it"
    )]
    Newer {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i32,
        /// Ours.
        known: i32,
    },
    /// Damaged.
    #[error("{path}: state store is damaged ({detail}); refusing to touch it")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What the integrity check said.
        detail: String,
    },
    /// Not writable.
    #[error("{0}: state store is read-only (it must be writable)")]
    ReadOnly(PathBuf),
    /// Missing (readers only).
    #[error("{0}: no state store there")]
    Missing(PathBuf),
    /// Anything else SQLite or the file system said.
    #[error("{path}: {detail}")]
    Other {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// A triage request queued by another process (the CLI) for the process
/// that holds the baseline in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Row id.
    pub id: i64,
    /// `accept`, `flag`, `forget`, `import`, or `accept_client`,
    /// `flag_client`, `forget_client`.
    pub op: String,
    /// Device MAC (empty for `import`, and for a client op on every
    /// device that used the client).
    pub mac: String,
    /// Destination, or a client op's fingerprint (empty for `import`).
    pub destination: String,
    /// For `import`: the entries, JSON.
    pub payload: Option<String>,
}

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Opens (creating it and its directory if missing) a store to write.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, false)
    }

    /// Opens an existing store to read, next to a running writer.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, read_only: bool) -> Result<Store, StoreError> {
        let other = |detail: String| StoreError::Other {
            path: path.to_owned(),
            detail,
        };
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Err(StoreError::Directory(path.to_owned())),
            Ok(m) => {
                // Root may write any file: a file nobody may write is still
                // the user saying "do not write this".
                if !read_only && m.permissions().readonly() {
                    return Err(StoreError::ReadOnly(path.to_owned()));
                }
                if !read_only && m.is_file() {
                    owner_only(path, &m);
                }
                if m.len() > 0 {
                    let mut head = [0u8; 16];
                    let n = std::fs::File::open(path)
                        .and_then(|mut f| f.read(&mut head))
                        .map_err(|e| other(e.to_string()))?;
                    if n < head.len() || &head != SQLITE_MAGIC {
                        return Err(StoreError::Foreign(path.to_owned()));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if read_only {
                    return Err(StoreError::Missing(path.to_owned()));
                }
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(|e| other(e.to_string()))?;
                }
                // Created here, not by SQLite, which would follow the umask.
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        return Err(StoreError::ReadOnly(path.to_owned()))
                    }
                    Err(e) => return Err(other(e.to_string())),
                }
            }
            Err(e) => return Err(other(e.to_string())),
        }
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
        let store = Store {
            conn,
            path: path.to_owned(),
        };
        store
            .conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| classify(path, e))?;
        store.check()?;
        if !read_only {
            store.prepare()?;
            store.check_writable()?;
        }
        Ok(store)
    }

    /// Refuses a store this user cannot write (SQLite would open it read
    /// only and say so only at the first write, after a whole capture was
    /// read): takes the write lock once and lets it go.
    fn check_writable(&self) -> Result<(), StoreError> {
        let path = &self.path;
        if self.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::ReadOnly(path.clone()));
        }
        self.conn
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(|e| classify(path, e))
    }

    /// Refuses foreign, newer or damaged files before anything is written.
    fn check(&self) -> Result<(), StoreError> {
        let c = &self.conn;
        let path = &self.path;
        let app: i32 = c
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| classify(path, e))?;
        let version: i32 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| classify(path, e))?;
        let objects: i64 = c
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| classify(path, e))?;
        let fresh = app == 0 && version == 0 && objects == 0;
        if !fresh && app != APPLICATION_ID {
            return Err(StoreError::Foreign(path.clone()));
        }
        if version < 0 {
            return Err(StoreError::Damaged {
                path: path.clone(),
                detail: format!("schema version {version}"),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: path.clone(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if !fresh {
            let verdict: String = c
                .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
                .map_err(|e| classify(path, e))?;
            if verdict != "ok" {
                return Err(StoreError::Damaged {
                    path: path.clone(),
                    detail: verdict.split_whitespace().collect::<Vec<_>>().join(" "),
                });
            }
        }
        Ok(())
    }

    /// WAL, then the schema (a new file) or migrations up to
    /// [`SCHEMA_VERSION`].
    fn prepare(&self) -> Result<(), StoreError> {
        let path = &self.path;
        let c = &self.conn;
        // Synchronous first: switching a new file to WAL is itself a write.
        c.execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(|e| classify(path, e))?;
        c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(|e| classify(path, e))?;
        let version: i32 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| classify(path, e))?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let fresh: bool = c
            .query_row("SELECT count(*) = 0 FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| classify(path, e))?;
        let mut script = String::from("BEGIN IMMEDIATE;\n");
        if version == 0 && fresh {
            script.push_str(&SCHEMA.join("\n"));
            script.push('\n');
        } else {
            for step in &MIGRATIONS[version as usize..] {
                script.push_str(&step.join("\n"));
                script.push('\n');
            }
        }
        script.push_str(&format!(
            "PRAGMA application_id = {APPLICATION_ID};\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
        ));
        c.execute_batch(&script).map_err(|e| {
            let _ = c.execute_batch("ROLLBACK");
            classify(path, e)
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes on disk: the database and its write-ahead log.
    pub fn size_bytes(path: &Path) -> u64 {
        let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        len(path) + len(Path::new(&wal))
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        classify(&self.path, e)
    }

    /// Reads every device and destination into a baseline.
    pub fn load(&self, settings: Settings) -> Result<Baseline, StoreError> {
        let mut baseline = Baseline::new(settings);
        let mut devices = crate::model::HashMap::<[u8; 6], Device>::default();
        let mut stmt = self
            .conn
            .prepare("SELECT mac, first_seen, last_seen, host_names FROM device")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (mac, first, last, names) = row.map_err(|e| self.err(e))?;
            let Some(mac) = parse_mac(&mac) else { continue };
            devices.insert(
                mac,
                Device {
                    first_seen_ns: nanos(first),
                    last_seen_ns: nanos(last),
                    host_names: serde_json::from_str(&names).unwrap_or_default(),
                    ..Device::default()
                },
            );
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT mac, destination, state, purpose, owner, service, first_seen, last_seen,
                        flows, bytes_up, bytes_down, cleartext_bytes, names
                 FROM destination",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                // Text read in place, labels shared as they come.
                let text = |i| r.get_ref(i)?.as_str().map_err(rusqlite::Error::from);
                let optional = |i| {
                    r.get_ref(i)?
                        .as_str_or_null()
                        .map_err(rusqlite::Error::from)
                };
                Ok((
                    parse_mac(text(0)?),
                    CompactString::from(text(1)?),
                    Destination {
                        state: State::parse(text(2)?).unwrap_or(State::New),
                        labels: baseline.shared_labels(text(3)?, optional(4)?, optional(5)?),
                        first_seen_ns: nanos(r.get(6)?),
                        last_seen_ns: nanos(r.get(7)?),
                        flows: to_u64(r.get(8)?),
                        bytes_up: to_u64(r.get(9)?),
                        bytes_down: to_u64(r.get(10)?),
                        cleartext_bytes: to_u64(r.get(11)?),
                        names: serde_json::from_str(&r.get::<_, String>(12)?).unwrap_or_default(),
                        unsaved: false,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (mac, name, dest) = row.map_err(|e| self.err(e))?;
            let Some(mac) = mac else { continue };
            let device = devices.entry(mac).or_insert_with(|| Device {
                first_seen_ns: dest.first_seen_ns,
                last_seen_ns: dest.last_seen_ns,
                ..Device::default()
            });
            device.destinations.insert(name, dest);
        }
        self.load_clients(&mut devices)?;
        for (mac, device) in devices {
            baseline.load_device(mac, device);
        }
        Ok(baseline)
    }

    /// Reads every client into its device (a client of a device without
    /// a row makes one, as a destination does).
    fn load_clients(
        &self,
        devices: &mut crate::model::HashMap<[u8; 6], Device>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT mac, fingerprint, state, first_seen, last_seen, flows, destinations
                 FROM client",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let text = |i| r.get_ref(i)?.as_str().map_err(rusqlite::Error::from);
                let destinations: Vec<String> = serde_json::from_str(text(6)?).unwrap_or_default();
                Ok((
                    parse_mac(text(0)?),
                    CompactString::from(text(1)?),
                    Client {
                        state: State::parse(text(2)?).unwrap_or(State::New),
                        first_seen_ns: nanos(r.get(3)?),
                        last_seen_ns: nanos(r.get(4)?),
                        flows: to_u64(r.get(5)?),
                        destinations: destinations
                            .iter()
                            .take(MAX_CLIENT_DESTINATIONS)
                            .map(|d| CompactString::from(d.as_str()))
                            .collect(),
                        unsaved: false,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (mac, fingerprint, client) = row.map_err(|e| self.err(e))?;
            let Some(mac) = mac else { continue };
            if !valid_fingerprint(&fingerprint) {
                continue;
            }
            let device = devices.entry(mac).or_insert_with(|| Device {
                first_seen_ns: client.first_seen_ns,
                last_seen_ns: client.last_seen_ns,
                ..Device::default()
            });
            device.clients.insert(fingerprint, client);
        }
        Ok(())
    }

    /// Writes a batch and deletes the requests it carries out, in one
    /// transaction.
    pub fn save(&mut self, batch: &Batch, done: &[i64]) -> Result<(), StoreError> {
        self.in_transaction(|tx| write_batch(tx, &batch.rows(), done))
    }

    /// The last write of a run, in one transaction: `rows`, the requests
    /// they carry out, and the DNS answers (replacing those saved before).
    pub fn save_last(
        &mut self,
        rows: &Rows<'_>,
        done: &[i64],
        answers: &[DnsAnswerRef<'_>],
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            write_batch(tx, rows, done)?;
            write_dns_answers(tx, answers)
        })
    }

    /// Queues a request for a running process and applies its effect
    /// (`batch`) to the file at once, in one transaction.
    pub fn queue(
        &mut self,
        op: &str,
        mac: &str,
        destination: &str,
        payload: Option<&str>,
        batch: &Batch,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            write_batch(tx, &batch.rows(), &[])?;
            tx.execute(
                "INSERT INTO request (op, mac, destination, payload) VALUES (?1, ?2, ?3, ?4)",
                params![op, mac, destination, payload],
            )
            .map(drop)
        })
    }

    /// Requests queued by other processes, oldest first.
    pub fn pending_requests(&self) -> Result<Vec<Request>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, op, mac, destination, payload FROM request ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Request {
                    id: r.get(0)?,
                    op: r.get(1)?,
                    mac: r.get(2)?,
                    destination: r.get(3)?,
                    payload: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Saved DNS answers not yet expired at `now_ns`, in the order the
    /// cache took them.
    pub fn dns_answers(&self, now_ns: u64) -> Result<Vec<DnsAnswer>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT client, addresses, query, cname_chain, expires FROM dns_answer
                 WHERE expires > ?1 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([seconds(now_ns)], |r| {
                Ok(DnsAnswer {
                    client: r.get(0)?,
                    addresses: serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or_default(),
                    query: r.get(2)?,
                    cname_chain: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                    expires_ns: nanos(r.get(4)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Runs `write` in one transaction that takes the write lock at once
    /// (so it never fails half-way for another writer); commits if it
    /// succeeds.
    fn in_transaction(
        &mut self,
        write: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| classify(path, e))?;
        write(&tx).map_err(|e| classify(path, e))?;
        tx.commit().map_err(|e| classify(path, e))
    }

    /// Runs `PRAGMA integrity_check`; "ok" when sound.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Whether the request table holds anything (cheap: runs every batch).
    pub fn has_requests(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row("SELECT 1 FROM request LIMIT 1", [], |r| r.get::<_, i64>(0))
            .optional()
            .map(|v| v.is_some())
            .map_err(|e| self.err(e))
    }
}

/// A DNS answer to save, borrowed from the cache that holds it: the
/// addresses one response gave one client.
#[derive(Debug, Clone, Copy)]
pub struct DnsAnswerRef<'a> {
    /// The client that asked.
    pub client: IpAddr,
    /// The answered addresses.
    pub addresses: &'a [IpAddr],
    /// The name asked for.
    pub query: &'a str,
    /// CNAME targets in order.
    pub cname_chain: &'a [Box<str>],
    /// Expiry, Unix nanoseconds.
    pub expires_ns: u64,
}

/// One saved DNS answer.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsAnswer {
    /// The client that asked.
    pub client: String,
    /// The answered addresses.
    pub addresses: Vec<String>,
    /// The name asked for.
    pub query: String,
    /// CNAME targets in order.
    pub cname_chain: Vec<String>,
    /// Expiry, Unix nanoseconds.
    pub expires_ns: u64,
}

/// Replaces the saved DNS answers with `answers`, in their order.
fn write_dns_answers(
    tx: &rusqlite::Transaction<'_>,
    answers: &[DnsAnswerRef<'_>],
) -> rusqlite::Result<()> {
    // Without a WHERE, SQLite empties the table in one step; the rows then
    // go in at its end (a rowid table), so nothing needs sorting.
    tx.execute("DELETE FROM dns_answer", [])?;
    let sql = |n| {
        format!(
            "INSERT INTO dns_answer (client, query, cname_chain, addresses, expires) VALUES {}",
            placeholders(n, 5)
        )
    };
    let mut addresses = String::new();
    insert_rows(tx, answers, sql, |stmt, i, a| {
        let chain = if a.cname_chain.is_empty() {
            Cow::Borrowed("[]")
        } else {
            Cow::Owned(serde_json::to_string(a.cname_chain).unwrap_or_else(|_| "[]".into()))
        };
        // Address text needs no JSON escaping.
        addresses.clear();
        addresses.push('[');
        for (n, address) in a.addresses.iter().enumerate() {
            if n > 0 {
                addresses.push(',');
            }
            addresses.push('"');
            addresses.push_str(AddressText::of(*address).as_str());
            addresses.push('"');
        }
        addresses.push(']');
        let first = i * 5;
        stmt.raw_bind_parameter(first + 1, AddressText::of(a.client).as_str())?;
        stmt.raw_bind_parameter(first + 2, a.query)?;
        stmt.raw_bind_parameter(first + 3, chain.as_ref())?;
        stmt.raw_bind_parameter(first + 4, addresses.as_str())?;
        stmt.raw_bind_parameter(first + 5, seconds(a.expires_ns))
    })
}

fn write_batch(
    tx: &rusqlite::Transaction<'_>,
    batch: &Rows<'_>,
    done: &[i64],
) -> rusqlite::Result<()> {
    // Deletions first: a row removed and seen again since is then written
    // back by its upsert, never deleted after it.
    {
        let mut stmt =
            tx.prepare_cached("DELETE FROM destination WHERE mac = ?1 AND destination = ?2")?;
        for (mac, name) in batch.removed {
            stmt.execute(params![format_mac(mac), name])?;
        }
        let mut stmt = tx.prepare_cached("DELETE FROM device WHERE mac = ?1")?;
        let mut clients = tx.prepare_cached("DELETE FROM client WHERE mac = ?1")?;
        for mac in batch.removed_devices {
            stmt.execute(params![format_mac(mac)])?;
            clients.execute(params![format_mac(mac)])?;
        }
        let mut stmt =
            tx.prepare_cached("DELETE FROM client WHERE mac = ?1 AND fingerprint = ?2")?;
        for (mac, fingerprint) in batch.removed_clients {
            stmt.execute(params![format_mac(mac), fingerprint])?;
        }
        let mut stmt = tx.prepare_cached("DELETE FROM request WHERE id = ?1")?;
        for id in done {
            stmt.execute(params![id])?;
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO device (mac, first_seen, last_seen, host_names)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (mac, d) in &batch.devices {
            stmt.execute(params![
                format_mac(mac),
                seconds(d.first_seen_ns),
                seconds(d.last_seen_ns),
                serde_json::to_string(&d.host_names).unwrap_or_else(|_| "[]".into()),
            ])?;
        }
    }
    {
        // Rows go in in key order: each lands after the last one, where
        // the b-tree appends to its rightmost page instead of splitting
        // pages all over the table (fewer pages touched, fuller pages). The
        // MAC's bytes sort like its lowercase hex text, and SQLite compares
        // text bytewise.
        let mut rows: Vec<_> = batch.destinations.iter().collect();
        rows.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        // A device's destinations come together: its MAC is formatted once
        // for all of them.
        let mut mac_text: Option<([u8; 6], String)> = None;
        insert_rows(tx, &rows, destination_upsert, |stmt, i, row| {
            bind_destination(stmt, i, row, &mut mac_text)
        })?;
    }
    // A few dozen clients per device at most, and only those whose flows
    // ended since the last batch: one statement, one row at a time.
    let mut stmt = tx.prepare_cached(
        "INSERT INTO client (mac, fingerprint, state, first_seen, last_seen, flows, destinations)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (mac, fingerprint) DO UPDATE SET state = excluded.state,
             first_seen = excluded.first_seen, last_seen = excluded.last_seen,
             flows = excluded.flows, destinations = excluded.destinations",
    )?;
    for (mac, fingerprint, c) in &batch.clients {
        stmt.execute(params![
            format_mac(mac),
            fingerprint,
            c.state.as_str(),
            seconds(c.first_seen_ns),
            seconds(c.last_seen_ns),
            to_i64(c.flows),
            serde_json::to_string(&c.destinations).unwrap_or_else(|_| "[]".into()),
        ])?;
    }
    Ok(())
}

/// Rows per multi-row `INSERT`: SQLite sets a statement up (opens the
/// table, runs the program's prologue, binds, resets) once for all of them,
/// which is most of what a narrow row costs on its own.
const ROWS_PER_INSERT: usize = 64;

/// Columns of a `destination` row, in the order [`bind_destination`] binds.
const DESTINATION_COLUMNS: usize = 13;

/// The upsert of `rows` destination rows: an upsert updates a row in place
/// (REPLACE would delete and insert it again).
fn destination_upsert(rows: usize) -> String {
    format!(
        "INSERT INTO destination (mac, destination, state, purpose, owner,
             service, first_seen, last_seen, flows, bytes_up, bytes_down, cleartext_bytes,
             names)
         VALUES {}
         ON CONFLICT (mac, destination) DO UPDATE SET state = excluded.state,
             purpose = excluded.purpose, owner = excluded.owner, service = excluded.service,
             first_seen = excluded.first_seen, last_seen = excluded.last_seen,
             flows = excluded.flows, bytes_up = excluded.bytes_up,
             bytes_down = excluded.bytes_down, cleartext_bytes = excluded.cleartext_bytes,
             names = excluded.names",
        placeholders(rows, DESTINATION_COLUMNS)
    )
}

/// Inserts `rows` with the statements `sql(n)` writes for `n` rows:
/// [`ROWS_PER_INSERT`] at a time, then one by one; `bind(stmt, i, row)`
/// binds `row` as the statement's row `i`.
fn insert_rows<T>(
    tx: &rusqlite::Transaction<'_>,
    rows: &[T],
    sql: impl Fn(usize) -> String,
    mut bind: impl FnMut(&mut rusqlite::Statement<'_>, usize, &T) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut stmt = tx.prepare_cached(&sql(ROWS_PER_INSERT))?;
        for chunk in chunks.by_ref() {
            for (i, row) in chunk.iter().enumerate() {
                bind(&mut stmt, i, row)?;
            }
            stmt.raw_execute()?;
        }
    }
    if !chunks.remainder().is_empty() {
        let mut stmt = tx.prepare_cached(&sql(1))?;
        for row in chunks.remainder() {
            bind(&mut stmt, 0, row)?;
            stmt.raw_execute()?;
        }
    }
    Ok(())
}

/// `(?,?),(?,?)` for two rows of two columns.
fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(","));
    vec![row; rows].join(",")
}

/// Binds one destination as row `index` of `stmt`; `mac_text` keeps the
/// last MAC formatted.
fn bind_destination(
    stmt: &mut rusqlite::Statement<'_>,
    index: usize,
    (mac, name, d): &([u8; 6], &str, &Destination),
    mac_text: &mut Option<([u8; 6], String)>,
) -> rusqlite::Result<()> {
    if mac_text.as_ref().is_none_or(|(m, _)| m != mac) {
        *mac_text = Some((*mac, format_mac(mac)));
    }
    let mac = mac_text.as_ref().map_or("", |(_, t)| t.as_str());
    let names = if d.names.is_empty() {
        Cow::Borrowed("[]")
    } else {
        Cow::Owned(serde_json::to_string(&d.names).unwrap_or_else(|_| "[]".into()))
    };
    let first = index * DESTINATION_COLUMNS;
    stmt.raw_bind_parameter(first + 1, mac)?;
    stmt.raw_bind_parameter(first + 2, name)?;
    stmt.raw_bind_parameter(first + 3, d.state.as_str())?;
    stmt.raw_bind_parameter(first + 4, &*d.labels.purpose)?;
    stmt.raw_bind_parameter(first + 5, d.labels.owner.as_deref())?;
    stmt.raw_bind_parameter(first + 6, d.labels.service.as_deref())?;
    stmt.raw_bind_parameter(first + 7, seconds(d.first_seen_ns))?;
    stmt.raw_bind_parameter(first + 8, seconds(d.last_seen_ns))?;
    stmt.raw_bind_parameter(first + 9, to_i64(d.flows))?;
    stmt.raw_bind_parameter(first + 10, to_i64(d.bytes_up))?;
    stmt.raw_bind_parameter(first + 11, to_i64(d.bytes_down))?;
    stmt.raw_bind_parameter(first + 12, to_i64(d.cleartext_bytes))?;
    stmt.raw_bind_parameter(first + 13, names.as_ref())
}

/// Takes group and other access away from an existing store, as a new one
/// never has it (best effort: a file of another user stays as it is).
fn owner_only(path: &Path, m: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = m.permissions().mode();
    if mode & 0o077 != 0 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700));
    }
}

/// Names SQLite's error the way a user needs to hear it.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::Foreign(path.to_owned()),
        Some(ErrorCode::DatabaseCorrupt) => StoreError::Damaged {
            path: path.to_owned(),
            detail: e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly(path.to_owned()),
        _ => StoreError::Other {
            path: path.to_owned(),
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientObservation, Observation};
    use crate::SECOND;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tetherscope-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("state.db")
    }

    #[test]
    fn round_trip_and_reopen() {
        let path = temp("roundtrip");
        let mut store = Store::open(&path).unwrap();
        let mut b = store.load(Settings::default()).unwrap();
        b.observe(&Observation {
            mac: [0xda, 0xa1, 0x19, 0x42, 0, 0x23],
            host_name: Some("pixel"),
            destination: "izatcloud.net",
            name: Some("xtrapath3.izatcloud.net"),
            purpose: "gnss-assistance",
            owner: Some("Qualcomm"),
            service: Some("Qualcomm XTRA"),
            expected: true,
            first_seen_ns: 1_700_000_000 * SECOND,
            last_seen_ns: 1_700_000_001 * SECOND,
            bytes_up: 1,
            bytes_down: 2,
            cleartext_bytes: 3,
        })
        .unwrap();
        store.save(&b.take_dirty(), &[]).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let again = store.load(Settings::default()).unwrap();
        assert_eq!(again.entries(None).unwrap(), b.entries(None).unwrap());
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// Enough rows for whole multi-row statements and a remainder, saved
    /// twice (the second time every row is an update), come back exactly.
    #[test]
    fn many_rows_round_trip() {
        let path = temp("many");
        let mut store = Store::open(&path).unwrap();
        let mut b = store.load(Settings::default()).unwrap();
        let rows = 2 * ROWS_PER_INSERT + 7;
        let observe = |b: &mut Baseline, round: u64| {
            for i in 0..rows {
                let mac = [2, 0, 0, 0, 0, (i % 3) as u8];
                let destination = format!("site{i}.example");
                let name = format!("www.{destination}");
                b.observe(&Observation {
                    mac,
                    host_name: None,
                    destination: &destination,
                    name: Some(&name),
                    purpose: "unknown",
                    owner: None,
                    service: None,
                    expected: false,
                    first_seen_ns: (1_700_000_000 + round) * SECOND,
                    last_seen_ns: (1_700_000_000 + round) * SECOND,
                    bytes_up: i as u64,
                    bytes_down: round,
                    cleartext_bytes: 0,
                })
                .unwrap();
            }
        };
        observe(&mut b, 1);
        store.save(&b.take_dirty(), &[]).unwrap();
        observe(&mut b, 2);
        store.save(&b.take_dirty(), &[]).unwrap();

        // One response per client and name, one to three addresses each:
        // more rows than one multi-row statement takes.
        let chains: Vec<Box<str>> = vec!["edge.example.net".into()];
        let addresses: Vec<Vec<IpAddr>> = (0..ROWS_PER_INSERT + 5)
            .map(|i| {
                (0..1 + i % 3)
                    .map(|k| IpAddr::from([192, 0, 2, (i * 3 + k) as u8]))
                    .collect()
            })
            .collect();
        let queries: Vec<String> = (0..addresses.len())
            .map(|i| format!("site{i}.example"))
            .collect();
        let answers: Vec<DnsAnswerRef<'_>> = addresses
            .iter()
            .zip(&queries)
            .enumerate()
            .map(|(i, (addresses, query))| DnsAnswerRef {
                client: "10.42.0.23".parse().unwrap(),
                addresses,
                query,
                cname_chain: if i % 2 == 0 { &chains } else { &[] },
                expires_ns: (1_800_000_000 + i as u64) * SECOND,
            })
            .collect();
        store.save_last(&Rows::default(), &[], &answers).unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        let again = store.load(Settings::default()).unwrap();
        // Loaded destinations share their labels, as observed ones do.
        let loaded: Vec<&Destination> = again
            .devices()
            .values()
            .flat_map(|d| d.destinations.values())
            .collect();
        assert!(loaded
            .windows(2)
            .all(|w| std::sync::Arc::ptr_eq(&w[0].labels, &w[1].labels)));
        assert_eq!(again.entries(None).unwrap().len(), rows);
        assert_eq!(again.entries(None).unwrap(), b.entries(None).unwrap());
        // Back in the order they were given.
        let saved = store.dns_answers(0).unwrap();
        assert_eq!(saved.len(), answers.len());
        for (s, a) in saved.iter().zip(&answers) {
            assert_eq!(s.client, a.client.to_string());
            let given: Vec<String> = a.addresses.iter().map(|x| x.to_string()).collect();
            assert_eq!(s.addresses, given);
            assert_eq!(s.query, a.query);
            assert_eq!(s.cname_chain.len(), a.cname_chain.len());
            assert_eq!(s.expires_ns, a.expires_ns);
        }
        // Answers expired by then (the first eleven) are not read back.
        let later = store.dns_answers(1_800_000_010 * SECOND).unwrap();
        assert_eq!(later.len(), answers.len() - 11);
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn foreign_newer_and_directory_refused_untouched() {
        let path = temp("foreign");
        std::fs::write(&path, b"hello, not a database at all").unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::Foreign(_))));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"hello, not a database at all"
        );

        std::fs::remove_file(&path).unwrap();
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE t (x)").unwrap();
        drop(c);
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::Foreign(_))));
        assert_eq!(std::fs::read(&path).unwrap(), before);

        std::fs::remove_file(&path).unwrap();
        drop(Store::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
            .unwrap();
        drop(c);
        assert!(matches!(Store::open(&path), Err(StoreError::Newer { .. })));
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = -1").unwrap();
        drop(c);
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Damaged { .. })
        ));

        assert!(matches!(
            Store::open(path.parent().unwrap()),
            Err(StoreError::Directory(_))
        ));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// Everything a store's schema holds (tables, indexes, their SQL with
    /// runs of white space made one space), in name order.
    fn schema(c: &Connection) -> Vec<String> {
        c.prepare("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY name")
            .unwrap()
            .query_map([], |r| {
                let sql: String = r.get(3)?;
                Ok(format!(
                    "{} {} {}: {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_version_1_store_is_migrated_to_the_schema_of_a_new_one() {
        let old = temp("v1");
        {
            let c = Connection::open(&old).unwrap();
            c.execute_batch(&MIGRATIONS[0].join("\n")).unwrap();
            c.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;
                 INSERT INTO dns_answer VALUES
                     ('10.42.0.23', '192.0.2.1', 'a.example', '[]', 1800000100.0),
                     ('10.42.0.23', '192.0.2.2', 'a.example', '[]', 1800000100.0),
                     ('10.42.0.23', '192.0.2.3', 'b.example', '[\"edge.example.net\"]', 1800000050.0),
                     ('10.42.0.24', '192.0.2.1', 'a.example', '[]', 1800000100.0);
                 INSERT INTO device VALUES ('da:a1:19:42:00:23', 1700000000.0, 1700000100.0, '[\"pixel\"]');
                 INSERT INTO destination VALUES ('da:a1:19:42:00:23', 'izatcloud.net', 'accepted',
                     'gnss-assistance', 'Qualcomm', 'Qualcomm XTRA', 1700000000.0, 1700000100.0,
                     3, 100, 2000, 2100, '[\"xtrapath3.izatcloud.net\"]');
                 INSERT INTO request (op, mac, destination) VALUES ('flag', 'da:a1:19:42:00:23', 'izatcloud.net');"
            ))
            .unwrap();
        }
        let store = Store::open(&old).unwrap();
        let fresh_path = temp("fresh");
        let fresh = Store::open(&fresh_path).unwrap();
        assert_eq!(schema(&store.conn), schema(&fresh.conn));
        let version: i32 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // The saved answers survive, one row per client and response,
        // soonest to expire first.
        let answers: Vec<(String, Vec<String>, String, Vec<String>)> = store
            .dns_answers(0)
            .unwrap()
            .into_iter()
            .map(|a| (a.client, a.addresses, a.query, a.cname_chain))
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            answers[0],
            (
                "10.42.0.23".into(),
                s(&["192.0.2.3"]),
                "b.example".into(),
                s(&["edge.example.net"])
            )
        );
        let mut rest = answers[1..].to_vec();
        rest.sort();
        assert_eq!(
            rest,
            [
                (
                    "10.42.0.23".into(),
                    s(&["192.0.2.1", "192.0.2.2"]),
                    "a.example".into(),
                    vec![]
                ),
                (
                    "10.42.0.24".into(),
                    s(&["192.0.2.1"]),
                    "a.example".into(),
                    vec![]
                ),
            ]
        );
        // Devices, destinations and queued requests are untouched.
        let entries = store
            .load(Settings::default())
            .unwrap()
            .entries(None)
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (
                entries[0].device.as_str(),
                entries[0].destination.as_str(),
                entries[0].state.as_str()
            ),
            ("pixel", "izatcloud.net", "accepted")
        );
        assert_eq!((entries[0].flows, entries[0].cleartext_bytes), (3, 2100));
        assert_eq!(entries[0].names, ["xtrapath3.izatcloud.net"]);
        assert_eq!(store.pending_requests().unwrap().len(), 1);
        assert_eq!(store.integrity_check().unwrap(), "ok");
        // A version 1 store that saved no answer migrates too.
        let empty = temp("v1-empty");
        {
            let c = Connection::open(&empty).unwrap();
            c.execute_batch(&MIGRATIONS[0].join("\n")).unwrap();
            c.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"
            ))
            .unwrap();
        }
        let migrated = Store::open(&empty).unwrap();
        assert_eq!(schema(&migrated.conn), schema(&fresh.conn));
        assert!(migrated.dns_answers(0).unwrap().is_empty());
        for p in [old, fresh_path, empty] {
            let _ = std::fs::remove_dir_all(p.parent().unwrap());
        }
    }

    /// A store of version 2 (the schema before clients), with data in
    /// every table, as a build of that version left it.
    fn version_2_store(path: &Path) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(&MIGRATIONS[0].join("\n")).unwrap();
        c.execute_batch(&MIGRATIONS[1].join("\n")).unwrap();
        c.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 2;
             INSERT INTO device VALUES ('da:a1:19:42:00:23', 1700000000.0, 1700000100.0, '[\"pixel\"]');
             INSERT INTO destination VALUES ('da:a1:19:42:00:23', 'izatcloud.net', 'accepted',
                 'gnss-assistance', 'Qualcomm', 'Qualcomm XTRA', 1700000000.0, 1700000100.0,
                 3, 100, 2000, 2100, '[\"xtrapath3.izatcloud.net\"]');
             INSERT INTO dns_answer (client, query, cname_chain, addresses, expires) VALUES
                 ('10.42.0.23', 'a.example', '[]', '[\"192.0.2.1\",\"192.0.2.2\"]', 1800000100.0);
             INSERT INTO request (op, mac, destination) VALUES ('flag', 'da:a1:19:42:00:23', 'izatcloud.net');"
        ))
        .unwrap();
    }

    #[test]
    fn a_version_2_store_gains_clients_and_keeps_its_data() {
        let old = temp("v2");
        version_2_store(&old);
        let mut store = Store::open(&old).unwrap();
        let fresh_path = temp("fresh-v3");
        let fresh = Store::open(&fresh_path).unwrap();
        assert_eq!(schema(&store.conn), schema(&fresh.conn));
        let version: i32 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // Devices, destinations, answers and queued requests are untouched.
        let mut b = store.load(Settings::default()).unwrap();
        let entries = b.entries(None).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (
                entries[0].device.as_str(),
                entries[0].destination.as_str(),
                entries[0].state.as_str(),
                entries[0].flows
            ),
            ("pixel", "izatcloud.net", "accepted", 3)
        );
        assert!(b.client_entries(None).unwrap().is_empty());
        let answers = store.dns_answers(0).unwrap();
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].addresses, ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(store.pending_requests().unwrap().len(), 1);
        // The migrated store keeps clients across a reopen.
        let mac = [0xda, 0xa1, 0x19, 0x42, 0, 0x23];
        b.observe_client(&ClientObservation {
            mac,
            fingerprint: "t13d1516h2_8daaf6152771_e5627efa2ab1",
            destination: "izatcloud.net",
            first_seen_ns: 1_700_000_200 * SECOND,
            last_seen_ns: 1_700_000_201 * SECOND,
        })
        .unwrap();
        store.save(&b.take_dirty(), &[]).unwrap();
        drop(store);
        let store = Store::open(&old).unwrap();
        let again = store.load(Settings::default()).unwrap();
        assert_eq!(
            again.client_entries(None).unwrap(),
            b.client_entries(None).unwrap()
        );
        assert_eq!(
            again.client_entries(None).unwrap()[0].destinations,
            ["izatcloud.net"]
        );
        assert_eq!(store.integrity_check().unwrap(), "ok");
        for p in [old, fresh_path] {
            let _ = std::fs::remove_dir_all(p.parent().unwrap());
        }
    }

    #[test]
    fn clients_round_trip_triage_and_forgetting() {
        let path = temp("clients");
        let mut store = Store::open(&path).unwrap();
        let mut b = store
            .load(Settings {
                learn_for_ns: 0,
                ..Settings::default()
            })
            .unwrap();
        let mac = [2, 0, 0, 0, 0, 1];
        let fps = [
            "t13d1516h2_8daaf6152771_e5627efa2ab1",
            "t13d1715h2_5b57614c22b0_3d5424432f57",
        ];
        for (i, fp) in fps.iter().enumerate() {
            let destination = format!("site{i}.example");
            let t = (1_700_000_000 + i as u64) * SECOND;
            b.observe(&Observation {
                mac,
                host_name: None,
                destination: &destination,
                name: None,
                purpose: "unknown",
                owner: None,
                service: None,
                expected: false,
                first_seen_ns: t,
                last_seen_ns: t,
                bytes_up: 1,
                bytes_down: 1,
                cleartext_bytes: 0,
            })
            .unwrap();
            b.observe_client(&ClientObservation {
                mac,
                fingerprint: fp,
                destination: &destination,
                first_seen_ns: t,
                last_seen_ns: t,
            })
            .unwrap();
        }
        b.triage_client(crate::Triage::Flag, Some("02:00:00:00:00:01"), fps[0])
            .unwrap();
        store.save(&b.take_dirty(), &[]).unwrap();
        let reopened = Store::open(&path)
            .unwrap()
            .load(Settings::default())
            .unwrap();
        let shown = reopened.client_entries(None).unwrap();
        assert_eq!(shown, b.client_entries(None).unwrap());
        assert_eq!(
            shown.iter().map(|e| e.state.as_str()).collect::<Vec<_>>(),
            ["flagged", "new"]
        );
        // Forgotten: its row goes.
        b.triage_client(crate::Triage::Forget, None, fps[1])
            .unwrap();
        store.save(&b.take_dirty(), &[]).unwrap();
        let reopened = Store::open(&path)
            .unwrap()
            .load(Settings::default())
            .unwrap();
        assert_eq!(reopened.client_entries(None).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
