//! The experiment's JSON schema (draft-07, from the registry types via schemars) and a typed
//! view of it that validation, defaults, `helico registry` and the config hash walk.

use serde_json::{Map, Value};

use crate::registry::Experiment;

/// Schema extension marking keys that do not change what a run computes (paths, intervals,
/// runtime choices): they stay out of the config hash and the default diff.
pub const NONSEMANTIC: &str = "x-nonsemantic";

/// The draft-07 JSON schema of an experiment, for editors (`#:schema`) and `helico schema`.
pub fn experiment_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft07().into_generator().into_root_schema_for::<Experiment>();
    let mut schema = serde_json::to_value(schema).expect("a schemars schema serialises to JSON");
    loosen_slots(&mut schema);
    schema
}

/// A file layer may set a slot's parameters without its `type` (the variant comes from a lower
/// layer or the default), and two variants may share a parameter: so a slot's variants become
/// `anyOf` (not `oneOf`) without `type` required. Unknown keys still match no variant.
fn loosen_slots(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let tagged = map
                .get("oneOf")
                .and_then(Value::as_array)
                .is_some_and(|vs| vs.iter().all(|x| x.pointer("/properties/type/const").is_some()));
            if tagged && let Some(mut variants) = map.remove("oneOf") {
                for variant in variants.as_array_mut().into_iter().flatten() {
                    if let Some(req) = variant.get_mut("required").and_then(Value::as_array_mut) {
                        req.retain(|r| r != "type");
                    }
                    if variant.get("required").and_then(Value::as_array).is_some_and(Vec::is_empty) {
                        variant.as_object_mut().map(|o| o.remove("required"));
                    }
                }
                map.insert("anyOf".into(), variants);
            }
            map.values_mut().for_each(loosen_slots);
        }
        Value::Array(items) => items.iter_mut().for_each(loosen_slots),
        _ => {}
    }
}

/// The schema with `$ref`s resolved on demand.
pub struct Schema {
    root: Value,
}

/// A schema node: `outer` carries the property's own annotations (default, description,
/// x-nonsemantic), `inner` the structure after following `$ref` / `allOf`.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub outer: &'a Value,
    pub inner: &'a Value,
    nonsemantic: bool,
}

/// What a node describes.
pub enum Shape<'a> {
    /// A table with known keys.
    Struct(&'a Map<String, Value>),
    /// A registry slot: a table tagged by `type`, one variant per entry.
    Slot(Vec<Variant<'a>>),
    /// One of a fixed set of strings.
    Enum(Vec<&'a str>),
    Array(Option<Node<'a>>),
    Integer,
    Number,
    String,
    Boolean,
    /// Anything the walker does not model; accepted as is.
    Any,
}

/// One variant of a slot.
#[derive(Clone, Copy)]
pub struct Variant<'a> {
    pub name: &'a str,
    pub node: Node<'a>,
}

impl<'a> Variant<'a> {
    pub fn doc(&self) -> Option<&'a str> {
        self.node.inner.get("description").and_then(Value::as_str)
    }

    /// The variant's parameters, without the `type` tag.
    pub fn params(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.node
            .inner
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != "type")
    }

    pub fn has_param(&self, key: &str) -> bool {
        key == "type" || self.params().any(|(k, _)| k == key)
    }
}

impl Schema {
    pub fn experiment() -> Schema {
        Schema { root: experiment_schema() }
    }

    pub fn json(&self) -> &Value {
        &self.root
    }

