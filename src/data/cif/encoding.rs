//! BinaryCIF column encodings (<https://github.com/molstar/BinaryCIF/blob/master/encoding.md>):
//! ByteArray, FixedPoint, IntervalQuantization, RunLength, Delta, IntegerPacking and StringArray,
//! undone in reverse order of a column's `encoding` list, with decoder semantics as in Mol*
//! `src/mol-io/common/binary-cif/decoder.ts` and biotite `structure/io/pdbx/encoding.pyx`.
//! Mask values: 0 present, 1 `.`, 2 `?`.
//!
//! Every length and index is checked while decoding, so per-row access afterwards cannot fail
//! and a corrupt column yields an error, not a panic or a huge allocation.

use std::ops::Range;

/// A column as stored: its data and optional mask, not yet decoded.
pub(super) struct EncodedColumn {
    pub data: Encoded,
    pub mask: Option<Encoded>,
}

#[derive(Debug)]
pub(super) struct Encoded {
    pub bytes: Range<usize>,
    pub encoding: Vec<Encoding>,
}

/// One step of a column's encoding chain, with the parameters needed to undo it.
#[derive(Debug)]
pub(super) enum Encoding {
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
pub(super) struct StringArray {
    pub data_encoding: Vec<Encoding>,
    pub string_data: Range<usize>,
    pub offset_encoding: Vec<Encoding>,
    pub offsets: Range<usize>,
}

/// ByteArray type codes of the BinaryCIF spec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum DataType {
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
        other => {
            return fail(format!("{row_count} decoded values (rowCount)"), other.describe());
        }
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

fn decode_chain<'a>(
    bytes: &'a [u8],
    chain: &[Encoding],
    input: Array<'a>,
    limit: usize,
) -> Result<Array<'a>, DecodeError> {
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
                let values =
                    v.into_iter().map(|x| src.round(src.round(x as f64 * span / steps) + src.round(lo))).collect();
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
    pub(super) fn from_code(code: i64) -> Option<DataType> {
        use DataType::*;
        [Int8, Int16, Int32, Uint8, Uint16, Uint32, Float32, Float64].into_iter().find(|t| *t as i64 == code)
    }

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
        DataType::Float32 => {
            Array::Floats(chunks::<4>(b).map(|c| f32::from_le_bytes(c) as f64).collect(), Precision::Single)
        }
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
    out.try_reserve_exact(total).map_err(|_| DecodeError {
        expected: "memory for the RunLength output".into(),
        got: format!("{total} values"),
    })?;
    for pair in pairs.chunks_exact(2) {
        out.extend(std::iter::repeat_n(pair[0], pair[1] as usize));
    }
    Ok(Array::Ints(out))
}

fn integer_packing(
    packed: &[i64],
    byte_count: i64,
    is_unsigned: bool,
    src_size: usize,
) -> Result<Array<'static>, DecodeError> {
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
        return fail(
            format!("IntegerPacking to unpack into srcSize {src_size} values"),
            format!("{} values", out.len()),
        );
    }
    Ok(Array::Ints(out))
}

fn string_array<'a>(bytes: &'a [u8], data: &'a [u8], sa: &StringArray, limit: usize) -> Result<Array<'a>, DecodeError> {
    let table = std::str::from_utf8(&bytes[sa.string_data.clone()])
        .map_err(|_| DecodeError { expected: "UTF-8 stringData".into(), got: "invalid UTF-8".into() })?;
    let offset_limit = limit.max(table.len()) + 1;
    let offsets =
        match decode_chain(bytes, &sa.offset_encoding, Array::Bytes(&bytes[sa.offsets.clone()]), offset_limit)? {
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
            _ => {
                return fail(
                    format!("ascending StringArray offsets within the {n_chars} characters of stringData"),
                    format!("offset {o}"),
                );
            }
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
