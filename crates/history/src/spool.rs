//! The on-disk spool: one gzip file per batch, exactly the body of the
//! INSERT that carries it, oldest first.
//!
//! A file per batch makes the two things the spool does cheap and atomic:
//! an acknowledged batch is one `unlink`, and a full spool drops its oldest
//! batch with one `unlink`, with no compaction of a shared segment. A batch
//! is written to a `.tmp` name, synced, then renamed, so a crash leaves
//! either the whole batch or none of it. The file name carries what a
//! restart needs to resend it: its order, its id, its rows and its day.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// One spooled batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Order in the spool: older batches have smaller numbers.
    pub seq: u64,
    /// The id every row of the batch carries in `batch_id`.
    pub id: String,
    /// Rows in the batch.
    pub rows: u64,
    /// The UTC day (days since 1970-01-01) of every row's `first_seen`.
    pub day: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Whether an earlier attempt may have stored it (sent without an
    /// answer, or found in the spool at start): ClickHouse is asked before
    /// it is sent again.
    pub uncertain: bool,
}

/// What making room in a full spool removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Batches removed.
    pub batches: u64,
    /// Their rows.
    pub rows: u64,
}

/// The spool directory and what it holds.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    batches: VecDeque<Batch>,
    bytes: u64,
    next_seq: u64,
    /// Random per start: batch ids stay unique if the spool is wiped.
    instance: u64,
}

const SUFFIX: &str = ".json.gz";

impl Spool {
    /// Opens (creating, owner-only) `dir`, taking up the batches it holds;
    /// leftovers of an interrupted write are removed, foreign files left
    /// alone.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut batches = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            if let Some(mut b) = parse_name(name) {
                b.bytes = entry.metadata()?.len();
                batches.push(b);
            }
        }
        batches.sort_by_key(|b| b.seq);
        let next_seq = batches.last().map_or(1, |b| b.seq + 1);
        let bytes = batches.iter().map(|b| b.bytes).sum();
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            batches: batches.into(),
            bytes,
            next_seq,
            instance: random_u64(),
        })
    }

    /// Order number and id for the next batch.
    pub fn next_batch(&mut self) -> (u64, String) {
        let seq = self.next_seq;
        self.next_seq += 1;
        (seq, format!("{:016x}{seq:08x}", self.instance))
    }

    /// Writes a batch; then, while the spool holds more than its size,
    /// removes the oldest batches (never one being sent, `busy`, nor the
    /// one just written).
    pub fn push(
        &mut self,
        seq: u64,
        id: &str,
        rows: u64,
        day: u64,
        body: &[u8],
        busy: Option<u64>,
    ) -> io::Result<Dropped> {
        let mut batch = Batch {
            seq,
            id: id.to_owned(),
            rows,
            day,
            bytes: body.len() as u64,
            uncertain: false,
        };
        let path = self.path(&batch);
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(body)?;
            f.sync_data()?;
        }
        fs::rename(&tmp, &path)?;
        let _ = File::open(&self.dir).and_then(|d| d.sync_all());
        batch.bytes = body.len() as u64;
        self.bytes += batch.bytes;
        self.batches.push_back(batch);
        let mut dropped = Dropped::default();
        while self.bytes > self.max_bytes {
            let Some(i) = self
                .batches
                .iter()
                .position(|b| Some(b.seq) != busy && b.seq != seq)
            else {
                break;
            };
            let gone = self.batches.remove(i).expect("index from position");
            let _ = fs::remove_file(self.path(&gone));
            self.bytes -= gone.bytes;
            dropped.batches += 1;
            dropped.rows += gone.rows;
        }
        Ok(dropped)
    }

    /// The oldest batch.
    pub fn oldest(&self) -> Option<&Batch> {
        self.batches.front()
    }

    /// Marks batch `seq` as possibly stored.
    pub fn set_uncertain(&mut self, seq: u64) {
        if let Some(b) = self.batches.iter_mut().find(|b| b.seq == seq) {
            b.uncertain = true;
        }
    }

    /// The body of a batch.
    pub fn read(&self, batch: &Batch) -> io::Result<Vec<u8>> {
        let mut body = Vec::with_capacity(batch.bytes as usize);
        File::open(self.path(batch))?.read_to_end(&mut body)?;
        Ok(body)
    }

    /// Removes batch `seq` (stored): false if it was no longer there.
    pub fn remove(&mut self, seq: u64) -> io::Result<bool> {
        let Some(i) = self.batches.iter().position(|b| b.seq == seq) else {
            return Ok(false);
        };
        let gone = self.batches.remove(i).expect("index from position");
        self.bytes -= gone.bytes;
        match fs::remove_file(self.path(&gone)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(true),
        }
    }

    /// Bytes of the spooled batches.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Spooled batches.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// Whether nothing is spooled.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn path(&self, b: &Batch) -> PathBuf {
        self.dir.join(format!(
            "{:016x}-{}-{}-{}{SUFFIX}",
            b.seq, b.id, b.rows, b.day
        ))
    }
}

