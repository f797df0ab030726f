//! BinaryCIF (<https://github.com/molstar/BinaryCIF>): the MessagePack layout
//! `{dataBlocks: [{header, categories: [{name, rowCount, columns: [{name, data, mask}]}]}]}` and
//! the column encodings ByteArray, FixedPoint, IntervalQuantization, RunLength, Delta,
//! IntegerPacking and StringArray, undone in reverse order of the `encoding` list (decoder
//! semantics as in Mol* `src/mol-io/common/binary-cif/decoder.ts` and biotite
//! `structure/io/pdbx/encoding.pyx`). Mask values: 0 present, 1 `.`, 2 `?`.
//!
//! Framing happens once per file; a column's bytes are decoded only when the column is asked
//! for. Every length and index is checked, so a corrupt file yields an error, not a panic.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::msgpack::{self, Value};
use super::{Block, Category, Source, Storage};
use crate::data::error::{DataError, Result};

/// A column as stored: its data and optional mask, not yet decoded.
#[derive(Debug)]
pub(super) struct EncodedColumn {
    data: Encoded,
    mask: Option<Encoded>,
}

#[derive(Debug)]
struct Encoded {
    bytes: Range<usize>,
    encoding: Vec<Encoding>,
}

/// One step of a column's encoding chain, with the parameters needed to undo it.
#[derive(Debug)]
enum Encoding {
    ByteArray(DataType),
    FixedPoint { factor: f64, src: DataType },
    IntervalQuantization { min: f64, max: f64, num_steps: i64, src: DataType },
    RunLength { src_size: usize },
    Delta { origin: i64 },
    IntegerPacking { byte_count: i64, is_unsigned: bool, src_size: usize },
    StringArray(StringArray),
}

/// A string table plus per-row indices into it, each with its own encoding chain.
#[derive(Debug)]
struct StringArray {
    data_encoding: Vec<Encoding>,
    string_data: Range<usize>,
    offset_encoding: Vec<Encoding>,
    offsets: Range<usize>,
}

/// ByteArray type codes of the BinaryCIF spec.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DataType {
    Int8 = 1,
    Int16 = 2,
    Int32 = 3,
    Uint8 = 4,
    Uint16 = 5,
    Uint32 = 6,
    Float32 = 32,
    Float64 = 33,
}

/// A decoded column.
pub(super) enum Values<'a> {
    Ints(Vec<i64>),
    Floats(Vec<f64>, Precision),
    Strings(Strings<'a>),
}

/// The precision a float column was written in; f32 values are held as f64 but printed as f32,
/// so that 1.234 stored as f32 reads back as "1.234", not "1.2339999675750732".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Precision {
    Single,
    Double,
}

/// StringArray output: row i is `table[offsets[j]..offsets[j + 1]]` for `j = indices[i]`, or
/// the empty string for index -1 (biotite writes -1 under masked rows). Offsets are converted
/// from characters to bytes and checked when decoded.
pub(super) struct Strings<'a> {
    table: &'a str,
    offsets: Vec<usize>,
    indices: Vec<i64>,
}

impl<'a> Strings<'a> {
    pub fn get(&self, row: usize) -> &'a str {
        match usize::try_from(self.indices[row]) {
            Ok(j) => &self.table[self.offsets[j]..self.offsets[j + 1]],
            Err(_) => "",
        }
    }
}

/// Why decoding failed, before the caller adds file, category and column.
#[derive(Debug)]
pub(super) struct DecodeError {
    pub expected: String,
    pub got: String,
}

fn fail<T>(expected: impl Into<String>, got: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError { expected: expected.into(), got: got.into() })
}

