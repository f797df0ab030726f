//! Content hashes of structured values: blake3 over canonical JSON (keys sorted), so a hash
//! depends on what a value is, not on how it was built.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// `value` with every object's keys sorted, recursively. (serde_json here preserves insertion
/// order, so serializing the input as is would make the hash depend on how it was built.)
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> = map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect::<Map<String, Value>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Hex blake3 of a value's canonical JSON text.
pub fn of_json(value: &Value) -> String {
    blake3::hash(canonical(value).to_string().as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_recursively() {
        let a = json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": null}});
        assert_eq!(canonical(&a).to_string(), r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#);
        assert_eq!(of_json(&a), of_json(&json!({"a": {"c": null, "d": [{"y": 2, "z": 1}]}, "b": 1})));
    }
}
