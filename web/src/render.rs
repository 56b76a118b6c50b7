//! The rendering half of [`Context`]: templates with Tornado's helpers
//! (`static_url`, `xsrf_form_html`, `current_user`, `reverse_url`) and URL
//! building — Tornado's `render`, `render_string`, `static_url`,
//! `reverse_url`.

use std::sync::Arc;

use minijinja::value::Rest;
use minijinja::{context, Error, ErrorKind, Value};
use serde::Serialize;

use crate::context::Context;
use crate::error::HttpError;

impl Context {
    /// Renders template `name` (from the `template_path` setting) with
    /// `ctx`, writes it and finishes. Tornado: `render`.
    ///
    /// Besides `ctx`, templates see `request` (method, uri, path, query,
    /// host), `current_user`, `xsrf_form_html()`, `xsrf_token`,
    /// `static_url(path)` and `reverse_url(name, args…)`.
    ///
    /// # Errors
    ///
    /// 500 when there is no `template_path`, the template is missing or
    /// fails to render.
    pub fn render<S: Serialize>(&mut self, name: &str, ctx: S) -> Result<(), HttpError> {
        let html = self.render_string(name, ctx)?;
        self.write(html);
        self.finish()
    }

    /// Renders template `name` with `ctx` (and the helpers
    /// [`render`](Self::render) lists) to a string. Tornado:
    /// `render_string`.
    ///
    /// # Errors
    ///
    /// As [`render`](Self::render).
    pub fn render_string<S: Serialize>(&mut self, name: &str, ctx: S) -> Result<String, HttpError> {
        let templates = self.app.templates().cloned().ok_or_else(|| {
            HttpError::new(500).log_message("the template_path setting is not set")
        })?;
        let helpers = self.template_helpers()?;
        let merged = context! { ..Value::from_serialize(&ctx), ..helpers };
        templates
            .render(name, merged)
            .map_err(|e| HttpError::new(500).log_message(e.to_string()))
    }

    /// The values and functions every template sees (Tornado's
    /// `get_template_namespace`).
    fn template_helpers(&mut self) -> Result<Value, HttpError> {
        let xsrf = if self.settings().xsrf_cookies {
            let form = self.xsrf_form_html()?;
            Some((self.xsrf_token()?, form))
        } else {
            None
        };
        let (xsrf_token, xsrf_form) = xsrf.unzip();
        let xsrf_form = xsrf_form.unwrap_or_default();
        let reverse = self.app.reverse_table();
        let versions = self.app.static_versions();
        let static_root = self.settings().static_path.clone();
        let prefix = self.settings().static_url_prefix().to_string();
        Ok(context! {
            request => context! {
                method => self.request.method().to_string(),
                uri => self.request.uri().to_string(),
                path => self.request.path().to_string(),
                query => self.request.query().to_string(),
                host => self.request.host().to_string(),
                protocol => self.request.protocol.clone(),
            },
            current_user => self.current_user.clone(),
            xsrf_token => xsrf_token,
            xsrf_form_html => Value::from_function(move || Value::from_safe_string(xsrf_form.clone())),
            static_url => Value::from_function(move |path: String| -> Result<String, Error> {
                let root = static_root.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "the static_path setting is not set")
                })?;
                Ok(versions.static_url(root, &prefix, &path))
            }),
            reverse_url => Value::from_function(reverse_url_function(reverse)),
        })
    }

    /// The URL of static file `path` with a `?v=` content hash, so it can
    /// be cached for years and still change when the file does. Tornado:
    /// `static_url`.
    ///
    /// # Errors
    ///
    /// 500 when the `static_path` setting is not set.
    pub fn static_url(&self, path: &str) -> Result<String, HttpError> {
        let root =
            self.settings().static_path.as_ref().ok_or_else(|| {
                HttpError::new(500).log_message("the static_path setting is not set")
            })?;
        let prefix = self.settings().static_url_prefix();
        Ok(self.app.static_versions().static_url(root, prefix, path))
    }

    /// The path of the route named `name` for `args`. Tornado:
    /// `reverse_url`.
    ///
    /// # Errors
    ///
    /// 500 when no route has that name or the arguments do not fit.
    pub fn reverse_url(&self, name: &str, args: &[&str]) -> Result<String, HttpError> {
        Ok(self.app.reverse_url(name, args)?)
    }
}

/// `reverse_url(name, args…)` for templates.
fn reverse_url_function(
    reverse: Arc<crate::application::ReverseTable>,
) -> impl Fn(String, Rest<Value>) -> Result<String, Error> + Send + Sync + 'static {
    move |name: String, args: Rest<Value>| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        reverse
            .reverse(&name, &args)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    }
}
