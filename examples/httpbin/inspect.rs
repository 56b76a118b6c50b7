//! Request inspection: httpbin's `get_dict` (the `args`, `data`, `files`,
//! `form`, `headers`, `json`, `method`, `origin` and `url` of a request)
//! and the endpoints that echo it — `/get`, `/post`, `/put`, `/patch`,
//! `/delete`, `/anything`, `/headers`, `/ip`, `/user-agent`.

use std::str::FromStr;

use base64::Engine;
use serde_json::{json, Map, Value};
use whirl::httpserver::{parse_qsl_bytes, Arguments, DEFAULT_MAX_FIELDS};
use whirl::web::{Context, HandlerResult, HttpError};

use crate::json::send;

/// One key of httpbin's request dict.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    /// The full URL, with the scheme a proxy reports.
    Url,
    /// The query arguments.
    Args,
    /// The form fields of a urlencoded or multipart body.
    Form,
    /// The body as text (empty for a form).
    Data,
    /// The client's address.
    Origin,
    /// The request headers.
    Headers,
    /// The files of a multipart body.
    Files,
    /// The body parsed as JSON, or `null`.
    Json,
    /// The method.
    Method,
}

/// What `/get` shows.
pub const GET: &[Field] = &[Field::Url, Field::Args, Field::Headers, Field::Origin];
/// What `/post`, `/put`, `/patch` and `/delete` show.
pub const BODY: &[Field] = &[
    Field::Url,
    Field::Args,
    Field::Form,
    Field::Data,
    Field::Origin,
    Field::Headers,
    Field::Files,
    Field::Json,
];

/// What `/anything` shows.
pub const ANYTHING: &[Field] = &[
    Field::Url,
    Field::Args,
    Field::Headers,
    Field::Origin,
    Field::Method,
    Field::Form,
    Field::Data,
    Field::Files,
    Field::Json,
];

/// Headers a hosting proxy adds, hidden unless the query has `show_env`
/// (httpbin's `ENV_HEADERS`).
const ENV_HEADERS: &[&str] = &[
    "X-Varnish",
    "X-Request-Start",
    "X-Heroku-Queue-Depth",
    "X-Real-Ip",
    "X-Forwarded-Proto",
    "X-Forwarded-Protocol",
    "X-Forwarded-Ssl",
    "X-Heroku-Queue-Wait-Time",
    "X-Forwarded-For",
    "X-Heroku-Dynos-In-Use",
    "X-Forwarded-Port",
    "X-Request-Id",
    "Via",
    "Total-Route-Time",
    "Connect-Time",
];

/// httpbin's `get_dict(*fields)`.
pub fn get_dict(cx: &Context, fields: &[Field]) -> Map<String, Value> {
    let request = cx.request();
    let mut dict = Map::new();
    for &field in fields {
        let (key, value) = match field {
            Field::Url => ("url", Value::from(url(cx))),
            Field::Args => ("args", semiflatten(&request.query_arguments)),
            Field::Form => ("form", semiflatten(&request.body_arguments)),
            Field::Data => ("data", Value::from(data(cx))),
            Field::Origin => ("origin", origin(cx)),
            Field::Headers => ("headers", headers(cx)),
            Field::Files => ("files", files(cx)),
            Field::Json => ("json", parsed_json(cx)),
            Field::Method => ("method", Value::from(request.method())),
        };
        dict.insert(key.to_string(), value);
    }
    dict
}

/// The request URL; the scheme is the one a proxy reports in
/// `X-Forwarded-Proto`, `X-Forwarded-Protocol` or `X-Forwarded-Ssl: on`.
pub fn url(cx: &Context) -> String {
    let request = cx.request();
    let headers = &request.headers;
    let forwarded = headers
        .get("X-Forwarded-Proto")
        .or_else(|| headers.get("X-Forwarded-Protocol"))
        .or_else(|| (headers.get("X-Forwarded-Ssl") == Some("on")).then_some("https"));
    let url = request.full_url();
    match forwarded {
        Some(scheme) => format!("{scheme}{}", &url[request.protocol.len()..]),
        None => url,
    }
}

/// The client: `X-Forwarded-For` when a proxy set it, else the peer.
pub fn origin(cx: &Context) -> Value {
    let request = cx.request();
    match request.headers.get("X-Forwarded-For") {
        Some(forwarded) => Value::from(forwarded),
        None => request
            .remote_ip
            .map_or(Value::Null, |ip| ip.to_string().into()),
    }
}

/// The headers as a WSGI server hands them to Flask: names title-cased,
/// repeated ones joined with `,`, in the order they came; proxy headers
/// hidden (see [`ENV_HEADERS`]).
pub fn header_pairs(cx: &Context) -> Vec<(String, String)> {
    let request = cx.request();
    let show_env = request.query_arguments.contains_key("show_env");
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, value) in request.headers.iter() {
        let name = title_case(name);
        if !show_env && ENV_HEADERS.contains(&name.as_str()) {
            continue;
        }
        match pairs.iter_mut().find(|(seen, _)| *seen == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            None => pairs.push((name, value.to_string())),
        }
    }
    pairs
}

/// [`header_pairs`] as a JSON object.
pub fn headers(cx: &Context) -> Value {
    let pairs = header_pairs(cx).into_iter();
    Value::Object(pairs.map(|(name, value)| (name, value.into())).collect())
}

