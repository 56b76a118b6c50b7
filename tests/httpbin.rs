//! The `httpbin` example answers what httpbin answers. Its app is built in
//! this process (the example's modules are included below) and served on a
//! free port of this thread's loop; requests go through `AsyncHttpClient`,
//! or as raw bytes where the exact request matters. The `GOLDEN_*` bodies
//! were recorded from httpbin 0.10.4 for the same requests.

#[path = "../examples/httpbin/app.rs"]
mod app;
#[path = "../examples/httpbin/auth.rs"]
mod auth;
#[path = "../examples/httpbin/caching.rs"]
mod caching;
#[path = "../examples/httpbin/cookies.rs"]
mod cookies;
#[path = "../examples/httpbin/dynamic.rs"]
mod dynamic;
#[path = "../examples/httpbin/endpoint.rs"]
mod endpoint;
#[path = "../examples/httpbin/formats.rs"]
mod formats;
#[path = "../examples/httpbin/inspect.rs"]
mod inspect;
#[path = "../examples/httpbin/json.rs"]
mod json;
#[path = "../examples/httpbin/random.rs"]
mod random;
#[path = "../examples/httpbin/status.rs"]
mod status;
#[path = "../examples/httpbin/streams.rs"]
mod streams;

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use whirl::httpclient::{AsyncHttpClient, HttpRequest, HttpResponse, Multipart};
use whirl::ioloop::{multi, IoLoop};
use whirl::iostream::IoStream;

/// The longest any test may run: every wait below is bounded by it.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A running httpbin and a client for it.
struct Peer {
    /// Where it listens.
    addr: SocketAddr,
    /// The client the test fetches with.
    client: AsyncHttpClient,
}

impl Peer {
    /// The URL of `path` on the server.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Fetches `request` (its URL a path), returning error statuses as
    /// responses.
    async fn fetch(&self, mut request: HttpRequest) -> HttpResponse {
        request.url = self.url(&request.url);
        let request = request.raise_error(false);
        match self.client.fetch(request).await {
            Ok(response) => response,
            Err(e) => panic!("fetch failed: {e}"),
        }
    }

    /// `GET path`.
    async fn get(&self, path: &str) -> HttpResponse {
        self.fetch(HttpRequest::get(path)).await
    }

    /// `GET path`, answered 200 with JSON.
    async fn get_json(&self, path: &str) -> Value {
        body_json(&self.get(path).await)
    }

    /// Sends `request` as raw bytes and returns the response's head and
    /// body (the request should ask for `Connection: close`).
    async fn raw(&self, request: &[u8]) -> (String, Vec<u8>) {
        let stream = IoStream::connect(self.addr).await.expect("connect");
        stream.write(request.to_vec()).await.expect("write");
        let reply = stream.read_until_close().await.expect("read");
        let split = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8_lossy(&reply[..split]).into_owned();
        (head, reply[split + 4..].to_vec())
    }
}

/// The JSON body of a 200.
fn body_json(response: &HttpResponse) -> Value {
    assert_eq!(response.code, 200, "{}", response.text());
    serde_json::from_slice(&response.body).expect("a JSON body")
}

/// Runs `test` against a fresh httpbin on a free port of this thread's
/// loop, failing if it takes longer than [`TEST_TIMEOUT`].
fn with_httpbin<F, Fut>(test: F)
where
    F: FnOnce(Peer) -> Fut,
    Fut: Future<Output = ()>,
{
    let io_loop = IoLoop::new();
    let server = app::application()
        .listen(0, Some("127.0.0.1"))
        .expect("listen");
    let peer = Peer {
        addr: server.local_addrs()[0],
        client: AsyncHttpClient::new(),
    };
    io_loop
        .run_sync_timeout(test(peer), TEST_TIMEOUT)
        .expect("the test timed out");
}

/// What httpbin 0.10.4 answers to [`GOLDEN_GET_REQUEST`].
const GOLDEN_GET: &str = r#"{
  "args": {
    "a": [
      "1",
      "2"
    ],
    "b": "x"
  },
  "headers": {
    "Accept": "*/*",
    "Connection": "close",
    "Host": "example.test",
    "User-Agent": "whirl-test",
    "X-Multi": "1,2"
  },
  "origin": "127.0.0.1",
  "url": "http://example.test/get?a=1&a=2&b=x"
}
"#;

