//! One reader for text mmCIF (`.cif`, `.cif.gz`) and BinaryCIF (`.bcif`, `.bcif.gz`): every data
//! block, category and column behind one API, with typed per-row accessors.
//!
//! Formats: CIF 1.1 syntax as used by the wwPDB (<https://www.iucr.org/resources/cif/spec/version1.1/cifsyntax>)
//! and BinaryCIF (<https://github.com/molstar/BinaryCIF>, encodings as in Mol*
//! `src/mol-io/common/binary-cif/decoder.ts`). gzip is detected from the magic bytes, the format
//! from the first byte (a MessagePack map opens BinaryCIF), so file names do not matter.
//!
//! Cost model: a text file is tokenised once into 8-byte spans pointing into the file buffer
//! (no allocation per value); values are parsed only when asked for. A BinaryCIF file is framed
//! once (column bytes are not copied); a column is decoded when [`Category::column`] is called,
//! so ask once per column and keep the [`Column`].

mod binary;
mod encoding;
mod msgpack;
mod text;

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{DataError, Result};

/// A parsed CIF file: its data blocks in file order.
#[derive(Debug)]
pub struct CifFile {
    pub blocks: Vec<Block>,
    path: PathBuf,
}

/// One `data_NAME` block (text) or `dataBlocks` entry (BinaryCIF).
pub struct Block {
    name: String,
    categories: Vec<Category>,
    source: Arc<Source>,
}

/// One category (`_atom_site`, `_entity_poly`, …): a table of `row_count` rows. Items written as
/// `_cat.item value` pairs form a category of one row.
pub struct Category {
    name: String,
    row_count: usize,
    column_names: Vec<String>,
    source: Arc<Source>,
    storage: Storage,
}

/// A column ready to read: text spans, or BinaryCIF values decoded by [`Category::column`].
pub struct Column<'a> {
    category: &'a Category,
    index: usize,
    data: ColumnData<'a>,
}

/// The two CIF null values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Null {
    /// `.`: the item does not apply to this row (BinaryCIF mask value 1).
    Inapplicable,
    /// `?`: the value is unknown or missing (BinaryCIF mask value 2).
    Unknown,
}

/// The file's bytes (decompressed) and its path for error messages; shared by every category.
struct Source {
    path: PathBuf,
    bytes: Vec<u8>,
}

enum Storage {
    /// Row-major spans into `Source::bytes`: row r, column c is `spans[r * n_columns + c]`.
    Text(Vec<Span>),
    Binary(Vec<encoding::EncodedColumn>),
}

enum ColumnData<'a> {
    Text(&'a [Span]),
    Binary { values: encoding::Values<'a>, mask: Option<Vec<u8>> },
}

/// A text value's position in the file; the two null values use sentinel lengths so that a
/// span stays 8 bytes (the text reader caps files at 4 GiB for this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    const INAPPLICABLE: Span = Span { start: 0, len: u32::MAX };
    const UNKNOWN: Span = Span { start: 0, len: u32::MAX - 1 };

    fn null(self) -> Option<Null> {
        match self {
            Span::INAPPLICABLE => Some(Null::Inapplicable),
            Span::UNKNOWN => Some(Null::Unknown),
            _ => None,
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl CifFile {
    /// Reads a text or BinaryCIF file, gzipped or not.
    pub fn read(path: impl AsRef<Path>) -> Result<CifFile> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.to_owned(),
            action: "read".into(),
            source,
        })?;
        Self::from_bytes(bytes, path)
    }

    /// Parses bytes already in memory; `path` only labels error messages.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<CifFile> {
        let bytes = if bytes.starts_with(&GZIP_MAGIC) {
            let mut out = Vec::with_capacity(bytes.len() * 4);
            flate2::read::MultiGzDecoder::new(bytes.as_slice())
                .read_to_end(&mut out)
                .map_err(|source| DataError::Gzip { path: path.to_owned(), source })?;
            out
        } else {
            bytes
        };
        let is_binary = matches!(bytes.first(), Some(0x80..=0x8f | 0xde | 0xdf));
        let source = Arc::new(Source { path: path.to_owned(), bytes });
        let blocks = if is_binary { binary::parse(&source)? } else { text::parse(&source)? };
        Ok(CifFile { blocks, path: path.to_owned() })
    }

    /// The path the file was read from (or that labels it, for [`CifFile::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The block named `name` (ASCII case-insensitive).
    pub fn block(&self, name: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.name.eq_ignore_ascii_case(name))
    }
}

impl Block {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The category `name`, with or without its leading `_` (ASCII case-insensitive).
    pub fn category(&self, name: &str) -> Option<&Category> {
        let name = name.strip_prefix('_').unwrap_or(name);
        self.categories.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Like [`Block::category`], but a missing category is an error naming file and block.
    pub fn require(&self, name: &str) -> Result<&Category> {
        self.category(name).ok_or_else(|| DataError::MissingCategory {
            path: self.source.path.clone(),
            block: self.name.clone(),
            category: name.trim_start_matches('_').to_owned(),
        })
    }
}

impl Category {
    /// The name without its leading `_` (`atom_site`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn row_count(&self) -> usize {
        self.row_count
    }

