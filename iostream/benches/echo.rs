//! Echo throughput over loopback, in GiB/s: whirl's `TcpServer` + `IoStream`
//! side by side with a tokio echo and a plain blocking `std::net` echo (the
//! practical limit), in one run, against the same client.
//!
//! ```text
//! cargo bench -p whirl-iostream --bench echo
//! WHIRL_BENCH_BYTES=268435456 WHIRL_BENCH_ROUNDS=5 cargo bench -p whirl-iostream --bench echo
//! ```
//!
//! The client is two blocking threads on one connection: one writes
//! `WHIRL_BENCH_BYTES` (default 1 GiB) in 128 KiB writes, the other reads the
//! echo back; a run is timed from connect until the last byte came back.
//! Each server runs on one thread of its own: an event loop (whirl, tokio
//! `current_thread`) or a blocking read/write loop. Rounds interleave the
//! servers; the best of `WHIRL_BENCH_ROUNDS` (default 3) counts.
//!
//! Besides GiB/s, the table shows the CPU time the server thread spent per
//! GiB echoed (Linux, from `/proc/thread-self/schedstat`): on a small or
//! busy machine the client and the server share cores, throughput swings
//! with the neighbours, and CPU per GiB is the steadier measure of a
//! server's own cost. Goal (issue 3): whirl ≥ 0.9× blocking, ≥ 1.0× tokio.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use whirl_ioloop::IoLoop;
use whirl_iostream::{IoStream, TcpServer, WriteFuture};

/// Bytes per server read, for every server (whirl's default `read_chunk_size`).
const CHUNK: usize = 64 * 1024;
/// Bytes per client write and read.
const CLIENT_CHUNK: usize = 128 * 1024;
/// Rounds unless `WHIRL_BENCH_ROUNDS` says otherwise; the best counts.
const DEFAULT_ROUNDS: usize = 3;
/// Bytes per run unless `WHIRL_BENCH_BYTES` says otherwise.
const DEFAULT_BYTES: u64 = 1 << 30;
/// One GiB, as a float.
const GIB: f64 = (1u64 << 30) as f64;

/// The echo servers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// A blocking `read` then `write_all` loop.
    Blocking,
    /// tokio `current_thread`: `read` then `write_all` with a 64 KiB buffer.
    TokioLoop,
    /// tokio `current_thread`: `tokio::io::copy` of the split halves.
    TokioCopy,
    /// whirl: `read_bytes(64 KiB, partial)` then `write(..).await`.
    WhirlAwait,
    /// whirl: `read_bytes(64 KiB, partial)` then `write`, awaited only after
    /// the next read (one write in flight).
    WhirlInFlight,
    /// whirl: `read_into` a reused 64 KiB buffer, then `write` a copy, one
    /// write in flight.
    WhirlReadInto,
}

impl Server {
    const ALL: [Server; 6] = [
        Server::Blocking,
        Server::TokioLoop,
        Server::TokioCopy,
        Server::WhirlAwait,
        Server::WhirlInFlight,
        Server::WhirlReadInto,
    ];

    fn name(self) -> &'static str {
        match self {
            Server::Blocking => "blocking std::net read/write_all",
            Server::TokioLoop => "tokio read/write_all",
            Server::TokioCopy => "tokio io::copy",
            Server::WhirlAwait => "whirl read_bytes, write.await",
            Server::WhirlInFlight => "whirl read_bytes, write in flight",
            Server::WhirlReadInto => "whirl read_into, write in flight",
        }
    }

    fn is_whirl(self) -> bool {
        matches!(
            self,
            Server::WhirlAwait | Server::WhirlInFlight | Server::WhirlReadInto
        )
    }

    fn is_tokio(self) -> bool {
        matches!(self, Server::TokioLoop | Server::TokioCopy)
    }

    /// Starts this server on a thread of its own.
    fn start(self) -> Running {
        let (tx, rx) = mpsc::channel();
        // Named, so a profiler can tell the servers apart (`perf report --comm`).
        let name = format!("{self:?}").to_lowercase();
        thread::Builder::new()
            .name(name)
            .spawn(move || {
                let ready = |addr| tx.send((addr, cpu_clock_of_this_thread())).expect("send");
                match self {
                    Server::Blocking => blocking_server(ready),
                    Server::TokioLoop => tokio_server(ready, false),
                    Server::TokioCopy => tokio_server(ready, true),
                    Server::WhirlAwait => whirl_server(ready, whirl_await),
                    Server::WhirlInFlight => whirl_server(ready, |s| whirl_in_flight(s, false)),
                    Server::WhirlReadInto => whirl_server(ready, |s| whirl_in_flight(s, true)),
                }
            })
            .expect("spawn server thread");
        let (addr, cpu_clock) = rx.recv().expect("server address");
        Running { addr, cpu_clock }
    }
}

