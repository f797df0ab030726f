//! `helico registry`: the slots, their variants and each variant's parameters, read from the
//! experiment schema so the listing can never drift from what validation accepts.

use serde::Serialize;
use serde_json::Value as Json;

use crate::config::schema::{Node, Schema, Shape};

/// A slot: a key whose value is one of several registered variants.
#[derive(Debug, Clone, Serialize)]
pub struct SlotInfo {
    /// Dotted key of the slot in an experiment (`model`, `runtime.attention`).
    pub key: String,
    pub doc: Option<String>,
    pub default: Option<String>,
    pub semantic: bool,
    pub variants: Vec<VariantInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantInfo {
    pub name: String,
    pub doc: Option<String>,
    pub params: Vec<ParamInfo>,
}

/// One parameter of a variant (nested tables flattened to dotted keys).
#[derive(Debug, Clone, Serialize)]
pub struct ParamInfo {
    pub key: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub default: Option<Json>,
    pub doc: Option<String>,
    pub semantic: bool,
}

/// Every slot in the experiment schema, in schema order.
pub fn slots(schema: &Schema) -> Vec<SlotInfo> {
    let mut out = Vec::new();
    collect(schema, schema.root(), "", &mut out);
    out
}

fn collect(schema: &Schema, node: Node<'_>, prefix: &str, out: &mut Vec<SlotInfo>) {
    let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    match schema.shape(node) {
        Shape::Struct(props) => {
            for (k, p) in props {
                collect(schema, schema.node(p, node.nonsemantic()), &join(k), out);
            }
        }
        Shape::Slot(variants) => {
            let default = node.default().and_then(|d| d.get("type")).and_then(Json::as_str).map(str::to_owned);
            let variants = variants
                .iter()
                .map(|v| {
                    let mut params = Vec::new();
                    params_of(schema, v.node, "", &mut params);
                    VariantInfo { name: v.name.to_owned(), doc: v.doc().map(unwrap_doc), params }
                })
                .collect();
            out.push(SlotInfo {
                key: prefix.to_owned(),
                doc: node.doc().map(unwrap_doc),
                default,
                semantic: !node.nonsemantic(),
                variants,
            });
            for v in schema_variants(schema, node) {
                let Shape::Struct(props) = schema.shape(v) else { continue };
                for (k, p) in props {
                    collect(schema, schema.node(p, v.nonsemantic()), &join(k), out);
                }
            }
        }
        _ => {}
    }
}

fn schema_variants<'a>(schema: &'a Schema, node: Node<'a>) -> Vec<Node<'a>> {
    match schema.shape(node) {
        Shape::Slot(vs) => vs.into_iter().map(|v| v.node).collect(),
        _ => Vec::new(),
    }
}

fn params_of(schema: &Schema, node: Node<'_>, prefix: &str, out: &mut Vec<ParamInfo>) {
    let Shape::Struct(props) = schema.shape(node) else { return };
    for (k, p) in props {
        if k == "type" {
            continue;
        }
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        let child = schema.node(p, node.nonsemantic());
        if let Shape::Struct(_) = schema.shape(child) {
            params_of(schema, child, &key, out);
            continue;
        }
        out.push(ParamInfo {
            key,
            type_name: child.type_name(schema),
            default: child.default().cloned(),
            doc: child.doc().map(unwrap_doc),
            semantic: !child.nonsemantic(),
        });
    }
}

/// Find `slot` or `slot.variant` (a slot is named by its full key or its last segment).
pub fn find<'a>(slots: &'a [SlotInfo], spec: &str) -> Result<(&'a SlotInfo, Option<&'a VariantInfo>), String> {
    let by_key = |k: &str| slots.iter().find(|s| s.key == k || s.key.rsplit('.').next() == Some(k));
    if let Some(slot) = by_key(spec) {
        return Ok((slot, None));
    }
    if let Some((k, v)) = spec.rsplit_once('.')
        && let Some(slot) = by_key(k)
    {
        let name = v.trim_start_matches('@');
        return match slot.variants.iter().find(|x| x.name == name) {
            Some(variant) => Ok((slot, Some(variant))),
            None => {
                let names: Vec<&str> = slot.variants.iter().map(|x| x.name.as_str()).collect();
                let near = crate::config::error::did_you_mean(name, names.iter().copied());
                let hint = near.map(|n| format!(" (did you mean `{}.{n}`?)", slot.key)).unwrap_or_default();
                Err(format!("slot `{}` has no variant `{name}`{hint}; variants: {}", slot.key, names.join(", ")))
            }
        };
    }
    let keys: Vec<&str> = slots.iter().map(|s| s.key.as_str()).collect();
    let near = crate::config::error::did_you_mean(spec, keys.iter().copied());
    let hint = near.map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default();
    Err(format!("no slot `{spec}`{hint}; slots: {}", keys.join(", ")))
}

/// `helico registry list`: slots, their variants, defaults marked.
pub fn render_list(slots: &[SlotInfo]) -> String {
    let mut out = String::new();
    for s in slots {
        let runtime = if s.semantic { "" } else { "  (runtime choice: not in the config hash)" };
        out.push_str(&format!("{}{runtime}\n", s.key));
        if let Some(doc) = &s.doc {
            out.push_str(&format!("    {doc}\n"));
        }
        for v in &s.variants {
            let default = if s.default.as_deref() == Some(&v.name) { " (default)" } else { "" };
            out.push_str(&format!("  @{:<20}{}{default}\n", v.name, first_line(v.doc.as_deref())));
        }
    }
    out.push_str("\nSwitch a slot with `slot=@variant`; `helico registry show slot.variant` lists its parameters.\n");
    out
}

/// `helico registry show`: a variant's parameters with type, default and doc (or every
/// variant of a slot).
pub fn render_show(slot: &SlotInfo, variant: Option<&VariantInfo>) -> String {
    let mut out = String::new();
    let variants: Vec<&VariantInfo> = match variant {
        Some(v) => vec![v],
        None => slot.variants.iter().collect(),
    };
    for v in variants {
        out.push_str(&format!("{}=@{}\n", slot.key, v.name));
        if let Some(doc) = &v.doc {
            out.push_str(&format!("  {doc}\n"));
        }
        if v.params.is_empty() {
            out.push_str("  (no parameters)\n");
        }
        for p in &v.params {
            let default = p.default.as_ref().map(|d| format!(" = {d}")).unwrap_or_default();
            let mark = if p.semantic { "" } else { " [non-semantic]" };
            out.push_str(&format!("  {}.{}: {}{default}{mark}\n", slot.key, p.key, p.type_name));
            if let Some(doc) = &p.doc {
                out.push_str(&format!("      {doc}\n"));
            }
        }
        out.push('\n');
    }
    out
}

fn first_line(doc: Option<&str>) -> &str {
    doc.and_then(|d| d.split(". ").next()).unwrap_or("")
}

/// Doc comments arrive with their source line breaks; rejoin wrapped lines.
fn unwrap_doc(doc: &str) -> String {
    doc.split("\n\n").map(|para| para.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_of_the_registry_is_listed() {
        let slots = slots(&Schema::experiment());
        let keys: Vec<&str> = slots.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["model", "loss", "optimizer", "schedule", "data", "runtime.attention"]);
        let (slot, variant) = find(&slots, "attention.math").expect("found");
        assert_eq!((slot.key.as_str(), variant.map(|v| v.name.as_str())), ("runtime.attention", Some("math")));
        assert!(!slot.semantic);
        assert!(find(&slots, "model.d3pm").unwrap_err().contains("did you mean `model.d3pm_lm`"));
    }
}
