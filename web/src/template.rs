//! Templates: Tornado's `template.Loader`, built on minijinja.
//!
//! [`Templates`] loads Jinja-syntax templates from a directory, compiles
//! each once and keeps it, and renders it with a context. `{% extends %}`,
//! `{% include %}`, `{% import %}` and macros work; template names are paths
//! relative to the root (`admin/page.html`), the Jinja way — Tornado
//! resolves a name relative to the including template's directory instead.
//! A name that leaves the root (`../x`, an absolute path, a symlink out of
//! it) is an error, never a read.
//!
//! Output is HTML-escaped automatically for `.html`, `.htm`, `.xhtml` and
//! `.xml` templates and for [`Templates::render_string`] (Tornado escapes
//! every template by default; here a `.txt` or `.json` template is left as
//! written). A value built with [`Value::from_safe_string`] — or piped
//! through `|safe` — is inserted as is.
//!
//! With `debug` on, a template is reloaded when any file it was built from
//! (itself, the templates it extends, includes or imports) has changed on
//! disk since it was loaded; Tornado's `compiled_template_cache=False`
//! reloads on every request.
//!
//! Request-specific helpers — `static_url`, `xsrf_form_html`,
//! `current_user`, `reverse_url` — go into the context as values or
//! functions ([`Value::from_function`]); application-wide ones are added
//! once with [`Templates::add_global`] and [`Templates::add_function`]
//! (Tornado's `ui_methods`/`ui_modules` and `template_loader` namespace).
//!
//! # Examples
//!
//! ```
//! use minijinja::{context, Value};
//! use whirl_web::template::Templates;
//!
//! let templates = Templates::new("templates", false);
//! let xsrf = Value::from_function(|| {
//!     Value::from_safe_string(r#"<input type="hidden" name="_xsrf" value="t0k">"#.into())
//! });
//! let html = templates
//!     .render_string(
//!         "<p>Hi {{ name }}</p>{{ xsrf_form_html() }}",
//!         context! { name => "<b>Bob</b>", xsrf_form_html => xsrf },
//!     )
//!     .unwrap();
//! assert_eq!(
//!     html,
//!     r#"<p>Hi &lt;b&gt;Bob&lt;/b&gt;</p><input type="hidden" name="_xsrf" value="t0k">"#
//! );
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use minijinja::functions::Function;
use minijinja::value::{FunctionArgs, FunctionResult};
use minijinja::{AutoEscape, Environment, ErrorKind, Value};
use serde::Serialize;

use crate::static_files::{resolve_relative, ResolvedPath, StaticError};

/// The name [`Templates::render_string`] gives its template, in errors.
const STRING_TEMPLATE_NAME: &str = "<string>";

/// A directory of templates, compiled on first use and cached. Tornado:
/// `template.Loader`.
///
/// Cloning is cheap and clones share everything: the cache, the globals
/// and functions added later. It can be shared between threads.
#[derive(Clone)]
pub struct Templates {
    /// The shared state.
    inner: Arc<Inner>,
}

/// What every clone of a [`Templates`] shares.
struct Inner {
    /// The directory template names are relative to, as given.
    root: PathBuf,
    /// Whether changed files are reloaded.
    debug: bool,
    /// The environment: loader, settings, globals and compiled templates.
    /// Renders clone the `Arc` and let go of the lock, so a render may
    /// call back into these `Templates`; changes copy the environment if a
    /// render still holds the old one.
    env: Mutex<Arc<Environment<'static>>>,
    /// Every file the loader has read since the cache was last cleared,
    /// with its size and mtime at that moment.
    loaded: Arc<Mutex<HashMap<PathBuf, FileStamp>>>,
}

/// What a template file looked like when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    /// Size in bytes.
    len: u64,
    /// Modification time, where the platform records one.
    modified: Option<SystemTime>,
}