/// Frames a BinaryCIF file into blocks and categories; column data stays encoded.
pub(super) fn parse(source: &Arc<Source>) -> Result<Vec<Block>> {
    let bytes = source.bytes.as_slice();
    let root = msgpack::parse(bytes).map_err(|e| DataError::MsgPack {
        path: source.path.clone(),
        offset: e.offset,
        expected: e.expected,
        got: e.got,
    })?;
    let fr = Framer { path: &source.path, bytes };
    let mut blocks = Vec::new();
    for (bi, block) in fr.array(&root, "dataBlocks", "file")?.iter().enumerate() {
        let place = format!("dataBlocks[{bi}]");
        let name = fr.str(block, "header", &place)?.to_owned();
        let mut categories = Vec::new();
        for (ci, category) in fr.array(block, "categories", &place)?.iter().enumerate() {
            let place = format!("block {name:?} categories[{ci}]");
            let cat_name = fr.str(category, "name", &place)?;
            let cat_name = cat_name.strip_prefix('_').unwrap_or(cat_name).to_owned();
            let place = format!("_{cat_name}");
            let row_count = fr.int(category, "rowCount", &place)?;
            let row_count = usize::try_from(row_count)
                .ok()
                .filter(|&n| n <= i32::MAX as usize)
                .ok_or_else(|| fr.err(&place, "a rowCount in 0..2^31", row_count.to_string()))?;
            let mut column_names = Vec::new();
            let mut columns = Vec::new();
            for (k, column) in fr.array(category, "columns", &place)?.iter().enumerate() {
                let col_name = fr.str(column, "name", &format!("_{cat_name} columns[{k}]"))?.to_owned();
                let place = format!("_{cat_name}.{col_name}");
                let data = fr.encoded(fr.field(column, "data", &place)?, &place)?;
                let mask = match column.get(bytes, "mask") {
                    None | Some(Value::Nil) => None,
                    Some(m) => Some(fr.encoded(m, &format!("{place} mask"))?),
                };
                column_names.push(col_name);
                columns.push(EncodedColumn { data, mask });
            }
            categories.push(Category {
                name: cat_name,
                row_count,
                column_names,
                source: source.clone(),
                storage: Storage::Binary(columns),
            });
        }
        blocks.push(Block { name, categories, source: source.clone() });
    }
    Ok(blocks)
}

/// Typed access to the MessagePack tree with errors naming the place in the file.
struct Framer<'a> {
    path: &'a Path,
    bytes: &'a [u8],
}

impl<'a> Framer<'a> {
    fn err(&self, place: &str, expected: impl Into<String>, got: impl Into<String>) -> DataError {
        DataError::BinaryCif { path: self.path.to_owned(), place: place.to_owned(), expected: expected.into(), got: got.into() }
    }

