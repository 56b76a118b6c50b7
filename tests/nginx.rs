//! whirl behind nginx, as Tornado's deployment docs advise (issue 9): two
//! `whoami` instances with `--xheaders`, an nginx in front with keep-alive
//! upstream connections, `proxy_next_upstream error timeout` and the proxy
//! headers. Requests are balanced over both; `remote_ip` is the client's,
//! taken from `X-Real-IP` (nginx connects from another address, so the
//! socket's peer could not pass for it); killing one instance mid-load
//! loses no request.
//!
//! nginx runs as a child process with everything in a temporary
//! directory. Without nginx the tests print a note and pass — except under
//! CI (`CI` set), where `.ci/run` installs it and its absence fails them.
//! `docs/DEPLOYMENT.md` shows the same configuration.

mod support_process;

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use support_process::{send_signal, Client, ExampleServer, Outcome};

/// The address nginx connects to the instances from (`proxy_bind`), unlike
/// the client's 127.0.0.1. Any 127/8 address is local on Linux; elsewhere
/// nginx connects from 127.0.0.1 too, and the peer checks are skipped.
const NGINX_SIDE: &str = "127.0.0.3";

/// The configuration: `{dir}`, `{port}`, `{a}`, `{b}` and `{bind}` are
/// filled in. The `upstream`, `proxy_*` and `location` lines are those of
/// `docs/DEPLOYMENT.md`.
const CONFIG: &str = r#"
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events { worker_connections 256; }

http {
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream whirl {
        server {a};
        server {b};
        keepalive 16;
    }

    server {
        listen 127.0.0.1:{port};
        {bind}

        proxy_http_version 1.1;
        proxy_next_upstream error timeout;

        location / {
            proxy_pass http://whirl;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }

        # Test only: what whirl reports when no proxy header reaches it.
        location /no-proxy-headers/ {
            proxy_pass http://whirl/;
            proxy_set_header Connection "";
            proxy_set_header X-Real-IP "";
            proxy_set_header X-Forwarded-For "";
        }
    }
}
"#;

/// One `whoami` answer.
#[derive(Debug, Deserialize)]
struct WhoAmI {
    /// Which instance answered.
    instance: String,
    /// The client as whirl believes it.
    remote_ip: Option<String>,
    /// `http` or `https`.
    protocol: String,
    /// The socket's peer.
    peer: Option<String>,
}

/// Parses a whole `200` from `whoami`.
///
/// # Panics
///
/// On any other outcome.
fn who(outcome: &Outcome) -> WhoAmI {
    match outcome {
        Outcome::Complete {
            status: 200, body, ..
        } => serde_json::from_slice(body).expect("whoami JSON"),
        other => panic!("not a 200 from whoami: {other:?}"),
    }
}

/// nginx's binary, if installed (searched on `PATH`, then where
/// distributions put it).
fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/local/sbin",
                "/usr/local/bin",
                "/opt/homebrew/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// nginx, or `None` with a note when it is missing outside CI.
///
/// # Panics
///
/// When it is missing under CI.
fn nginx_or_skip() -> Option<PathBuf> {
    let found = find_nginx();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is not installed, and CI must run this test (.ci/run installs it)"
        );
        eprintln!("note: nginx is not installed; skipping the test of whirl behind nginx");
    }
    found
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// An nginx in front of two `whoami` instances; everything stopped and
/// removed when dropped.
struct Deployment {
    /// Where clients connect.
    addr: SocketAddr,
    /// The instances, named `a` and `b`.
    instances: Vec<ExampleServer>,
    /// The nginx master process.
    nginx: Child,
    /// Its configuration, logs and temporary files.
    dir: PathBuf,
}

