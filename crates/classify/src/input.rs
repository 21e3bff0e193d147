//! Reading the files a user names (catalogs, domain lists, baseline
//! imports): only regular files, and only up to a stated size, so that a
//! path to `/dev/zero`, a FIFO or a directory is refused at once instead of
//! hanging or reading forever, and a huge file is refused before it is held
//! in memory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest catalog file, domain list or baseline import read: 64 MiB (the
/// largest public block lists are a few MiB).
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// What kind of non-regular file `file` is, in words.
fn kind(file: &std::fs::FileType) -> &'static str {
    if file.is_dir() {
        "a directory"
    } else if file.is_fifo() {
        "a FIFO"
    } else if file.is_char_device() {
        "a character device"
    } else if file.is_block_device() {
        "a block device"
    } else if file.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file. The open does not wait
/// for a FIFO's writer (O_NONBLOCK), and the type is checked on the opened
/// file itself, so nothing swapped in between is read.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", kind(&file_type)),
        ));
    }
    Ok(file)
}

/// Reads all of `reader`, refusing more than `limit` bytes or text that is
/// not UTF-8.
pub fn read_limited(reader: impl Read, limit: u64) -> io::Result<String> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("larger than {} MiB, the most read", limit >> 20),
    )
}

/// The text of the regular file `path`, of at most [`MAX_INPUT_BYTES`].
pub fn read_text_file(path: &Path) -> io::Result<String> {
    let file = open_regular(path)?;
    // Said at once for a file known to be too large; the bounded read still
    // holds if it grows meanwhile.
    if file.metadata()?.len() > MAX_INPUT_BYTES {
        return Err(too_large(MAX_INPUT_BYTES));
    }
    read_limited(file, MAX_INPUT_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let err = read_text_file(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let err = read_text_file(Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[test]
    fn refuses_more_than_the_limit() {
        assert_eq!(read_limited(&b"abc"[..], 3).unwrap(), "abc");
        let err = read_limited(&b"abcd"[..], 3).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // An endless source stops at the limit.
        let err = read_limited(io::repeat(b'a'), 1 << 20).unwrap_err();
        assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
    }
}