/// `/get` with a repeated argument and a repeated header.
const GOLDEN_GET_REQUEST: &[u8] = b"GET /get?a=1&a=2&b=x HTTP/1.1\r\nHost: example.test\r\n\
    User-Agent: whirl-test\r\nAccept: */*\r\nX-Multi: 1\r\nx-multi: 2\r\nConnection: close\r\n\r\n";

#[test]
fn get_shows_repeated_args_as_lists_and_headers_title_cased() {
    with_httpbin(|peer| async move {
        let (head, body) = peer.raw(GOLDEN_GET_REQUEST).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Type: application/json"), "{head}");
        assert!(head.contains("Access-Control-Allow-Origin: *"), "{head}");
        assert_eq!(String::from_utf8_lossy(&body), GOLDEN_GET);

        // Through the client: the four keys of /get, no more.
        let got = peer.get_json("/get?x=%C3%A9&flag=").await;
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["args", "headers", "origin", "url"]);
        assert_eq!(got["args"], json!({ "x": "é", "flag": "" }));
        assert_eq!(got["origin"], "127.0.0.1");
        assert_eq!(got["url"], peer.url("/get?x=%C3%A9&flag="));
        assert_eq!(got["headers"]["Host"], peer.addr.to_string());
    });
}

/// A multipart body with a repeated field, a text file and a binary one.
const MULTIPART_BODY: &[u8] =
    b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nthere\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"text\"; filename=\"a.txt\"\r\n\
Content-Type: text/plain\r\n\r\nplain text\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"b.bin\"\r\n\
Content-Type: image/png\r\n\r\n\x89PNG\xff\x00\r\n--XyZ--\r\n";

/// What httpbin 0.10.4 answers to [`MULTIPART_BODY`] posted to `/post?q=1`.
const GOLDEN_MULTIPART: &str = r#"{
  "args": {
    "q": "1"
  },
  "data": "",
  "files": {
    "blob": "data:image/png;base64,iVBOR/8A",
    "text": "plain text"
  },
  "form": {
    "note": [
      "hi",
      "there"
    ]
  },
  "headers": {
    "Connection": "close",
    "Content-Length": "343",
    "Content-Type": "multipart/form-data; boundary=XyZ",
    "Host": "example.test",
    "User-Agent": "whirl-test"
  },
  "json": null,
  "origin": "127.0.0.1",
  "url": "http://example.test/post?q=1"
}
"#;

#[test]
fn post_multipart_shows_files_as_text_or_data_urls() {
    with_httpbin(|peer| async move {
        let mut request = format!(
            "POST /post?q=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: whirl-test\r\n\
             Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            MULTIPART_BODY.len()
        )
        .into_bytes();
        request.extend_from_slice(MULTIPART_BODY);
        let (head, body) = peer.raw(&request).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(String::from_utf8_lossy(&body), GOLDEN_MULTIPART);

        // The client's multipart builder, as `requests`' files= would send.
        let form = Multipart::new()
            .field("kind", "receipt")
            .file("upload", "notes.txt", b"line one\n".to_vec())
            .file_with_type("image", "x.bin", "application/x-thing", vec![0u8, 159, 146]);
        let got = body_json(&peer.fetch(HttpRequest::post("/post").multipart(form)).await);
        assert_eq!(got["form"], json!({ "kind": "receipt" }));
        assert_eq!(
            got["files"],
            json!({ "upload": "line one\n", "image": "data:application/x-thing;base64,AJ+S" })
        );
        assert_eq!((&got["data"], &got["json"]), (&json!(""), &Value::Null));
    });
}

