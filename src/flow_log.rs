//! The flow log: one JSON line per finished flow, buffered, appended to a
//! file that is rotated by size (`log` → `log.1` → … → `log.N`, the oldest
//! removed), so it never grows without bound.
//!
//! It is written by the capture thread alone. Rotation happens between two
//! lines, so no line is ever split across files, and costs a flush and a few
//! renames: nothing that blocks for long.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Buffer of the flow log: lines leave it once a second, at shutdown, at a
/// rotation, or when it is full.
const BUFFER: usize = 64 << 10;

/// When the flow log file is rotated, and how many old files are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    /// A file reaching this many bytes is rotated before the next line; 0:
    /// never. A single longer line still goes whole into a file of its own.
    pub max_bytes: u64,
    /// Old files kept (`log.1` … `log.N`); 0: the full file is removed.
    pub keep: u32,
}

/// Default largest flow log, MiB.
pub const DEFAULT_MAX_MIB: f64 = 100.0;
/// Default number of old flow logs kept.
pub const DEFAULT_KEEP: u32 = 5;
/// Most old flow logs kept.
pub const MAX_KEEP: u32 = 1000;

impl Rotation {
    /// From the command line's units (MiB, fractions allowed); a size that
    /// is negative or not a number is a usage error.
    pub fn from_mib(max_mib: f64, keep: u32) -> Result<Rotation, String> {
        if !max_mib.is_finite() || max_mib < 0.0 {
            return Err(format!(
                "flow log size {max_mib} MiB: give a number of MiB, 0 for no rotation"
            ));
        }
        // Each rotation renames every kept file on the capture thread.
        if keep > MAX_KEEP {
            return Err(format!(
                "flow log keep {keep}: at most {MAX_KEEP} old files are kept"
            ));
        }
        Ok(Rotation {
            // Saturating: an enormous size is the same as none.
            max_bytes: (max_mib * 1_048_576.0) as u64,
            keep,
        })
    }
}

/// What one [`FlowLog::write_line`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes of the line, its newline included.
    pub bytes: u64,
    /// Whether the file was rotated before it.
    pub rotated: bool,
}

/// Where the lines go.
enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File {
        out: BufWriter<File>,
        path: PathBuf,
        /// Bytes in the current file, buffered ones included.
        size: u64,
        rotation: Rotation,
    },
}

/// The flow log of `run` and `replay`.
pub struct FlowLog {
    sink: Sink,
    /// The line being written, reused.
    line: Vec<u8>,
}

/// A new log is its owner's alone, like the store: it shows what the
/// phones talk to.
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// `log.N` for `log`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl FlowLog {
    /// Standard output (`--flow-log -`): never rotated.
    pub fn stdout() -> FlowLog {
        FlowLog {
            sink: Sink::Stdout(BufWriter::with_capacity(BUFFER, io::stdout())),
            line: Vec::new(),
        }
    }

    /// Appends to `path`, rotating it as `rotation` says.
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<FlowLog> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(FlowLog {
            sink: Sink::File {
                out: BufWriter::with_capacity(BUFFER, file),
                path: path.to_owned(),
                size,
                rotation,
            },
            line: Vec::new(),
        })
    }

    /// Writes `record` as one JSON line, rotating the file first if the
    /// line would take it past its size.
    pub fn write_line(&mut self, record: &impl serde::Serialize) -> io::Result<Written> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record)?;
        self.line.push(b'\n');
        let bytes = self.line.len() as u64;
        let mut rotated = false;
        match &mut self.sink {
            Sink::Stdout(out) => out.write_all(&self.line)?,
            Sink::File {
                out,
                path,
                size,
                rotation,
            } => {
                if rotation.max_bytes > 0 && *size > 0 && *size + bytes > rotation.max_bytes {
                    rotate(out, path, rotation.keep)?;
                    *size = 0;
                    rotated = true;
                }
                out.write_all(&self.line)?;
                *size += bytes;
            }
        }
        Ok(Written { bytes, rotated })
    }

    /// The line the last [`FlowLog::write_line`] wrote, newline included.
    pub fn last_line(&self) -> &[u8] {
        &self.line
    }

    /// Hands the buffered lines to the kernel.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(out) => out.flush(),
            Sink::File { out, .. } => out.flush(),
        }
    }
}

