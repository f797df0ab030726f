//! A minimal, zero-copy MessagePack reader for BinaryCIF
//! (spec: <https://github.com/msgpack/msgpack/blob/master/spec.md>).
//!
//! Strings and binaries are returned as byte ranges into the input, so a 60 MB BinaryCIF file
//! is framed without copying its column data. Every length is checked against the bytes left
//! and nesting is bounded, so truncated or hostile input yields an error, never a panic, a huge
//! allocation or a stack overflow.

use std::ops::Range;

/// Deepest nesting accepted; BinaryCIF needs 12 (file → blocks → block → categories → category →
/// columns → column → data → encodings → encoding → StringArray's dataEncoding → encoding).
const MAX_DEPTH: usize = 32;

/// One decoded MessagePack value; `Str` and `Bin` point into the input.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Range<usize>),
    Bin(Range<usize>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

/// Where and why framing failed; the caller adds the file name.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Error {
    pub offset: usize,
    pub expected: &'static str,
    pub got: String,
}

impl Value {
    /// The value under string key `key` of a map (None for other values or a missing key).
    pub fn get(&self, bytes: &[u8], key: &str) -> Option<&Value> {
        let Value::Map(entries) = self else {
            return None;
        };
        entries.iter().find_map(|(k, v)| match k {
            Value::Str(r) if &bytes[r.clone()] == key.as_bytes() => Some(v),
            _ => None,
        })
    }

    /// A short description for error messages ("array of 3", "binary of 12 bytes").
    pub fn describe(&self) -> String {
        match self {
            Value::Nil => "nil".into(),
            Value::Bool(b) => format!("boolean {b}"),
            Value::Int(i) => format!("integer {i}"),
            Value::Float(x) => format!("float {x}"),
            Value::Str(r) => format!("string of {} bytes", r.len()),
            Value::Bin(r) => format!("binary of {} bytes", r.len()),
            Value::Array(a) => format!("array of {}", a.len()),
            Value::Map(m) => format!("map of {}", m.len()),
        }
    }
}

