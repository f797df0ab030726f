//! The override grammar shared by the command line, `HELICO__` variables and sweeps.
//!
//! ```text
//! key=value            set; value is a TOML value (1e-4, "s", [1, 2], {a = 1}); a bare word
//!                      that is not TOML is taken as a string
//! slot=@variant        switch a registry slot (keys the new variant lacks are dropped)
//! slot=@variant{k=v}   switch and set some of the new variant's parameters
//! key+=value           append to an array (an array value appends each element)
//! ~key                 reset to the default
//! ```

use std::fmt;

/// One parsed override.
#[derive(Debug, Clone, PartialEq)]
pub enum Override {
    Set { key: Key, value: toml::Value },
    Switch { key: Key, variant: String, params: toml::Table },
    Append { key: Key, value: toml::Value },
    Reset { key: Key },
}

impl Override {
    pub fn key(&self) -> &Key {
        match self {
            Override::Set { key, .. }
            | Override::Switch { key, .. }
            | Override::Append { key, .. }
            | Override::Reset { key } => key,
        }
    }
}

/// A dotted key, one segment per table level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub Vec<String>);

impl Key {
    pub fn parse(text: &str) -> Result<Key, String> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        for s in &segments {
            if s.is_empty() {
                return Err(format!("key `{text}` has an empty segment"));
            }
            if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
                let hint = if c == '[' { " (set the whole array instead: key=[...])" } else { "" };
                return Err(format!("key `{text}` contains `{c}`: keys are dotted names like train.steps{hint}"));
            }
        }
        Ok(Key(segments))
    }

    pub fn child(&self, segment: &str) -> Key {
        let mut segments = self.0.clone();
        segments.push(segment.to_owned());
        Key(segments)
    }

    pub fn is_prefix_of(&self, other: &Key) -> bool {
        other.0.len() >= self.0.len() && other.0[..self.0.len()] == self.0[..]
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// Parse one `key=value` style argument.
pub fn parse(arg: &str) -> Result<Override, String> {
    if let Some(key) = arg.strip_prefix('~') {
        return Ok(Override::Reset { key: Key::parse(key.trim())? });
    }
    let Some((lhs, rhs)) = arg.split_once('=') else {
        return Err(format!("`{arg}` is not an override: expected key=value, key=@variant, key+=value or ~key"));
    };
    if let Some(key) = lhs.strip_suffix('+') {
        return Ok(Override::Append { key: Key::parse(key.trim())?, value: value(rhs) });
    }
    let key = Key::parse(lhs.trim())?;
    let rhs = rhs.trim();
    if let Some(spec) = rhs.strip_prefix('@') {
        let (variant, params) = match spec.find('{') {
            Some(i) => (&spec[..i], inline_table(&spec[i..]).map_err(|e| format!("in `{arg}`: {e}"))?),
            None => (spec, toml::Table::new()),
        };
        if variant.is_empty() || !variant.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`@{variant}` in `{arg}` is not a variant name"));
        }
        return Ok(Override::Switch { key, variant: variant.to_owned(), params });
    }
    Ok(Override::Set { key, value: value(rhs) })
}

/// The right-hand side as a TOML value, or the raw text as a string when it is not TOML.
pub fn value(rhs: &str) -> toml::Value {
    let rhs = rhs.trim();
    match format!("v = {rhs}").parse::<toml::Table>() {
        Ok(mut t) if t.len() == 1 => t.remove("v").unwrap_or_else(|| toml::Value::String(rhs.to_owned())),
        _ => toml::Value::String(rhs.to_owned()),
    }
}

fn inline_table(text: &str) -> Result<toml::Table, String> {
    match value(text) {
        toml::Value::Table(t) => Ok(t),
        _ => Err(format!("`{text}` is not a TOML inline table like {{k = 1, j = \"x\"}}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        Key::parse(s).expect("valid key")
    }

    #[test]
    fn values_are_toml() {
        assert_eq!(value("1e-4"), toml::Value::Float(1e-4));
        assert_eq!(value("3"), toml::Value::Integer(3));
        assert_eq!(value("\"s\""), toml::Value::String("s".into()));
        assert_eq!(value("[1, 2]"), toml::Value::Array(vec![1.into(), 2.into()]));
        assert_eq!(value("true"), toml::Value::Boolean(true));
        assert_eq!(value("sdpa"), toml::Value::String("sdpa".into()));
        assert_eq!(value("data/x.fasta"), toml::Value::String("data/x.fasta".into()));
        let toml::Value::Table(t) = value("{a = 1, b = \"x\"}") else { panic!("table") };
        assert_eq!(t.get("a"), Some(&toml::Value::Integer(1)));
    }

    #[test]
    fn grammar() {
        assert_eq!(parse("train.steps=5"), Ok(Override::Set { key: key("train.steps"), value: 5.into() }));
        assert_eq!(parse("~model.n_layers"), Ok(Override::Reset { key: key("model.n_layers") }));
        assert_eq!(
            parse("a.b+=[1]"),
            Ok(Override::Append { key: key("a.b"), value: toml::Value::Array(vec![1.into()]) })
        );
        let Ok(Override::Switch { key: k, variant, params }) = parse("schedule=@warmup_linear{warmup_steps=3}") else {
            panic!("switch")
        };
        assert_eq!((k, variant.as_str()), (key("schedule"), "warmup_linear"));
        assert_eq!(params.get("warmup_steps"), Some(&toml::Value::Integer(3)));
    }

    #[test]
    fn malformed_overrides_say_what_is_expected() {
        assert!(parse("train.steps").unwrap_err().contains("expected key=value"));
        assert!(parse("train..steps=1").unwrap_err().contains("empty segment"));
        assert!(parse("files[0].path=x").unwrap_err().contains("whole array"));
        assert!(parse("model=@").unwrap_err().contains("not a variant name"));
        assert!(parse("model=@d3pm_lm{oops").unwrap_err().contains("inline table"));
    }
}