    fn field<'v>(&self, v: &'v Value, key: &str, place: &str) -> Result<&'v Value> {
        match v {
            Value::Map(_) => v.get(self.bytes, key).ok_or_else(|| self.err(place, format!("key {key:?}"), "no such key")),
            other => Err(self.err(place, format!("a map with key {key:?}"), other.describe())),
        }
    }

    fn array<'v>(&self, v: &'v Value, key: &str, place: &str) -> Result<&'v [Value]> {
        match self.field(v, key, place)? {
            Value::Array(items) => Ok(items),
            other => Err(self.err(place, format!("{key:?} to be an array"), other.describe())),
        }
    }

    fn str(&self, v: &Value, key: &str, place: &str) -> Result<&'a str> {
        match self.field(v, key, place)? {
            Value::Str(r) => std::str::from_utf8(&self.bytes[r.clone()])
                .map_err(|_| self.err(place, format!("{key:?} to be UTF-8"), "invalid UTF-8")),
            other => Err(self.err(place, format!("{key:?} to be a string"), other.describe())),
        }
    }

    fn str_range(&self, v: &Value, key: &str, place: &str) -> Result<Range<usize>> {
        match self.field(v, key, place)? {
            Value::Str(r) => Ok(r.clone()),
            other => Err(self.err(place, format!("{key:?} to be a string"), other.describe())),
        }
    }

    fn int(&self, v: &Value, key: &str, place: &str) -> Result<i64> {
        match self.field(v, key, place)? {
            Value::Int(i) => Ok(*i),
            other => Err(self.err(place, format!("{key:?} to be an integer"), other.describe())),
        }
    }

    fn size(&self, v: &Value, key: &str, place: &str) -> Result<usize> {
        let n = self.int(v, key, place)?;
        usize::try_from(n).map_err(|_| self.err(place, format!("{key:?} to be a size"), n.to_string()))
    }

    fn float(&self, v: &Value, key: &str, place: &str) -> Result<f64> {
        match self.field(v, key, place)? {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(x) => Ok(*x),
            other => Err(self.err(place, format!("{key:?} to be a number"), other.describe())),
        }
    }

    fn data_type(&self, v: &Value, key: &str, place: &str) -> Result<DataType> {
        let code = self.int(v, key, place)?;
        DataType::from_code(code).ok_or_else(|| self.err(place, format!("{key:?} to be a type code 1-6, 32 or 33"), code.to_string()))
    }

    fn encoded(&self, v: &Value, place: &str) -> Result<Encoded> {
        let bytes = match self.field(v, "data", place)? {
            Value::Bin(r) => r.clone(),
            other => return Err(self.err(place, "\"data\" to be binary", other.describe())),
        };
        Ok(Encoded { bytes, encoding: self.encodings(v, "encoding", place)? })
    }

    fn encodings(&self, v: &Value, key: &str, place: &str) -> Result<Vec<Encoding>> {
        self.array(v, key, place)?.iter().map(|e| self.encoding(e, place)).collect()
    }

    fn encoding(&self, e: &Value, place: &str) -> Result<Encoding> {
        Ok(match self.str(e, "kind", place)? {
            "ByteArray" => Encoding::ByteArray(self.data_type(e, "type", place)?),
            "FixedPoint" => Encoding::FixedPoint { factor: self.float(e, "factor", place)?, src: self.data_type(e, "srcType", place)? },
            "IntervalQuantization" => {
                let num_steps = self.int(e, "numSteps", place)?;
                if num_steps < 2 {
                    return Err(self.err(place, "IntervalQuantization numSteps of at least 2", num_steps.to_string()));
                }
                Encoding::IntervalQuantization {
                    min: self.float(e, "min", place)?,
                    max: self.float(e, "max", place)?,
                    num_steps,
                    src: self.data_type(e, "srcType", place)?,
                }
            }
            "RunLength" => Encoding::RunLength { src_size: self.size(e, "srcSize", place)? },
            "Delta" => Encoding::Delta { origin: self.int(e, "origin", place)? },
            "IntegerPacking" => {
                let byte_count = self.int(e, "byteCount", place)?;
                if byte_count != 1 && byte_count != 2 {
                    return Err(self.err(place, "IntegerPacking byteCount 1 or 2", byte_count.to_string()));
                }
                let is_unsigned = match self.field(e, "isUnsigned", place)? {
                    Value::Bool(b) => *b,
                    other => return Err(self.err(place, "\"isUnsigned\" to be a boolean", other.describe())),
                };
                Encoding::IntegerPacking { byte_count, is_unsigned, src_size: self.size(e, "srcSize", place)? }
            }
            "StringArray" => Encoding::StringArray(StringArray {
                data_encoding: self.encodings(e, "dataEncoding", place)?,
                string_data: self.str_range(e, "stringData", place)?,
                offset_encoding: self.encodings(e, "offsetEncoding", place)?,
                offsets: match self.field(e, "offsets", place)? {
                    Value::Bin(r) => r.clone(),
                    other => return Err(self.err(place, "\"offsets\" to be binary", other.describe())),
                },
            }),
            other => {
                return Err(self.err(
                    place,
                    "an encoding kind (ByteArray, FixedPoint, IntervalQuantization, RunLength, Delta, IntegerPacking, StringArray)",
                    format!("{other:?}"),
                ));
            }
        })
    }
}

impl DataType {
    fn from_code(code: i64) -> Option<DataType> {
        use DataType::*;
        [Int8, Int16, Int32, Uint8, Uint16, Uint32, Float32, Float64].into_iter().find(|t| *t as i64 == code)
    }
}

