//! The framing of W&B's `.wandb` transaction log: LevelDB's log format with W&B's own file
//! header and an unmasked CRC. Writer: wandb's `core/pkg/leveldb/record.go` (`CRCAlgoIEEE`);
//! reader: `wandb/sdk/internal/datastore.py` (wandb ≤ 0.28), which the tests run on our files.
//!
//! ```text
//! file   := ":W&B" u16le(0xBEE1) u8(0)  block*      (the header occupies the first block's start)
//! block  := chunk* zeros(<7)                         (32 KiB, counted from file offset 0)
//! chunk  := u32le(crc32(type ++ data)) u16le(len(data)) u8(type) data
//! type   := FULL 1 | FIRST 2 | MIDDLE 3 | LAST 4     (a record too big for its block is split)
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::track::error::TrackError;

const BLOCK: u64 = 32 * 1024;
const CHUNK_HEADER: u64 = 7;
const FILE_HEADER: [u8; 7] = [b':', b'W', b'&', b'B', 0xE1, 0xBE, 0];

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

/// Appends records to a log file; every record is written through to the file at once, so a
/// killed process leaves at most one torn record at the end.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    offset: u64,
}

impl LogWriter {
    /// Creates `path` (replacing any file there) and writes the file header.
    pub fn create(path: &Path) -> Result<LogWriter, TrackError> {
        let io = |source| TrackError::Io { path: path.to_path_buf(), source };
        let mut file = File::create(path).map_err(io)?;
        file.write_all(&FILE_HEADER).map_err(io)?;
        Ok(LogWriter { path: path.to_path_buf(), file, offset: FILE_HEADER.len() as u64 })
    }

    /// Follows a rename of the file, for the paths in error messages.
    pub fn moved_to(&mut self, path: &Path) {
        self.path = path.to_path_buf();
    }

    /// Appends one record, split into chunks at block boundaries.
    pub fn append(&mut self, record: &[u8]) -> Result<(), TrackError> {
        let mut out = Vec::with_capacity(record.len() + 64);
        let mut rest = record;
        let mut first = true;
        loop {
            let left = BLOCK - self.offset % BLOCK;
            if left < CHUNK_HEADER {
                // No room for a chunk header: the block's tail is zero padding.
                out.extend(std::iter::repeat_n(0u8, left as usize));
                self.offset += left;
                continue;
            }
            let n = rest.len().min((left - CHUNK_HEADER) as usize);
            let last = n == rest.len();
            let kind = match (first, last) {
                (true, true) => FULL,
                (true, false) => FIRST,
                (false, false) => MIDDLE,
                (false, true) => LAST,
            };
            let mut crc = crc32fast::Hasher::new();
            crc.update(&[kind]);
            crc.update(&rest[..n]);
            out.extend_from_slice(&crc.finalize().to_le_bytes());
            out.extend_from_slice(&(n as u16).to_le_bytes());
            out.push(kind);
            out.extend_from_slice(&rest[..n]);
            self.offset += CHUNK_HEADER + n as u64;
            rest = &rest[n..];
            first = false;
            if last {
                break;
            }
        }
        self.file.write_all(&out).map_err(|source| TrackError::Io { path: self.path.clone(), source })
    }
}

/// Every complete record of a log file, in order. Reading stops at the first chunk that is
/// torn or fails its CRC (a process killed mid-write): what precedes it is intact.
pub fn read(path: &Path) -> Result<Vec<Vec<u8>>, TrackError> {
    let bytes = std::fs::read(path).map_err(|source| TrackError::Io { path: path.to_path_buf(), source })?;
    if bytes.get(..FILE_HEADER.len()) != Some(&FILE_HEADER[..]) {
        return Err(TrackError::WandbFormat {
            path: path.to_path_buf(),
            problem: "it does not start with the W&B log header `:W&B` 0xBEE1 version 0".into(),
        });
    }
    let mut records = Vec::new();
    let mut pending: Option<Vec<u8>> = None;
    let mut at = FILE_HEADER.len();
    while at < bytes.len() {
        let left = (BLOCK - at as u64 % BLOCK) as usize;
        if left < CHUNK_HEADER as usize {
            at += left;
            continue;
        }
        let Some(header) = bytes.get(at..at + CHUNK_HEADER as usize) else { break };
        let crc = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let len = u16::from_le_bytes([header[4], header[5]]) as usize;
        let kind = header[6];
        let start = at + CHUNK_HEADER as usize;
        let Some(data) = bytes.get(start..start + len) else { break };
        let mut check = crc32fast::Hasher::new();
        check.update(&[kind]);
        check.update(data);
        if check.finalize() != crc {
            break;
        }
        at = start + len;
        match (kind, pending.as_mut()) {
            (FULL, None) => records.push(data.to_vec()),
            (FIRST, None) => pending = Some(data.to_vec()),
            (MIDDLE, Some(p)) => p.extend_from_slice(data),
            (LAST, Some(p)) => {
                p.extend_from_slice(data);
                records.extend(pending.take());
            }
            _ => break,
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_any_size_round_trip_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.wandb");
        let mut w = LogWriter::create(&path).expect("create");
        // A record that leaves exactly a chunk header's room in its block (an empty FIRST
        // chunk follows), one spanning three blocks, an empty one and a small one.
        let fill = vec![7u8; (BLOCK - 7 - 2 * CHUNK_HEADER) as usize];
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let records = [fill, big.clone(), Vec::new(), b"tail".to_vec()];
        for r in &records {
            w.append(r).expect("append");
        }
        assert_eq!(read(&path).expect("read"), records);
        let len = std::fs::metadata(&path).expect("stat").len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
        file.set_len(len - 2).expect("truncate");
        assert_eq!(read(&path).expect("read"), records[..3]);
    }

    #[test]
    fn a_file_of_another_format_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.wandb");
        std::fs::write(&path, b"PK\x03\x04 not a log").expect("write");
        assert!(matches!(read(&path), Err(TrackError::WandbFormat { .. })));
    }
}