/// Decodes exactly one value spanning all of `bytes`.
pub(super) fn parse(bytes: &[u8]) -> Result<Value, Error> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.value(0)?;
    if reader.pos != bytes.len() {
        return Err(Error {
            offset: reader.pos,
            expected: "end of data after the top-level value",
            got: format!("{} trailing bytes", bytes.len() - reader.pos),
        });
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<Range<usize>, Error> {
        let left = self.bytes.len() - self.pos;
        if n > left {
            return Err(Error {
                offset: self.pos,
                expected: what,
                got: format!("end of data ({n} bytes needed, {left} left)"),
            });
        }
        let range = self.pos..self.pos + n;
        self.pos += n;
        Ok(range)
    }

    fn be<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let r = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[r]);
        Ok(out)
    }

    fn len(&mut self, width: usize) -> Result<usize, Error> {
        Ok(match width {
            1 => self.be::<1>("a length")?[0] as usize,
            2 => u16::from_be_bytes(self.be("a length")?) as usize,
            _ => u32::from_be_bytes(self.be("a length")?) as usize,
        })
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(Error {
                offset: self.pos,
                expected: "at most 32 levels of nesting",
                got: "deeper nesting".into(),
            });
        }
        let at = self.pos;
        let marker = self.be::<1>("a MessagePack value")?[0];
        Ok(match marker {
            0x00..=0x7f => Value::Int(marker as i64),
            0xe0..=0xff => Value::Int(marker as i8 as i64),
            0x80..=0x8f => self.map(marker as usize & 0x0f, depth)?,
            0x90..=0x9f => self.array(marker as usize & 0x0f, depth)?,
            0xa0..=0xbf => Value::Str(self.take(marker as usize & 0x1f, "string bytes")?),
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len(1 << (marker - 0xc4))?;
                Value::Bin(self.take(n, "binary bytes")?)
            }
            0xca => Value::Float(f32::from_be_bytes(self.be("a float32")?) as f64),
            0xcb => Value::Float(f64::from_be_bytes(self.be("a float64")?)),
            0xcc => Value::Int(self.be::<1>("a uint8")?[0] as i64),
            0xcd => Value::Int(u16::from_be_bytes(self.be("a uint16")?) as i64),
            0xce => Value::Int(u32::from_be_bytes(self.be("a uint32")?) as i64),
            0xcf => {
                let v = u64::from_be_bytes(self.be("a uint64")?);
                Value::Int(i64::try_from(v).map_err(|_| Error {
                    offset: at,
                    expected: "an integer below 2^63",
                    got: v.to_string(),
                })?)
            }
            0xd0 => Value::Int(i8::from_be_bytes(self.be("an int8")?) as i64),
            0xd1 => Value::Int(i16::from_be_bytes(self.be("an int16")?) as i64),
            0xd2 => Value::Int(i32::from_be_bytes(self.be("an int32")?) as i64),
            0xd3 => Value::Int(i64::from_be_bytes(self.be("an int64")?)),
            0xd9..=0xdb => {
                let n = self.len(1 << (marker - 0xd9))?;
                Value::Str(self.take(n, "string bytes")?)
            }
            0xdc | 0xdd => {
                let n = self.len(if marker == 0xdc { 2 } else { 4 })?;
                self.array(n, depth)?
            }
            0xde | 0xdf => {
                let n = self.len(if marker == 0xde { 2 } else { 4 })?;
                self.map(n, depth)?
            }
            _ => {
                return Err(Error {
                    offset: at,
                    expected: "a MessagePack marker other than ext types",
                    got: format!("marker 0x{marker:02x}"),
                });
            }
        })
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, Error> {
        // Every element takes at least one byte: a claimed length beyond the bytes left is corrupt.
        self.check_count(n, 1)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, Error> {
        self.check_count(n, 2)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }

    fn check_count(&self, n: usize, min_bytes_each: usize) -> Result<(), Error> {
        let left = self.bytes.len() - self.pos;
        if n.saturating_mul(min_bytes_each) > left {
            return Err(Error {
                offset: self.pos,
                expected: "a container that fits in the data left",
                got: format!("{n} elements claimed with {left} bytes left"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_containers() {
        // {"a": [1, -1, 300, "xy", bin(2), nil, true, 1.5]}
        let bytes = [
            0x81, 0xa1, b'a', 0x98, 0x01, 0xff, 0xcd, 0x01, 0x2c, 0xa2, b'x', b'y', 0xc4, 0x02, 9, 8, 0xc0, 0xc3, 0xcb,
            0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
        ];
        let v = parse(&bytes).unwrap();
        let Value::Array(items) = v.get(&bytes, "a").unwrap() else { panic!("not an array") };
        assert_eq!(items[0], Value::Int(1));
        assert_eq!(items[1], Value::Int(-1));
        assert_eq!(items[2], Value::Int(300));
        assert_eq!(
            &bytes[match &items[3] {
                Value::Str(r) => r.clone(),
                _ => panic!(),
            }],
            b"xy"
        );
        assert_eq!(items[4], Value::Bin(14..16));
        assert_eq!(items[5], Value::Nil);
        assert_eq!(items[6], Value::Bool(true));
        assert_eq!(items[7], Value::Float(1.5));
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let bytes = [0x81, 0xa1, b'a', 0x92, 0x01, 0xcd, 0x01, 0x2c];
        assert!(parse(&bytes).is_ok());
        for n in 0..bytes.len() {
            assert!(parse(&bytes[..n]).is_err(), "prefix of {n} bytes parsed");
        }
        let err = parse(&[0xc1]).unwrap_err();
        assert_eq!(err.got, "marker 0xc1");
        assert!(parse(&[0x01, 0x02]).unwrap_err().expected.contains("end of data"));
        // An array claiming 2^32-1 elements in 5 bytes fails before allocating.
        assert!(parse(&[0xdd, 0xff, 0xff, 0xff, 0xff]).unwrap_err().got.contains("claimed"));
        // Deep nesting is refused rather than overflowing the stack.
        assert!(parse(&[0x91; 100]).unwrap_err().expected.contains("nesting"));
    }
}
