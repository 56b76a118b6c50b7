//! Caching and response headers: `/cache`, `/cache/<n>`, `/etag/<etag>`
//! and `/response-headers`.

use std::time::SystemTime;

use serde_json::{Map, Value};
use whirl::httpserver::format_timestamp;
use whirl::web::{Context, HandlerResult, HttpError};

use crate::inspect::{get_dict, query_pairs, GET};
use crate::json::send;
use crate::status::answer_status;

/// `/cache`: 304 when the request is conditional (`If-Modified-Since` or
/// `If-None-Match`), else `/get`'s answer with a `Last-Modified` of now
/// and a fresh `ETag`.
pub async fn cache(cx: &mut Context) -> HandlerResult {
    let headers = &cx.request().headers;
    let conditional = ["If-Modified-Since", "If-None-Match"]
        .iter()
        .any(|name| headers.get(name).is_some_and(|v| !v.is_empty()));
    if conditional {
        return answer_status(cx, 304);
    }
    cx.set_header("Last-Modified", format_timestamp(SystemTime::now()))?;
    cx.set_header("ETag", uuid_hex())?;
    let dict = get_dict(cx, GET);
    send(cx, Value::Object(dict))
}

/// A random UUID's 32 hex digits (Python's `uuid4().hex`).
fn uuid_hex() -> String {
    crate::dynamic::uuid4().replace('-', "")
}

/// `/cache/<n>`: `/get`'s answer with `Cache-Control: public, max-age=n`.
pub async fn cache_for(cx: &mut Context) -> HandlerResult {
    let seconds = cx.path_arg(0).unwrap_or("0").to_string();
    cx.set_header("Cache-Control", format!("public, max-age={seconds}"))?;
    let dict = get_dict(cx, GET);
    send(cx, Value::Object(dict))
}

/// The tags of an `If-None-Match`/`If-Match` header, quotes and `W/`
/// dropped (httpbin's `parse_multi_value_header`).
fn tags(header: Option<&str>) -> Vec<String> {
    let Some(header) = header else {
        return Vec::new();
    };
    header
        .split(',')
        .map(|part| {
            let part = part.trim_start();
            let part = part.strip_prefix("W/").unwrap_or(part);
            let part = part.strip_prefix('"').unwrap_or(part);
            part.split('"').next().unwrap_or("").to_string()
        })
        .collect()
}

/// `/etag/<etag>`: 304 when `If-None-Match` names the tag (or `*`), 412
/// when `If-Match` names others only, else `/get`'s answer with
/// `ETag: <etag>`.
pub async fn etag(cx: &mut Context) -> HandlerResult {
    let etag = cx.path_arg(0).unwrap_or_default().to_string();
    let headers = &cx.request().headers;
    let if_none_match = tags(headers.get("If-None-Match"));
    let if_match = tags(headers.get("If-Match"));
    let named = |tags: &[String]| tags.iter().any(|t| *t == etag || t == "*");
    if !if_none_match.is_empty() {
        if named(&if_none_match) {
            answer_status(cx, 304)?;
            return cx.set_header("ETag", etag);
        }
    } else if !if_match.is_empty() && !named(&if_match) {
        return answer_status(cx, 412);
    }
    cx.set_header("ETag", etag)?;
    let dict = get_dict(cx, GET);
    send(cx, Value::Object(dict))
}

/// `/response-headers?name=value…`: each pair becomes a response header,
/// and the body lists every header of the response — its own
/// `Content-Length` included, computed until it holds still, as httpbin
/// does. Framing headers (`Content-Length`, `Transfer-Encoding`) are
/// listed but not sent, or the response could not be read.
pub async fn response_headers(cx: &mut Context) -> HandlerResult {
    let pairs = query_pairs(cx);
    let mut listed = Map::new();
    listed.insert("Content-Type".into(), "application/json".into());
    for (name, value) in &pairs {
        match listed.get_mut(name) {
            Some(Value::Array(values)) => values.push(value.as_str().into()),
            Some(first) => *first = Value::Array(vec![first.clone(), value.as_str().into()]),
            None => {
                listed.insert(name.clone(), value.as_str().into());
            }
        }
    }
    // The body holds its own length: try lengths until one is right.
    let mut length = 0;
    let body = loop {
        listed.insert("Content-Length".into(), length.to_string().into());
        let body = crate::json::pretty(&Value::Object(listed.clone()));
        if body.len() == length {
            break body;
        }
        length = body.len();
    };
    cx.set_header("Content-Type", "application/json")?;
    for (name, value) in &pairs {
        let framing = ["Content-Length", "Transfer-Encoding"]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name));
        if !framing {
            cx.add_header(name, value).map_err(|e| {
                HttpError::new(400).log_message(e.message().unwrap_or("").to_string())
            })?;
        }
    }
    cx.write(body);
    Ok(())
}
