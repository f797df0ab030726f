//! YAML and JSON documents into the format structs: one YAML 1.2 parser for both
//! (serde-saphyr, chosen over the archived serde_yaml and the unsound, now deprecated
//! serde_yml: maintained, pure safe Rust, no panics on malformed input, and `Spanned` values
//! that carry their line and column), `serde_path_to_error` for the field path of a type
//! error, and serde_json in front of JSON files so JSON syntax errors read as JSON ones.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_saphyr::Spanned;

use super::error::{InputError, Problem};

/// A value's 1-based line and column, when the document has them.
pub(crate) type Loc = Option<(u64, u64)>;

pub(crate) fn loc<T>(value: &Spanned<T>) -> Loc {
    let at = value.referenced;
    (at.line() > 0).then(|| (at.line(), at.column()))
}

/// Deserializes `text` into `T`; the first error becomes a problem with its location and the
/// path of the field that failed (a document that does not deserialize has no later checks).
pub(crate) fn deserialize<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, InputError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    let mut track = serde_path_to_error::Track::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        T::deserialize(serde_path_to_error::Deserializer::new(de, &mut track))
    })
    .map_err(|e| {
        let at = e.location().filter(|l| l.line() > 0);
        let rendered = e.to_string();
        let message = rendered.rsplit_once(" at line ").map_or(rendered.as_str(), |(m, _)| m);
        let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
        InputError::Invalid(vec![Problem {
            file: file.to_owned(),
            line: at.map(|l| l.line()),
            column: at.map(|l| l.column()),
            field: field_path(&track.path().to_string()),
            message,
            fix: String::new(),
        }])
    })
}

/// `sequences[0].protein.count.value` → `sequences[0].protein.count` (`value` is `Spanned`'s
/// own field); the root (`.` or `?`) is the empty path.
fn field_path(path: &str) -> String {
    let path = path.strip_suffix(".value").unwrap_or(path);
    if path == "." || path == "?" { String::new() } else { path.to_owned() }
}

/// JSON syntax errors, reported by serde_json with JSON's terms before the YAML parser sees
/// the text.
pub(crate) fn check_json_syntax(text: &str, file: &str) -> Result<(), InputError> {
    serde_json::from_str::<de::IgnoredAny>(text).map(|_| ()).map_err(|e| {
        let rendered = e.to_string();
        InputError::Invalid(vec![Problem {
            file: file.to_owned(),
            line: Some(e.line() as u64),
            column: Some(e.column() as u64),
            field: String::new(),
            message: format!(
                "invalid JSON: {}",
                rendered.rsplit_once(" at line ").map_or(rendered.as_str(), |(m, _)| m)
            ),
            fix: String::new(),
        }])
    })
}

/// Chain ids written as one id or a list of them (`id: A`, `id: [A, B]`); numbers are read as
/// their text (`id: 1`).
#[derive(Debug, Clone)]
pub(crate) struct Ids(pub Vec<String>);

impl<'de> Deserialize<'de> for Ids {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ids;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a chain id or a list of chain ids")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ids, E> {
                Ok(Ids(vec![v.to_owned()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ids, E> {
                Ok(Ids(vec![v.to_string()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Ids, A::Error> {
                let mut out = Vec::new();
                while let Some(Text(id)) = seq.next_element()? {
                    out.push(id);
                }
                Ok(Ids(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string, or an integer read as its text (Protenix writes `"position1": "2"` and
/// `"position1": 2` alike).
#[derive(Debug, Clone)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
