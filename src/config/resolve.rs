//! Walks the merged tree against the schema: fills every default, checks every key and type,
//! and yields the resolved table (in schema order) with the source of each leaf. Problems are
//! collected, never returned one at a time.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::error::{Problem, ProblemKind, did_you_mean};
use super::schema::{Node, Schema, Shape};
use super::source::Source;
use super::tree::Entry;

pub struct Walk<'s> {
    schema: &'s Schema,
    all_keys: Vec<String>,
    /// The source of each resolved leaf, by dotted key (array elements are not split).
    pub provenance: BTreeMap<String, Source>,
    pub problems: Vec<Problem>,
}

impl<'s> Walk<'s> {
    pub fn new(schema: &'s Schema) -> Walk<'s> {
        Walk { schema, all_keys: schema.all_keys(), provenance: BTreeMap::new(), problems: Vec::new() }
    }

    /// The resolved experiment table.
    pub fn resolve(&mut self, root: &BTreeMap<String, Entry>) -> toml::Table {
        let schema = self.schema;
        let node = schema.root();
        match schema.shape(node) {
            Shape::Struct(_) => self.walk_struct(node, Some(root), None, "", None),
            _ => toml::Table::new(),
        }
    }

    /// `inherited` is the default a parent supplies for this whole node when no layer set any
    /// of it (serde fills a missing field from the parent's `Default`, a present table's
    /// missing fields from the child's own).
    fn walk(
        &mut self,
        node: Node<'s>,
        entry: Option<&Entry>,
        key: &str,
        inherited: Option<&'s Json>,
    ) -> Option<toml::Value> {
        let inherited = if entry.is_none() { inherited.or_else(|| node.default()) } else { None };
        let schema = self.schema;
        match schema.shape(node) {
            Shape::Struct(_) | Shape::Slot(_) => match entry {
                Some(Entry::Leaf { value, source }) => {
                    self.type_problem(key, source, &node.type_name(schema), value);
                    if let (Shape::Slot(variants), Some(v)) = (schema.shape(node), value.as_str()) {
                        let name = variants.iter().map(|x| x.name).find(|n| *n == v).unwrap_or(variants[0].name);
                        let help = format!(
                            "a slot is a table: switch it with `{key}=@{name}` on the command line, or `type = \"{name}\"` under [{key}]"
                        );
                        if let Some(last) = self.problems.pop() {
                            self.problems.push(last.help(help));
                        }
                    }
                    None
                }
                Some(Entry::Table(t)) => self.walk_table(node, Some(t), key, None, first_source(entry)),
                None => self.walk_table(node, None, key, inherited, None),
            },
            _ => match entry {
                Some(Entry::Table(t)) => {
                    let source = first_source(entry).unwrap_or(Source::Default);
                    let message = format!(
                        "`{key}` expects {}, got a table of {} key(s)",
                        article(&node.type_name(schema)),
                        t.len()
                    );
                    self.problems.push(Problem::new(ProblemKind::Type, Some(key.into()), Some(source), message));
                    None
                }
                Some(Entry::Leaf { value, source }) => self.check_leaf(node, value.clone(), key, source),
                None => {
                    let value = inherited.and_then(|d| toml::Value::try_from(d).ok())?;
                    self.check_leaf(node, value, key, &Source::Default)
                }
            },
        }
    }

    fn walk_table(
        &mut self,
        node: Node<'s>,
        entry: Option<&BTreeMap<String, Entry>>,
        key: &str,
        inherited: Option<&'s Json>,
        table_source: Option<Source>,
    ) -> Option<toml::Value> {
        let schema = self.schema;
        match schema.shape(node) {
            Shape::Struct(_) => Some(toml::Value::Table(self.walk_struct(node, entry, inherited, key, None))),
            Shape::Slot(variants) => {
                let chosen = entry.and_then(|t| t.get("type"));
                let name = match chosen {
                    Some(Entry::Leaf { value: toml::Value::String(s), .. }) => s.clone(),
                    Some(Entry::Leaf { value, source }) => {
                        self.type_problem(&join(key, "type"), source, "a variant name (string)", value);
                        return None;
                    }
                    Some(Entry::Table(_)) | None => {
                        let default =
                            inherited.or_else(|| node.default()).and_then(|d| d.get("type")).and_then(Json::as_str);
                        default.unwrap_or_default().to_owned()
                    }
                };
                let Some(variant) = variants.iter().find(|v| v.name == name) else {
                    let source = match chosen {
                        Some(Entry::Leaf { source, .. }) => Some(source.clone()),
                        _ => table_source,
                    };
                    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
                    let mut p = Problem::new(
                        ProblemKind::UnknownVariant,
                        Some(join(key, "type")),
                        source,
                        format!("`{key}` has no variant `{name}`"),
                    );
                    if let Some(s) = did_you_mean(&name, names.iter().copied()) {
                        p = p.help(format!("did you mean `@{s}`?"));
                    }
                    p = p.help(format!("variants of `{key}`: @{}", names.join(", @")));
                    self.problems.push(p);
                    return None;
                };
                // The parent's default only applies if it is a default of the same variant.
                let inherited = inherited.filter(|d| d.get("type").and_then(Json::as_str) == Some(variant.name));
                let type_source = match chosen {
                    Some(Entry::Leaf { source, .. }) => source.clone(),
                    _ => Source::Default,
                };
                self.provenance.insert(join(key, "type"), type_source);
                let mut table = toml::Table::new();
                table.insert("type".into(), toml::Value::String(name.clone()));
                let params = self.walk_struct(variant.node, entry, inherited, key, Some(&name));
                table.extend(params);
                Some(toml::Value::Table(table))
            }
            _ => None,
        }
    }

    /// The keys of a struct (or of a slot variant, whose `type` the caller handles).
    fn walk_struct(
        &mut self,
        node: Node<'s>,
        entry: Option<&BTreeMap<String, Entry>>,
        inherited: Option<&'s Json>,
        key: &str,
        variant: Option<&str>,
    ) -> toml::Table {
        let schema = self.schema;
        let Shape::Struct(props) = schema.shape(node) else { return toml::Table::new() };
        if let Some(entry) = entry {
            for (k, e) in entry {
                if props.contains_key(k) || (variant.is_some() && k == "type") {
                    continue;
                }
                self.unknown_key(key, k, e, props.keys().map(String::as_str), variant);
            }
        }
        let mut out = toml::Table::new();
        for (k, prop) in props {
            if k == "type" && variant.is_some() {
                continue;
            }
            let child = schema.node(prop, node.nonsemantic());
            let child_entry = entry.and_then(|t| t.get(k));
            let child_inherited = if entry.is_none() { inherited.and_then(|d| d.get(k)) } else { None };
            let write_only = prop.get("writeOnly").and_then(Json::as_bool).unwrap_or(false);
            if let Some(v) = self.walk(child, child_entry, &join(key, k), child_inherited)
                && !write_only
            {
                out.insert(k.clone(), v);
            }
        }
        out
    }

    fn unknown_key<'a>(
        &mut self,
        at: &str,
        k: &str,
        entry: &Entry,
        siblings: impl Iterator<Item = &'a str>,
        variant: Option<&str>,
    ) {
        let full = join(at, k);
        let source = first_source(Some(entry));
        let where_ = if let Some(v) = variant {
            format!("`{at}` (variant @{v})")
        } else if at.is_empty() {
            "an experiment".to_owned()
        } else {
            format!("`{at}`")
        };
        let mut p = Problem::new(
            ProblemKind::UnknownKey,
            Some(full.clone()),
            source,
            format!("unknown key `{full}`: not a parameter of {where_}"),
        );
        if let Some(s) = did_you_mean(k, siblings) {
            p = p.help(format!("did you mean `{}`?", join(at, s)));
        } else if let Some(s) = self.elsewhere(k) {
            p = p.help(format!("did you mean `{s}`?"));
        }
        let show = match variant {
            Some(v) => format!("`helico registry show {}.{v}` lists its keys", at.rsplit('.').next().unwrap_or(at)),
            None => "`helico schema` lists every key".to_owned(),
        };
        self.problems.push(p.help(show));
    }