#[test]
fn post_form_json_and_raw_bodies() {
    with_httpbin(|peer| async move {
        let form = HttpRequest::post("/post?q=1")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("a=1&b=two+words&a=3");
        let got = body_json(&peer.fetch(form).await);
        assert_eq!(got["form"], json!({ "a": ["1", "3"], "b": "two words" }));
        assert_eq!(got["args"], json!({ "q": "1" }));
        assert_eq!((&got["data"], &got["json"]), (&json!(""), &Value::Null));
        assert_eq!(got["files"], json!({}));

        let body = r#"{"name": "café", "n": [1, 2.5, null]}"#;
        let request = HttpRequest::post("/post")
            .header("Content-Type", "application/json")
            .body(body);
        let got = body_json(&peer.fetch(request).await);
        assert_eq!(got["json"], json!({ "name": "café", "n": [1, 2.5, null] }));
        assert_eq!(got["data"], body);
        assert_eq!(got["form"], json!({}));

        let raw = HttpRequest::post("/post")
            .header("Content-Type", "application/octet-stream")
            .body(vec![0xffu8, 0xfe, 0x00]);
        let got = body_json(&peer.fetch(raw).await);
        assert_eq!(got["data"], "data:application/octet-stream;base64,//4A");
        assert_eq!(got["json"], Value::Null);

        let text = HttpRequest::post("/post")
            .header("Content-Type", "text/plain")
            .body("just text");
        let got = body_json(&peer.fetch(text).await);
        assert_eq!(
            (&got["data"], &got["json"]),
            (&json!("just text"), &Value::Null)
        );
    });
}

/// What httpbin 0.10.4 answers to a `PUT /anything/x` of [`UNICODE_JSON`]:
/// non-ASCII escaped as `\uXXXX`, as Python's `ensure_ascii` does.
const GOLDEN_ANYTHING: &str = r#"{
  "args": {},
  "data": "{\"name\": \"caf\u00e9 \u2615 \ud834\udd1e\", \"n\": [1, 2.5, null, true], \"o\": {}}",
  "files": {},
  "form": {},
  "headers": {
    "Connection": "close",
    "Content-Length": "62",
    "Content-Type": "application/json",
    "Host": "example.test"
  },
  "json": {
    "n": [
      1,
      2.5,
      null,
      true
    ],
    "name": "caf\u00e9 \u2615 \ud834\udd1e",
    "o": {}
  },
  "method": "PUT",
  "origin": "127.0.0.1",
  "url": "http://example.test/anything/x"
}
"#;

/// A JSON body with characters outside ASCII and outside the BMP.
const UNICODE_JSON: &str = r#"{"name": "café ☕ 𝄞", "n": [1, 2.5, null, true], "o": {}}"#;

#[test]
fn methods_and_anything() {
    with_httpbin(|peer| async move {
        let mut request = format!(
            "PUT /anything/x HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            UNICODE_JSON.len()
        )
        .into_bytes();
        request.extend_from_slice(UNICODE_JSON.as_bytes());
        let (_, body) = peer.raw(&request).await;
        assert_eq!(String::from_utf8_lossy(&body), GOLDEN_ANYTHING);

        for method in ["PUT", "PATCH", "DELETE"] {
            let path = format!("/{}", method.to_lowercase());
            let mut request = HttpRequest::new(&path).method(method);
            if method != "DELETE" {
                // (The client sends no body with a DELETE, as Tornado's.)
                request = request.header("Content-Type", "text/plain").body("x=1");
            }
            let got = body_json(&peer.fetch(request).await);
            assert_eq!(got["url"], peer.url(&path), "{method}");
            assert_eq!(got["data"], if method == "DELETE" { "" } else { "x=1" });
            assert!(got.get("method").is_none(), "{method}");
        }
        // Each route takes its own method only, and says which.
        let wrong = peer.fetch(HttpRequest::new("/post")).await;
        assert_eq!(wrong.code, 405);
        assert_eq!(wrong.headers.get("Allow"), Some("POST, OPTIONS"));
        let got = body_json(
            &peer
                .fetch(HttpRequest::new("/anything").method("DELETE"))
                .await,
        );
        assert_eq!(got["method"], "DELETE");
    });
}

