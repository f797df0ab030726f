//! The column container under the structure cache ([`super::cache`]): a header (magic, format
//! version, column count), a table of contents of tagged columns (16-byte NUL-padded tag,
//! offset u64, length u64), then the columns, little-endian flat arrays each starting on an
//! 8-byte boundary. The writer appends whole columns; the reader looks them up by tag and
//! checks every length against the count the caller expects, so a short or damaged file is an
//! error naming the column, never a slice panic.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::PrepError;
use super::cache::{FORMAT_VERSION, MAGIC};
use crate::data::structure::Name;

const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 16;
const TOC_ENTRY_LEN: usize = TAG_LEN + 16;

/// Columns in the order they are added.
#[derive(Default)]
pub(super) struct Writer {
    columns: Vec<(&'static str, Vec<u8>)>,
}

impl Writer {
    pub(super) fn bytes(&mut self, tag: &'static str, data: Vec<u8>) {
        debug_assert!(tag.len() <= TAG_LEN && !self.columns.iter().any(|(t, _)| *t == tag), "tag {tag}");
        self.columns.push((tag, data));
    }

    pub(super) fn u8s(&mut self, tag: &'static str, values: impl IntoIterator<Item = u8>) {
        self.bytes(tag, values.into_iter().collect());
    }

    pub(super) fn u32s(&mut self, tag: &'static str, values: impl IntoIterator<Item = u32>) {
        self.bytes(tag, values.into_iter().flat_map(u32::to_le_bytes).collect());
    }

    pub(super) fn i32s(&mut self, tag: &'static str, values: impl IntoIterator<Item = i32>) {
        self.bytes(tag, values.into_iter().flat_map(i32::to_le_bytes).collect());
    }

    pub(super) fn f32s(&mut self, tag: &'static str, values: impl IntoIterator<Item = f32>) {
        self.bytes(tag, values.into_iter().flat_map(f32::to_le_bytes).collect());
    }

    pub(super) fn f64s(&mut self, tag: &'static str, values: impl IntoIterator<Item = f64>) {
        self.bytes(tag, values.into_iter().flat_map(f64::to_le_bytes).collect());
    }

    pub(super) fn ranges(&mut self, tag: &'static str, values: impl IntoIterator<Item = Range<usize>>) {
        self.u32s(tag, values.into_iter().flat_map(|r| [index(r.start), index(r.end)]));
    }

    /// Strings as bytes plus `tag#` offsets; the offsets tag is the string tag with `#`.
    pub(super) fn strs<'s>(
        &mut self,
        tag: &'static str,
        offsets: &'static str,
        values: impl IntoIterator<Item = &'s str>,
    ) {
        let (mut blob, mut ends) = (Vec::new(), vec![0u32]);
        for s in values {
            blob.extend_from_slice(s.as_bytes());
            ends.push(index(blob.len()));
        }
        self.bytes(tag, blob);
        self.u32s(offsets, ends);
    }

    pub(super) fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&index(self.columns.len()).to_le_bytes());
        let mut offset = align8(HEADER_LEN + self.columns.len() * TOC_ENTRY_LEN);
        for (tag, data) in &self.columns {
            let mut name = [0u8; TAG_LEN];
            name[..tag.len()].copy_from_slice(tag.as_bytes());
            out.extend_from_slice(&name);
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            offset = align8(offset + data.len());
        }
        for (_, data) in &self.columns {
            out.resize(align8(out.len()), 0);
            out.extend_from_slice(data);
        }
        out
    }
}

fn align8(n: usize) -> usize {
    n.next_multiple_of(8)
}

/// Counts and indices are stored as u32: a structure has far fewer than 2³² atoms.
pub(super) fn index(n: usize) -> u32 {
    u32::try_from(n).expect("a structure has fewer than 2^32 atoms, residues and bytes of names")
}

