//! The upstream the tests put behind `async_patterns`: it echoes what it
//! was sent (as JSON, or the raw body), answers any status, answers slowly,
//! drips a response in two parts, and counts a streamed body as it
//! arrives — over plain HTTP or TLS with a self-signed certificate.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use whirl::httpserver::HttpServer;
use whirl::ioloop::sleep;
use whirl::iostream::TlsServerConfig;
use whirl::web::{Application, Context, HandlerResult, HttpError, RequestHandler, Route};

use super::Server;

/// What the test and the upstream share.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    /// Set by the test to let `/drip` send its second part.
    pub drip_gate: Arc<AtomicBool>,
    /// Bytes `/sink` has received so far.
    pub sink_bytes: Arc<AtomicUsize>,
    /// Set when a `/sink` request's connection closed before its body was
    /// complete.
    pub sink_cut: Arc<AtomicBool>,
}

/// Starts the upstream over plain HTTP.
pub fn start(probes: Probes) -> Server {
    Server::start(move || application(probes).listen(0, Some("127.0.0.1")))
}

/// Starts the upstream over TLS, with a certificate no one trusts.
pub fn start_tls() -> Server {
    Server::start(|| {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let cert = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
        let tls = TlsServerConfig::from_pem(
            cert.cert.pem().as_bytes(),
            cert.signing_key.serialize_pem().as_bytes(),
        )?;
        let server = HttpServer::new(application(Probes::default())).with_tls(tls);
        server.listen(0, Some("127.0.0.1"))?;
        Ok(server)
    })
}

/// The upstream's routes.
fn application(probes: Probes) -> Application {
    let Probes {
        drip_gate: gate,
        sink_bytes: sink,
        sink_cut: cut,
    } = probes;
    Application::new(vec![
        Route::new("/echo/raw", || EchoRaw),
        Route::new("/echo(/.*)?", || Echo),
        Route::new(r"/status/(\d+)", || Status),
        Route::new("/slow", || Slow),
        Route::new("/drip", move || Drip(gate.clone())),
        Route::new("/sink", move || Sink {
            total: sink.clone(),
            cut: cut.clone(),
            mine: 0,
        }),
    ])
}

/// Defines every verb method of a handler as `self.answer(cx)`.
macro_rules! every_verb {
    () => {
        async fn get(&mut self, cx: &mut Context) -> HandlerResult {
            self.answer(cx)
        }
        async fn post(&mut self, cx: &mut Context) -> HandlerResult {
            self.answer(cx)
        }
        async fn put(&mut self, cx: &mut Context) -> HandlerResult {
            self.answer(cx)
        }
        async fn patch(&mut self, cx: &mut Context) -> HandlerResult {
            self.answer(cx)
        }
        async fn delete(&mut self, cx: &mut Context) -> HandlerResult {
            self.answer(cx)
        }
        async fn options(&mut self, cx: &mut Context) -> HandlerResult {
            self.answer(cx)
        }
    };
}

/// `ANY /echo[/...]`: JSON describing the request — method, path, query,
/// headers, body, form — with a few response headers to relay (two
/// `Set-Cookie`, a hop-by-hop `Proxy-Authenticate`). `HEAD` gets
/// `Content-Length: 1234` and no body.
struct Echo;

impl Echo {
    fn answer(&mut self, cx: &mut Context) -> HandlerResult {
        let request = cx.request();
        let headers: Vec<[String; 2]> = request
            .headers
            .iter()
            .map(|(n, v)| [n.to_string(), v.to_string()])
            .collect();
        let form: BTreeMap<String, Vec<String>> = request
            .body_arguments
            .iter()
            .map(|(name, values)| {
                let values = values
                    .iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect();
                (name.clone(), values)
            })
            .collect();
        let answer = json!({
            "method": request.method(),
            "path": request.path(),
            "query": request.query(),
            "headers": headers,
            "body": String::from_utf8_lossy(&request.body),
            "form": form,
        });
        cx.set_header("X-Upstream", "echo")?;
        cx.add_header("Set-Cookie", "a=1; Path=/")?;
        cx.add_header("Set-Cookie", "b=2; Path=/")?;
        cx.set_header("Proxy-Authenticate", "Basic realm=\"upstream\"")?;
        cx.write(answer);
        Ok(())
    }
}

impl RequestHandler for Echo {
    every_verb!();

    async fn head(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("X-Echo-Method", "HEAD")?;
        cx.set_header("Content-Length", 1234)?;
        Ok(())
    }
}

/// `ANY /echo/raw`: the request body back, byte for byte.
struct EchoRaw;

impl EchoRaw {
    fn answer(&mut self, cx: &mut Context) -> HandlerResult {
        let body = std::mem::take(&mut cx.request_mut().body);
        cx.set_header("Content-Type", "application/octet-stream")?;
        cx.set_header("X-Body-Sha256", super::sha256_hex(&body))?;
        cx.write(body);
        Ok(())
    }
}

impl RequestHandler for EchoRaw {
    every_verb!();
}

/// `ANY /status/<code>`: that status (3xx with a `Location`).
struct Status;

impl Status {
    fn answer(&mut self, cx: &mut Context) -> HandlerResult {
        let code: u16 = cx
            .path_arg(0)
            .and_then(|c| c.parse().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or_else(|| HttpError::new(400))?;
        cx.set_status(code);
        if (300..400).contains(&code) {
            cx.set_header("Location", "/echo/redirected")?;
        }
        if !matches!(code, 204 | 304) {
            cx.write(format!("status {code}"));
        }
        Ok(())
    }
}

impl RequestHandler for Status {
    every_verb!();
}

/// `GET /slow?delay=SECONDS`: answers `slow ok` after the delay, without
/// blocking its loop.
struct Slow;

impl RequestHandler for Slow {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let delay: f64 = cx
            .get_argument_or("delay", "0.5")?
            .parse()
            .map_err(|_| HttpError::new(400))?;
        sleep(Duration::from_secs_f64(delay)).await;
        cx.write("slow ok");
        Ok(())
    }
}

/// `GET /drip`: sends `first|`, then waits for the test to open the gate
/// (up to 10 s) and sends `second` — or `gate timeout` if it never opened.
struct Drip(Arc<AtomicBool>);

impl RequestHandler for Drip {
    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        cx.set_header("Content-Type", "text/plain")?;
        cx.write("first|");
        cx.flush().await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.0.load(Ordering::SeqCst) && Instant::now() < deadline {
            sleep(Duration::from_millis(10)).await;
        }
        if self.0.load(Ordering::SeqCst) {
            cx.write("second");
        } else {
            cx.write("gate timeout");
        }
        Ok(())
    }
}

/// `POST /sink`: a streamed body, counted (in the shared probes) as it
/// arrives; answers `got N`.
struct Sink {
    /// Bytes every `/sink` request received.
    total: Arc<AtomicUsize>,
    /// Set if this request is cut short.
    cut: Arc<AtomicBool>,
    /// Bytes this request received.
    mine: usize,
}

impl RequestHandler for Sink {
    const STREAM_REQUEST_BODY: bool = true;

    async fn data_received(&mut self, _cx: &mut Context, chunk: Vec<u8>) -> HandlerResult {
        self.mine += chunk.len();
        self.total.fetch_add(chunk.len(), Ordering::SeqCst);
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context) -> HandlerResult {
        cx.write(format!("got {}", self.mine));
        Ok(())
    }

    fn on_connection_close(&mut self, _cx: &mut Context) {
        self.cut.store(true, Ordering::SeqCst);
    }
}
