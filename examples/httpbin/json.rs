//! JSON written the way httpbin's Flask writes it, so bodies compare byte
//! for byte: keys sorted, non-ASCII escaped as `\uXXXX` (Python's
//! `ensure_ascii`), and either indented by two spaces (`jsonify`) or on one
//! line with `", "` and `": "` between items (`json.dumps`).

use serde_json::Value;
use whirl::web::{Context, HandlerResult};

/// Answers with `value` as `jsonify` does: indented, then a newline, as
/// `application/json`.
pub fn send(cx: &mut Context, value: Value) -> HandlerResult {
    cx.set_header("Content-Type", "application/json")?;
    cx.write(pretty(&value));
    Ok(())
}

/// `value` as `jsonify` writes it: indented by two, then a newline.
pub fn pretty(value: &Value) -> String {
    let mut out = String::new();
    write(&mut out, value, Some(0));
    out.push('\n');
    out
}

/// `value` on one line, as Python's `json.dumps(value)` writes it.
pub fn one_line(value: &Value) -> String {
    let mut out = String::new();
    write(&mut out, value, None);
    out
}

/// Appends `value`; `indent` is the current depth when pretty-printing,
/// `None` for one line.
fn write(out: &mut String, value: &Value, indent: Option<usize>) {
    let (open_item, close) = match indent {
        Some(depth) => (
            format!("\n{}", "  ".repeat(depth + 1)),
            format!("\n{}", "  ".repeat(depth)),
        ),
        None => (String::new(), String::new()),
    };
    let separator = if indent.is_some() { "," } else { ", " };
    let inner = indent.map(|depth| depth + 1);
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                out.push_str(&open_item);
                write(out, item, inner);
            }
            out.push_str(&close);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                out.push_str(&open_item);
                write_str(out, key);
                out.push_str(": ");
                write(out, &map[key], inner);
            }
            out.push_str(&close);
            out.push('}');
        }
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
        Value::String(s) => write_str(out, s),
        other => out.push_str(&other.to_string()),
    }
}

/// A string literal with Python's `ensure_ascii` escapes.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}