/// A started server.
struct Running {
    /// Where it listens.
    addr: SocketAddr,
    /// Its thread's `schedstat` file, where the OS has one.
    cpu_clock: Option<PathBuf>,
}

impl Running {
    /// CPU time the server thread has used so far.
    fn cpu_time(&self) -> Option<Duration> {
        let text = std::fs::read_to_string(self.cpu_clock.as_ref()?).ok()?;
        let ns = text.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(ns))
    }
}

/// The calling thread's `schedstat` (first field: nanoseconds on a CPU).
fn cpu_clock_of_this_thread() -> Option<PathBuf> {
    let task = std::fs::read_link("/proc/thread-self").ok()?;
    let path = PathBuf::from("/proc").join(task).join("schedstat");
    path.exists().then_some(path)
}

/// The practical limit: a blocking copy loop. Connections are served one
/// after another on this thread (the client makes one at a time).
fn blocking_server(ready: impl FnOnce(SocketAddr)) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    ready(listener.local_addr().expect("addr"));
    let mut buf = vec![0u8; CHUNK];
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    }
}

/// A tokio `current_thread` echo, a task per connection.
fn tokio_server(ready: impl FnOnce(SocketAddr), use_copy: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        ready(listener.local_addr().expect("addr"));
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if use_copy {
                    let (mut r, mut w) = conn.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    return;
                }
                let mut buf = vec![0u8; CHUNK];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
}

/// A whirl echo: `TcpServer` runs `echo` as a task per connection.
fn whirl_server<F, Fut>(ready: impl FnOnce(SocketAddr), echo: F)
where
    F: Fn(IoStream) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let io_loop = IoLoop::new();
    let server = TcpServer::new(move |stream, _peer| echo(stream));
    let addrs = server.listen(0, Some("127.0.0.1")).expect("listen");
    ready(addrs[0]);
    io_loop.start();
}

/// The plainest echo: read a chunk, await its echo.
async fn whirl_await(stream: IoStream) {
    while let Ok(data) = stream.read_bytes(CHUNK, true).await {
        if stream.write(data).await.is_err() {
            break;
        }
    }
}

/// A pipelined echo: the next read proceeds while the last write is in
/// flight; at most one write is, so memory stays bounded (two chunks).
async fn whirl_in_flight(stream: IoStream, use_read_into: bool) {
    let mut buf = vec![0u8; if use_read_into { CHUNK } else { 0 }];
    let mut in_flight: Option<WriteFuture> = None;
    loop {
        let data = if use_read_into {
            match stream.read_into(&mut buf, true).await {
                Ok(n) => buf[..n].to_vec(),
                Err(_) => break,
            }
        } else {
            match stream.read_bytes(CHUNK, true).await {
                Ok(data) => data,
                Err(_) => break,
            }
        };
        if let Some(previous) = in_flight.take() {
            if previous.await.is_err() {
                break;
            }
        }
        in_flight = Some(stream.write(data));
    }
    if let Some(last) = in_flight {
        let _ = last.await;
    }
}

/// Echoes `total` bytes through the server at `addr`; returns the time taken.
fn run_client(addr: SocketAddr, total: u64) -> Duration {
    let started = Instant::now();
    let conn = TcpStream::connect(addr).expect("connect");
    let mut writer = conn.try_clone().expect("clone");
    let sender = thread::spawn(move || {
        let chunk: Vec<u8> = (0..CLIENT_CHUNK).map(|i| (i % 251) as u8).collect();
        let mut left = total;
        while left > 0 {
            let n = left.min(CLIENT_CHUNK as u64) as usize;
            writer.write_all(&chunk[..n]).expect("client write");
            left -= n as u64;
        }
        // No `shutdown(Write)`: IoStream, like Tornado's IOStream, closes on
        // EOF and drops writes still queued, so a half-close could cut the
        // echo short. The connection closes once everything came back.
    });
    let mut buf = vec![0u8; CLIENT_CHUNK];
    let mut received = 0u64;
    let mut reader = conn;
    while received < total {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n as u64,
            Err(e) => panic!("client read: {e}"),
        }
    }
    let elapsed = started.elapsed();
    sender.join().expect("sender");
    reader.shutdown(Shutdown::Both).expect("shutdown");
    assert_eq!(received, total, "the echo lost bytes");
    elapsed
}