#[test]
fn headers_ip_and_user_agent() {
    with_httpbin(|peer| async move {
        let request = HttpRequest::get("/headers")
            .header("x-api-key", "k1")
            .header("X-Forwarded-For", "203.0.113.9")
            .user_agent("agent/1.0");
        let got = body_json(&peer.fetch(request).await);
        assert_eq!(got["headers"]["X-Api-Key"], "k1");
        assert_eq!(got["headers"]["User-Agent"], "agent/1.0");
        // Proxy headers are hidden, as on httpbin.org.
        assert!(got["headers"].get("X-Forwarded-For").is_none(), "{got}");

        let got = body_json(
            &peer
                .fetch(HttpRequest::get("/ip").header("X-Forwarded-For", "203.0.113.9"))
                .await,
        );
        assert_eq!(got, json!({ "origin": "203.0.113.9" }));
        assert_eq!(peer.get_json("/ip").await, json!({ "origin": "127.0.0.1" }));
        let got = body_json(
            &peer
                .fetch(HttpRequest::get("/user-agent").user_agent("agent/2"))
                .await,
        );
        assert_eq!(got, json!({ "user-agent": "agent/2" }));
    });
}

#[test]
fn status_codes() {
    with_httpbin(|peer| async move {
        let teapot = peer.get("/status/418").await;
        assert_eq!(teapot.code, 418);
        assert!(
            teapot.text().contains("-=[ teapot ]=-"),
            "{}",
            teapot.text()
        );
        assert_eq!(
            teapot.headers.get("x-more-info"),
            Some("http://tools.ietf.org/html/rfc2324")
        );
        assert_eq!(peer.get("/status/503").await.code, 503);
        let redirect = peer
            .fetch(HttpRequest::get("/status/302").follow_redirects(false))
            .await;
        assert_eq!(
            (redirect.code, redirect.headers.get("Location")),
            (302, Some("/redirect/1"))
        );
        // A weight of 0 is never picked.
        for _ in 0..5 {
            assert_eq!(peer.get("/status/200:0,404:1").await.code, 404);
        }
        let code = peer.get("/status/201,202").await.code;
        assert!(code == 201 || code == 202, "{code}");
        let bad = peer.get("/status/abc").await;
        assert_eq!(
            (bad.code, bad.text().as_str()),
            (400, "Invalid status code")
        );
        assert_eq!(
            peer.fetch(HttpRequest::post("/status/404").body(""))
                .await
                .code,
            404
        );
    });
}

#[test]
fn redirects_are_followed_to_get() {
    with_httpbin(|peer| async move {
        for path in [
            "/redirect/3",
            "/relative-redirect/3",
            "/absolute-redirect/3",
            "/redirect/2?absolute=true",
        ] {
            let response = peer.get(path).await;
            assert_eq!(response.code, 200, "{path}");
            assert_eq!(response.effective_url, peer.url("/get"), "{path}");
        }
        let one = peer
            .fetch(HttpRequest::get("/redirect/2").follow_redirects(false))
            .await;
        assert_eq!(
            (one.code, one.headers.get("Location")),
            (302, Some("/relative-redirect/1"))
        );
        let absolute = peer
            .fetch(HttpRequest::get("/absolute-redirect/1").follow_redirects(false))
            .await;
        assert_eq!(
            absolute.headers.get("Location"),
            Some(peer.url("/get").as_str())
        );
        let to = peer
            .fetch(HttpRequest::get("/redirect-to?url=/ip&status_code=307").follow_redirects(false))
            .await;
        assert_eq!((to.code, to.headers.get("Location")), (307, Some("/ip")));
        assert_eq!(
            peer.get("/redirect-to?url=/ip").await.effective_url,
            peer.url("/ip")
        );
        assert_eq!(peer.get("/redirect-to").await.code, 400);
    });
}