impl FileStamp {
    /// The stamp of `metadata`.
    fn of(metadata: &fs::Metadata) -> FileStamp {
        FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("root", &self.inner.root)
            .field("debug", &self.inner.debug)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// Templates loaded from `template_path`; with `debug`, a template is
    /// reloaded when one of its files changes and errors carry minijinja's
    /// debug information. Tornado: `template.Loader(root_directory)` with
    /// the `template_path` and `compiled_template_cache` settings.
    ///
    /// Nothing is read until a template is rendered, so a missing directory
    /// shows up as [`TemplateErrorKind::NotFound`] then.
    pub fn new(template_path: impl Into<PathBuf>, debug: bool) -> Templates {
        let root = template_path.into();
        let loaded = Arc::new(Mutex::new(HashMap::new()));
        let mut env = Environment::new();
        env.set_debug(debug);
        env.set_auto_escape_callback(auto_escape_for);
        env.set_formatter(tornado_escape_formatter);
        let (loader_root, loader_loaded) = (root.clone(), Arc::clone(&loaded));
        env.set_loader(move |name| load_template(&loader_root, name, &loader_loaded));
        Templates {
            inner: Arc::new(Inner {
                root,
                debug,
                env: Mutex::new(Arc::new(env)),
                loaded,
            }),
        }
    }

    /// The directory templates are loaded from. Tornado: `Loader.root`.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Whether changed templates are reloaded. Tornado: the inverse of the
    /// `compiled_template_cache` setting.
    pub fn debug(&self) -> bool {
        self.inner.debug
    }

    /// Renders the template `name` (a path relative to the root) with
    /// `ctx` — usually a [`minijinja::Value`] or `context! { … }`.
    /// Tornado: `Loader.load(name).generate(**kwargs)`.
    ///
    /// # Errors
    ///
    /// A [`TemplateError`]: the template (or one it uses) is missing or
    /// outside the root, does not parse, or fails while rendering.
    pub fn render<S: Serialize>(&self, name: &str, ctx: S) -> Result<String, TemplateError> {
        self.reload_if_changed();
        let env = self.env();
        let template = env
            .get_template(name)
            .map_err(|e| TemplateError::new(e, name))?;
        template
            .render(ctx)
            .map_err(|e| TemplateError::new(e, name))
    }

    /// Renders a template given as a string, HTML-escaped, with access to
    /// the globals and to the templates under the root. Tornado:
    /// `template.Template(source).generate(**kwargs)`.
    ///
    /// The source is compiled on every call; errors name it `<string>`.
    ///
    /// # Errors
    ///
    /// As [`render`](Self::render).
    pub fn render_string<S: Serialize>(
        &self,
        source: &str,
        ctx: S,
    ) -> Result<String, TemplateError> {
        self.reload_if_changed();
        self.env()
            .render_named_str(STRING_TEMPLATE_NAME, source, ctx)
            .map_err(|e| TemplateError::new(e, STRING_TEMPLATE_NAME))
    }

    /// Makes `value` visible as `name` in every template. Tornado: the
    /// `namespace` of `template.Loader`.
    ///
    /// # Examples
    ///
    /// ```
    /// use whirl_web::template::Templates;
    ///
    /// let templates = Templates::new("templates", false);
    /// templates.add_global("site", "whirl");
    /// assert_eq!(templates.render_string("{{ site }}", ()).unwrap(), "whirl");
    /// ```
    pub fn add_global(&self, name: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        self.modify_env(|env| env.add_global(name.into(), value.into()));
    }

    /// Makes `f` callable as `name(…)` in every template. Tornado:
    /// `ui_methods` (without the handler argument).
    ///
    /// # Examples
    ///
    /// ```
    /// use whirl_web::template::Templates;
    ///
    /// let templates = Templates::new("templates", false);
    /// templates.add_function("shout", |s: String| s.to_uppercase());
    /// assert_eq!(templates.render_string("{{ shout('hi') }}", ()).unwrap(), "HI");
    /// ```
    pub fn add_function<F, Rv, Args>(&self, name: impl Into<Cow<'static, str>>, f: F)
    where
        F: Function<Rv, Args>,
        Rv: FunctionResult,
        Args: for<'a> FunctionArgs<'a>,
    {
        self.add_global(name, Value::from_function(f));
    }

    /// Forgets every compiled template, so the next render reads the files
    /// again. Tornado: `BaseLoader.reset`.
    pub fn reset(&self) {
        lock(&self.inner.loaded).clear();
        self.modify_env(Environment::clear_templates);
    }

    /// The current environment, shared (the lock is held only to clone).
    fn env(&self) -> Arc<Environment<'static>> {
        Arc::clone(&lock(&self.inner.env))
    }

    /// Changes the environment in place, or a copy of it when a render is
    /// still using the current one.
    fn modify_env(&self, change: impl FnOnce(&mut Environment<'static>)) {
        let mut env = lock(&self.inner.env);
        change(Arc::make_mut(&mut env));
    }

    /// In debug mode, clears the cache if any file read since the last
    /// clear has changed or gone.
    fn reload_if_changed(&self) {
        if !self.inner.debug {
            return;
        }
        let changed = {
            let mut loaded = lock(&self.inner.loaded);
            let changed = loaded.iter().any(|(path, stamp)| {
                fs::metadata(path).map_or(true, |m| FileStamp::of(&m) != *stamp)
            });
            if changed {
                loaded.clear();
            }
            changed
        };
        if changed {
            log::debug!(
                "templates under {} changed; reloading",
                self.inner.root.display()
            );
            self.modify_env(Environment::clear_templates);
        }
    }
}

/// Locks a mutex whose contents stay consistent even if a holder
/// panicked (every update is a single insert, clear or swap).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes a value into HTML-escaped output as Tornado's `xhtml_escape`
/// does (`& < > " '`; minijinja's default also escapes `/`, which turns
/// every URL into `&#x2f;…`); other cases are minijinja's.
fn tornado_escape_formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let plain = matches!(state.auto_escape(), AutoEscape::Html)
        && !value.is_safe()
        && !value.is_undefined()
        && !value.is_none();
    if plain {
        let text = value.to_string();
        out.write_str(&crate::escape::xhtml_escape(&text))
            .map_err(|e| minijinja::Error::new(ErrorKind::WriteFailure, e.to_string()))
    } else {
        minijinja::escape_formatter(out, state, value)
    }
}

/// The escaping for a template name: HTML for markup files and for
/// strings, none otherwise.
fn auto_escape_for(name: &str) -> AutoEscape {
    if name == STRING_TEMPLATE_NAME {
        return AutoEscape::Html;
    }
    let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    if ["html", "htm", "xhtml", "xml"]
        .iter()
        .any(|e| extension.eq_ignore_ascii_case(e))
    {
        AutoEscape::Html
    } else {
        AutoEscape::None
    }
}

/// The loader: reads `name` under `root` with the static-file path checks,
/// recording the file's stamp (taken before reading, so a change during
/// the read is seen next time).
fn load_template(
    root: &Path,
    name: &str,
    loaded: &Mutex<HashMap<PathBuf, FileStamp>>,
) -> Result<Option<String>, minijinja::Error> {
    let (path, metadata) = match resolve_relative(root, name) {
        Ok(ResolvedPath::File { path, metadata }) => (path, metadata),
        Ok(ResolvedPath::Directory(_)) | Err(StaticError::NotFound) => return Ok(None),
        Err(StaticError::OutsideRoot) => {
            let message = format!("template name {name:?} leaves the template directory");
            return Err(LoadFailure { message, io: None }.into());
        }
        Err(e) => {
            let message = format!("cannot load template {name:?}: {e}");
            return Err(LoadFailure { message, io: None }.into());
        }
    };
    let source = fs::read_to_string(&path).map_err(|e| LoadFailure {
        message: format!("cannot read template {name:?}"),
        io: Some(e),
    })?;
    lock(loaded).insert(path, FileStamp::of(&metadata));
    Ok(Some(source))
}

/// The loader refused a name or could not read a file; attached as the
/// source of the minijinja error so [`TemplateError`] can tell it apart.
#[derive(Debug)]
struct LoadFailure {
    /// What happened, as a sentence fragment.
    message: String,
    /// The read error, if it was one.
    io: Option<std::io::Error>,
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<LoadFailure> for minijinja::Error {
    fn from(failure: LoadFailure) -> minijinja::Error {
        minijinja::Error::new(ErrorKind::InvalidOperation, failure.message.clone())
            .with_source(failure)
    }
}

/// What went wrong with a template, in broad strokes. Tornado: the
/// exception types `template.ParseError`, `IOError` and whatever the
/// generated code raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// The template, or one it extends, includes or imports, does not
    /// exist.
    NotFound,
    /// A template does not parse.
    Syntax,
    /// The template name leaves the template directory, or the file could
    /// not be read.
    Load,
    /// Rendering failed: an undefined value used in an operation, a wrong
    /// argument, a failing function, …
    Render,
}

/// A template failed to load, parse or render. Tornado:
/// `template.ParseError` and the errors `Template.generate` raises.
///
/// `Display` reads as a sentence with the template and line where known;
/// the minijinja error behind it is the [`source`](std::error::Error::source)
/// (its `{:#}` form shows the offending lines in debug mode).
#[derive(Debug)]
pub struct TemplateError {
    /// What kind of failure this is.
    kind: TemplateErrorKind,
    /// The template where it happened (or the one asked for).
    name: String,
    /// Whether the error was raised inside `name` (an include, extends or
    /// import that failed), rather than while fetching `name` itself.
    inside: bool,
    /// The line in that template, where known.
    line: Option<usize>,
    /// minijinja's description, without position.
    detail: String,
    /// The underlying error.
    source: minijinja::Error,
}

impl TemplateError {
    /// Wraps a minijinja error raised while handling template `requested`.
    ///
    /// An error inside an included template arrives wrapped ("could not
    /// render include"); the innermost minijinja error says where it really
    /// happened, so name, line and detail come from there.
    fn new(source: minijinja::Error, requested: &str) -> TemplateError {
        let inner = innermost(&source);
        let mut chain: Option<&(dyn std::error::Error + 'static)> = Some(&source);
        let mut loader_failed = false;
        while let Some(err) = chain {
            loader_failed |= err.is::<LoadFailure>();
            chain = err.source();
        }
        let kind = match inner.kind() {
            _ if loader_failed => TemplateErrorKind::Load,
            ErrorKind::TemplateNotFound => TemplateErrorKind::NotFound,
            ErrorKind::SyntaxError | ErrorKind::BadEscape => TemplateErrorKind::Syntax,
            _ => TemplateErrorKind::Render,
        };
        let detail = match (kind, inner.detail()) {
            (TemplateErrorKind::Render, Some(detail)) => format!("{}: {detail}", inner.kind()),
            (_, Some(detail)) => detail.to_string(),
            (_, None) => inner.kind().to_string(),
        };
        TemplateError {
            kind,
            name: inner.name().unwrap_or(requested).to_string(),
            inside: inner.name().is_some(),
            line: inner.line().filter(|&line| line > 0),
            detail,
            source,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TemplateErrorKind {
        self.kind
    }

    /// The template the error happened in, or the one that was asked for
    /// when minijinja does not say. Tornado: `ParseError.filename`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The line of [`name`](Self::name) where it happened, where known.
    /// Tornado: `ParseError.lineno`.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What went wrong, without the position.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        let at = match self.line {
            Some(line) => format!(" at line {line}"),
            None => String::new(),
        };
        let detail = &self.detail;
        match self.kind {
            TemplateErrorKind::NotFound | TemplateErrorKind::Load if self.inside => {
                write!(
                    f,
                    "template {name:?}{at} uses a template that cannot be loaded: {detail}"
                )
            }
            TemplateErrorKind::NotFound => write!(f, "template {name:?} could not be found"),
            TemplateErrorKind::Load => write!(f, "template {name:?} could not be loaded: {detail}"),
            TemplateErrorKind::Syntax => {
                write!(f, "template {name:?} has a syntax error{at}: {detail}")
            }
            TemplateErrorKind::Render => {
                write!(f, "template {name:?} failed to render{at}: {detail}")
            }
        }
    }
}

/// The deepest minijinja error in `err`'s source chain (`err` itself when
/// it wraps none).
fn innermost(err: &minijinja::Error) -> &minijinja::Error {
    let mut current = err;
    while let Some(next) = std::error::Error::source(current)
        .and_then(|source| source.downcast_ref::<minijinja::Error>())
    {
        current = next;
    }
    current
}

impl std::error::Error for TemplateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "whirl-web-template-{tag}-{}-{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, content: &str) -> PathBuf {
            let path = self.0.join(name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            fs::write(&path, content).unwrap();
            path
        }

