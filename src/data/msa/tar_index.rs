//! Random access to the members of a tar archive (MSA collections are shipped as tars of
//! 100+ GB: the helico reference reads `rcsb_raw_msa.tar`, 131 GB, 151,403 members) through
//! an offset index persisted beside it, so a lookup is a hash probe and one positional read.
//!
//! The index is built in one pass over the archive's headers with the `tar` crate (seeking
//! past member data, so the cost is one header read per member, not a read of the archive)
//! and written atomically to `<archive>.index`. Layout, little-endian:
//!
//! ```text
//! magic    16 bytes  "HELICO-TARINDEX\n"
//! version  u32       1
//! archive  u64 size, u64 mtime seconds, u32 mtime nanoseconds   (what the index describes)
//! count    u64
//! count ×  u32 name length, name (UTF-8), u64 data offset, u64 data size
//! checksum 32 bytes  BLAKE3 of everything above
//! ```
//!
//! On open, an index whose recorded size or mtime differ from the archive's is stale and is
//! rebuilt; one that fails its checksum or layout is corrupt and rejected with an error (it
//! is never silently replaced: something overwrote it, and the user should know).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::error::{MsaError, Result};
use super::{Alphabet, Msa};

const MAGIC: &[u8; 16] = b"HELICO-TARINDEX\n";
const VERSION: u32 = 1;
/// Magic, version, size, seconds, nanoseconds, count.
const HEADER_LEN: usize = 16 + 4 + 8 + 8 + 4 + 8;
const CHECKSUM_LEN: usize = 32;

/// Where a member's data lies in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Byte offset of the first data byte.
    pub offset: u64,
    /// Data length in bytes.
    pub size: u64,
}

/// How [`TarIndex::open`] got its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexOrigin {
    /// Read from an up-to-date index file.
    Loaded,
    /// No index file existed: built and written.
    Built,
    /// The index file described another version of the archive: rebuilt and rewritten.
    Rebuilt,
}

/// An open archive with its member index.
#[derive(Debug)]
pub struct TarIndex {
    archive: PathBuf,
    file: File,
    members: HashMap<String, Member>,
    origin: IndexOrigin,
}

/// What the index records about the archive, to tell whether it still describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    seconds: u64,
    nanos: u32,
}

impl TarIndex {
    /// Opens `archive` with its index at `<archive>.index`, building or rebuilding it when
    /// missing or stale.
    pub fn open(archive: impl AsRef<Path>) -> Result<TarIndex> {
        let archive = archive.as_ref();
        let mut index = archive.as_os_str().to_owned();
        index.push(".index");
        Self::open_with(archive, Path::new(&index))
    }

    /// Like [`TarIndex::open`] with the index at `index` (for archives on read-only storage).
    pub fn open_with(archive: impl AsRef<Path>, index: impl AsRef<Path>) -> Result<TarIndex> {
        let (archive, index) = (archive.as_ref(), index.as_ref());
        let file = File::open(archive).map_err(|source| io(archive, "open", source))?;
        let stamp = stamp(&file, archive)?;
        let (members, origin) = match std::fs::read(index) {
            Ok(bytes) => match decode(&bytes, stamp).map_err(|problem| MsaError::CorruptIndex {
                index: index.to_owned(),
                archive: archive.to_owned(),
                problem,
            })? {
                Some(members) => (members, IndexOrigin::Loaded),
                None => (build(&file, archive, index, stamp)?, IndexOrigin::Rebuilt),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (build(&file, archive, index, stamp)?, IndexOrigin::Built)
            }
            Err(source) => return Err(io(index, "read", source)),
        };
        Ok(TarIndex { archive: archive.to_owned(), file, members, origin })
    }

    pub fn origin(&self) -> IndexOrigin {
        self.origin
    }

    pub fn archive(&self) -> &Path {
        &self.archive
    }