    pub fn column_names(&self) -> &[String] {
        &self.column_names
    }

    pub fn has_column(&self, name: &str) -> bool {
        self.column_index(name).is_some()
    }

    /// The column `name` (ASCII case-insensitive). BinaryCIF columns are decoded here, checked
    /// against `row_count` and held by the returned value: call once per column, not per row.
    pub fn column(&self, name: &str) -> Result<Column<'_>> {
        let index = self.column_index(name).ok_or_else(|| DataError::MissingColumn {
            path: self.source.path.clone(),
            category: self.name.clone(),
            column: name.to_owned(),
            available: self.column_names.join(", "),
        })?;
        let data = match &self.storage {
            Storage::Text(spans) => ColumnData::Text(spans),
            Storage::Binary(columns) => {
                let (values, mask) = encoding::decode_column(&self.source.bytes, &columns[index], self.row_count)
                    .map_err(|e| DataError::BinaryCif {
                        path: self.source.path.clone(),
                        place: format!("_{}.{}", self.name, self.column_names[index]),
                        expected: e.expected,
                        got: e.got,
                    })?;
                ColumnData::Binary { values, mask }
            }
        };
        Ok(Column { category: self, index, data })
    }

    fn text_spans_mut(&mut self) -> Option<&mut Vec<Span>> {
        match &mut self.storage {
            Storage::Text(spans) => Some(spans),
            Storage::Binary(_) => None,
        }
    }

    fn column_index(&self, name: &str) -> Option<usize> {
        self.column_names.iter().position(|c| c.eq_ignore_ascii_case(name))
    }
}

impl<'a> Column<'a> {
    pub fn name(&self) -> &'a str {
        &self.category.column_names[self.index]
    }

    /// The name of the category the column belongs to, without its leading `_`.
    pub fn category(&self) -> &'a str {
        &self.category.name
    }

    /// Number of rows (the category's `row_count`).
    pub fn len(&self) -> usize {
        self.category.row_count
    }

    pub fn is_empty(&self) -> bool {
        self.category.row_count == 0
    }

    /// `Some` when row `row` holds `.` or `?` (text) or is masked (BinaryCIF). Panics if
    /// `row >= len()`, like slice indexing.
    pub fn null(&self, row: usize) -> Option<Null> {
        match &self.data {
            ColumnData::Text(spans) => self.span(spans, row).null(),
            ColumnData::Binary { mask, .. } => match mask.as_ref().map(|m| m[row]) {
                Some(1) => Some(Null::Inapplicable),
                Some(2) => Some(Null::Unknown),
                _ => None,
            },
        }
    }

    pub fn is_null(&self, row: usize) -> bool {
        self.null(row).is_some()
    }

    /// The value as text: borrowed from the file for text and string columns; numeric BinaryCIF
    /// columns are formatted (floats in their stored precision, shortest round trip, "5.0" for
    /// integral values). `None` for null values.
    pub fn as_str(&self, row: usize) -> Result<Option<Cow<'a, str>>> {
        if self.is_null(row) {
            return Ok(None);
        }
        Ok(Some(match &self.data {
            ColumnData::Text(spans) => Cow::Borrowed(self.text(spans, row)?),
            ColumnData::Binary { values, .. } => match values {
                encoding::Values::Strings(s) => Cow::Borrowed(s.get(row)),
                encoding::Values::Ints(v) => Cow::Owned(v[row].to_string()),
                // Debug keeps a decimal point on integral values ("5.0"), as numpy and gemmi write them.
                encoding::Values::Floats(v, encoding::Precision::Single) => Cow::Owned(format!("{:?}", v[row] as f32)),
                encoding::Values::Floats(v, encoding::Precision::Double) => Cow::Owned(format!("{:?}", v[row])),
            },
        }))
    }

    /// The value as a float; text numbers may carry a standard uncertainty, `1.234(5)`.
    pub fn as_f64(&self, row: usize) -> Result<Option<f64>> {
        if self.is_null(row) {
            return Ok(None);
        }
        let text = match &self.data {
            ColumnData::Text(spans) => self.text(spans, row)?,
            ColumnData::Binary { values, .. } => match values {
                encoding::Values::Ints(v) => return Ok(Some(v[row] as f64)),
                encoding::Values::Floats(v, _) => return Ok(Some(v[row])),
                encoding::Values::Strings(s) => s.get(row),
            },
        };
        let number = strip_uncertainty(text);
        number.parse::<f64>().map(Some).map_err(|_| self.value_error(row, "a number", text))
    }

    /// The value as an integer; a BinaryCIF float column is an error, not a truncation.
    pub fn as_i64(&self, row: usize) -> Result<Option<i64>> {
        if self.is_null(row) {
            return Ok(None);
        }
        let text = match &self.data {
            ColumnData::Text(spans) => self.text(spans, row)?,
            ColumnData::Binary { values, .. } => match values {
                encoding::Values::Ints(v) => return Ok(Some(v[row])),
                encoding::Values::Floats(v, _) => {
                    return Err(self.value_error(row, "an integer", &format!("float {}", v[row])));
                }
                encoding::Values::Strings(s) => s.get(row),
            },
        };
        text.parse::<i64>().map(Some).map_err(|_| self.value_error(row, "an integer", text))
    }

    /// The 1-based line holding row `row`'s value in a text CIF file, for messages that point
    /// people at the file; `None` for BinaryCIF (rows, no lines) and for null values.
    pub fn line(&self, row: usize) -> Option<usize> {
        let ColumnData::Text(spans) = &self.data else { return None };
        let span = self.span(spans, row);
        if span.null().is_some() {
            return None;
        }
        Some(memchr::memchr_iter(b'\n', &self.category.source.bytes[..span.start as usize]).count() + 1)
    }

    fn span(&self, spans: &[Span], row: usize) -> Span {
        assert!(row < self.category.row_count, "row {row} of a column with {} rows", self.category.row_count);
        spans[row * self.category.column_names.len() + self.index]
    }

    fn text(&self, spans: &[Span], row: usize) -> Result<&'a str> {
        let span = self.span(spans, row);
        let start = span.start as usize;
        let bytes: &'a [u8] = &self.category.source.bytes[start..start + span.len as usize];
        std::str::from_utf8(bytes).map_err(|_| self.value_error(row, "UTF-8 text", &String::from_utf8_lossy(bytes)))
    }

    /// An error naming file, category, column and row, for callers that validate values further.
    pub(crate) fn value_error(&self, row: usize, expected: &'static str, got: &str) -> DataError {
        const SHOWN: usize = 60;
        let got = match got.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{:?}…", &got[..cut]),
            None => format!("{got:?}"),
        };
        DataError::Value {
            path: self.category.source.path.clone(),
            category: self.category.name.clone(),
            column: self.name().to_owned(),
            row,
            expected,
            got,
        }
    }
}