        /// Rewrites a file and moves its mtime on, so a change is seen
        /// even where mtimes are coarse.
        fn rewrite(&self, name: &str, content: &str, step: u64) {
            let path = self.write(name, content);
            let file = fs::File::options().write(true).open(&path).unwrap();
            let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000 + step);
            file.set_modified(when).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// base.html ← page.html (includes partial.html), plus a .txt template.
    fn site(tag: &str) -> TempDir {
        let dir = TempDir::new(tag);
        dir.write(
            "base.html",
            "<title>{% block title %}site{% endblock %}</title>\
             <main>{% block body %}{% endblock %}</main>",
        );
        dir.write(
            "page.html",
            "{% extends \"base.html\" %}\
             {% block title %}{{ title }}{% endblock %}\
             {% block body %}{% include \"parts/partial.html\" %}{% endblock %}",
        );
        dir.write("parts/partial.html", "<p>{{ body }}</p>");
        dir.write("mail.txt", "Dear {{ name }},");
        dir.write("broken.html", "line one\n{% if x %}\nunclosed\n");
        dir.write("bad_include.html", "{% include \"../outside.html\" %}");
        dir.write("missing_include.html", "first\n{% include \"nope.html\" %}");
        dir
    }

    #[test]
    fn extends_include_and_autoescape() {
        let dir = site("inherit");
        let templates = Templates::new(&dir.0, false);
        let cases: &[(&str, Value, &str)] = &[
            (
                "page.html",
                context! { title => "A & B", body => "<script>" },
                "<title>A &amp; B</title><main><p>&lt;script&gt;</p></main>",
            ),
            ("base.html", context! {}, "<title>site</title><main></main>"),
            ("mail.txt", context! { name => "<Bob>" }, "Dear <Bob>,"),
            (
                "./parts//partial.html",
                context! { body => "x" },
                "<p>x</p>",
            ),
        ];
        for (name, ctx, want) in cases {
            assert_eq!(templates.render(name, ctx).unwrap(), *want, "{name}");
        }
    }

