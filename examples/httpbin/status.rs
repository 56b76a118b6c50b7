//! Status codes and redirects: `/status/<codes>`, `/redirect/<n>`,
//! `/relative-redirect/<n>`, `/absolute-redirect/<n>` and `/redirect-to`.

use whirl::web::escape::xhtml_escape;
use whirl::web::{Context, HandlerResult};

use crate::inspect::query_ignoring_case;
use crate::random;

/// Where redirect statuses point (httpbin's `REDIRECT_LOCATION`).
const REDIRECT_LOCATION: &str = "/redirect/1";

/// The body of a 418.
const TEAPOT: &str = r#"
    -=[ teapot ]=-

       _...._
     .'  _ _ `.
    | ."` ^ `". _,
    \_;`"---"`|//
      |       ;/
      \_     _/
        `"""`
"#;

/// The body of a 406 (Python's `json.dumps`, keys in its order).
const NOT_ACCEPTABLE: &str = r#"{"message": "Client did not request a supported media type.", "accept": ["image/webp", "image/svg+xml", "image/jpeg", "image/png", "image/*"]}"#;

/// Answers `code` as httpbin's `status_code()` does: a redirect status
/// points at `/redirect/1`, 401 and 407 ask for credentials, 402, 406 and
/// 418 have their jokes. Where httpbin sets headers, they replace the
/// default ones (so there is no `Content-Type`).
pub fn answer_status(cx: &mut Context, code: u16) -> HandlerResult {
    let (body, headers): (&str, &[(&str, &str)]) = match code {
        301 | 302 | 303 | 305 | 307 => ("", &[("Location", REDIRECT_LOCATION)]),
        401 => ("", &[("WWW-Authenticate", r#"Basic realm="Fake Realm""#)]),
        402 => (
            "Fuck you, pay me!",
            &[("x-more-info", "http://vimeo.com/22053820")],
        ),
        406 => (NOT_ACCEPTABLE, &[("Content-Type", "application/json")]),
        407 => ("", &[("Proxy-Authenticate", r#"Basic realm="Fake Realm""#)]),
        418 => (
            TEAPOT,
            &[("x-more-info", "http://tools.ietf.org/html/rfc2324")],
        ),
        _ => {
            cx.set_status(code);
            return Ok(());
        }
    };
    match code {
        // RFC 9110 keeps 418 unassigned, so whirl knows no reason for it.
        418 => cx.set_status_reason(code, "I'm a teapot"),
        _ => cx.set_status(code),
    }
    cx.clear_header("Content-Type");
    for (name, value) in headers {
        cx.set_header(name, value)?;
    }
    cx.write(body);
    Ok(())
}

/// A plain-text 400 (Werkzeug's `Response(message, status=400)`).
pub fn bad_request(cx: &mut Context, message: &str) -> HandlerResult {
    cx.set_status(400);
    cx.set_header("Content-Type", "text/plain; charset=utf-8")?;
    cx.write(message.to_string());
    Ok(())
}

/// `/status/<codes>`: one code, or a comma list of `code` or
/// `code:weight` to pick from at random.
pub async fn status(cx: &mut Context) -> HandlerResult {
    let codes = cx.path_arg(0).unwrap_or_default().to_string();
    let mut choices = Vec::new();
    for choice in codes.split(',') {
        let (code, weight) = choice.split_once(':').unwrap_or((choice, "1"));
        let code = code.trim().parse::<u16>().ok();
        let weight = weight.trim().parse::<f64>().ok();
        // 1xx would be taken for an interim answer and the client would
        // wait for another: whirl refuses them (httpbin sends them).
        match (code, weight) {
            (Some(code @ 200..=999), Some(weight)) if weight.is_finite() => {
                choices.push((code, weight.max(0.0)))
            }
            _ => return bad_request(cx, "Invalid status code"),
        }
    }
    let code = weighted_choice(&choices);
    answer_status(cx, code)
}

/// httpbin's `weighted_choice`: `x` uniform in `[0, total)`, then the
/// first choice whose cumulative weight is past it.
fn weighted_choice(choices: &[(u16, f64)]) -> u16 {
    let total: f64 = choices.iter().map(|(_, w)| w).sum();
    let x = random::uniform() * total;
    let mut cumulative = 0.0;
    for &(code, weight) in choices {
        cumulative += weight;
        if x < cumulative {
            return code;
        }
    }
    choices.last().map_or(200, |&(code, _)| code)
}

/// Redirects to `location` as Flask's `redirect()` does: 302 with a
/// small HTML page linking to it.
fn flask_redirect(cx: &mut Context, location: &str) -> HandlerResult {
    cx.set_status(302);
    cx.set_header("Location", location)?;
    cx.set_header("Content-Type", "text/html; charset=utf-8")?;
    let escaped = xhtml_escape(location);
    cx.write(format!(
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n\
         <h1>Redirecting...</h1>\n<p>You should be redirected automatically to the \
         target URL: <a href=\"{escaped}\">{escaped}</a>. If not, click the link.\n"
    ));
    Ok(())
}

/// `path` as an absolute URL on this server (Flask's
/// `url_for(…, _external=True)`).
pub fn external(cx: &Context, path: &str) -> String {
    let request = cx.request();
    format!("{}://{}{path}", request.protocol, request.host())
}

/// The `<n>` of a redirect route; httpbin asserts it is positive.
fn hops(cx: &Context) -> Option<u64> {
    let n = cx.path_arg(0)?;
    n.parse::<u64>().ok().filter(|&n| n > 0)
}

/// `/redirect/<n>`: `n` redirects to `/get`, relative unless
/// `?absolute=true`.
pub async fn redirect(cx: &mut Context) -> HandlerResult {
    let Some(n) = hops(cx) else {
        return bad_request(cx, "n must be positive");
    };
    let absolute = cx
        .get_query_argument_or("absolute", "false")?
        .to_lowercase()
        == "true";
    let path = match n {
        1 => "/get".to_string(),
        _ if absolute => format!("/absolute-redirect/{}", n - 1),
        _ => format!("/relative-redirect/{}", n - 1),
    };
    let location = if absolute { external(cx, &path) } else { path };
    flask_redirect(cx, &location)
}

/// `/relative-redirect/<n>`: 302s with paths for `Location`, empty bodies.
pub async fn relative_redirect(cx: &mut Context) -> HandlerResult {
    let Some(n) = hops(cx) else {
        return bad_request(cx, "n must be positive");
    };
    let location = match n {
        1 => "/get".to_string(),
        _ => format!("/relative-redirect/{}", n - 1),
    };
    cx.set_status(302);
    cx.set_header("Content-Type", "text/html; charset=utf-8")?;
    cx.set_header("Location", location)
}

/// `/absolute-redirect/<n>`: redirects with full URLs.
pub async fn absolute_redirect(cx: &mut Context) -> HandlerResult {
    let Some(n) = hops(cx) else {
        return bad_request(cx, "n must be positive");
    };
    let path = match n {
        1 => "/get".to_string(),
        _ => format!("/absolute-redirect/{}", n - 1),
    };
    let location = external(cx, &path);
    flask_redirect(cx, &location)
}

/// `/redirect-to?url=…&status_code=…`: a redirect to any URL, with a 3xx
/// of the client's choice (302 otherwise). Argument names are
/// case-insensitive, as in httpbin.
pub async fn redirect_to(cx: &mut Context) -> HandlerResult {
    let Some(url) = query_ignoring_case(cx, "url") else {
        return bad_request(cx, "url is required");
    };
    if url.chars().any(char::is_control) {
        return bad_request(cx, "url cannot hold control characters");
    }
    let status = query_ignoring_case(cx, "status_code")
        .and_then(|code| code.trim().parse::<u16>().ok())
        .filter(|code| (300..400).contains(code))
        .unwrap_or(302);
    cx.set_status(status);
    cx.set_header("Content-Type", "text/html; charset=utf-8")?;
    cx.set_header("Location", url)
}