    /// A key of that name (or a near miss) somewhere else in the schema: a key placed in the
    /// wrong table.
    fn elsewhere(&self, k: &str) -> Option<&str> {
        fn last(c: &str) -> &str {
            c.rsplit('.').next().unwrap_or(c)
        }
        let exact: Vec<&str> = self.all_keys.iter().map(String::as_str).filter(|c| last(c) == k).collect();
        if let [one] = exact.as_slice() {
            return Some(one);
        }
        let near = did_you_mean(k, self.all_keys.iter().map(|c| last(c.as_str())))?;
        let mut matches = self.all_keys.iter().map(String::as_str).filter(|c| last(c) == near);
        match (matches.next(), matches.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    fn check_leaf(&mut self, node: Node<'s>, value: toml::Value, key: &str, source: &Source) -> Option<toml::Value> {
        let schema = self.schema;
        let expected = node.type_name(schema);
        let value = match (schema.shape(node), value) {
            (Shape::Integer, v @ toml::Value::Integer(_)) => v,
            (Shape::Number, toml::Value::Integer(i)) => toml::Value::Float(i as f64),
            (Shape::Number, v @ toml::Value::Float(_)) => v,
            (Shape::Boolean, v @ toml::Value::Boolean(_)) => v,
            (Shape::String, toml::Value::String(s)) => {
                if let Some(pattern) = node.pattern()
                    && !regex::Regex::new(pattern).is_ok_and(|re| re.is_match(&s))
                {
                    let message = format!("`{key}` = \"{s}\" is not allowed: it must match {pattern}");
                    self.problems.push(Problem::new(
                        ProblemKind::Range,
                        Some(key.into()),
                        Some(source.clone()),
                        message,
                    ));
                    return None;
                }
                toml::Value::String(s)
            }
            (Shape::Enum(names), toml::Value::String(s)) => {
                if !names.contains(&s.as_str()) {
                    let message = format!("`{key}` expects {expected}, got \"{s}\"");
                    let mut p = Problem::new(ProblemKind::Type, Some(key.into()), Some(source.clone()), message);
                    if let Some(n) = did_you_mean(&s, names.iter().copied()) {
                        p = p.help(format!("did you mean \"{n}\"?"));
                    }
                    self.problems.push(p);
                    return None;
                }
                toml::Value::String(s)
            }
            (Shape::Array(items), toml::Value::Array(elements)) => {
                let (lo, hi) = node.items_len();
                let n = elements.len() as u64;
                if lo.is_some_and(|lo| n < lo) || hi.is_some_and(|hi| n > hi) {
                    let message = format!("`{key}` expects {}, got {n} element(s)", article(&expected));
                    self.problems.push(Problem::new(
                        ProblemKind::Type,
                        Some(key.into()),
                        Some(source.clone()),
                        message,
                    ));
                    return None;
                }
                let Some(items) = items else { return Some(toml::Value::Array(elements)) };
                let mut out = Vec::new();
                for (i, e) in elements.into_iter().enumerate() {
                    let entry = to_entry(e, source);
                    out.extend(self.walk(items, Some(&entry), &format!("{key}[{i}]"), None));
                }
                toml::Value::Array(out)
            }
            (Shape::Any, v) => v,
            (_, v) => {
                self.type_problem(key, source, &expected, &v);
                return None;
            }
        };
        if let Some(x) = value.as_float().or_else(|| value.as_integer().map(|i| i as f64)) {
            let below = node.minimum().filter(|lo| x < *lo).map(|lo| format!("below the minimum {lo}"));
            let above = node.maximum().filter(|hi| x > *hi).map(|hi| format!("above the maximum {hi}"));
            if let Some(what) = below.or(above) {
                let message = format!("`{key}` = {value} is {what}");
                self.problems.push(
                    Problem::new(ProblemKind::Range, Some(key.into()), Some(source.clone()), message)
                        .help(format!("`{key}` expects {}", article(&expected))),
                );
                return None;
            }
        }
        if !key.contains('[') {
            self.provenance.insert(key.to_owned(), source.clone());
        }
        Some(value)
    }

    fn type_problem(&mut self, key: &str, source: &Source, expected: &str, got: &toml::Value) {
        let message = format!("`{key}` expects {}, got {}", article(expected), describe(got));
        self.problems.push(Problem::new(ProblemKind::Type, Some(key.into()), Some(source.clone()), message));
    }
}

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") }
}

fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        Some(c) if c.is_ascii_alphabetic() && !type_name.starts_with("one of") => format!("a {type_name}"),
        _ => type_name.to_owned(),
    }
}

/// A value as a message shows it: its TOML type and, for scalars, the value.
pub fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("string \"{s}\""),
        toml::Value::Integer(i) => format!("integer {i}"),
        toml::Value::Float(x) => format!("float {x}"),
        toml::Value::Boolean(b) => format!("boolean {b}"),
        toml::Value::Datetime(d) => format!("datetime {d}"),
        toml::Value::Array(a) => format!("an array of {} element(s)", a.len()),
        toml::Value::Table(t) => format!("a table of {} key(s)", t.len()),
    }
}

fn to_entry(v: toml::Value, source: &Source) -> Entry {
    match v {
        toml::Value::Table(t) => Entry::Table(t.into_iter().map(|(k, v)| (k, to_entry(v, source))).collect()),
        value => Entry::Leaf { value, source: source.clone() },
    }
}

/// The source of the first leaf under an entry: where a misplaced table was written.
fn first_source(entry: Option<&Entry>) -> Option<Source> {
    match entry? {
        Entry::Leaf { source, .. } => Some(source.clone()),
        Entry::Table(t) => t.values().find_map(|e| first_source(Some(e))),
    }
}