// Debug output names things and counts rows; it never dumps the file's bytes or spans.
impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block").field("name", &self.name).field("categories", &self.categories).finish()
    }
}

impl std::fmt::Debug for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.storage {
            Storage::Text(_) => "text",
            Storage::Binary(_) => "BinaryCIF",
        };
        write!(f, "Category(_{}, {} rows of {kind}, columns {:?})", self.name, self.row_count, self.column_names)
    }
}

impl std::fmt::Debug for Column<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.data {
            ColumnData::Text(_) => "text",
            ColumnData::Binary { values: encoding::Values::Ints(_), .. } => "integers",
            ColumnData::Binary { values: encoding::Values::Floats(..), .. } => "floats",
            ColumnData::Binary { values: encoding::Values::Strings(_), .. } => "strings",
        };
        write!(f, "Column(_{}.{}, {} rows of {kind})", self.category.name, self.name(), self.len())
    }
}

/// `1.234(5)` → `1.234`: CIF appends standard uncertainties in parentheses.
fn strip_uncertainty(text: &str) -> &str {
    match (text.ends_with(')'), text.find('(')) {
        (true, Some(open)) => &text[..open],
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CifFile {
        CifFile::from_bytes(text.as_bytes().to_vec(), Path::new("test.cif")).unwrap()
    }

    #[test]
    fn typed_accessors_and_nulls() {
        let f = parse("data_x\nloop_\n_t.a\n_t.b\n1.5(3) foo\n. ?\n'?' -7\n");
        let t = f.blocks[0].category("_t").unwrap();
        let (a, b) = (t.column("a").unwrap(), t.column("B").unwrap());
        assert_eq!(a.as_f64(0).unwrap(), Some(1.5));
        assert_eq!(a.null(1), Some(Null::Inapplicable));
        assert_eq!(b.null(1), Some(Null::Unknown));
        assert_eq!(a.as_str(2).unwrap().as_deref(), Some("?"));
        assert_eq!(b.as_i64(2).unwrap(), Some(-7));
        let err = b.as_i64(0).unwrap_err().to_string();
        assert!(err.contains("_t.b row 0: expected an integer, got \"foo\""), "{err}");
        let err = t.column("c").unwrap_err().to_string();
        assert!(err.contains("no column \"c\" (it has: a, b)"), "{err}");
    }

    #[test]
    fn gzip_is_detected_and_garbage_rejected() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"data_x\n_t.a 1\n").unwrap();
        let bytes = gz.finish().unwrap();
        let f = CifFile::from_bytes(bytes.clone(), Path::new("x.cif.gz")).unwrap();
        assert_eq!(f.blocks[0].require("t").unwrap().column("a").unwrap().as_i64(0).unwrap(), Some(1));
        let mut broken = bytes[..12].to_vec();
        broken.extend_from_slice(b"not deflate at all");
        let err = CifFile::from_bytes(broken, Path::new("x.cif.gz")).unwrap_err().to_string();
        assert!(err.starts_with("x.cif.gz: not a valid gzip stream"), "{err}");
    }
}
