//! BinaryCIF framing (<https://github.com/molstar/BinaryCIF>): the MessagePack layout
//! `{dataBlocks: [{header, categories: [{name, rowCount, columns: [{name, data, mask}]}]}]}` read
//! into blocks and categories whose columns stay encoded ([`super::encoding`] decodes them on
//! request). Every key, type and size is checked; errors name the place in the file.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::encoding::{DataType, Encoded, EncodedColumn, Encoding, StringArray};
use super::msgpack::{self, Value};
use super::{Block, Category, Source, Storage};
use crate::data::error::{DataError, Result};

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
        DataError::BinaryCif {
            path: self.path.to_owned(),
            place: place.to_owned(),
            expected: expected.into(),
            got: got.into(),
        }
    }

    fn field<'v>(&self, v: &'v Value, key: &str, place: &str) -> Result<&'v Value> {
        match v {
            Value::Map(_) => {
                v.get(self.bytes, key).ok_or_else(|| self.err(place, format!("key {key:?}"), "no such key"))
            }
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
        DataType::from_code(code)
            .ok_or_else(|| self.err(place, format!("{key:?} to be a type code 1-6, 32 or 33"), code.to_string()))
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
            "FixedPoint" => Encoding::FixedPoint {
                factor: self.float(e, "factor", place)?,
                src: self.data_type(e, "srcType", place)?,
            },
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
                    other => {
                        return Err(self.err(place, "\"isUnsigned\" to be a boolean", other.describe()));
                    }
                };
                Encoding::IntegerPacking { byte_count, is_unsigned, src_size: self.size(e, "srcSize", place)? }
            }
            "StringArray" => Encoding::StringArray(StringArray {
                data_encoding: self.encodings(e, "dataEncoding", place)?,
                string_data: self.str_range(e, "stringData", place)?,
                offset_encoding: self.encodings(e, "offsetEncoding", place)?,
                offsets: match self.field(e, "offsets", place)? {
                    Value::Bin(r) => r.clone(),
                    other => {
                        return Err(self.err(place, "\"offsets\" to be binary", other.describe()));
                    }
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
