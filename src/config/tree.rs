//! The merged configuration tree: layers applied in order, each leaf remembering its source,
//! and every change logged for `helico explain`. Setting a slot's `type` to a new variant drops
//! the keys the new variant does not have, and says so.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::{Problem, ProblemKind};
use super::layers::{Action, Assignment};
use super::overrides::Key;
use super::schema::{Node, Schema, Shape};
use super::source::Source;

#[derive(Debug, Clone)]
pub enum Entry {
    Table(BTreeMap<String, Entry>),
    Leaf { value: toml::Value, source: Source },
}

/// One change to a key, in the order the layers made it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub key: String,
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<toml::Value>,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Set,
    Append,
    Reset,
    /// Removed because its slot switched to a variant without this key.
    Dropped {
        switched_to: String,
        by: Source,
    },
}

pub struct Tree<'s> {
    schema: &'s Schema,
    pub root: BTreeMap<String, Entry>,
    pub events: Vec<Event>,
    pub problems: Vec<Problem>,
}

impl<'s> Tree<'s> {
    pub fn new(schema: &'s Schema) -> Tree<'s> {
        Tree { schema, root: BTreeMap::new(), events: Vec::new(), problems: Vec::new() }
    }

    pub fn apply(&mut self, a: Assignment) {
        let source = a.source;
        match a.action {
            Action::Set(key, value) => {
                if key.0.last().is_some_and(|s| s == "type") {
                    self.switch(&key, &value, &source);
                }
                self.log(&key, Op::Set, Some(value.clone()), &source);
                self.insert(&key, Entry::Leaf { value, source });
            }
            Action::Append(key, value) => self.append(key, value, source),
            Action::Reset(key) => {
                if self.node_at(&key).is_none() {
                    let p = Problem::new(
                        ProblemKind::Operation,
                        Some(key.to_string()),
                        Some(source),
                        format!("cannot reset `{key}`: no such key"),
                    );
                    self.problems.push(p);
                    return;
                }
                self.log(&key, Op::Reset, None, &source);
                self.remove(&key);
            }
        }
    }

    fn log(&mut self, key: &Key, op: Op, value: Option<toml::Value>, source: &Source) {
        self.events.push(Event { key: key.to_string(), op, value, source: source.clone() });
    }

    /// Before `<slot>.type` is set: if it names another variant, drop what that variant lacks.
    fn switch(&mut self, type_key: &Key, value: &toml::Value, source: &Source) {
        let slot = Key(type_key.0[..type_key.0.len() - 1].to_vec());
        let (Some(node), Some(new)) = (self.node_at(&slot), value.as_str()) else { return };
        let Shape::Slot(variants) = self.schema.shape(node) else { return };
        let Some(variant) = variants.iter().find(|v| v.name == new) else { return };
        if self.variant_at(&slot, node).as_deref() == Some(new) {
            return;
        }
        let Some(Entry::Table(children)) = self.get(&slot) else { return };
        let stale: Vec<String> = children.keys().filter(|k| !variant.has_param(k)).cloned().collect();
        for k in stale {
            let key = slot.child(&k);
            let mut leaves = Vec::new();
            if let Some(e) = self.get(&key) {
                collect_leaves(e, &key, &mut leaves);
            }
            for (leaf, old_value, old_source) in leaves {
                self.log(
                    &leaf,
                    Op::Dropped { switched_to: new.to_owned(), by: source.clone() },
                    Some(old_value),
                    &old_source,
                );
            }
            self.remove(&key);
        }
    }

    fn append(&mut self, key: Key, value: toml::Value, source: Source) {
        let current = match self.get(&key) {
            Some(Entry::Leaf { value, .. }) => Some(value.clone()),
            Some(Entry::Table(_)) => None,
            None => self.node_at(&key).and_then(|n| n.default()).and_then(|d| toml::Value::try_from(d).ok()),
        };
        let Some(toml::Value::Array(mut items)) = current else {
            let message = format!("cannot append to `{key}`: it is not an array");
            self.problems.push(Problem::new(ProblemKind::Operation, Some(key.to_string()), Some(source), message));
            return;
        };
        match value.clone() {
            toml::Value::Array(more) => items.extend(more),
            one => items.push(one),
        }
        self.log(&key, Op::Append, Some(value), &source);
        self.insert(&key, Entry::Leaf { value: toml::Value::Array(items), source });
    }

    pub fn get(&self, key: &Key) -> Option<&Entry> {
        let (first, rest) = key.0.split_first()?;
        let mut entry = self.root.get(first)?;
        for seg in rest {
            match entry {
                Entry::Table(t) => entry = t.get(seg)?,
                Entry::Leaf { .. } => return None,
            }
        }
        Some(entry)
    }

    fn insert(&mut self, key: &Key, new: Entry) {
        let Some((last, parents)) = key.0.split_last() else { return };
        let mut table = &mut self.root;
        for seg in parents {
            let entry = table.entry(seg.clone()).or_insert_with(|| Entry::Table(BTreeMap::new()));
            if matches!(entry, Entry::Leaf { .. }) {
                *entry = Entry::Table(BTreeMap::new());
            }
            match entry {
                Entry::Table(t) => table = t,
                Entry::Leaf { .. } => return,
            }
        }
        table.insert(last.clone(), new);
    }

    fn remove(&mut self, key: &Key) {
        let Some((last, parents)) = key.0.split_last() else { return };
        let mut table = &mut self.root;
        for seg in parents {
            match table.get_mut(seg) {
                Some(Entry::Table(t)) => table = t,
                _ => return,
            }
        }
        table.remove(last);
    }

    /// The variant a slot currently has: set by a layer, else the default's.
    fn variant_at(&self, slot: &Key, node: Node<'_>) -> Option<String> {
        match self.get(&slot.child("type")) {
            Some(Entry::Leaf { value: toml::Value::String(s), .. }) => Some(s.clone()),
            _ => node.default().and_then(|d| d.get("type")).and_then(|t| t.as_str()).map(str::to_owned),
        }
    }

    /// The schema node at a key, descending through slots by their current variant.
    pub fn node_at(&self, key: &Key) -> Option<Node<'s>> {
        let schema = self.schema;
        let mut node = schema.root();
        for (i, seg) in key.0.iter().enumerate() {
            let here = Key(key.0[..i].to_vec());
            node = match schema.shape(node) {
                Shape::Struct(props) => schema.property(node, props, seg)?,
                Shape::Slot(variants) => {
                    let name = self.variant_at(&here, node)?;
                    let variant = variants.into_iter().find(|v| v.name == name)?;
                    let Shape::Struct(props) = schema.shape(variant.node) else { return None };
                    schema.property(variant.node, props, seg)?
                }
                _ => return None,
            };
        }
        Some(node)
    }
}

fn collect_leaves(entry: &Entry, key: &Key, out: &mut Vec<(Key, toml::Value, Source)>) {
    match entry {
        Entry::Leaf { value, source } => out.push((key.clone(), value.clone(), source.clone())),
        Entry::Table(t) => t.iter().for_each(|(k, e)| collect_leaves(e, &key.child(k), out)),
    }
}
