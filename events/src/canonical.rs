//! Canonical JSON: the exact bytes an event's hash is computed over.
//!
//! PostgreSQL's `jsonb` does not keep key order or whitespace, so the hash
//! cannot be taken over "whatever serde wrote". Canonical form is: object keys
//! sorted by their UTF-8 bytes, no insignificant whitespace, strings escaped
//! as serde_json escapes them, numbers as serde_json prints them. The same
//! value always gives the same bytes, wherever it was stored or read.

use serde_json::Value;

/// Writes `value` in canonical form.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut out);
    out
}

/// An object written key by key, the caller giving the keys in canonical
/// (byte) order: for a record whose fields are known, without building a
/// `Value` of it first.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(key, self.out);
        self.out.push(b':');
    }

    /// A field whose value serializes to a scalar (a string, a number, a
    /// bool, null): written as serde_json writes it, which is its canonical
    /// form.
    pub fn field<T: serde::Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        self.key(key);
        serde_json::to_writer(&mut *self.out, value).expect("a scalar serializes");
    }

    /// A field holding any JSON value, written canonically.
    pub fn value(&mut self, key: &str, value: &Value) {
        self.key(key);
        write(value, self.out);
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(key, out);
                out.push(b':');
                write(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_str(s, out),
        // Numbers, booleans and null as serde_json prints them.
        other => serde_json::to_writer(&mut *out, other).expect("a JSON scalar serializes"),
    }
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is deterministic; reuse it (what
    // `Value::String(s).to_string()` writes, without the two copies).
    serde_json::to_writer(&mut *out, s).expect("a string serializes");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": null, "y": "x"}], "c": true}});
        assert_eq!(
            String::from_utf8(to_bytes(&v)).unwrap(),
            r#"{"a":{"c":true,"d":[1,{"y":"x","z":null}]},"b":1}"#
        );
    }

    #[test]
    fn strings_are_escaped() {
        let v = json!({"k": "a\"b\n\u{1}"});
        assert_eq!(
            String::from_utf8(to_bytes(&v)).unwrap(),
            r#"{"k":"a\"b\n\u0001"}"#
        );
    }
}
