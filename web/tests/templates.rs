//! Templates over loopback: `cx.render`/`render_string` from the
//! `template_path` setting, with inheritance, includes, autoescaping, the
//! helpers Tornado's templates see, and reloading in debug mode — Tornado's
//! `template_test.py` and the template parts of `web_test.py`.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::json;
use support::{fetch, get, serve, Response, TempDir, TestApp};
use whirl_web::escape::xhtml_unescape;
use whirl_web::{Application, Context, HandlerResult, RequestHandler, Route, Settings};

/// `/page?title=…&message=…`: `page.html`, which extends `base.html` and
/// includes `footer.html`.
struct Page;

impl RequestHandler for Page {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let title = cx.get_argument_or("title", "Hello")?;
        let message = cx.get_argument_or("message", "hi")?;
        cx.render("page.html", json!({ "title": title, "message": message }))
    }
}

/// `/plain?message=…`: `plain.txt`, which is not escaped.
struct Plain;

impl RequestHandler for Plain {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let message = cx.get_argument_or("message", "")?;
        cx.set_header("Content-Type", "text/plain; charset=UTF-8")?;
        cx.render("plain.txt", json!({ "message": message }))
    }
}

/// `/helpers`: `helpers.html`, showing every helper; the user comes from
/// an `X-User` header. POST answers `posted` (for the XSRF check).
struct Helpers;

impl RequestHandler for Helpers {
    async fn get_current_user(&mut self, cx: &mut Context) -> Option<String> {
        cx.request().headers.get("X-User").map(str::to_string)
    }

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.render("helpers.html", json!({}))
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("posted");
        Ok(())
    }
}

/// `/story/<id>`, named `story` (for `reverse_url`).
struct Story;

impl RequestHandler for Story {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write("story");
        Ok(())
    }
}

/// `/fragment`: `render_string` of `fragment.html`, wrapped in brackets.
struct Fragment;

impl RequestHandler for Fragment {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let html = cx.render_string("fragment.html", json!({ "n": 3, "name": "<i>x</i>" }))?;
        cx.write(format!("[{html}]"));
        Ok(())
    }
}

/// `/render/<name>`: renders any template with an empty context.
struct RenderAny;

impl RequestHandler for RenderAny {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let name = cx.path_arg(0).unwrap_or_default().to_string();
        cx.write("partial output ");
        cx.render(&name, json!({ "value": "v" }))
    }
}

/// Templates and static files in a temp dir, and the server (dropped
/// first).
struct Fixture {
    /// The server.
    server: TestApp,
    /// The template directory.
    templates: PathBuf,
    /// Holds `templates/`, `static/` and `outside/`.
    _tmp: TempDir,
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Rewrites template `name`.
    fn edit(&self, name: &str, source: &str) {
        std::fs::write(self.templates.join(name), source).unwrap();
    }
}

/// Writes the templates and a static file.
fn tree(tmp: &TempDir) -> (PathBuf, PathBuf) {
    tmp.write(
        "templates/base.html",
        "<html><head><title>{% block title %}Default title{% endblock %}</title></head>\
         <body>{% block body %}{% endblock %}{% include \"footer.html\" %}</body></html>",
    );
    tmp.write(
        "templates/page.html",
        "{% extends \"base.html\" %}\
         {% block title %}{{ title }}{% endblock %}\
         {% block body %}<p>{{ message }}</p>{% endblock %}",
    );
    tmp.write(
        "templates/footer.html",
        "<footer>{{ request.path }}</footer>",
    );
    tmp.write("templates/plain.txt", "plain: {{ message }}");
    tmp.write(
        "templates/helpers.html",
        "user={% if current_user %}{{ current_user }}{% else %}anonymous{% endif %}\n\
         path={{ request.path }}\n\
         method={{ request.method }}\n\
         static={{ static_url(\"site.css\") }}\n\
         story={{ reverse_url(\"story\", 42) }}\n\
         form={{ xsrf_form_html() }}\n\
         token={{ xsrf_token }}\n",
    );
    tmp.write(
        "templates/fragment.html",
        "{% for i in range(n) %}{{ i }}{% endfor %} {{ name }} {{ name|safe }}",
    );
    tmp.write("templates/edit.html", "version one");
    tmp.write("templates/broken.html", "{% block %}");
    tmp.write("templates/uses_missing.html", "{% include \"nope.html\" %}");
    tmp.write("templates/sub/child.html", "{% extends \"base.html\" %}");
    tmp.write("outside/secret.html", "TOP SECRET template");
    tmp.write("static/site.css", "body {}\n");
    (tmp.path().join("templates"), tmp.path().join("static"))
}