/// Intermediate arrays of a decoding chain.
enum Array<'a> {
    Bytes(&'a [u8]),
    Ints(Vec<i64>),
    Floats(Vec<f64>, Precision),
    Strings(Strings<'a>),
}

impl Array<'_> {
    fn describe(&self) -> String {
        match self {
            Array::Bytes(b) => format!("{} raw bytes", b.len()),
            Array::Ints(v) => format!("{} integers", v.len()),
            Array::Floats(v, _) => format!("{} floats", v.len()),
            Array::Strings(s) => format!("{} strings", s.indices.len()),
        }
    }
}

/// Decodes a column's data (checked to hold `row_count` values) and its mask (0, 1 or 2 per row).
pub(super) fn decode_column<'a>(
    bytes: &'a [u8],
    column: &EncodedColumn,
    row_count: usize,
) -> Result<(Values<'a>, Option<Vec<u8>>), DecodeError> {
    let values = match decode(bytes, &column.data, row_count)? {
        Array::Ints(v) if v.len() == row_count => Values::Ints(v),
        Array::Floats(v, p) if v.len() == row_count => Values::Floats(v, p),
        Array::Strings(s) if s.indices.len() == row_count => Values::Strings(s),
        other => return fail(format!("{row_count} decoded values (rowCount)"), other.describe()),
    };
    let mask = match &column.mask {
        None => None,
        Some(m) => match decode(bytes, m, row_count)? {
            Array::Ints(v) if v.len() == row_count => {
                if let Some(bad) = v.iter().find(|&&x| !(0..=2).contains(&x)) {
                    return fail("mask values 0, 1 or 2", format!("mask value {bad}"));
                }
                Some(v.into_iter().map(|x| x as u8).collect())
            }
            other => return fail(format!("a mask of {row_count} integers"), other.describe()),
        },
    };
    Ok((values, mask))
}

/// Undoes `encoded.encoding` from last to first. `limit` bounds every array a RunLength step may
/// create, so a corrupt run count cannot trigger a huge allocation.
fn decode<'a>(bytes: &'a [u8], encoded: &Encoded, limit: usize) -> Result<Array<'a>, DecodeError> {
    decode_chain(bytes, &encoded.encoding, Array::Bytes(&bytes[encoded.bytes.clone()]), limit)
}

fn decode_chain<'a>(bytes: &'a [u8], chain: &[Encoding], input: Array<'a>, limit: usize) -> Result<Array<'a>, DecodeError> {
    let mut array = input;
    for encoding in chain.iter().rev() {
        array = match (encoding, array) {
            (Encoding::ByteArray(t), Array::Bytes(b)) => byte_array(*t, b)?,
            (Encoding::FixedPoint { factor, src }, Array::Ints(v)) => {
                Array::Floats(v.into_iter().map(|x| src.round(x as f64 / factor)).collect(), src.precision())
            }
            (Encoding::IntervalQuantization { min, max, num_steps, src }, Array::Ints(v)) => {
                // biotite: v * (max - min) / (num_steps - 1) in f64, cast to srcType, then + min.
                let (lo, span, steps) = (*min, max - min, (num_steps - 1) as f64);
                let values = v.into_iter().map(|x| src.round(src.round(x as f64 * span / steps) + src.round(lo))).collect();
                Array::Floats(values, src.precision())
            }
            (Encoding::RunLength { src_size }, Array::Ints(v)) => run_length(&v, *src_size, limit)?,
            (Encoding::Delta { origin }, Array::Ints(mut v)) => {
                let mut acc = *origin;
                for x in v.iter_mut() {
                    acc = acc.wrapping_add(*x);
                    *x = acc;
                }
                Array::Ints(v)
            }
            (Encoding::IntegerPacking { byte_count, is_unsigned, src_size }, Array::Ints(v)) => {
                integer_packing(&v, *byte_count, *is_unsigned, *src_size)?
            }
            (Encoding::StringArray(sa), Array::Bytes(b)) => string_array(bytes, b, sa, limit)?,
            (encoding, array) => {
                return fail(format!("input suited to {}", encoding.kind()), array.describe());
            }
        };
    }
    Ok(array)
}

