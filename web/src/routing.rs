//! Routes: a regex over the request path, a handler factory, an optional
//! name for [`reverse_url`](crate::Application::reverse_url). Tornado's
//! `tornado.routing.URLSpec` (`url(pattern, Handler, kwargs, name)`).

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use regex::Regex;

use crate::error::HttpError;
use crate::handler::{DynHandler, RequestHandler};

/// Builds a fresh handler for each request (Tornado builds a handler object
/// per request and calls its `initialize(**kwargs)`; here the closure holds
/// what `kwargs` would).
pub(crate) type Factory = Rc<dyn Fn() -> Box<dyn DynHandler>>;

/// One route: a path pattern and the handler that serves it. Tornado:
/// `URLSpec` / `url()`.
///
/// The pattern is a regular expression matched against the whole path (a
/// `$` is added if missing, and it must match from the first character, as
/// in Tornado). Its capture groups become the handler's path arguments:
/// positional ([`Context::path_args`](crate::Context::path_args)) or, when
/// the pattern names its groups (`(?P<id>\d+)`), by name
/// ([`Context::path_kwargs`](crate::Context::path_kwargs)) — named groups
/// win, as in Tornado. Arguments are percent-decoded; one that is not UTF-8
/// answers 400.
///
/// # Examples
///
/// ```
/// use whirl_web::{Context, HttpError, RequestHandler, Route};
///
/// struct Story { greeting: &'static str }
///
/// impl RequestHandler for Story {
///     async fn get(&mut self, cx: &mut Context) -> Result<(), HttpError> {
///         let id = cx.path_arg(0).unwrap_or_default().to_string();
///         cx.write(format!("{} story {id}", self.greeting));
///         Ok(())
///     }
/// }
///
/// let route = Route::new(r"/story/([0-9]+)", || Story { greeting: "hello" }).name("story");
/// assert_eq!(route.reverse(&["7"]).unwrap(), "/story/7");
/// ```
#[derive(Clone)]
pub struct Route {
    /// The compiled, anchored pattern.
    regex: Regex,
    /// The one path the pattern matches, when it is plain text (`/`,
    /// `/about\.html`): matched by comparing, without running the regex.
    literal: Option<String>,
    /// The pattern as written.
    source: String,
    /// The route's name, for `reverse_url`.
    name: Option<String>,
    /// Builds the handler for a request.
    pub(crate) factory: Factory,
}

/// A piece of a reversible pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text.
    Text(String),
    /// A capture group: an argument goes here.
    Group,
}