/// The fixture with `settings` (template and static paths filled in).
fn fixture_with(settings: Settings) -> Fixture {
    let tmp = TempDir::new("templates");
    let (templates, static_path) = tree(&tmp);
    let template_path = templates.clone();
    let server = serve(move || {
        Application::with_settings(
            vec![
                Route::new("/page", || Page),
                Route::new("/plain", || Plain),
                Route::new("/helpers", || Helpers),
                Route::new(r"/story/([0-9]+)", || Story).name("story"),
                Route::new("/fragment", || Fragment),
                Route::new(r"/render/(.*)", || RenderAny),
            ],
            Settings {
                template_path: Some(template_path),
                static_path: Some(static_path),
                ..settings
            },
        )
    });
    Fixture {
        server,
        templates,
        _tmp: tmp,
    }
}

fn fixture() -> Fixture {
    fixture_with(Settings::default())
}

/// The value of `key=` on its own line of the helpers page.
fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
}

/// A GET with extra header lines.
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Response {
    fetch(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n"),
    )
}

#[test]
fn render_with_inheritance_and_include() {
    let f = fixture();
    let r = get(f.addr(), "/page?title=Welcome&message=to%20whirl");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(
        r.text(),
        "<html><head><title>Welcome</title></head>\
         <body><p>to whirl</p><footer>/page</footer></body></html>"
    );
    // A template in a subdirectory extends by a root-relative name.
    let r = get(f.addr(), "/render/sub/child.html");
    assert_eq!(r.status, 200);
    assert!(r.text().ends_with("<title>Default title</title></head><body><footer>/render/sub/child.html</footer></body></html>"), "{}", r.text());
}

#[test]
fn html_templates_escape_user_data() {
    let f = fixture();
    let r = get(
        f.addr(),
        "/page?title=%3C%2Ftitle%3E&message=%3Cscript%3Ealert(%22x%22)%26%27%3C%2Fscript%3E",
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(!text.contains("<script>"), "{text}");
    assert!(!text.contains("</title></title>"), "{text}");
    assert!(
        text.contains("<p>&lt;script&gt;alert(&quot;x&quot;)&amp;&#x27;&lt;/script&gt;</p>"),
        "{text}"
    );
    assert_eq!(
        xhtml_unescape("&lt;script&gt;alert(&quot;x&quot;)&amp;&#x27;&lt;/script&gt;"),
        "<script>alert(\"x\")&'</script>"
    );
    // `|safe` opts out; a text template is left as written.
    let r = get(f.addr(), "/fragment");
    assert_eq!(r.text(), "[012 &lt;i&gt;x&lt;/i&gt; <i>x</i>]");
    let r = get(f.addr(), "/plain?message=%3Cb%3E%26");
    assert_eq!(r.text(), "plain: <b>&");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
}

#[test]
fn render_string_returns_the_text() {
    let f = fixture();
    let r = get(f.addr(), "/fragment");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("[012 "), "{}", r.text());
    assert!(r.text().ends_with(']'));
}

