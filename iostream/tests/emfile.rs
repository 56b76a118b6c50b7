//! `TcpServer` out of file descriptors (EMFILE): accepting pauses for
//! [`ACCEPT_PAUSE_ON_EMFILE`] instead of spinning, the error is logged once
//! per episode (also when freed descriptors let clients in one at a time),
//! and the connections left waiting in the backlog are served once
//! descriptors free up.
//!
//! The test lowers this process's `RLIMIT_NOFILE`, so it lives alone in its
//! own test binary (its own process) and the binary holds exactly one
//! `#[test]`. Client sockets would spend this process's descriptors too, so
//! the clients live in a child process: this same binary, re-run with
//! [`CLIENT_ENV`] set, in which the test function plays the clients.
#![cfg(target_os = "linux")]

mod support;

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use rustix::time::{clock_gettime, ClockId};
use whirl_ioloop::{sleep, IoLoop};
use whirl_iostream::{IoStream, TcpServer, ACCEPT_PAUSE_ON_EMFILE};

use support::{wait_until, TEST_TIMEOUT};

/// The test's name, which the child process is told to run.
const TEST_NAME: &str = "out_of_fds_pauses_accepting_without_spinning_logs_once_and_resumes";
/// Set, to the server's address, in the child process that plays the clients.
const CLIENT_ENV: &str = "WHIRL_EMFILE_CLIENT";
/// Marks the child's reports on its stdout (libtest writes there too).
const REPORT: &str = "whirl-emfile-client:";
/// Descriptors left free under the lowered limit.
const HEADROOM: usize = 16;
/// Clients beyond the free descriptors: they wait in the backlog. Fewer than
/// [`HEADROOM`], so that once the held connections close, all of them fit.
const EXTRA_CLIENTS: usize = 8;

#[test]
fn out_of_fds_pauses_accepting_without_spinning_logs_once_and_resumes() {
    if let Ok(addr) = std::env::var(CLIENT_ENV) {
        play_clients(&addr);
        return;
    }
    log::set_logger(&ERRORS).expect("the test's logger is the first");
    log::set_max_level(LevelFilter::Error);

    // Step 1: a server that greets each connection with one byte and, while
    // `holding`, keeps it open.
    let io_loop = IoLoop::new();
    let accepted = Rc::new(Cell::new(0));
    let held = Rc::new(RefCell::new(Vec::<IoStream>::new()));
    let holding = Rc::new(Cell::new(true));
    let server = {
        let (accepted, held, holding) = (accepted.clone(), held.clone(), holding.clone());
        TcpServer::new(move |stream: IoStream, _peer| {
            accepted.set(accepted.get() + 1);
            if holding.get() {
                held.borrow_mut().push(stream.clone());
            }
            async move {
                let _ = stream.write("x").await;
            }
        })
    };
    let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];

    // Step 2: the client process, started while its pipes can still be made.
    let mut client = ClientProcess(
        Command::new(std::env::current_exe().expect("the test binary"))
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CLIENT_ENV, addr.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("re-run the test binary as the client process"),
    );
    let reports = read_reports(client.0.stdout.take().expect("piped stdout"));
    let mut to_client = client.0.stdin.take().expect("piped stdin");

    // Step 3: lower the limit to leave `free` descriptors (at least
    // `HEADROOM`; listing them counted the listing's own descriptor), and ask
    // for more connections than that.
    let original = getrlimit(Resource::Nofile);
    let open = open_fds();
    let limit = open.len() + HEADROOM;
    if original.maximum.is_some_and(|max| max < limit as u64) {
        eprintln!("skipped: the hard descriptor limit {original:?} is below {limit}");
        return;
    }
    let free = limit - open.iter().filter(|&&fd| fd < limit).count();
    let clients = free + EXTRA_CLIENTS;
    let restore = RestoreLimit(original);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(limit as u64),
            maximum: original.maximum,
        },
    )
    .expect("lower RLIMIT_NOFILE");
    writeln!(to_client, "{clients}").expect("tell the client process how many");

    io_loop
        .run_sync_timeout(
            async {
                // Step 4: the server runs out of descriptors with clients
                // still waiting in the backlog.
                assert_eq!(next_report(&reports).await, format!("connected {clients}"));
                wait_until(|| pause_errors() > 0).await;
                let before = accepted.get();
                assert!(
                    before < clients,
                    "all {clients} clients accepted under a limit of {limit}"
                );

                // Step 5: over several pauses, the loop sleeps rather than
                // spins, accepts nothing and logs no more. Sleeping costs a
                // fraction of a millisecond of CPU here; a spinning loop
                // takes most of a core even on a loaded machine.
                let (cpu_start, wall_start) = (thread_cpu_time(), Instant::now());
                sleep(ACCEPT_PAUSE_ON_EMFILE * 3).await;
                let (cpu, wall) = (thread_cpu_time() - cpu_start, wall_start.elapsed());
                assert!(
                    cpu < wall / 10,
                    "the loop spun while out of descriptors: {cpu:?} of CPU in {wall:?}"
                );
                assert_eq!(accepted.get(), before, "accepted with no descriptor free");
                assert_eq!(pause_errors(), 1, "logged more than once: {:?}", errors());

                // Step 6: one freed descriptor lets one more client in, and
                // the next accept fails again: the same episode, not a new
                // one to log (it was, once per client let in).
                held.borrow_mut().pop().expect("a held connection").close();
                wait_until(|| accepted.get() == before + 1).await;
                assert_eq!(pause_errors(), 1, "logged again: {:?}", errors());
                // Not closed with the others below, perhaps before its task
                // greeted it: the task closes it once it has.
                drop(held.borrow_mut().pop());

                // Step 7: closing the held connections frees descriptors; the
                // rest of the backlog is accepted and served.
                holding.set(false);
                for stream in held.take() {
                    stream.close();
                }
                wait_until(|| accepted.get() == clients).await;
                assert_eq!(next_report(&reports).await, format!("served {clients}"));
                assert_eq!(pause_errors(), 1, "a second episode: {:?}", errors());
            },
            TEST_TIMEOUT,
        )
        .expect("the test did not finish in time");

    server.stop();
    drop(restore);
    assert_eq!(getrlimit(Resource::Nofile), original);
    drop(to_client);
    let status = client.0.wait().expect("wait for the client process");
    assert!(status.success(), "the client process failed: {status}");
}

