//! Canonical JSON for hashing: object keys sorted bytewise, no whitespace, serde_json's
//! escaping and number formatting. Independent of any map-ordering feature of serde_json
//! and of how PostgreSQL's jsonb reorders keys, so a row read back hashes the same.

use serde_json::Value;

/// Canonical text of `v`.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        let a = json!({"b": 1, "a": {"d": [1, "x"], "c": null}});
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#).expect("json");
        assert_eq!(super::to_string(&a), super::to_string(&b));
        assert_eq!(super::to_string(&a), r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }
}