/// Python's `str.title()` on a header name: `x-api-key` → `X-Api-Key`.
fn title_case(name: &str) -> String {
    let mut after_letter = false;
    name.chars()
        .map(|c| {
            let out = if after_letter {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
            after_letter = c.is_ascii_alphabetic();
            out
        })
        .collect()
}

/// Werkzeug's `MultiDict` flattened: one value as a string, several as a
/// list.
fn semiflatten(arguments: &Arguments) -> Value {
    let flat = arguments.iter().map(|(name, values)| {
        let mut texts: Vec<Value> = values
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned().into())
            .collect();
        let value = match texts.len() {
            1 => texts.remove(0),
            _ => Value::Array(texts),
        };
        (name.clone(), value)
    });
    Value::Object(flat.collect())
}

/// Whether the body is a form (Werkzeug parses those and leaves `data`
/// empty).
fn is_form(cx: &Context) -> bool {
    let content_type = cx.request().headers.get("Content-Type").unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        || mime.eq_ignore_ascii_case("multipart/form-data")
}

/// The body as text: empty for a form, a `data:` URL when it is not UTF-8.
fn data(cx: &Context) -> String {
    if is_form(cx) {
        return String::new();
    }
    json_safe(&cx.request().body, "application/octet-stream")
}

/// httpbin's `json_safe`: UTF-8 text as it is, anything else as a
/// `data:<type>;base64,…` URL.
fn json_safe(bytes: &[u8], content_type: &str) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            format!("data:{content_type};base64,{encoded}")
        }
    }
}

/// The body parsed as JSON, `null` when it is not JSON (or is a form).
fn parsed_json(cx: &Context) -> Value {
    if is_form(cx) {
        return Value::Null;
    }
    serde_json::from_slice(&cx.request().body).unwrap_or(Value::Null)
}

/// Uploaded files by field: each file's content (a `data:` URL when
/// binary), a list when a field has several.
fn files(cx: &Context) -> Value {
    let files = cx.request().files.iter().map(|(name, files)| {
        let mut contents: Vec<Value> = files
            .iter()
            .map(|file| {
                // whirl says `application/unknown` when the part had no type.
                let content_type = match file.content_type.as_str() {
                    "" | "application/unknown" => "application/octet-stream",
                    other => other,
                };
                json_safe(&file.body, content_type).into()
            })
            .collect();
        let value = match contents.len() {
            1 => contents.remove(0),
            _ => Value::Array(contents),
        };
        (name.clone(), value)
    });
    Value::Object(files.collect())
}

/// `/get`: url, args, headers, origin.
pub async fn get(cx: &mut Context) -> HandlerResult {
    let dict = get_dict(cx, GET);
    send(cx, Value::Object(dict))
}

/// `/post`, `/put`, `/patch`, `/delete`: the request with its body.
pub async fn with_body(cx: &mut Context) -> HandlerResult {
    let dict = get_dict(cx, BODY);
    send(cx, Value::Object(dict))
}

/// `/anything[/…]`: everything, the method too.
pub async fn anything(cx: &mut Context) -> HandlerResult {
    let dict = get_dict(cx, ANYTHING);
    send(cx, Value::Object(dict))
}

/// `/headers`.
pub async fn headers_view(cx: &mut Context) -> HandlerResult {
    let headers = headers(cx);
    send(cx, json!({ "headers": headers }))
}

/// `/ip`.
pub async fn ip(cx: &mut Context) -> HandlerResult {
    let origin = origin(cx);
    send(cx, json!({ "origin": origin }))
}

/// `/user-agent` (`null` when the client sent none).
pub async fn user_agent(cx: &mut Context) -> HandlerResult {
    let agent = cx.request().headers.get("User-Agent").map(str::to_string);
    send(cx, json!({ "user-agent": agent }))
}

/// The query's `(name, value)` pairs in order (values decoded as UTF-8,
/// lossily, as Werkzeug does).
pub fn query_pairs(cx: &Context) -> Vec<(String, String)> {
    let query = cx.request().query().as_bytes();
    parse_qsl_bytes(query, true, Some(DEFAULT_MAX_FIELDS))
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect()
}

/// The query's names with their first value, in order (Werkzeug's
/// `request.args.items()`).
pub fn query_first_values(cx: &Context) -> Vec<(String, String)> {
    let mut firsts: Vec<(String, String)> = Vec::new();
    for (name, value) in query_pairs(cx) {
        if !firsts.iter().any(|(seen, _)| *seen == name) {
            firsts.push((name, value));
        }
    }
    firsts
}

/// The first value of query argument `name`, whatever its case (httpbin
/// reads some arguments through a `CaseInsensitiveDict`).
pub fn query_ignoring_case(cx: &Context, name: &str) -> Option<String> {
    query_first_values(cx)
        .into_iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// Query argument `name` (any case) as a number, `default` when absent.
///
/// # Errors
///
/// 400 when it is not a number.
pub fn number_arg<T: FromStr>(cx: &Context, name: &str, default: T) -> Result<T, HttpError> {
    match query_ignoring_case(cx, name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| HttpError::new(400).log_message(format!("{name} must be a number"))),
    }
}

/// Path group `index`, all digits (the route says so), as a number; one
/// too large for `u64` is `u64::MAX` (every endpoint caps it anyway).
pub fn path_number(cx: &Context, index: usize) -> u64 {
    cx.path_arg(index)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::title_case;

    #[test]
    fn header_names_are_title_cased_as_python_does() {
        assert_eq!(title_case("x-api-key"), "X-Api-Key");
        assert_eq!(title_case("USER-AGENT"), "User-Agent");
        assert_eq!(title_case("x-abc1def"), "X-Abc1Def");
        assert_eq!(title_case("dnt"), "Dnt");
    }
}