    #[test]
    fn autoescape_by_extension() {
        let cases: &[(&str, AutoEscape)] = &[
            ("a.html", AutoEscape::Html),
            ("a.HTM", AutoEscape::Html),
            ("feed.xml", AutoEscape::Html),
            ("a.xhtml", AutoEscape::Html),
            ("<string>", AutoEscape::Html),
            ("a.txt", AutoEscape::None),
            ("a.json", AutoEscape::None),
            ("html", AutoEscape::None),
        ];
        for (name, want) in cases {
            assert_eq!(
                format!("{:?}", auto_escape_for(name)),
                format!("{want:?}"),
                "{name}"
            );
        }
    }

    #[test]
    fn render_string_escapes_and_sees_the_root() {
        let dir = site("string");
        let templates = Templates::new(&dir.0, false);
        let cases: &[(&str, Value, &str)] = &[
            (
                "{{ x }}",
                context! { x => "<a href='x'>" },
                "&lt;a href=&#x27;x&#x27;&gt;",
            ),
            ("{{ x|safe }}", context! { x => "<b>" }, "<b>"),
            (
                "{% include 'parts/partial.html' %}",
                context! { body => "&" },
                "<p>&amp;</p>",
            ),
        ];
        for (source, ctx, want) in cases {
            assert_eq!(
                templates.render_string(source, ctx).unwrap(),
                *want,
                "{source}"
            );
        }
    }