impl Encoding {
    fn kind(&self) -> &'static str {
        match self {
            Encoding::ByteArray(_) => "ByteArray (raw bytes)",
            Encoding::FixedPoint { .. } => "FixedPoint (integers)",
            Encoding::IntervalQuantization { .. } => "IntervalQuantization (integers)",
            Encoding::RunLength { .. } => "RunLength (integers)",
            Encoding::Delta { .. } => "Delta (integers)",
            Encoding::IntegerPacking { .. } => "IntegerPacking (integers)",
            Encoding::StringArray(_) => "StringArray (raw bytes)",
        }
    }
}

impl DataType {
    /// Rounds a value to this source type's precision, as the writer's decoder would store it.
    fn round(self, x: f64) -> f64 {
        if self == DataType::Float32 { x as f32 as f64 } else { x }
    }

    fn precision(self) -> Precision {
        if self == DataType::Float32 { Precision::Single } else { Precision::Double }
    }
}

fn byte_array(t: DataType, b: &[u8]) -> Result<Array<'_>, DecodeError> {
    fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
    }
    let width = match t {
        DataType::Int8 | DataType::Uint8 => 1,
        DataType::Int16 | DataType::Uint16 => 2,
        DataType::Int32 | DataType::Uint32 | DataType::Float32 => 4,
        DataType::Float64 => 8,
    };
    if !b.len().is_multiple_of(width) {
        return fail(format!("a ByteArray length divisible by {width} ({t:?})"), format!("{} bytes", b.len()));
    }
    Ok(match t {
        DataType::Int8 => Array::Ints(b.iter().map(|&x| x as i8 as i64).collect()),
        DataType::Uint8 => Array::Ints(b.iter().map(|&x| x as i64).collect()),
        DataType::Int16 => Array::Ints(chunks::<2>(b).map(|c| i16::from_le_bytes(c) as i64).collect()),
        DataType::Uint16 => Array::Ints(chunks::<2>(b).map(|c| u16::from_le_bytes(c) as i64).collect()),
        DataType::Int32 => Array::Ints(chunks::<4>(b).map(|c| i32::from_le_bytes(c) as i64).collect()),
        DataType::Uint32 => Array::Ints(chunks::<4>(b).map(|c| u32::from_le_bytes(c) as i64).collect()),
        DataType::Float32 => Array::Floats(chunks::<4>(b).map(|c| f32::from_le_bytes(c) as f64).collect(), Precision::Single),
        DataType::Float64 => Array::Floats(chunks::<8>(b).map(f64::from_le_bytes).collect(), Precision::Double),
    })
}

fn run_length(pairs: &[i64], src_size: usize, limit: usize) -> Result<Array<'static>, DecodeError> {
    if !pairs.len().is_multiple_of(2) {
        return fail("RunLength (value, count) pairs", format!("{} integers", pairs.len()));
    }
    let mut total: usize = 0;
    for pair in pairs.chunks_exact(2) {
        let count = usize::try_from(pair[1]).map_err(|_| DecodeError {
            expected: "non-negative RunLength counts".into(),
            got: format!("count {}", pair[1]),
        })?;
        total = total.saturating_add(count);
    }
    if total != src_size || total > limit {
        return fail(format!("RunLength runs adding up to srcSize {src_size} (at most {limit})"), format!("{total}"));
    }
    let mut out = Vec::new();
    out.try_reserve_exact(total).map_err(|_| DecodeError { expected: "memory for the RunLength output".into(), got: format!("{total} values") })?;
    for pair in pairs.chunks_exact(2) {
        out.extend(std::iter::repeat_n(pair[0], pair[1] as usize));
    }
    Ok(Array::Ints(out))
}

