//! Fixed documents and encodings: `/` (the index of endpoints), `/html`,
//! `/json`, `/xml`, `/gzip` and `/deflate`.
//!
//! `moby.html` and `sample.xml` are httpbin's own (ISC licence, Kenneth
//! Reitz), copied unchanged so the documents match.

use std::io::Write;

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use serde_json::{json, Value};
use whirl::web::{Context, HandlerResult};

use crate::inspect::{get_dict, Field};
use crate::json::{pretty, send};

/// `/`: what this server answers, with links.
pub async fn index(cx: &mut Context) -> HandlerResult {
    cx.write(include_str!("index.html"));
    Ok(())
}

/// `/html`: a page of Moby-Dick (httpbin's `moby.html`).
pub async fn html(cx: &mut Context) -> HandlerResult {
    cx.write(include_str!("moby.html"));
    Ok(())
}

/// `/xml`: httpbin's sample slide show.
pub async fn xml(cx: &mut Context) -> HandlerResult {
    cx.set_header("Content-Type", "application/xml")?;
    cx.write(include_str!("sample.xml"));
    Ok(())
}

/// `/json`: the same slide show as JSON.
pub async fn json_document(cx: &mut Context) -> HandlerResult {
    send(
        cx,
        json!({
            "slideshow": {
                "title": "Sample Slide Show",
                "date": "date of publication",
                "author": "Yours Truly",
                "slides": [
                    { "type": "all", "title": "Wake up to WonderWidgets!" },
                    {
                        "type": "all",
                        "title": "Overview",
                        "items": [
                            "Why <em>WonderWidgets</em> are great",
                            "Who <em>buys</em> WonderWidgets"
                        ]
                    }
                ]
            }
        }),
    )
}

/// The body of `/gzip` and `/deflate`: origin, headers, method and a
/// `flag: true`.
fn encoded_body(cx: &Context, flag: &str) -> Vec<u8> {
    let mut dict = get_dict(cx, &[Field::Origin, Field::Headers, Field::Method]);
    dict.insert(flag.into(), true.into());
    pretty(&Value::Object(dict)).into_bytes()
}

/// Sends `body` with `Content-Encoding: coding`, whatever the client said
/// it accepts (as httpbin does).
fn send_encoded(cx: &mut Context, coding: &str, body: Vec<u8>) -> HandlerResult {
    cx.set_header("Content-Type", "application/json")?;
    cx.set_header("Content-Encoding", coding)?;
    cx.write(body);
    Ok(())
}

/// `/gzip`: the request, gzip-compressed.
pub async fn gzip(cx: &mut Context) -> HandlerResult {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(4));
    encoder.write_all(&encoded_body(cx, "gzipped"))?;
    send_encoded(cx, "gzip", encoder.finish()?)
}

/// `/deflate`: the request, zlib-compressed (`Content-Encoding: deflate`).
pub async fn deflate(cx: &mut Context) -> HandlerResult {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&encoded_body(cx, "deflated"))?;
    send_encoded(cx, "deflate", encoder.finish()?)
}