    #[test]
    fn functions_in_the_context_are_callable() {
        let templates = Templates::new("unused", false);
        let prefix = String::from("/static/");
        let static_url = Value::from_function(move |path: String| format!("{prefix}{path}?v=1"));
        let xsrf_form_html = Value::from_function(|| {
            Value::from_safe_string(
                r#"<input type="hidden" name="_xsrf" value="a&amp;b">"#.to_string(),
            )
        });
        let reverse_url = Value::from_function(|name: String, id: i64| format!("/{name}/{id}"));
        let ctx = context! {
            static_url,
            xsrf_form_html,
            reverse_url,
            current_user => "<eve>",
        };
        let source = "<link href=\"{{ static_url('a b.css') }}\">\
                      {{ xsrf_form_html() }}\
                      <a href=\"{{ reverse_url('post', 7) }}\">{{ current_user }}</a>";
        assert_eq!(
            templates.render_string(source, ctx).unwrap(),
            "<link href=\"/static/a b.css?v=1\">\
             <input type=\"hidden\" name=\"_xsrf\" value=\"a&amp;b\">\
             <a href=\"/post/7\">&lt;eve&gt;</a>"
        );
    }

    #[test]
    fn globals_and_functions_reach_every_clone() {
        let dir = site("globals");
        let templates = Templates::new(&dir.0, false);
        let clone = templates.clone();
        // Rendered once before the globals exist, so they must reach an
        // environment that is already in use.
        assert_eq!(clone.render_string("{{ site }}", ()).unwrap(), "");
        templates.add_global("site", "whirl");
        templates.add_function("twice", |n: i64| n * 2);
        templates.add_function("bold", |s: String| {
            Value::from_safe_string(format!("<b>{s}</b>"))
        });
        let cases: &[(&str, &str)] = &[
            ("{{ site }}", "whirl"),
            ("{{ twice(21) }}", "42"),
            ("{{ bold('x') }}", "<b>x</b>"),
        ];
        for (source, want) in cases {
            assert_eq!(clone.render_string(source, ()).unwrap(), *want, "{source}");
        }
        dir.write("g.html", "{{ site }} {{ twice(2) }}");
        assert_eq!(clone.render("g.html", ()).unwrap(), "whirl 4");
    }

