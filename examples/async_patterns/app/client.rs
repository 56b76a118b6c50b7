//! The client-side patterns of the seed: fetching `--upstream` from a
//! handler with the blocking client (the `requests` anti-pattern), with a
//! callback, and by awaiting the response.

use std::rc::Rc;

use whirl::httpclient::{HttpClient, HttpRequest};
use whirl::web::{Context, HandlerResult, RequestHandler};

use super::{upstream_error, Shared};

/// The request every `/client/*` route sends: a `GET` of `--upstream`.
fn upstream_request(shared: &Shared) -> HttpRequest {
    let timeout = shared.config.upstream_timeout;
    HttpRequest::get(shared.config.upstream.clone())
        .connect_timeout(timeout)
        .request_timeout(timeout)
        .raise_error(false)
}

/// `GET /client/sync`: fetches with the **blocking** [`HttpClient`]. It runs
/// a private loop until the answer is in, so this server's loop — and every
/// other request — waits. Tornado: the seed's `requests.get` in a handler.
pub struct ClientSyncHandler(pub Rc<Shared>);

impl RequestHandler for ClientSyncHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let response = HttpClient::new()
            .fetch(upstream_request(&self.0))
            .map_err(|e| upstream_error(&e))?;
        log::info!("/client/sync: the upstream answered {}", response.code);
        cx.write("It works");
        Ok(())
    }
}

/// `GET /client/async`: starts the fetch with a callback and answers at
/// once; the callback logs the upstream's status later. Tornado: the
/// seed's `http_client.fetch(url, self.on_response)`.
pub struct ClientAsyncHandler(pub Rc<Shared>);

impl RequestHandler for ClientAsyncHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        self.0
            .client
            .fetch_with_callback(upstream_request(&self.0), |result| match result {
                Ok(response) => {
                    log::info!("/client/async: the upstream answered {}", response.code)
                }
                Err(e) => log::warn!("/client/async: the fetch failed: {e}"),
            });
        cx.write("It works");
        Ok(())
    }
}

/// `GET /client/response`: awaits the fetch and answers with the
/// upstream's status, `Content-Type` and body; other requests run
/// meanwhile. Tornado: the seed's `AsyncResponseHandler`
/// (`response = yield http_client.fetch(url)`).
pub struct ClientResponseHandler(pub Rc<Shared>);

impl RequestHandler for ClientResponseHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let response = self
            .0
            .client
            .fetch(upstream_request(&self.0))
            .await
            .map_err(|e| upstream_error(&e))?;
        cx.set_status(response.code);
        match response.headers.get("Content-Type") {
            Some(content_type) => cx.set_header("Content-Type", content_type)?,
            None => cx.clear_header("Content-Type"),
        }
        cx.write(response.body);
        Ok(())
    }
}