fn integer_packing(packed: &[i64], byte_count: i64, is_unsigned: bool, src_size: usize) -> Result<Array<'static>, DecodeError> {
    // A value at the type's limit means "add the next element too" (Mol* IntegerPacking).
    let (upper, lower) = match (byte_count, is_unsigned) {
        (1, true) => (0xff, None),
        (1, false) => (0x7f, Some(-0x80)),
        (_, true) => (0xffff, None),
        (_, false) => (0x7fff, Some(-0x8000)),
    };
    if src_size > packed.len() {
        return fail(format!("at least srcSize {src_size} packed integers"), format!("{}", packed.len()));
    }
    let mut out = Vec::with_capacity(src_size);
    let mut acc: i64 = 0;
    for &x in packed {
        acc = acc.wrapping_add(x);
        if x != upper && Some(x) != lower {
            out.push(acc);
            acc = 0;
        }
    }
    if out.len() != src_size || acc != 0 {
        return fail(format!("IntegerPacking to unpack into srcSize {src_size} values"), format!("{} values", out.len()));
    }
    Ok(Array::Ints(out))
}

fn string_array<'a>(bytes: &'a [u8], data: &'a [u8], sa: &StringArray, limit: usize) -> Result<Array<'a>, DecodeError> {
    let table = std::str::from_utf8(&bytes[sa.string_data.clone()])
        .map_err(|_| DecodeError { expected: "UTF-8 stringData".into(), got: "invalid UTF-8".into() })?;
    let offset_limit = limit.max(table.len()) + 1;
    let offsets = match decode_chain(bytes, &sa.offset_encoding, Array::Bytes(&bytes[sa.offsets.clone()]), offset_limit)? {
        Array::Ints(v) => v,
        other => return fail("StringArray offsets as integers", other.describe()),
    };
    // Offsets count characters, not bytes (biotite: Python code points; Mol*: UTF-16 units, the
    // same outside the astral planes). ASCII tables, the usual case, need no conversion.
    let char_starts: Option<Vec<usize>> =
        (!table.is_ascii()).then(|| table.char_indices().map(|(b, _)| b).chain([table.len()]).collect());
    let n_chars = char_starts.as_ref().map_or(table.len(), |c| c.len() - 1);
    let mut checked = Vec::with_capacity(offsets.len());
    for &o in &offsets {
        let byte = usize::try_from(o).ok().filter(|&o| o <= n_chars).map(|o| char_starts.as_ref().map_or(o, |c| c[o]));
        match byte {
            Some(b) if checked.last().is_none_or(|&p| p <= b) => checked.push(b),
            _ => return fail(format!("ascending StringArray offsets within the {n_chars} characters of stringData"), format!("offset {o}")),
        }
    }
    let indices = match decode_chain(bytes, &sa.data_encoding, Array::Bytes(data), limit)? {
        Array::Ints(v) => v,
        other => return fail("StringArray indices as integers", other.describe()),
    };
    let n_strings = checked.len().saturating_sub(1) as i64;
    if let Some(bad) = indices.iter().find(|&&i| i < -1 || i >= n_strings) {
        return fail(format!("StringArray indices in -1..{n_strings}"), format!("index {bad}"));
    }
    Ok(Array::Strings(Strings { table, offsets: checked, indices }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_packing_matches_the_spec_example() {
        // Mol* docs: [1, 2, 127 + 4 = 131, -128 - 1 = -129] packed into int8.
        let Array::Ints(v) = integer_packing(&[1, 2, 127, 4, -128, -1], 1, false, 4).unwrap() else { panic!() };
        assert_eq!(v, [1, 2, 131, -129]);
        let Array::Ints(v) = integer_packing(&[255, 255, 3, 7], 1, true, 2).unwrap() else { panic!() };
        assert_eq!(v, [513, 7]);
        assert!(integer_packing(&[127], 1, false, 1).is_err(), "a dangling continuation is an error");
    }

    #[test]
    fn run_length_checks_sizes_before_allocating() {
        let Array::Ints(v) = run_length(&[5, 3, -1, 2], 5, 5).unwrap() else { panic!() };
        assert_eq!(v, [5, 5, 5, -1, -1]);
        assert!(run_length(&[5, i64::MAX], usize::MAX, 10).is_err());
        assert!(run_length(&[5, -1], 0, 10).is_err());
        assert!(run_length(&[5, 3], 4, 10).is_err());
    }
}