#[test]
fn basic_auth_and_bearer() {
    with_httpbin(|peer| async move {
        let ok = peer
            .fetch(HttpRequest::get("/basic-auth/ada/s3cret").basic_auth("ada", "s3cret"))
            .await;
        assert_eq!(
            body_json(&ok),
            json!({ "authenticated": true, "user": "ada" })
        );
        let wrong = peer
            .fetch(HttpRequest::get("/basic-auth/ada/s3cret").basic_auth("ada", "nope"))
            .await;
        assert_eq!(wrong.code, 401);
        assert_eq!(
            wrong.headers.get("WWW-Authenticate"),
            Some(r#"Basic realm="Fake Realm""#)
        );
        assert_eq!(peer.get("/basic-auth/ada/s3cret").await.code, 401);
        assert_eq!(peer.get("/hidden-basic-auth/ada/s3cret").await.code, 404);

        let bearer = peer
            .fetch(HttpRequest::get("/bearer").header("Authorization", "Bearer t0k"))
            .await;
        assert_eq!(
            body_json(&bearer),
            json!({ "authenticated": true, "token": "t0k" })
        );
        let missing = peer.get("/bearer").await;
        assert_eq!(
            (missing.code, missing.headers.get("WWW-Authenticate")),
            (401, Some("Bearer"))
        );
    });
}

#[test]
fn cookies_set_then_read_then_delete() {
    with_httpbin(|peer| async move {
        let set = peer
            .fetch(HttpRequest::get("/cookies/set?flavour=oat&size=2").follow_redirects(false))
            .await;
        assert_eq!(
            (set.code, set.headers.get("Location")),
            (302, Some("/cookies"))
        );
        let cookies: Vec<&str> = set.headers.get_all("Set-Cookie").collect();
        assert_eq!(cookies, ["flavour=oat; Path=/", "size=2; Path=/"]);

        let sent = cookies
            .iter()
            .map(|c| c.split(';').next().unwrap())
            .collect::<Vec<_>>()
            .join("; ");
        let read = peer
            .fetch(HttpRequest::get("/cookies").header("Cookie", format!("{sent}; __utma=1")))
            .await;
        assert_eq!(
            body_json(&read),
            json!({ "cookies": { "flavour": "oat", "size": "2" } })
        );

        let delete = peer
            .fetch(HttpRequest::get("/cookies/delete?flavour").follow_redirects(false))
            .await;
        assert_eq!(delete.code, 302);
        let cleared = delete.headers.get("Set-Cookie").unwrap();
        assert!(
            cleared.starts_with("flavour=") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );
        assert_eq!(peer.get_json("/cookies").await, json!({ "cookies": {} }));
    });
}

#[test]
fn gzip_and_deflate_decode() {
    with_httpbin(|peer| async move {
        let got = peer.get_json("/gzip").await;
        assert_eq!(
            (&got["gzipped"], &got["method"]),
            (&json!(true), &json!("GET"))
        );
        let raw = peer
            .fetch(HttpRequest::get("/gzip").decompress_response(false))
            .await;
        assert_eq!(raw.headers.get("Content-Encoding"), Some("gzip"));
        assert_eq!(&raw.body[..2], [0x1f, 0x8b]);

        let raw = peer
            .fetch(HttpRequest::get("/deflate").decompress_response(false))
            .await;
        assert_eq!(raw.headers.get("Content-Encoding"), Some("deflate"));
        let mut text = String::new();
        flate2::read::ZlibDecoder::new(&raw.body[..])
            .read_to_string(&mut text)
            .expect("zlib data");
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(got["deflated"], true);
    });
}

#[test]
fn stream_sends_n_json_lines() {
    with_httpbin(|peer| async move {
        let response = peer.get("/stream/5?k=v").await;
        assert_eq!(response.code, 200);
        let text = response.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        for (id, line) in lines.iter().enumerate() {
            assert!(line.starts_with(r#"{"url": ""#), "{line}");
            let got: Value = serde_json::from_str(line).expect("a JSON line");
            assert_eq!(
                (&got["id"], &got["args"]),
                (&json!(id), &json!({ "k": "v" }))
            );
        }
        assert_eq!(peer.get("/stream/500").await.text().lines().count(), 100);
    });
}

#[test]
fn bytes_stream_bytes_and_drip() {
    with_httpbin(|peer| async move {
        let bytes = peer.get("/bytes/1024").await;
        assert_eq!(bytes.body.len(), 1024);
        assert_eq!(
            bytes.headers.get("Content-Type"),
            Some("application/octet-stream")
        );
        assert_eq!(peer.get("/bytes/999999").await.body.len(), 100 * 1024);
        // A seed repeats the bytes, however they are streamed.
        let seeded = peer.get("/bytes/100?seed=7").await.body;
        assert_eq!(peer.get("/bytes/100?seed=7").await.body, seeded);
        let streamed = peer.get("/stream-bytes/100?seed=7&chunk_size=30").await;
        assert_eq!(streamed.body, seeded);
        assert!(streamed.headers.get("Content-Length").is_none());

        let drip = peer.get("/drip?numbytes=5&duration=0.2&code=201").await;
        assert_eq!((drip.code, drip.body.as_slice()), (201, &b"*****"[..]));
        assert_eq!(peer.get("/drip?numbytes=0").await.code, 400);
    });
}

#[test]
fn range_answers_206_for_a_part() {
    with_httpbin(|peer| async move {
        let part = peer
            .fetch(HttpRequest::get("/range/100").header("Range", "bytes=10-19"))
            .await;
        assert_eq!(part.code, 206);
        assert_eq!(part.text(), "klmnopqrst");
        assert_eq!(part.headers.get("Content-Range"), Some("bytes 10-19/100"));
        assert_eq!(part.headers.get("ETag"), Some("range100"));
        let tail = peer
            .fetch(HttpRequest::get("/range/30").header("Range", "bytes=-4"))
            .await;
        assert_eq!((tail.code, tail.text().as_str()), (206, "abcd"));
        let whole = peer.get("/range/30").await;
        assert_eq!(
            (whole.code, whole.text().as_str()),
            (200, "abcdefghijklmnopqrstuvwxyzabcd")
        );
        let outside = peer
            .fetch(HttpRequest::get("/range/30").header("Range", "bytes=40-"))
            .await;
        assert_eq!(outside.code, 416);
        assert_eq!(outside.headers.get("Content-Range"), Some("bytes */30"));
        let paced = peer.get("/range/20?duration=0.1&chunk_size=5").await;
        assert_eq!(paced.text(), "abcdefghijklmnopqrst");
    });
}

#[test]
fn concurrent_delays_overlap() {
    with_httpbin(|peer| async move {
        let started = Instant::now();
        let responses = multi((0..5).map(|_| peer.get("/delay/1"))).await;
        let total = started.elapsed();
        for response in &responses {
            let got = body_json(response);
            assert_eq!(got["url"], peer.url("/delay/1"));
        }
        // One after another would take 5 s; together they take about 1.
        assert!(total >= Duration::from_secs(1), "no delay: {total:?}");
        assert!(
            total < Duration::from_secs(4),
            "the delays did not overlap: {total:?}"
        );
        assert_eq!(peer.get("/delay/soon").await.code, 400);
    });
}

#[test]
fn base64_and_uuid() {
    with_httpbin(|peer| async move {
        assert_eq!(
            peer.get("/base64/SFRUUEJJTiBpcyBhd2Vzb21l").await.text(),
            "HTTPBIN is awesome"
        );
        assert_eq!(peer.get("/base64/w6k_").await.text(), "é?");
        assert_eq!(
            peer.get("/base64/abc").await.text(),
            "Incorrect Base64 data try: SFRUUEJJTiBpcyBhd2Vzb21l"
        );

        let first = peer.get_json("/uuid").await["uuid"]
            .as_str()
            .unwrap()
            .to_string();
        let second = peer.get_json("/uuid").await["uuid"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(first, second);
        for uuid in [&first, &second] {
            let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{uuid}");
            assert!(uuid
                .chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert_eq!(&uuid[14..15], "4", "version 4: {uuid}");
            assert!("89ab".contains(&uuid[19..20]), "RFC 4122 variant: {uuid}");
        }
    });
}

#[test]
fn etag_and_cache_answer_304() {
    with_httpbin(|peer| async move {
        let plain = peer.get("/etag/v1").await;
        assert_eq!((plain.code, plain.headers.get("ETag")), (200, Some("v1")));
        let fresh = peer
            .fetch(HttpRequest::get("/etag/v1").header("If-None-Match", r#""v0", "v1""#))
            .await;
        assert_eq!((fresh.code, fresh.headers.get("ETag")), (304, Some("v1")));
        let star = peer
            .fetch(HttpRequest::get("/etag/v1").header("If-None-Match", "*"))
            .await;
        assert_eq!(star.code, 304);
        let changed = peer
            .fetch(HttpRequest::get("/etag/v1").header("If-None-Match", r#""v0""#))
            .await;
        assert_eq!(changed.code, 200);
        let precondition = peer
            .fetch(HttpRequest::get("/etag/v1").header("If-Match", r#""v0""#))
            .await;
        assert_eq!(precondition.code, 412);
        let matched = peer
            .fetch(HttpRequest::get("/etag/v1").header("If-Match", r#"W/"v1""#))
            .await;
        assert_eq!(matched.code, 200);

        let cache = peer.get("/cache").await;
        assert_eq!(cache.code, 200);
        let modified = cache
            .headers
            .get("Last-Modified")
            .expect("Last-Modified")
            .to_string();
        assert_eq!(cache.headers.get("ETag").map(str::len), Some(32));
        let again = peer
            .fetch(HttpRequest::get("/cache").header("If-Modified-Since", modified))
            .await;
        assert_eq!((again.code, again.body.len()), (304, 0));
        let tagged = peer
            .fetch(HttpRequest::get("/cache").header("If-None-Match", "anything"))
            .await;
        assert_eq!(tagged.code, 304);

        let cached = peer.get("/cache/60").await;
        assert_eq!(
            cached.headers.get("Cache-Control"),
            Some("public, max-age=60")
        );
    });
}

#[test]
fn response_headers_are_echoed_in_headers_and_json() {
    with_httpbin(|peer| async move {
        let response = peer
            .get("/response-headers?X-Tag=a&X-Tag=b&freeform=yes")
            .await;
        let tags: Vec<&str> = response.headers.get_all("X-Tag").collect();
        assert_eq!(tags, ["a", "b"]);
        assert_eq!(response.headers.get("freeform"), Some("yes"));
        let got = body_json(&response);
        assert_eq!(
            got,
            json!({
                "Content-Length": response.body.len().to_string(),
                "Content-Type": "application/json",
                "X-Tag": ["a", "b"],
                "freeform": "yes",
            })
        );
        let bad = peer.get("/response-headers?X%20Bad=1").await;
        assert_eq!(bad.code, 400);
    });
}

#[test]
fn documents_and_index() {
    with_httpbin(|peer| async move {
        let index = peer.get("/").await;
        assert!(
            index.text().contains("/basic-auth/:user/:passwd"),
            "{}",
            index.text()
        );
        let html = peer.get("/html").await;
        assert!(html.text().contains("Herman Melville - Moby-Dick"));
        let xml = peer.get("/xml").await;
        assert_eq!(xml.headers.get("Content-Type"), Some("application/xml"));
        assert!(xml.text().starts_with("<?xml"));
        let got = peer.get_json("/json").await;
        assert_eq!(got["slideshow"]["title"], "Sample Slide Show");
        let options = peer
            .fetch(
                HttpRequest::new("/get")
                    .method("OPTIONS")
                    .header("Origin", "http://a.test"),
            )
            .await;
        assert_eq!(options.code, 200);
        assert_eq!(
            options.headers.get("Access-Control-Allow-Origin"),
            Some("http://a.test")
        );
        assert_eq!(options.headers.get("Allow"), Some("GET, HEAD, OPTIONS"));
    });
}

/// Kills the child process when dropped, so a failing test leaves none.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_binary_logs_its_address_and_serves() {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop();
    if path.ends_with("deps") {
        path.pop();
    }
    let mut child = KillOnDrop(
        Command::new(path.join("examples").join("httpbin"))
            .args(["--port", "0"])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the httpbin example"),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let marker = "listening on http://127.0.0.1:";
    let addr = loop {
        let line = lines
            .next()
            .expect("httpbin exited early")
            .expect("read stderr");
        if let Some(at) = line.find(marker) {
            break line[at + "listening on http://".len()..].trim().to_string();
        }
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read the reply");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.ends_with("{\n  \"origin\": \"127.0.0.1\"\n}\n"),
        "{reply}"
    );
}