/// Flushes `out` into its file, shifts the old files by one (dropping the
/// oldest) and puts a new empty file at `path` behind `out`.
fn rotate(out: &mut BufWriter<File>, path: &Path, keep: u32) -> io::Result<()> {
    out.flush()?;
    let gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    if keep == 0 {
        gone(std::fs::remove_file(path))?;
    } else {
        for n in (1..keep).rev() {
            gone(std::fs::rename(numbered(path, n), numbered(path, n + 1)))?;
        }
        gone(std::fs::rename(path, numbered(path, 1)))?;
    }
    *out.get_mut() = open_append(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tetherscope-flowlog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    #[test]
    fn rotates_between_lines_and_keeps_the_newest_files() {
        let dir = scratch("rotate");
        let path = dir.join("flows.jsonl");
        // Each line is 12 bytes ("{\"n\":NNNNN}\n"): three fit in 40 bytes.
        let mut log = FlowLog::open(
            &path,
            Rotation {
                max_bytes: 40,
                keep: 2,
            },
        )
        .unwrap();
        let mut rotations = 0;
        for n in 10_000..10_020 {
            let w = log.write_line(&serde_json::json!({ "n": n })).unwrap();
            assert_eq!(w.bytes, 12);
            rotations += u32::from(w.rotated);
        }
        log.flush().unwrap();
        // 20 lines, 3 a file: 7 files were begun, 6 rotations.
        assert_eq!(rotations, 6);
        let n = |l: &String| serde_json::from_str::<serde_json::Value>(l).unwrap()["n"].clone();
        let current: Vec<_> = lines(&path).iter().map(n).collect();
        let one: Vec<_> = lines(&numbered(&path, 1)).iter().map(n).collect();
        let two: Vec<_> = lines(&numbered(&path, 2)).iter().map(n).collect();
        assert_eq!(current, [10_018, 10_019]);
        assert_eq!(one, [10_015, 10_016, 10_017]);
        assert_eq!(two, [10_012, 10_013, 10_014]);
        assert!(!numbered(&path, 3).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_existing_file_counts_and_a_long_line_goes_whole() {
        let dir = scratch("existing");
        let path = dir.join("flows.jsonl");
        std::fs::write(&path, "{\"old\":1}\n").unwrap();
        let rotation = Rotation {
            max_bytes: 16,
            keep: 1,
        };
        let mut log = FlowLog::open(&path, rotation).unwrap();
        let long = "x".repeat(40);
        let w = log.write_line(&serde_json::json!({ "s": long })).unwrap();
        assert!(w.rotated, "the existing 10 bytes count towards the size");
        let w = log.write_line(&serde_json::json!({ "n": 1 })).unwrap();
        assert!(w.rotated);
        log.flush().unwrap();
        assert_eq!(lines(&path), ["{\"n\":1}"]);
        assert_eq!(
            lines(&numbered(&path, 1)),
            [format!("{{\"s\":\"{long}\"}}")]
        );
        assert!(!numbered(&path, 2).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keep_is_bounded_and_new_logs_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        assert!(Rotation::from_mib(1.0, MAX_KEEP).is_ok());
        assert!(Rotation::from_mib(1.0, MAX_KEEP + 1).is_err());
        assert!(Rotation::from_mib(1.0, u32::MAX).is_err());
        let dir = std::env::temp_dir().join(format!("ts-flowlog-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flows.jsonl");
        drop(open_append(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_rotation_without_a_size_and_none_kept_with_keep_zero() {
        let dir = scratch("limits");
        let path = dir.join("flows.jsonl");
        let mut log = FlowLog::open(
            &path,
            Rotation {
                max_bytes: 0,
                keep: 3,
            },
        )
        .unwrap();
        for n in 0..100 {
            assert!(!log.write_line(&n).unwrap().rotated);
        }
        log.flush().unwrap();
        assert_eq!(lines(&path).len(), 100);
        let mut log = FlowLog::open(
            &path,
            Rotation {
                max_bytes: 10,
                keep: 0,
            },
        )
        .unwrap();
        assert!(log.write_line(&1).unwrap().rotated);
        log.flush().unwrap();
        assert_eq!(lines(&path), ["1"]);
        assert!(!numbered(&path, 1).exists());
        assert!(Rotation::from_mib(-1.0, 1).is_err());
        assert!(Rotation::from_mib(f64::NAN, 1).is_err());
        assert_eq!(Rotation::from_mib(1.0, 1).unwrap().max_bytes, 1 << 20);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
