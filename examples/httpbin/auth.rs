//! Authentication: `/basic-auth/<user>/<passwd>`,
//! `/hidden-basic-auth/<user>/<passwd>` and `/bearer`.

use base64::Engine;
use serde_json::json;
use whirl::web::{Context, HandlerResult};

use crate::json::send;
use crate::status::answer_status;

/// The user and password of an `Authorization: Basic …` header.
fn basic_credentials(cx: &Context) -> Option<(String, String)> {
    let header = cx.request().headers.get("Authorization")?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8_lossy(&decoded).into_owned();
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Whether the request carries the user and password of the route.
fn authorized(cx: &Context) -> Option<String> {
    let user = cx.path_arg(0)?;
    let password = cx.path_arg(1)?;
    let (sent_user, sent_password) = basic_credentials(cx)?;
    (sent_user == user && sent_password == password).then(|| user.to_string())
}

/// `/basic-auth/<user>/<passwd>`: 200 with the user for the right
/// credentials, else 401 asking for them.
pub async fn basic_auth(cx: &mut Context) -> HandlerResult {
    match authorized(cx) {
        Some(user) => send(cx, json!({ "authenticated": true, "user": user })),
        None => answer_status(cx, 401),
    }
}

/// `/hidden-basic-auth/<user>/<passwd>`: as `/basic-auth`, but 404
/// instead of 401.
pub async fn hidden_basic_auth(cx: &mut Context) -> HandlerResult {
    match authorized(cx) {
        Some(user) => send(cx, json!({ "authenticated": true, "user": user })),
        None => answer_status(cx, 404),
    }
}

/// `/bearer`: 200 with the token of `Authorization: Bearer <token>`, else
/// 401 with `WWW-Authenticate: Bearer`.
pub async fn bearer(cx: &mut Context) -> HandlerResult {
    let token = cx
        .request()
        .headers
        .get("Authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    match token {
        Some(token) => send(cx, json!({ "authenticated": true, "token": token })),
        None => {
            cx.set_status(401);
            cx.set_header("WWW-Authenticate", "Bearer")
        }
    }
}