    pub fn root(&self) -> Node<'_> {
        self.node(&self.root, false)
    }

    /// The node for a schema value, following `$ref` and single-element `allOf` wrappers.
    pub fn node<'a>(&'a self, outer: &'a Value, parent_nonsemantic: bool) -> Node<'a> {
        let mut inner = outer;
        let mut nonsemantic = parent_nonsemantic || is_nonsemantic(outer);
        loop {
            if let Some(r) = inner.get("$ref").and_then(Value::as_str) {
                inner = self.lookup(r);
            } else if let Some([only]) = inner.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
                inner = only;
            } else {
                break;
            }
            nonsemantic |= is_nonsemantic(inner);
        }
        Node { outer, inner, nonsemantic }
    }

    fn lookup(&self, reference: &str) -> &Value {
        let pointer = reference.strip_prefix('#').unwrap_or(reference);
        self.root.pointer(pointer).unwrap_or(&Value::Null)
    }

    pub fn shape<'a>(&'a self, node: Node<'a>) -> Shape<'a> {
        let s = node.inner;
        if let Some(variants) = s.get("anyOf").or_else(|| s.get("oneOf")).and_then(Value::as_array) {
            let tagged: Vec<Variant<'a>> = variants
                .iter()
                .filter_map(|v| {
                    let name = v.pointer("/properties/type/const").and_then(Value::as_str)?;
                    Some(Variant { name, node: self.node(v, node.nonsemantic) })
                })
                .collect();
            if tagged.len() == variants.len() {
                return Shape::Slot(tagged);
            }
            if let Some(names) =
                variants.iter().map(|v| v.get("const").and_then(Value::as_str)).collect::<Option<Vec<_>>>()
            {
                return Shape::Enum(names);
            }
            return Shape::Any;
        }
        if let Some(names) = s.get("enum").and_then(Value::as_array) {
            return Shape::Enum(names.iter().filter_map(Value::as_str).collect());
        }
        match s.get("type").and_then(Value::as_str) {
            Some("object") => match s.get("properties").and_then(Value::as_object) {
                Some(props) => Shape::Struct(props),
                None => Shape::Any,
            },
            Some("array") => Shape::Array(s.get("items").map(|i| self.node(i, node.nonsemantic))),
            Some("integer") => Shape::Integer,
            Some("number") => Shape::Number,
            Some("string") => Shape::String,
            Some("boolean") => Shape::Boolean,
            _ => Shape::Any,
        }
    }

    /// The node of a struct property.
    pub fn property<'a>(&'a self, parent: Node<'a>, props: &'a Map<String, Value>, key: &str) -> Option<Node<'a>> {
        props.get(key).map(|p| self.node(p, parent.nonsemantic))
    }

    /// Every key path the schema knows, through all variants: for suggestions anywhere.
    pub fn all_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_keys(self.root(), "", &mut out, 0);
        out.sort();
        out.dedup();
        out
    }

    fn collect_keys<'a>(&'a self, node: Node<'a>, prefix: &str, out: &mut Vec<String>, depth: usize) {
        if depth > 16 {
            return;
        }
        let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
        match self.shape(node) {
            Shape::Struct(props) => {
                for (k, p) in props {
                    out.push(join(k));
                    self.collect_keys(self.node(p, node.nonsemantic), &join(k), out, depth + 1);
                }
            }
            Shape::Slot(variants) => {
                for v in variants {
                    for (k, p) in v.params() {
                        out.push(join(k));
                        self.collect_keys(self.node(p, node.nonsemantic), &join(k), out, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

impl<'a> Node<'a> {
    pub fn default(&self) -> Option<&'a Value> {
        self.outer.get("default").or_else(|| self.inner.get("default"))
    }

    pub fn doc(&self) -> Option<&'a str> {
        self.outer.get("description").or_else(|| self.inner.get("description")).and_then(Value::as_str)
    }

    pub fn nonsemantic(&self) -> bool {
        self.nonsemantic
    }

    fn annotation(&self, name: &str) -> Option<&'a Value> {
        self.inner.get(name).or_else(|| self.outer.get(name))
    }

    /// The larger of the declared minimum and the format's (schemars gives u64 fields both).
    pub fn minimum(&self) -> Option<f64> {
        let declared = [self.inner.get("minimum"), self.outer.get("minimum")];
        declared.into_iter().flatten().filter_map(Value::as_f64).reduce(f64::max)
    }

    pub fn maximum(&self) -> Option<f64> {
        self.annotation("maximum").and_then(Value::as_f64)
    }

    pub fn items_len(&self) -> (Option<u64>, Option<u64>) {
        (self.annotation("minItems").and_then(Value::as_u64), self.annotation("maxItems").and_then(Value::as_u64))
    }

    pub fn pattern(&self) -> Option<&'a str> {
        self.annotation("pattern").and_then(Value::as_str)
    }

    /// A short type description for messages and `helico registry show`.
    pub fn type_name(&self, schema: &Schema) -> String {
        let range = match (self.minimum(), self.maximum()) {
            (Some(lo), Some(hi)) => format!(" in [{lo}, {hi}]"),
            (Some(lo), None) => format!(" ≥ {lo}"),
            (None, Some(hi)) => format!(" ≤ {hi}"),
            (None, None) => String::new(),
        };
        match schema.shape(*self) {
            Shape::Struct(_) => "table".into(),
            Shape::Slot(vs) => {
                format!("table (a slot: @{})", vs.iter().map(|v| v.name).collect::<Vec<_>>().join(", @"))
            }
            Shape::Enum(names) => {
                format!("one of {}", names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "))
            }
            Shape::Array(items) => {
                let item = items.map(|i| i.type_name(schema)).unwrap_or_else(|| "value".into());
                match self.items_len() {
                    (Some(a), Some(b)) if a == b => format!("array of {a} × {item}"),
                    _ => format!("array of {item}"),
                }
            }
            Shape::Integer => format!("integer{range}"),
            Shape::Number => format!("number{range}"),
            Shape::String => "string".into(),
            Shape::Boolean => "boolean".into(),
            Shape::Any => "value".into(),
        }
    }
}

fn is_nonsemantic(v: &Value) -> bool {
    v.get(NONSEMANTIC).and_then(Value::as_bool).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_structs_and_marks_are_recognised() {
        let schema = Schema::experiment();
        let root = schema.root();
        let Shape::Struct(props) = schema.shape(root) else { panic!("experiment is a table") };
        let model = schema.property(root, props, "model").expect("model");
        let Shape::Slot(variants) = schema.shape(model) else { panic!("model is a slot") };
        assert!(variants.iter().any(|v| v.name == "d3pm_lm" && v.has_param("n_layers")));
        let runtime = schema.property(root, props, "runtime").expect("runtime");
        assert!(runtime.nonsemantic(), "runtime is non-semantic as a whole");
        assert!(!schema.property(root, props, "seed").expect("seed").nonsemantic());
        assert!(schema.all_keys().contains(&"train.log_every".to_owned()));
    }
}