impl Deployment {
    /// Starts the instances, then nginx, and waits until nginx accepts.
    fn start(nginx: &Path, test: &str) -> Deployment {
        // Step 1. Two instances that trust the proxy headers.
        let instances: Vec<ExampleServer> = ["a", "b"]
            .map(|name| ExampleServer::start("whoami", &["--name", name, "--xheaders"]))
            .into();
        // Step 2. The configuration, in a fresh directory.
        let dir = std::env::temp_dir().join(format!("whirl-nginx-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        let port = free_port();
        let bind = if cfg!(target_os = "linux") {
            format!("proxy_bind {NGINX_SIDE};")
        } else {
            String::new()
        };
        let config = CONFIG
            .replace("{dir}", &dir.display().to_string())
            .replace("{port}", &port.to_string())
            .replace("{a}", &instances[0].addr.to_string())
            .replace("{b}", &instances[1].addr.to_string())
            .replace("{bind}", &bind);
        fs::write(dir.join("nginx.conf"), config).expect("write nginx.conf");
        // Step 3. nginx in the foreground (`daemon off`), as our child.
        let stderr = fs::File::create(dir.join("stderr.log")).expect("stderr.log");
        let child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start nginx");
        let mut deployment = Deployment {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            instances,
            nginx: child,
            dir,
        };
        deployment.wait_until_accepting();
        deployment
    }

    /// Waits up to 10 s for nginx to accept connections.
    fn wait_until_accepting(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr).is_err() {
            let exited = self.nginx.try_wait().expect("try_wait");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "nginx did not start ({exited:?}):\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// nginx's own stderr and error log, for failure messages.
    fn logs(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        // nginx's fast shutdown stops its worker too; SIGKILL if it hangs.
        if matches!(self.nginx.try_wait(), Ok(None)) {
            send_signal(self.nginx.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.nginx.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = self.nginx.kill();
            let _ = self.nginx.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn requests_are_balanced_and_remote_ip_is_the_clients() {
    let Some(nginx) = nginx_or_skip() else {
        return;
    };
    let deployment = Deployment::start(&nginx, "balance");
    let mut client = Client::new(deployment.addr);

    // Round robin over both instances, on one client connection.
    let mut answered = [0usize; 2];
    for _ in 0..40 {
        let answer = who(&client.get("/", &[]));
        let index = if answer.instance == "a" { 0 } else { 1 };
        answered[index] += 1;
    }
    assert!(
        answered.iter().all(|&n| n >= 10),
        "a, b answered {answered:?}"
    );

    // The client's address, from nginx's X-Real-IP — not the addresses
    // the client made up, and not nginx's own.
    let spoofed = ["X-Forwarded-For: 203.0.113.9", "X-Real-IP: 198.51.100.7"];
    let answer = who(&client.get("/", &spoofed));
    assert_eq!(answer.remote_ip.as_deref(), Some("127.0.0.1"), "{answer:?}");
    assert_eq!(answer.protocol, "http");
    if cfg!(target_os = "linux") {
        let peer = answer.peer.as_deref().unwrap_or_default();
        assert!(peer.starts_with(&format!("{NGINX_SIDE}:")), "{answer:?}");
        // Without the proxy headers whirl could only name nginx.
        let bare = who(&client.get("/no-proxy-headers/", &[]));
        assert_eq!(bare.remote_ip.as_deref(), Some(NGINX_SIDE), "{bare:?}");
    }
}

#[test]
fn killing_one_instance_mid_load_loses_no_request() {
    stop_one_instance_mid_load("KILL");
}

#[test]
fn a_graceful_stop_of_one_instance_mid_load_loses_no_request() {
    // A rolling restart: SIGTERM drains `a` while nginx moves to `b`.
    stop_one_instance_mid_load("TERM");
}

/// Sends `signal` to instance `a` while four clients load the deployment,
/// and checks that every request got a whole 200, from `b` once `a` is
/// gone.
fn stop_one_instance_mid_load(signal: &str) {
    let Some(nginx) = nginx_or_skip() else {
        return;
    };
    let mut deployment = Deployment::start(&nginx, &format!("failover-{signal}"));

    // Step 1. Load from four keep-alive client connections, until done.
    let answered = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (addr, answered) = (deployment.addr, answered.clone());
            let (killed, done) = (killed.clone(), done.clone());
            thread::spawn(move || {
                let mut client = Client::new(addr);
                let mut results = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    let after_kill = killed.load(Ordering::SeqCst);
                    let outcome = client.get("/", &[]);
                    answered.fetch_add(1, Ordering::SeqCst);
                    results.push((outcome, after_kill));
                }
                results
            })
        })
        .collect();
    let wait_for_answers = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while answered.load(Ordering::SeqCst) < count && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    };

    // Step 2. Stop instance `a` once the load is under way, and go on
    // for a while after it is gone.
    wait_for_answers(100);
    let a = &mut deployment.instances[0];
    let a_addr = a.addr;
    a.signal(signal);
    let status = a.wait_exit(Duration::from_secs(8));
    assert!(status.is_some(), "a survived SIG{signal}");
    if signal == "TERM" {
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
    }
    killed.store(true, Ordering::SeqCst);
    wait_for_answers(answered.load(Ordering::SeqCst) + 200);
    done.store(true, Ordering::SeqCst);

    // Step 3. Every request got a whole 200; after the kill, from `b`.
    let results: Vec<(Outcome, bool)> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    let mut by_a = 0;
    for (outcome, after_kill) in &results {
        assert!(
            outcome.is_ok(),
            "a request was lost: {outcome:?}\n{}",
            deployment.logs()
        );
        let answer = who(outcome);
        if answer.instance == "a" {
            by_a += 1;
            assert!(!after_kill, "a answered after it stopped");
        }
    }
    let after = results.iter().filter(|(_, after_kill)| *after_kill).count();
    eprintln!(
        "{} requests: {by_a} answered by a before it stopped, {after} sent after",
        results.len()
    );
    assert!(
        by_a > 0 && after > 0,
        "{by_a} by a, {after} after a stopped"
    );
    // Requests did reach the stopped instance; nginx tried the next one.
    let failed_on_a = format!("upstream: \"http://{a_addr}/\"");
    let logs = deployment.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("[error]") && l.contains(&failed_on_a)),
        "no request failed over from a:\n{logs}"
    );
}