    #[test]
    fn a_function_may_render_another_template() {
        let dir = site("nested");
        let templates = Templates::new(&dir.0, false);
        let inner = templates.clone();
        templates.add_function("partial", move |body: String| {
            inner
                .render("parts/partial.html", context! { body })
                .map(Value::from_safe_string)
                .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))
        });
        assert_eq!(
            templates.render_string("{{ partial('<x>') }}", ()).unwrap(),
            "<p>&lt;x&gt;</p>"
        );
    }

    #[test]
    fn templates_are_cached_without_debug() {
        let dir = site("cached");
        let templates = Templates::new(&dir.0, false);
        let ctx = || context! { title => "t", body => "b" };
        let first = templates.render("page.html", ctx()).unwrap();
        dir.rewrite("parts/partial.html", "<div>{{ body }}</div>", 1);
        assert_eq!(templates.render("page.html", ctx()).unwrap(), first);
        templates.reset();
        assert!(templates
            .render("page.html", ctx())
            .unwrap()
            .contains("<div>b</div>"));
    }

    #[test]
    fn debug_reloads_changed_files() {
        let dir = site("debug");
        let templates = Templates::new(&dir.0, true);
        let ctx = || context! { title => "t", body => "b" };
        let render = || templates.render("page.html", ctx()).unwrap();
        assert_eq!(render(), "<title>t</title><main><p>b</p></main>");
        // An included file changes.
        dir.rewrite("parts/partial.html", "<div>{{ body }}</div>", 1);
        assert_eq!(render(), "<title>t</title><main><div>b</div></main>");
        // The base template changes.
        dir.rewrite(
            "base.html",
            "<h1>{% block title %}{% endblock %}</h1>{% block body %}{% endblock %}",
            2,
        );
        assert_eq!(render(), "<h1>t</h1><div>b</div>");
        // The template itself changes.
        dir.rewrite("page.html", "{% extends 'base.html' %}", 3);
        assert_eq!(render(), "<h1></h1>");
        // A file that was used disappears: the render fails, and works
        // again once it is back.
        fs::remove_file(dir.0.join("base.html")).unwrap();
        let err = templates.render("page.html", ctx()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::NotFound, "{err}");
        dir.rewrite("base.html", "back", 4);
        assert_eq!(render(), "back");
    }

    #[test]
    fn names_may_not_leave_the_root() {
        let dir = site("escape");
        dir.write("outside.html", "secret");
        let templates = Templates::new(dir.0.join("parts"), false);
        for name in [
            "../outside.html",
            "../page.html",
            "/etc/passwd",
            "a\\b.html",
        ] {
            let err = templates.render(name, ()).unwrap_err();
            assert_eq!(err.kind(), TemplateErrorKind::Load, "{name}: {err}");
            assert!(
                err.to_string().contains("leaves the template directory"),
                "{err}"
            );
        }
        let templates = Templates::new(&dir.0, false);
        let err = templates.render("bad_include.html", ()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::Load, "{err}");
        assert_eq!(err.line(), Some(1));
        assert_eq!(
            err.to_string(),
            "template \"bad_include.html\" at line 1 uses a template that cannot be loaded: \
             template name \"../outside.html\" leaves the template directory"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_may_not_leave_the_root() {
        let dir = site("symlink");
        let outside = TempDir::new("symlink-target");
        outside.write("secret.html", "secret");
        std::os::unix::fs::symlink(outside.0.join("secret.html"), dir.0.join("link.html")).unwrap();
        let templates = Templates::new(&dir.0, false);
        let err = templates.render("link.html", ()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::Load, "{err}");
    }

    #[test]
    fn errors_name_the_template_and_line() {
        let dir = site("errors");
        let templates = Templates::new(&dir.0, false);

        let err = templates.render("nope.html", ()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::NotFound);
        assert_eq!(err.name(), "nope.html");
        assert!(
            err.to_string()
                .starts_with("template \"nope.html\" could not be found"),
            "{err}"
        );

        let err = templates.render("broken.html", ()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::Syntax);
        assert_eq!(err.name(), "broken.html");
        assert!(err.line().is_some(), "{err}");
        assert!(
            err.to_string().contains("has a syntax error at line"),
            "{err}"
        );

        let err = templates.render_string("ok\n{{ 1 + }}", ()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::Syntax);
        assert_eq!(err.name(), "<string>");
        assert_eq!(err.line(), Some(2));

        let err = templates
            .render_string(
                "a\nb\n{{ f() }}",
                context! { f => Value::from_function(|| {
                    Err::<String, _>(minijinja::Error::new(ErrorKind::InvalidOperation, "boom"))
                }) },
            )
            .unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::Render);
        assert_eq!(err.line(), Some(3));
        assert!(err.detail().contains("boom"), "{err}");
        assert_eq!(
            err.to_string(),
            "template \"<string>\" failed to render at line 3: invalid operation: boom"
        );

        let err = templates.render("missing_include.html", ()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::NotFound, "{err}");
        assert_eq!(err.name(), "missing_include.html");
        assert_eq!(err.line(), Some(2));
        assert!(err.to_string().contains("nope.html"), "{err}");

        // An error inside an included template names that template.
        dir.write("parts/bad_expr.html", "1\n2\n{{ 1 + 'a' }}");
        dir.write("uses_bad.html", "x\n{% include 'parts/bad_expr.html' %}");
        let err = templates.render("uses_bad.html", ()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::Render, "{err}");
        assert_eq!((err.name(), err.line()), ("parts/bad_expr.html", Some(3)));
        assert!(
            err.to_string()
                .starts_with("template \"parts/bad_expr.html\" failed to render at line 3: "),
            "{err}"
        );

        // A syntax error in a base template names the base template.
        dir.write("parts/bad_base.html", "a\n{% for %}");
        dir.write("child.html", "{% extends 'parts/bad_base.html' %}");
        let err = templates.render("child.html", ()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::Syntax, "{err}");
        assert_eq!((err.name(), err.line()), ("parts/bad_base.html", Some(2)));
    }

    #[test]
    fn missing_root_is_not_found() {
        let templates = Templates::new("/nonexistent/whirl/templates", true);
        let err = templates.render("index.html", ()).unwrap_err();
        assert_eq!(err.kind(), TemplateErrorKind::NotFound);
        assert!(templates.debug());
        assert_eq!(templates.root(), Path::new("/nonexistent/whirl/templates"));
    }

    #[test]
    fn templates_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Templates>();
        assert_send_sync::<TemplateError>();
    }
}
