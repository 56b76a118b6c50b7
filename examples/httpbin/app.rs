//! The routes: every endpoint and the methods it answers, as in httpbin's
//! `core.py`.

use whirl::web::{Application, Route};

use crate::endpoint::{route, Any, Delete, Get, GetPost, Patch, Post, Put};
use crate::{auth, caching, cookies, dynamic, formats, inspect, status, streams};

/// The httpbin application.
pub fn application() -> Application {
    Application::new(routes())
}

/// Every route, in matching order.
fn routes() -> Vec<Route> {
    vec![
        route("/", Get, formats::index),
        // Request inspection.
        route("/get", Get, inspect::get),
        route("/post", Post, inspect::with_body),
        route("/put", Put, inspect::with_body),
        route("/patch", Patch, inspect::with_body),
        route("/delete", Delete, inspect::with_body),
        route("/anything(?:/.*)?", Any, inspect::anything),
        route("/headers", Get, inspect::headers_view),
        route("/ip", Get, inspect::ip),
        route("/user-agent", Get, inspect::user_agent),
        // Status codes and redirects.
        route("/status/([^/]+)", Any, status::status),
        route(r"/redirect/(\d+)", Get, status::redirect),
        route(r"/relative-redirect/(\d+)", Get, status::relative_redirect),
        route(r"/absolute-redirect/(\d+)", Get, status::absolute_redirect),
        route("/redirect-to", Any, status::redirect_to),
        // Auth and cookies.
        route("/basic-auth/([^/]+)/([^/]+)", Get, auth::basic_auth),
        route(
            "/hidden-basic-auth/([^/]+)/([^/]+)",
            Get,
            auth::hidden_basic_auth,
        ),
        route("/bearer", Get, auth::bearer),
        route("/cookies", Get, cookies::cookies),
        route("/cookies/set", Get, cookies::set),
        route("/cookies/set/([^/]+)/([^/]+)", Get, cookies::set_one),
        route("/cookies/delete", Get, cookies::delete),
        // Generated and streamed data.
        route("/uuid", Get, dynamic::uuid),
        route(r"/bytes/(\d+)", Get, dynamic::bytes),
        route("/base64/([^/]+)", Get, dynamic::base64),
        route("/delay/([^/]+)", Any, dynamic::delay),
        route(r"/stream/(\d+)", Get, streams::stream),
        route(r"/stream-bytes/(\d+)", Get, streams::stream_bytes),
        route("/drip", Get, streams::drip),
        route(r"/range/(\d+)", Get, streams::range),
        // Formats and caching.
        route("/html", Get, formats::html),
        route("/json", Get, formats::json_document),
        route("/xml", Get, formats::xml),
        route("/gzip", Get, formats::gzip),
        route("/deflate", Get, formats::deflate),
        route("/cache", Get, caching::cache),
        route(r"/cache/(\d+)", Get, caching::cache_for),
        route("/etag/([^/]+)", Get, caching::etag),
        route("/response-headers", GetPost, caching::response_headers),
    ]
}