/// The child's part: reads the number of connections from stdin, opens them,
/// reads each one's greeting, and keeps them open until stdin closes.
fn play_clients(addr: &str) {
    let addr: SocketAddr = addr.parse().expect("the server's address");
    let mut stdin = io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).expect("read the count");
    let count: usize = line.trim().parse().expect("a count");
    let mut clients: Vec<TcpStream> = (0..count)
        .map(|_| {
            let client = TcpStream::connect_timeout(&addr, TEST_TIMEOUT).expect("connect");
            client
                .set_read_timeout(Some(TEST_TIMEOUT))
                .expect("read timeout");
            client
        })
        .collect();
    report(&format!("connected {count}"));
    for client in &mut clients {
        let mut greeting = [0; 1];
        client.read_exact(&mut greeting).expect("a greeting");
        assert_eq!(&greeting, b"x");
    }
    report(&format!("served {count}"));
    let _ = io::copy(&mut stdin, &mut io::sink());
}

/// Writes one report line to the real stdout, where the parent reads it.
fn report(line: &str) {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{REPORT} {line}")
        .and_then(|()| stdout.flush())
        .expect("report to the parent");
}

/// Forwards the child's report lines, from a thread.
fn read_reports(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Not always at the start of a line: libtest may have begun one.
            if let Some((_, report)) = line.split_once(REPORT) {
                if tx.send(report.trim().to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// Waits, without blocking the loop, for the child's next report.
async fn next_report(reports: &Receiver<String>) -> String {
    let mut next = None;
    wait_until(|| match reports.try_recv() {
        Ok(report) => {
            next = Some(report);
            true
        }
        Err(TryRecvError::Empty) => false,
        Err(TryRecvError::Disconnected) => {
            panic!("the client process ended without reporting (its output is above)")
        }
    })
    .await;
    next.expect("a report")
}

/// The client process; killed if the test ends early.
struct ClientProcess(Child);

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Puts the descriptor limit back when dropped, also when the test panics.
struct RestoreLimit(Rlimit);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        let _ = setrlimit(Resource::Nofile, self.0);
    }
}

/// This process's open descriptors (`/proc/self/fd`).
fn open_fds() -> Vec<usize> {
    std::fs::read_dir("/proc/self/fd")
        .expect("procfs")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// CPU time used so far by the calling thread (the loop's).
fn thread_cpu_time() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).expect("non-negative"),
        u32::try_from(t.tv_nsec).expect("below a second"),
    )
}

/// The test's logger: keeps the message of every error, and echoes it.
struct ErrorLog(Mutex<Vec<String>>);

/// The process's logger (installed by the test, not in the child).
static ERRORS: ErrorLog = ErrorLog(Mutex::new(Vec::new()));

impl Log for ErrorLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Error
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let message = record.args().to_string();
            eprintln!("[ERROR {}] {message}", record.target());
            self.0.lock().unwrap().push(message);
        }
    }

    fn flush(&self) {}
}

/// Every error logged so far.
fn errors() -> Vec<String> {
    ERRORS.0.lock().unwrap().clone()
}

/// How many errors logged so far announce a pause in accepting.
fn pause_errors() -> usize {
    errors().iter().filter(|m| m.contains("pausing")).count()
}
