//! What every endpoint shares: the methods a route answers, and the CORS
//! headers httpbin adds to every response (its `after_request` hook).
//!
//! Each endpoint is an `async fn(&mut Context) -> HandlerResult`;
//! [`route`] wraps it in a [`RequestHandler`] that answers the route's
//! methods with it, as a Flask view function with `methods=[…]`.

use std::marker::PhantomData;

use whirl::web::{Context, HandlerResult, RequestHandler, Route};

/// The methods a route answers. As in Flask, `HEAD` comes with `GET`, and
/// every route answers `OPTIONS` (a CORS preflight).
pub trait Methods: 'static {
    /// The methods, for `SUPPORTED_METHODS` and `Allow`.
    const LIST: &'static [&'static str];
}

/// `GET` (and `HEAD`).
pub struct Get;
/// `POST` only.
pub struct Post;
/// `PUT` only.
pub struct Put;
/// `PATCH` only.
pub struct Patch;
/// `DELETE` only.
pub struct Delete;
/// `GET` and `POST`.
pub struct GetPost;
/// Every method httpbin's catch-all routes take (but `TRACE`, which
/// whirl's handlers do not dispatch).
pub struct Any;

impl Methods for Get {
    const LIST: &'static [&'static str] = &["GET", "HEAD", "OPTIONS"];
}
impl Methods for Post {
    const LIST: &'static [&'static str] = &["POST", "OPTIONS"];
}
impl Methods for Put {
    const LIST: &'static [&'static str] = &["PUT", "OPTIONS"];
}
impl Methods for Patch {
    const LIST: &'static [&'static str] = &["PATCH", "OPTIONS"];
}
impl Methods for Delete {
    const LIST: &'static [&'static str] = &["DELETE", "OPTIONS"];
}
impl Methods for GetPost {
    const LIST: &'static [&'static str] = &["GET", "HEAD", "POST", "OPTIONS"];
}
impl Methods for Any {
    const LIST: &'static [&'static str] =
        &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
}

/// A route answering methods `M` with `answer`.
pub fn route<M, F>(pattern: &str, _methods: M, answer: F) -> Route
where
    M: Methods,
    F: AsyncFn(&mut Context) -> HandlerResult + Copy + 'static,
{
    Route::new(pattern, move || Endpoint::<M, F> {
        answer,
        methods: PhantomData,
    })
}

/// The handler [`route`] builds for each request.
struct Endpoint<M, F> {
    /// The endpoint.
    answer: F,
    /// The methods it answers.
    methods: PhantomData<M>,
}

impl<M, F> RequestHandler for Endpoint<M, F>
where
    M: Methods,
    F: AsyncFn(&mut Context) -> HandlerResult + 'static,
{
    const SUPPORTED_METHODS: &'static [&'static str] = M::LIST;

    async fn prepare(&mut self, cx: &mut Context) -> HandlerResult {
        let origin = cx
            .request()
            .headers
            .get("Origin")
            .unwrap_or("*")
            .to_string();
        cx.set_header("Access-Control-Allow-Origin", origin)?;
        cx.set_header("Access-Control-Allow-Credentials", "true")
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        (self.answer)(cx).await
    }

    async fn head(&mut self, cx: &mut Context) -> HandlerResult {
        (self.answer)(cx).await
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        (self.answer)(cx).await
    }

    async fn put(&mut self, cx: &mut Context) -> HandlerResult {
        (self.answer)(cx).await
    }

    async fn patch(&mut self, cx: &mut Context) -> HandlerResult {
        (self.answer)(cx).await
    }

    async fn delete(&mut self, cx: &mut Context) -> HandlerResult {
        (self.answer)(cx).await
    }

    /// Flask's automatic `OPTIONS` answer, with httpbin's preflight
    /// headers.
    async fn options(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("Allow", M::LIST.join(", "))?;
        cx.set_header(
            "Access-Control-Allow-Methods",
            "GET, POST, PUT, DELETE, PATCH, OPTIONS",
        )?;
        cx.set_header("Access-Control-Max-Age", "3600")?;
        if let Some(asked) = cx.request().headers.get("Access-Control-Request-Headers") {
            let asked = asked.to_string();
            cx.set_header("Access-Control-Allow-Headers", asked)?;
        }
        Ok(())
    }
}