/// Why a route could not be built or reversed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The pattern is not a valid regular expression.
    InvalidPattern(String),
    /// No route has this name.
    UnknownName(String),
    /// The pattern is too complex to reverse (nested or unbalanced groups).
    NotReversible(String),
    /// The number of arguments differs from the pattern's groups.
    WrongArgumentCount {
        /// Groups in the pattern.
        expected: usize,
        /// Arguments given.
        given: usize,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::InvalidPattern(e) => write!(f, "the route pattern is invalid: {e}"),
            RouteError::UnknownName(name) => write!(f, "no route is named {name:?}"),
            RouteError::NotReversible(p) => write!(f, "the route {p:?} cannot be reversed"),
            RouteError::WrongArgumentCount { expected, given } => {
                write!(
                    f,
                    "the route takes {expected} arguments, {given} were given"
                )
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// What a matched route hands the handler.
#[derive(Debug, Default)]
pub(crate) struct PathArguments {
    /// Unnamed groups, in order (`None` for a group that did not take part).
    pub(crate) args: Vec<Option<String>>,
    /// Named groups.
    pub(crate) kwargs: HashMap<String, Option<String>>,
    /// Unnamed groups as they appear in the path (still percent-encoded).
    pub(crate) raw_args: Vec<Option<String>>,
}

impl Route {
    /// A route serving paths that match `pattern` with handlers built by
    /// `factory`.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid regular expression (a mistake in the
    /// program, found at start-up; [`Route::try_new`] returns it instead).
    pub fn new<H, F>(pattern: &str, factory: F) -> Route
    where
        H: RequestHandler,
        F: Fn() -> H + 'static,
    {
        match Route::try_new(pattern, factory) {
            Ok(route) => route,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`Route::new`], returning an invalid pattern as an error.
    ///
    /// # Errors
    ///
    /// [`RouteError::InvalidPattern`].
    pub fn try_new<H, F>(pattern: &str, factory: F) -> Result<Route, RouteError>
    where
        H: RequestHandler,
        F: Fn() -> H + 'static,
    {
        let factory: Factory = Rc::new(move || Box::new(factory()) as Box<dyn DynHandler>);
        Route::from_factory(pattern, factory)
    }

    /// A route from an already erased factory.
    pub(crate) fn from_factory(pattern: &str, factory: Factory) -> Result<Route, RouteError> {
        // Anchored at both ends around the whole pattern, so every branch of
        // an alternation matches whole paths only.
        let inner = pattern.strip_prefix('^').unwrap_or(pattern);
        let anchored = format!("^(?:{inner})$");
        let regex = Regex::new(&anchored).map_err(|e| RouteError::InvalidPattern(e.to_string()))?;
        let literal = match reverse_pieces(pattern) {
            Some(pieces) if !pieces.contains(&Piece::Group) => Some(
                pieces
                    .into_iter()
                    .map(|piece| match piece {
                        Piece::Text(text) => text,
                        Piece::Group => String::new(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        Ok(Route {
            regex,
            literal,
            source: pattern.to_string(),
            name: None,
            factory,
        })
    }

    /// Names the route, for [`reverse_url`](crate::Application::reverse_url).
    pub fn name(mut self, name: impl Into<String>) -> Route {
        self.name = Some(name.into());
        self
    }

    /// The route's name, if it has one.
    pub fn route_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.source
    }

    /// The path for `args`, one per group of the pattern, each
    /// percent-encoded (`/` kept). Tornado: `URLSpec.reverse`.
    ///
    /// # Errors
    ///
    /// [`RouteError::NotReversible`] for a pattern with nested or escaped
    /// groups Tornado cannot reverse either;
    /// [`RouteError::WrongArgumentCount`].
    pub fn reverse(&self, args: &[&str]) -> Result<String, RouteError> {
        reverse_pattern(&self.source, args)
    }

    /// Matches `path`; on a match, its decoded arguments.
    ///
    /// `Some(Err(400))` for an argument that is not UTF-8 once decoded.
    pub(crate) fn matches(&self, path: &str) -> Option<Result<PathArguments, HttpError>> {
        if let Some(literal) = &self.literal {
            return (path == literal).then(|| Ok(PathArguments::default()));
        }
        let captures = self.regex.captures(path)?;
        Some(decode_arguments(&self.regex, &captures))
    }
}

/// Decodes the groups of a match (Tornado's `_unquote_or_none` +
/// `decode_argument`).
fn decode_arguments(
    regex: &Regex,
    captures: &regex::Captures<'_>,
) -> Result<PathArguments, HttpError> {
    let decode = |m: Option<regex::Match<'_>>| -> Result<Option<String>, HttpError> {
        let Some(m) = m else { return Ok(None) };
        percent_decode_str(m.as_str())
            .decode_utf8()
            .map(|s| Some(s.into_owned()))
            .map_err(|_| {
                HttpError::new(400)
                    .log_message(format!("Invalid unicode in path argument {:?}", m.as_str()))
            })
    };
    let mut arguments = PathArguments::default();
    // Group 0 is the whole match (the `(?:…)` wrapper captures nothing).
    let named = regex.capture_names().any(|n| n.is_some());
    for (index, name) in regex.capture_names().enumerate().skip(1) {
        match (named, name) {
            (true, Some(name)) => {
                arguments
                    .kwargs
                    .insert(name.to_string(), decode(captures.get(index))?);
            }
            (true, None) => {}
            (false, _) => {
                let group = captures.get(index);
                arguments.args.push(decode(group)?);
                arguments
                    .raw_args
                    .push(group.map(|m| m.as_str().to_string()));
            }
        }
    }
    Ok(arguments)
}

/// The path `pattern` gives for `args` (see [`Route::reverse`]).
pub(crate) fn reverse_pattern(pattern: &str, args: &[&str]) -> Result<String, RouteError> {
    let pieces =
        reverse_pieces(pattern).ok_or_else(|| RouteError::NotReversible(pattern.to_string()))?;
    let expected = pieces.iter().filter(|p| **p == Piece::Group).count();
    if expected != args.len() {
        return Err(RouteError::WrongArgumentCount {
            expected,
            given: args.len(),
        });
    }
    let mut args = args.iter();
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Group => {
                let arg = args.next().copied().unwrap_or_default();
                out.extend(utf8_percent_encode(arg, URL_ARGUMENT));
            }
        }
    }
    Ok(out)
}

/// Characters percent-encoded in a reversed argument: all but unreserved
/// ones and `/` (Python's `urllib.parse.quote`).
const URL_ARGUMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Splits a pattern into literal text and groups, as Tornado's
/// `_find_groups` does; `None` if it has nested groups or regex syntax
/// outside them that has no single literal meaning.
fn reverse_pieces(pattern: &str) -> Option<Vec<Piece>> {
    let pattern = pattern.strip_prefix('^').unwrap_or(pattern);
    let pattern = pattern.strip_suffix('$').unwrap_or(pattern);
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = pattern.chars();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                if depth > 0 {
                    return None;
                }
                depth = 1;
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Group);
            }
            ')' => {
                if depth == 0 {
                    return None;
                }
                depth = 0;
            }
            _ if depth > 0 => {
                // Inside a group: only an escape needs care (`\)`).
                if c == '\\' {
                    chars.next()?;
                }
            }
            '\\' => {
                // An escaped literal (`\.`); a class such as `\d` has no
                // single text.
                let next = chars.next()?;
                // `\<` and `\>` are word boundaries, not characters.
                if next.is_ascii_alphanumeric() || matches!(next, '<' | '>') {
                    return None;
                }
                text.push(next);
            }
            '.' | '*' | '+' | '?' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => return None,
            _ => text.push(c),
        }
    }
    if depth != 0 {
        return None;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Some(pieces)
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("pattern", &self.source)
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;

    struct Nothing;
    impl RequestHandler for Nothing {
        async fn get(&mut self, _cx: &mut Context) -> Result<(), HttpError> {
            Ok(())
        }
    }

    fn route(pattern: &str) -> Route {
        Route::new(pattern, || Nothing)
    }

    #[test]
    fn patterns_match_the_whole_path() {
        let r = route("/a");
        assert!(r.matches("/a").is_some());
        assert!(r.matches("/ab").is_none());
        assert!(r.matches("x/a").is_none());
        assert!(
            route("/a|/b").matches("/b").is_some(),
            "alternation stays inside the anchor"
        );
        assert!(route("/a|/b").matches("/b/c").is_none());
        assert!(route("/a|/b").matches("/a/x").is_none());
        assert!(route("^/a$").matches("/a").is_some());
    }

    #[test]
    fn plain_text_patterns_match_by_comparison_as_the_regex_would() {
        // (pattern, literal or not, path, matches)
        let cases: &[(&str, bool, &str, bool)] = &[
            ("/", true, "/", true),
            ("/", true, "", false),
            ("/", true, "//", false),
            (r"/about\.html", true, "/about.html", true),
            (r"/about\.html", true, "/aboutxhtml", false),
            ("^/a$", true, "/a", true),
            ("/a.b", false, "/axb", true),
            ("/a(b)?", false, "/a", true),
            ("/A", true, "/a", false),
            ("/(?i)a", false, "/A", true),
            (r"/foo\>", false, "/foo", true),
            (r"/foo\>", false, "/foo>", false),
        ];
        for &(pattern, literal, path, matches) in cases {
            let r = route(pattern);
            assert_eq!(r.literal.is_some(), literal, "{pattern}");
            assert_eq!(r.matches(path).is_some(), matches, "{pattern} vs {path}");
            assert_eq!(
                r.regex.is_match(path),
                matches,
                "the regex disagrees: {pattern} vs {path}"
            );
        }
    }

    #[test]
    fn positional_and_named_arguments_are_decoded() {
        let m = route(r"/s/([^/]+)/(\d+)?")
            .matches("/s/a%20b/")
            .unwrap()
            .unwrap();
        assert_eq!(m.args, vec![Some("a b".to_string()), None]);
        let m = route(r"/u/(?P<name>[^/]+)/(\d+)")
            .matches("/u/%C3%A9/7")
            .unwrap()
            .unwrap();
        assert!(m.args.is_empty(), "named groups win, as in Tornado");
        assert_eq!(m.kwargs["name"].as_deref(), Some("é"));
        let err = route(r"/s/(.*)").matches("/s/%FF").unwrap().unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn reverse_fills_groups_and_escapes() {
        let cases: &[(&str, &[&str], Result<&str, RouteError>)] = &[
            ("/", &[], Ok("/")),
            (r"/story/([0-9]+)", &["7"], Ok("/story/7")),
            (r"/a/([^/]+)/b/(.*)$", &["x y", "p/q"], Ok("/a/x%20y/b/p/q")),
            (r"/file\.txt", &[], Ok("/file.txt")),
            (
                r"/story/([0-9]+)",
                &[],
                Err(RouteError::WrongArgumentCount {
                    expected: 1,
                    given: 0,
                }),
            ),
            (
                r"/a/((b)c)",
                &["x"],
                Err(RouteError::NotReversible(r"/a/((b)c)".into())),
            ),
            (r"/a\d", &[], Err(RouteError::NotReversible(r"/a\d".into()))),
        ];
        for (pattern, args, want) in cases {
            assert_eq!(
                route(pattern).reverse(args),
                want.clone().map(String::from),
                "{pattern}"
            );
        }
    }

    #[test]
    fn an_invalid_pattern_is_an_error() {
        assert!(matches!(
            Route::try_new("/(", || Nothing),
            Err(RouteError::InvalidPattern(_))
        ));
    }
}