/// `SEQ-ID-ROWS-DAY.json.gz`; anything else is not a batch. A batch found
/// at start may have been stored before the process stopped.
fn parse_name(name: &str) -> Option<Batch> {
    let stem = name.strip_suffix(SUFFIX)?;
    let mut parts = stem.split('-');
    let seq = u64::from_str_radix(parts.next()?, 16).ok()?;
    let id = parts.next()?;
    if id.is_empty() || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let rows = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Batch {
        seq,
        id: id.to_owned(),
        rows,
        day,
        bytes: 0,
        uncertain: true,
    })
}

/// 64 random bits from the kernel (the clock and pid if it has none).
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ts-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn batches_survive_a_restart_in_order_and_uncertain() {
        let dir = scratch("restart");
        let mut s = Spool::open(&dir, 1 << 20).unwrap();
        let (a, ida) = s.next_batch();
        s.push(a, &ida, 3, 20_000, b"aaa", None).unwrap();
        let (b, idb) = s.next_batch();
        s.push(b, &idb, 2, 20_001, b"bb", None).unwrap();
        assert!(!s.oldest().unwrap().uncertain);
        fs::write(dir.join("half.json.gz.tmp"), b"x").unwrap();
        fs::write(dir.join("notes.txt"), b"x").unwrap();
        drop(s);
        let mut s = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.bytes(), 5);
        let first = s.oldest().unwrap().clone();
        assert_eq!(
            (first.seq, first.id.as_str(), first.rows, first.day),
            (a, ida.as_str(), 3, 20_000)
        );
        assert!(first.uncertain);
        assert_eq!(s.read(&first).unwrap(), b"aaa");
        assert!(!dir.join("half.json.gz.tmp").exists());
        assert!(dir.join("notes.txt").exists());
        let (c, idc) = s.next_batch();
        assert!(c > b);
        assert_ne!(idc, idb);
        assert!(s.remove(a).unwrap());
        assert!(!s.remove(a).unwrap());
        assert_eq!(s.oldest().unwrap().seq, b);
        assert_eq!(s.bytes(), 2);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_spool_drops_its_oldest_but_not_the_one_being_sent() {
        let dir = scratch("full");
        let mut s = Spool::open(&dir, 10).unwrap();
        for _ in 0..2 {
            let (q, id) = s.next_batch();
            assert_eq!(
                s.push(q, &id, 4, 1, b"1234", None).unwrap(),
                Dropped::default()
            );
        }
        // 12 bytes > 10: the oldest goes.
        let (q, id) = s.next_batch();
        let d = s.push(q, &id, 4, 1, b"1234", None).unwrap();
        assert_eq!(
            d,
            Dropped {
                batches: 1,
                rows: 4
            }
        );
        assert_eq!(s.len(), 2);
        let busy = s.oldest().unwrap().seq;
        let (q, id) = s.next_batch();
        let d = s.push(q, &id, 4, 1, b"1234", Some(busy)).unwrap();
        assert_eq!(
            d,
            Dropped {
                batches: 1,
                rows: 4
            }
        );
        assert_eq!(s.oldest().unwrap().seq, busy);
        assert_eq!(s.bytes(), 8);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        let _ = fs::remove_dir_all(&dir);
    }
}
