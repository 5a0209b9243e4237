//! How the client prints: aligned tables and `key  value` lists for people,
//! JSON for scripts (`--json`: an object as it came, a list as one JSON
//! object per line, so pages can stream).

use std::io::Write;

use serde_json::Value;

use super::failure::Failure;

/// A table column: its title, the member it shows (`a.b` reaches into an
/// object) and the width it pads to, so rows of later pages line up.
pub struct Column {
    pub title: &'static str,
    pub key: &'static str,
    pub width: usize,
}

pub const fn col(title: &'static str, key: &'static str, width: usize) -> Column {
    Column { title, key, width }
}

/// Where and how output goes.
pub struct Out {
    pub json: bool,
    header_done: bool,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out {
            json,
            header_done: false,
        }
    }

    /// One resource.
    pub fn object(&mut self, v: &Value) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(&mut out, v).map_err(io)?;
            writeln!(out).map_err(io)?;
        } else {
            crate::audit::output::key_values(&mut out, v).map_err(io)?;
        }
        out.flush().map_err(io)
    }

    /// Rows of a list; the header is printed before the first row only.
    pub fn rows(&mut self, columns: &[Column], items: &[Value]) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        for item in items {
            if self.json {
                serde_json::to_writer(&mut out, item).map_err(io)?;
                writeln!(out).map_err(io)?;
                continue;
            }
            if !self.header_done {
                let titles: Vec<String> = columns.iter().map(|c| c.title.to_owned()).collect();
                writeln!(out, "{}", line(columns, &titles)).map_err(io)?;
                self.header_done = true;
            }
            let cells: Vec<String> = columns.iter().map(|c| cell(item, c.key)).collect();
            writeln!(out, "{}", line(columns, &cells)).map_err(io)?;
        }
        out.flush().map_err(io)
    }

    /// A plain line (tables only; scripts get the JSON).
    pub fn note(&mut self, text: &str) -> Result<(), Failure> {
        if self.json {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}").map_err(io)?;
        out.flush().map_err(io)
    }
}

fn line(columns: &[Column], cells: &[String]) -> String {
    let mut s = String::new();
    for (i, (c, v)) in columns.iter().zip(cells).enumerate() {
        if i + 1 == columns.len() {
            s.push_str(v);
        } else {
            s.push_str(&format!("{v:<w$}  ", w = c.width));
        }
    }
    s.trim_end().to_owned()
}

/// A member as table text: strings as they are, absent or null as `-`,
/// anything else as compact JSON.
pub fn cell(item: &Value, key: &str) -> String {
    let mut v = item;
    for part in key.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return "-".into(),
        }
    }
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn io(e: impl std::fmt::Display) -> Failure {
    Failure::Other(format!("writing output: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_reach_into_objects_and_show_null_as_a_dash() {
        let v = json!({"a": {"b": 7}, "s": "x", "n": null, "c": {"k": "v"}});
        assert_eq!(cell(&v, "a.b"), "7");
        assert_eq!(cell(&v, "s"), "x");
        assert_eq!(cell(&v, "n"), "-");
        assert_eq!(cell(&v, "missing"), "-");
        assert_eq!(cell(&v, "c"), r#"{"k":"v"}"#);
    }

    #[test]
    fn rows_pad_to_the_column_width_and_the_last_column_runs_free() {
        let cols = [col("ID", "id", 4), col("NAME", "name", 3)];
        assert_eq!(
            line(&cols, &["1".into(), "long name".into()]),
            "1     long name"
        );
    }
}