    /// Number of regular-file members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<Member> {
        self.members.get(name).copied()
    }

    /// Member names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// The bytes of member `name` (one positional read; safe to call from several threads).
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let member = self.get(name).ok_or_else(|| MsaError::NoMember {
            archive: self.archive.clone(),
            name: name.to_owned(),
            members: self.members.len(),
        })?;
        let len = usize::try_from(member.size).map_err(|_| {
            io(&self.archive, "read member", std::io::Error::other(format!("{name}: {} bytes", member.size)))
        })?;
        let mut bytes = vec![0; len];
        self.file
            .read_exact_at(&mut bytes, member.offset)
            .map_err(|source| io(&self.archive, "read member", source))?;
        Ok(bytes)
    }

    /// Member `name` parsed as an alignment (A3M or Stockholm, gzipped or not); errors name
    /// it as `archive:member`.
    pub fn read_msa(&self, name: &str, alphabet: Alphabet) -> Result<Msa> {
        let bytes = self.read(name)?;
        Msa::parse(&bytes, &format!("{}:{name}", self.archive.display()), alphabet)
    }
}

fn io(path: &Path, action: &'static str, source: std::io::Error) -> MsaError {
    MsaError::Io { path: path.to_owned(), action, source }
}

fn stamp(file: &File, archive: &Path) -> Result<Stamp> {
    let meta = file.metadata().map_err(|source| io(archive, "stat", source))?;
    let modified = meta.modified().map_err(|source| io(archive, "stat", source))?;
    let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    Ok(Stamp { size: meta.len(), seconds: since.as_secs(), nanos: since.subsec_nanos() })
}

/// One pass over the archive's headers; a member name seen twice keeps its last data, as
/// extracting the archive would.
fn build(file: &File, archive: &Path, index: &Path, stamp: Stamp) -> Result<HashMap<String, Member>> {
    let tar_error = |source| MsaError::Tar { archive: archive.to_owned(), source };
    let mut reader = tar::Archive::new(BufReader::new(file.try_clone().map_err(|e| io(archive, "open", e))?));
    let mut members = HashMap::new();
    for entry in reader.entries_with_seek().map_err(tar_error)? {
        let entry = entry.map_err(tar_error)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(tar_error)?.to_string_lossy().into_owned();
        members.insert(name, Member { offset: entry.raw_file_position(), size: entry.size() });
    }
    crate::atomic::write(index, &encode(&members, stamp)).map_err(|source| io(index, "write", source))?;
    Ok(members)
}

fn encode(members: &HashMap<String, Member>, stamp: Stamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + members.len() * 96 + CHECKSUM_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&stamp.size.to_le_bytes());
    out.extend_from_slice(&stamp.seconds.to_le_bytes());
    out.extend_from_slice(&stamp.nanos.to_le_bytes());
    out.extend_from_slice(&(members.len() as u64).to_le_bytes());
    let mut sorted: Vec<(&String, &Member)> = members.iter().collect();
    sorted.sort_by_key(|(name, _)| name.as_str());
    for (name, member) in sorted {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&member.offset.to_le_bytes());
        out.extend_from_slice(&member.size.to_le_bytes());
    }
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    out
}

/// The members of a valid index; `Ok(None)` when it is valid but describes another version
/// of the archive; `Err(problem)` when it is not a valid index.
fn decode(bytes: &[u8], current: Stamp) -> std::result::Result<Option<HashMap<String, Member>>, String> {
    if bytes.len() < HEADER_LEN + CHECKSUM_LEN || &bytes[..16] != MAGIC {
        return Err(format!("{} bytes without the index header", bytes.len()));
    }
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if blake3::hash(body).as_bytes() != checksum {
        return Err("checksum mismatch".into());
    }
    let mut cursor = Cursor { bytes: body, at: 16 };
    let version = cursor.u32()?;
    if version != VERSION {
        return Err(format!("version {version}, this helico reads version {VERSION}"));
    }
    let stamp = Stamp { size: cursor.u64()?, seconds: cursor.u64()?, nanos: cursor.u32()? };
    if stamp != current {
        return Ok(None);
    }
    let count = cursor.u64()?;
    let mut members = HashMap::with_capacity(usize::try_from(count).unwrap_or(0).min(body.len() / 20));
    for _ in 0..count {
        let len = cursor.u32()? as usize;
        let name = std::str::from_utf8(cursor.take(len)?).map_err(|_| "a member name is not UTF-8".to_owned())?;
        let member = Member { offset: cursor.u64()?, size: cursor.u64()? };
        members.insert(name.to_owned(), member);
    }
    if cursor.at != body.len() {
        return Err(format!("{} bytes after the last entry", body.len() - cursor.at));
    }
    Ok(Some(members))
}

/// Bounds-checked little-endian reads over the index body.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("truncated entry table")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
}