/// The columns of a mapped file, by tag.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    path: &'a Path,
    columns: HashMap<&'a [u8], Range<usize>>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8], path: &'a Path) -> Result<Reader<'a>, PrepError> {
        let bad = |problem: String| PrepError::Cache { path: path.to_owned(), problem };
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err(bad("not a helico structure cache (no HELICOSC header)".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "cache format version {version}, this helico reads version {FORMAT_VERSION}: run `helico preprocess` again"
            )));
        }
        let n = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
        let toc_end = HEADER_LEN + n * TOC_ENTRY_LEN;
        if bytes.len() < toc_end {
            return Err(bad(format!("truncated: {} bytes, the table of contents alone needs {toc_end}", bytes.len())));
        }
        let mut columns = HashMap::with_capacity(n);
        for entry in bytes[HEADER_LEN..toc_end].chunks_exact(TOC_ENTRY_LEN) {
            let tag = &entry[..TAG_LEN];
            let tag = &tag[..tag.iter().position(|&b| b == 0).unwrap_or(TAG_LEN)];
            let word = |k: usize| u64::from_le_bytes(entry[k..k + 8].try_into().expect("8 bytes")) as usize;
            let (offset, len) = (word(TAG_LEN), word(TAG_LEN + 8));
            if offset.checked_add(len).is_none_or(|end| end > bytes.len()) {
                let tag = String::from_utf8_lossy(tag);
                return Err(bad(format!("truncated: column {tag} ends past the file's {} bytes", bytes.len())));
            }
            columns.insert(tag, offset..offset + len);
        }
        Ok(Reader { bytes, path, columns })
    }

    pub(super) fn problem(&self, problem: String) -> PrepError {
        PrepError::Cache { path: self.path.to_owned(), problem }
    }

    /// The bytes of column `tag`, which must hold `count` values of `width` bytes.
    pub(super) fn column(&self, tag: &str, width: usize, count: Option<usize>) -> Result<&'a [u8], PrepError> {
        Ok(&self.bytes[self.span(tag, width, count)?])
    }

    /// Where column `tag` lies in the file, checked as [`column`](Self::column) checks it: for
    /// readers that keep the file and decode from it later.
    pub(super) fn span(&self, tag: &str, width: usize, count: Option<usize>) -> Result<Range<usize>, PrepError> {
        let range = self.columns.get(tag.as_bytes()).ok_or_else(|| self.problem(format!("no column {tag}")))?;
        let ok = match count {
            Some(count) => range.len() == count * width,
            None => range.len().is_multiple_of(width),
        };
        if !ok {
            let want = count.map_or(format!("a multiple of {width}"), |c| (c * width).to_string());
            return Err(self.problem(format!("column {tag} holds {} bytes, expected {want}", range.len())));
        }
        Ok(range.clone())
    }

    pub(super) fn u8s(&self, tag: &str, count: usize) -> Result<&'a [u8], PrepError> {
        self.column(tag, 1, Some(count))
    }

    fn words<const W: usize, T>(
        &self,
        tag: &str,
        count: Option<usize>,
        decode: fn([u8; W]) -> T,
    ) -> Result<Vec<T>, PrepError> {
        let data = self.column(tag, W, count)?;
        Ok(data.chunks_exact(W).map(|c| decode(c.try_into().expect("W bytes"))).collect())
    }

    pub(super) fn u32s(&self, tag: &str, count: Option<usize>) -> Result<Vec<u32>, PrepError> {
        self.words(tag, count, u32::from_le_bytes)
    }

    pub(super) fn i32s(&self, tag: &str, count: usize) -> Result<Vec<i32>, PrepError> {
        self.words(tag, Some(count), i32::from_le_bytes)
    }

    pub(super) fn f32s(&self, tag: &str, count: usize) -> Result<Vec<f32>, PrepError> {
        self.words(tag, Some(count), f32::from_le_bytes)
    }

    pub(super) fn f64s(&self, tag: &str, count: usize) -> Result<Vec<f64>, PrepError> {
        self.words(tag, Some(count), f64::from_le_bytes)
    }

    /// `count` ranges, each within `0..limit`.
    pub(super) fn ranges(&self, tag: &str, count: usize, limit: usize) -> Result<Vec<Range<usize>>, PrepError> {
        let flat = self.u32s(tag, Some(2 * count))?;
        let out: Vec<Range<usize>> = flat.chunks_exact(2).map(|p| p[0] as usize..p[1] as usize).collect();
        if let Some(r) = out.iter().find(|r| r.start > r.end || r.end > limit) {
            return Err(self.problem(format!("column {tag}: range {r:?} outside 0..{limit}")));
        }
        Ok(out)
    }

    /// `count` indices, each below `limit`.
    pub(super) fn indices(&self, tag: &str, count: usize, limit: usize) -> Result<Vec<usize>, PrepError> {
        let out: Vec<usize> = self.u32s(tag, Some(count))?.into_iter().map(|i| i as usize).collect();
        if let Some(i) = out.iter().find(|&&i| i >= limit) {
            return Err(self.problem(format!("column {tag}: index {i} not below {limit}")));
        }
        Ok(out)
    }

    /// The strings of `tag` with offsets `offsets`; `count` of them when given.
    pub(super) fn strs(&self, tag: &str, offsets: &str, count: Option<usize>) -> Result<Vec<String>, PrepError> {
        let blob = self.column(tag, 1, None)?;
        let ends = self.u32s(offsets, count.map(|c| c + 1))?;
        let mut out = Vec::with_capacity(ends.len().saturating_sub(1));
        for pair in ends.windows(2) {
            let (a, b) = (pair[0] as usize, pair[1] as usize);
            let text = blob.get(a..b).and_then(|s| std::str::from_utf8(s).ok());
            out.push(text.ok_or_else(|| self.problem(format!("column {tag}: bad string {a}..{b}")))?.to_owned());
        }
        Ok(out)
    }

    pub(super) fn names<const N: usize>(&self, tag: &str, count: usize) -> Result<Vec<Name<N>>, PrepError> {
        let data = self.column(tag, N, Some(count))?;
        data.chunks_exact(N)
            .map(|c| {
                let len = c.iter().position(|&b| b == 0).unwrap_or(N);
                let text = std::str::from_utf8(&c[..len]).ok();
                text.and_then(Name::new).ok_or_else(|| self.problem(format!("column {tag}: bad name {c:?}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn columns_are_aligned_and_found_by_tag() {
        let mut w = Writer::default();
        w.u8s("odd", [1, 2, 3]);
        w.strs("s", "s#", ["", "héllo", "x"]);
        w.f64s("f", [1.5]);
        let bytes = w.finish();
        let r = Reader::new(&bytes, Path::new("t")).unwrap();
        assert!(r.columns.values().all(|c| c.start % 8 == 0));
        assert_eq!(r.strs("s", "s#", Some(3)).unwrap(), ["", "héllo", "x"]);
        assert_eq!(r.f64s("f", 1).unwrap(), [1.5]);
        assert!(r.u32s("odd", None).unwrap_err().to_string().contains("holds 3 bytes, expected a multiple of 4"));
    }
}