/// A number from the environment, or `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

/// The best figures a server reached over the rounds.
#[derive(Debug, Clone, Copy, Default)]
struct Best {
    /// Highest throughput, GiB/s.
    gib_per_s: f64,
    /// Least server CPU time per GiB echoed, in milliseconds.
    cpu_ms_per_gib: Option<f64>,
}

fn main() {
    // `cargo bench` passes `--bench`; there are no options to parse.
    let total: u64 = env_or("WHIRL_BENCH_BYTES", DEFAULT_BYTES);
    let rounds: usize = env_or("WHIRL_BENCH_ROUNDS", DEFAULT_ROUNDS);
    println!(
        "echo over loopback: {:.3} GiB per run, best of {rounds} rounds, {} CPUs",
        total as f64 / GIB,
        thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let servers: Vec<Running> = Server::ALL.iter().map(|s| s.start()).collect();
    // Warm up each server (connection setup, first allocations).
    for server in &servers {
        run_client(server.addr, (total / 16).max(1));
    }
    let mut best = [Best::default(); Server::ALL.len()];
    for round in 1..=rounds {
        for (i, (kind, server)) in Server::ALL.iter().zip(&servers).enumerate() {
            let cpu_before = server.cpu_time();
            let took = run_client(server.addr, total);
            let rate = total as f64 / GIB / took.as_secs_f64();
            let cpu = match (cpu_before, server.cpu_time()) {
                (Some(a), Some(b)) => Some((b - a).as_secs_f64() * 1e3 * GIB / total as f64),
                _ => None,
            };
            println!(
                "  round {round}  {:<36} {rate:6.2} GiB/s  {}",
                kind.name(),
                cpu.map_or("-".into(), |ms| format!("{ms:5.0} CPU ms/GiB"))
            );
            let b = &mut best[i];
            b.gib_per_s = b.gib_per_s.max(rate);
            b.cpu_ms_per_gib = match (b.cpu_ms_per_gib, cpu) {
                (Some(old), Some(new)) => Some(old.min(new)),
                (old, new) => old.or(new),
            };
        }
    }
    report(&best);
}

/// Prints the table and the ratios against the goals.
fn report(best: &[Best]) {
    let pick = |want: fn(Server) -> bool| -> Best {
        let mut out = Best::default();
        for (kind, b) in Server::ALL.iter().zip(best) {
            if want(*kind) {
                out.gib_per_s = out.gib_per_s.max(b.gib_per_s);
                out.cpu_ms_per_gib = match (out.cpu_ms_per_gib, b.cpu_ms_per_gib) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
            }
        }
        out
    };
    let blocking = pick(|s| s == Server::Blocking);
    let tokio = pick(Server::is_tokio);
    let whirl = pick(Server::is_whirl);
    let cpu = |b: &Best| b.cpu_ms_per_gib.map_or("-".into(), |ms| format!("{ms:.0}"));

    println!();
    println!(
        "{:<36} {:>7} {:>10} {:>8} {:>12}",
        "server", "GiB/s", "/blocking", "/tokio", "CPU ms/GiB"
    );
    for (kind, b) in Server::ALL.iter().zip(best) {
        println!(
            "{:<36} {:>7.2} {:>9.2}x {:>7.2}x {:>12}",
            kind.name(),
            b.gib_per_s,
            b.gib_per_s / blocking.gib_per_s,
            b.gib_per_s / tokio.gib_per_s,
            cpu(b),
        );
    }
    println!();
    println!("(/tokio: against the faster tokio server; CPU ms/GiB: server thread only, lower is better)");
    println!(
        "whirl best: {:.2}x blocking (goal >= 0.90), {:.2}x tokio (goal >= 1.00) in GiB/s",
        whirl.gib_per_s / blocking.gib_per_s,
        whirl.gib_per_s / tokio.gib_per_s,
    );
    if let (Some(w), Some(b), Some(t)) = (
        whirl.cpu_ms_per_gib,
        blocking.cpu_ms_per_gib,
        tokio.cpu_ms_per_gib,
    ) {
        println!(
            "whirl best: {:.2}x blocking, {:.2}x tokio in GiB per server CPU second",
            b / w,
            t / w,
        );
    }
}