#[test]
fn templates_see_the_helpers() {
    let f = fixture_with(Settings {
        xsrf_cookies: true,
        ..Settings::default()
    });
    let r = get_with(f.addr(), "/helpers", "X-User: alice\r\n");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(line(&text, "user"), "alice");
    assert_eq!(xhtml_unescape(line(&text, "path")), "/helpers");
    assert_eq!(line(&text, "method"), "GET");
    // static_url: the app's prefix, the file, and a content hash.
    let url = xhtml_unescape(line(&text, "static"));
    assert!(url.starts_with("/static/site.css?v="), "{url}");
    assert_eq!(url.len(), "/static/site.css?v=".len() + 32, "{url}");
    let css = get(f.addr(), &url);
    assert_eq!((css.status, css.text().as_str()), (200, "body {}\n"));
    assert_eq!(css.header("cache-control"), Some("max-age=315360000"));
    // reverse_url with an argument.
    assert_eq!(xhtml_unescape(line(&text, "story")), "/story/42");
    assert_eq!(get(f.addr(), "/story/42").text(), "story");
    // xsrf_form_html is inserted as markup (not escaped twice), with the
    // token the cookie holds.
    let token = xhtml_unescape(line(&text, "token"));
    assert_eq!(
        line(&text, "form"),
        format!(
            r#"<input type="hidden" name="_xsrf" value="{}"/>"#,
            whirl_web::escape::xhtml_escape(&token)
        )
    );
    let cookies = r.headers_named("set-cookie");
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = r.cookies()["_xsrf"].clone();
    // The form's token passes the XSRF check.
    let body = format!("_xsrf={}", whirl_web::escape::url_escape(&token, true));
    let post = fetch(
        f.addr(),
        &format!(
            "POST /helpers HTTP/1.1\r\nHost: test\r\nCookie: _xsrf={cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!((post.status, post.text().as_str()), (200, "posted"));

    // Nobody logged in.
    let r = get(f.addr(), "/helpers");
    assert_eq!(line(&r.text(), "user"), "anonymous");
}

#[test]
fn user_data_in_the_current_user_is_escaped() {
    let f = fixture();
    let r = get_with(f.addr(), "/helpers", "X-User: <b>mallory</b>\r\n");
    let text = r.text();
    assert_eq!(line(&text, "user"), "&lt;b&gt;mallory&lt;/b&gt;");
    // Without xsrf_cookies the form helper is empty and no cookie is set.
    assert_eq!(line(&text, "form"), "");
    assert!(r.headers_named("set-cookie").is_empty());
}

#[test]
fn a_missing_or_broken_template_is_a_500() {
    let f = fixture();
    for name in [
        "nope.html",
        "broken.html",
        "uses_missing.html",
        "../outside/secret.html",
        "%2E%2E/outside/secret.html",
    ] {
        let r = get(f.addr(), &format!("/render/{name}"));
        assert_eq!(r.status, 500, "{name}");
        let text = r.text();
        assert!(!text.contains("partial output"), "{name}: {text}");
        assert!(!text.contains("TOP SECRET"), "{name}: {text}");
        assert!(!text.contains("broken.html"), "no detail outside debug");
    }
    // The server goes on.
    assert_eq!(get(f.addr(), "/page").status, 200);
}

#[test]
fn debug_error_pages_name_the_template() {
    let f = fixture_with(Settings {
        debug: true,
        ..Settings::default()
    });
    let r = get(f.addr(), "/render/broken.html");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("broken.html"), "{}", r.text());
}

#[test]
fn render_without_template_path_is_a_500() {
    let server = serve(|| Application::new(vec![Route::new("/page", || Page)]));
    let r = get(server.addr, "/page");
    assert_eq!(r.status, 500);
}

#[test]
fn debug_mode_reloads_an_edited_template() {
    let f = fixture_with(Settings {
        debug: true,
        ..Settings::default()
    });
    assert_eq!(
        get(f.addr(), "/render/edit.html").text(),
        "partial output version one"
    );
    // A different length, so the change shows whatever the mtime's
    // resolution.
    f.edit("edit.html", "version two, edited");
    assert_eq!(
        get(f.addr(), "/render/edit.html").text(),
        "partial output version two, edited"
    );
    // A change in a template it includes counts too.
    assert!(get(f.addr(), "/page").text().contains("<footer>"));
    f.edit("footer.html", "<div class=\"f\">changed</div>");
    let text = get(f.addr(), "/page").text();
    assert!(text.contains("<div class=\"f\">changed</div>"), "{text}");
    // And a deleted one is gone.
    std::fs::remove_file(f.templates.join("edit.html")).unwrap();
    assert_eq!(get(f.addr(), "/render/edit.html").status, 500);
}

#[test]
fn without_debug_the_cached_template_stays() {
    let f = fixture();
    assert_eq!(
        get(f.addr(), "/render/edit.html").text(),
        "partial output version one"
    );
    f.edit("edit.html", "version two, edited");
    assert_eq!(
        get(f.addr(), "/render/edit.html").text(),
        "partial output version one"
    );
    std::fs::remove_file(f.templates.join("edit.html")).unwrap();
    assert_eq!(
        get(f.addr(), "/render/edit.html").text(),
        "partial output version one"
    );
}
