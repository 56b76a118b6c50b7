//! Cookies: `/cookies` shows them, `/cookies/set?name=value` and
//! `/cookies/set/<name>/<value>` set them, `/cookies/delete?name` deletes
//! them; the last three redirect to `/cookies`.

use std::time::UNIX_EPOCH;

use serde_json::{json, Map, Value};
use whirl::web::cookie::CookieOptions;
use whirl::web::{Context, HandlerResult, HttpError};

use crate::inspect::query_first_values;
use crate::json::send;

/// Analytics cookies hidden unless the query has `show_env` (httpbin's
/// `ENV_COOKIES`).
const ENV_COOKIES: &[&str] = &[
    "_gauges_unique",
    "_gauges_unique_year",
    "_gauges_unique_month",
    "_gauges_unique_day",
    "_gauges_unique_hour",
    "__utmz",
    "__utma",
    "__utmb",
];

/// `/cookies`: `{"cookies": {name: value}}`.
pub async fn cookies(cx: &mut Context) -> HandlerResult {
    let show_env = cx.request().query_arguments.contains_key("show_env");
    let cookies: Map<String, Value> = cx
        .request()
        .cookies()
        .into_iter()
        .filter(|(name, _)| show_env || !ENV_COOKIES.contains(&name.as_str()))
        .map(|(name, value)| (name, value.into()))
        .collect();
    send(cx, json!({ "cookies": cookies }))
}

/// The cookie attributes httpbin uses: `Path=/`, `Secure` over https.
fn options(cx: &Context) -> CookieOptions {
    CookieOptions {
        secure: cx.request().protocol == "https",
        ..CookieOptions::default()
    }
}

/// A cookie the client named badly is its mistake: 400, not 500.
fn client_error(error: HttpError) -> HttpError {
    let message = error.message().unwrap_or("invalid cookie").to_string();
    HttpError::new(400).log_message(message)
}

/// Answers with a redirect to `/cookies`, as Flask's `redirect()`.
fn to_cookies(cx: &mut Context) -> HandlerResult {
    cx.set_status(302);
    cx.set_header("Location", "/cookies")?;
    cx.set_header("Content-Type", "text/html; charset=utf-8")?;
    cx.write(
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n\
         <h1>Redirecting...</h1>\n<p>You should be redirected automatically to the \
         target URL: <a href=\"/cookies\">/cookies</a>. If not, click the link.\n",
    );
    Ok(())
}

/// `/cookies/set?name=value…`.
pub async fn set(cx: &mut Context) -> HandlerResult {
    let options = options(cx);
    for (name, value) in query_first_values(cx) {
        cx.set_cookie(&name, &value, &options)
            .map_err(client_error)?;
    }
    to_cookies(cx)
}

/// `/cookies/set/<name>/<value>`.
pub async fn set_one(cx: &mut Context) -> HandlerResult {
    let options = options(cx);
    let name = cx.path_arg(0).unwrap_or_default().to_string();
    let value = cx.path_arg(1).unwrap_or_default().to_string();
    cx.set_cookie(&name, &value, &options)
        .map_err(client_error)?;
    to_cookies(cx)
}

/// `/cookies/delete?name…`: each named cookie expires (Werkzeug's
/// `delete_cookie`: empty, `Max-Age=0`, expired in 1970).
pub async fn delete(cx: &mut Context) -> HandlerResult {
    let options = CookieOptions {
        expires: Some(UNIX_EPOCH),
        max_age: Some(0),
        ..CookieOptions::default()
    };
    for (name, _) in query_first_values(cx) {
        cx.set_cookie(&name, "", &options).map_err(client_error)?;
    }
    to_cookies(cx)
}
