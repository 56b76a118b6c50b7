"""whirl's benchmark harness; run it through bench/run.sh, which builds the
servers first. Issue 8's workloads, whirl against its peers, on one machine:

    plaintext  GET / keep-alive, wrk -t1 -c64
    pipelined  the same, 16 requests per write (bench/pipeline.lua)
    json       GET /json, serde_json (or the peer's own serializer)
    static     GET /static/1mib.bin, a 1 MiB file, wrk -t1 -c16
    idle       10,000 parked keep-alive connections: RSS delta per connection
    sleep      100 concurrent GET /sleep (each awaits a 1 s async sleep): wall time
    client     bench/client.sh (whirl's, hyper's and Tornado's HTTP clients)
    ioloop     cargo bench -p whirl-ioloop --bench ioloop (against tokio)
    echo       cargo bench -p whirl-iostream --bench echo (against tokio)

Each server runs alone, started fresh per measurement and pinned to one core
(taskset -c 1); wrk and the other clients run pinned to the other (-c 0).
Every measurement runs ROUNDS times, interleaved (A B C ... A B C ...), and
the tables show medians. For the wrk workloads the figure that counts is the
server's CPU time per request: utime + stime of the whole process (every
thread) from /proc/PID/stat, read just before and after the measured wrk run,
divided by the requests wrk completed.

Writes OUT/results.json, OUT/results.md (the tables and the goals) and
OUT/performance.png (bench/chart.py, when matplotlib is installed); logs of
each server and cargo bench in OUT/logs/. Standard library only.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
HELLO = b"Hello, World!"
STATIC_NAME = "1mib.bin"
STATIC_SIZE = 1 << 20

# Which workloads each server answers: mio and whirl-stream are canned-response floors (no
# files, no timers); nginx sleeps with the echo module.
WRK_ROUTES = ("plaintext", "pipelined", "json")
ALL = WRK_ROUTES + ("static", "idle", "sleep")
SERVERS = {
    # name: (what it is, workloads)
    "whirl-raw": ("whirl HttpServer::from_fn, no web layer (bench/src/bin/whirl_raw.rs)",
                  WRK_ROUTES + ("idle",)),
    "whirl-web": ("whirl Application + routing + RequestHandler (bench/src/bin/whirl_web.rs)", ALL),
    "whirl-stream": ("whirl TcpServer + IoStream, canned responses, no HTTP layer: the floor of "
                     "whirl's loop and stream (bench/src/bin/whirl_stream.rs)", WRK_ROUTES),
    "mio": ("raw mio, canned responses: the limit (bench/peers/src/bin/mio_server.rs)",
            WRK_ROUTES + ("idle",)),
    "hyper": ("hyper 1, tokio current_thread (bench/peers/src/bin/hyper_server.rs)", ALL),
    "actix": ("actix-web 4, workers(1) (bench/peers/src/bin/actix_server.rs)", ALL),
    "nginx": ("nginx, one process (bench/peers/nginx.conf)", ALL),
    "tornado": ("Tornado 6, one process (bench/peers/tornado_server.py)", ALL),
}
WHIRL = ("whirl-raw", "whirl-web")


def log(message):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), message), file=sys.stderr, flush=True)


# ----- servers ---------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile():
    """In the child: as many descriptors as allowed (10,000 connections)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """One running server, pinned to the server core."""

    def __init__(self, name, ctx):
        self.name = name
        self.port = free_port()
        self.ctx = ctx
        argv = self.argv()
        self.log_path = os.path.join(ctx.out, "logs", name + ".log")
        self.log_file = open(self.log_path, "a")
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(ctx.server_cpu)] + argv,
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile, env=env, cwd=ROOT,
        )
        # taskset execs the server: the pid is the server's.
        self.pid = self.proc.pid
        self.wait_ready()

    def argv(self):
        ctx, port = self.ctx, str(self.port)
        static = ["--static-dir", ctx.static_dir]
        if self.name == "whirl-raw":
            return [os.path.join(ctx.whirl_bin, "whirl_raw"), "--port", port]
        if self.name == "whirl-web":
            return [os.path.join(ctx.whirl_bin, "whirl_web"), "--port", port] + static
        if self.name == "whirl-stream":
            return [os.path.join(ctx.whirl_bin, "whirl_stream"), "--port", port]
        if self.name in ("mio", "hyper", "actix"):
            return [os.path.join(ctx.peers_bin, self.name + "_server"), "--port", port] + static
        if self.name == "tornado":
            return [ctx.python, os.path.join(BENCH, "peers", "tornado_server.py"),
                    "--port", port] + static
        if self.name == "nginx":
            prefix = tempfile.mkdtemp(prefix="whirl-nginx-")
            with open(os.path.join(BENCH, "peers", "nginx.conf")) as f:
                conf = f.read()
            for key, value in (("@PORT@", port), ("@STATIC_DIR@", ctx.static_dir),
                               ("@PID_FILE@", os.path.join(prefix, "nginx.pid")),
                               ("@TEMP_DIR@", prefix)):
                conf = conf.replace(key, value)
            path = os.path.join(prefix, "nginx.conf")
            with open(path, "w") as f:
                f.write(conf)
            self.prefix = prefix
            return ["nginx", "-p", prefix, "-c", path, "-e", "stderr"]
        raise ValueError(self.name)

    def wait_ready(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        with open(self.log_path) as f:
            tail = f.read()[-2000:]
        raise RuntimeError("%s did not start listening on %d:\n%s" % (self.name, self.port, tail))

    def cpu_ticks(self):
        """utime + stime of the process (all threads), in clock ticks."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS for %s" % self.name)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        if getattr(self, "prefix", None):
            shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def fetch(port, path):
    """One GET on a fresh connection: status, body, and the response's size
    on the wire (head + body; chunked framing not counted)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        head = len("HTTP/1.1 %d %s\r\n" % (response.status, response.reason)) + 2
        head += sum(len(k) + len(v) + 4 for k, v in response.getheaders())
        return response.status, body, head + len(body), dict(response.getheaders())
    finally:
        conn.close()


def check(name, port, workload):
    """The server's answer to the workload's request is the expected one."""
    path = PATHS[workload]
    status, body, size, headers = fetch(port, path)
    if status != 200:
        raise RuntimeError("%s answered %s with %d" % (name, path, status))
    if workload == "json":
        ok = json.loads(body) == {"message": "Hello, World!"}
    elif workload == "static":
        ok = len(body) == STATIC_SIZE
    else:
        ok = body == HELLO
    if not ok:
        raise RuntimeError("%s sent the wrong body for %s: %r" % (name, path, body[:80]))
    return size


PATHS = {"plaintext": "/", "pipelined": "/", "json": "/json",
         "static": "/static/" + STATIC_NAME, "idle": "/", "sleep": "/sleep"}


# ----- measurements ----------------------------------------------------------


def run_wrk(ctx, port, workload, seconds):
    url = "http://127.0.0.1:%d%s" % (port, PATHS[workload])
    connections = 16 if workload == "static" else 64
    argv = ["taskset", "-c", str(ctx.client_cpu), "wrk", "-t1", "-c%d" % connections,
            "-d%ds" % seconds, url]
    if workload == "pipelined":
        argv += ["-s", os.path.join(BENCH, "pipeline.lua"), "--", "16"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = " ".join(l.strip() for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l)
    return requests, rate, errors


def measure_wrk(ctx, name, workload):
    with Server(name, ctx) as server:
        size = check(name, server.port, workload)
        if ctx.warmup > 0:
            run_wrk(ctx, server.port, workload, ctx.warmup)
        before = server.cpu_ticks()
        requests, rate, errors = run_wrk(ctx, server.port, workload, ctx.duration)
        after = server.cpu_ticks()
    us = (after - before) / ctx.hz / requests * 1e6
    return {"rps": rate, "us": us, "requests": requests, "ticks": after - before,
            "errors": errors, "bytes": size}


def measure_idle(ctx, name):
    with Server(name, ctx) as server:
        # One request first, so whatever the server sets up lazily is counted
        # in the baseline, not against the connections.
        check(name, server.port, "idle")
        time.sleep(0.2)
        before = server.rss_kib()
        parker = subprocess.Popen(
            ["taskset", "-c", str(ctx.client_cpu), ctx.python, os.path.join(BENCH, "loadgen.py"),
             "idle", "--port", str(server.port), "--connections", str(ctx.idle)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = parker.stdout.readline()
            if not line.startswith("parked %d" % ctx.idle):
                raise RuntimeError("%s: the idle client said %r" % (name, line))
            time.sleep(0.5)
            after = server.rss_kib()
            alive = server.proc.poll() is None
        finally:
            parker.stdin.close()
            parker.wait(30)
        if not alive:
            raise RuntimeError("%s exited holding idle connections" % name)
    return {"kib": (after - before) / ctx.idle, "rss_before": before, "rss_after": after}


def measure_sleep(ctx, name):
    with Server(name, ctx) as server:
        check(name, server.port, "plaintext")
        out = subprocess.run(
            ["taskset", "-c", str(ctx.client_cpu), ctx.python, os.path.join(BENCH, "loadgen.py"),
             "sleep", "--port", str(server.port), "--requests", "100"],
            capture_output=True, text=True, check=True).stdout
    return {"seconds": float(re.search(r"seconds=([\d.]+)", out).group(1))}


def run_rounds(ctx, workload, measure):
    """Every server of the workload, ROUNDS times, interleaved."""
    servers = [s for s in ctx.servers if workload in SERVERS[s][1]]
    runs = {s: [] for s in servers}
    for round_ in range(1, ctx.rounds + 1):
        for name in servers:
            try:
                result = measure(name)
            except Exception as e:  # one server failing must not lose the run
                log("%s %s round %d FAILED: %s" % (workload, name, round_, e))
                result = {"error": str(e)}
            runs[name].append(result)
            shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()
                     if k in ("rps", "us", "kib", "seconds", "errors") and v != ""}
            log("%s round %d %-9s %s" % (workload, round_, name, shown))
    return runs


def median_of(runs, key):
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


# ----- the other benches -----------------------------------------------------


def run_client(ctx):
    env = dict(os.environ)
    env.setdefault("WHIRL_BENCH_ROUNDS", str(ctx.rounds))
    if ctx.quick:
        env.setdefault("WHIRL_BENCH_REQUESTS", "5000")
    env["WHIRL_BENCH_SERVER_CPU"] = str(ctx.server_cpu)
    env["WHIRL_BENCH_CLIENT_CPU"] = str(ctx.client_cpu)
    proc = subprocess.run(["bash", os.path.join(BENCH, "client.sh")], capture_output=True,
                          text=True, env=env, cwd=ROOT)
    with open(os.path.join(ctx.out, "logs", "client.log"), "w") as f:
        f.write(proc.stdout + proc.stderr)
    result = {"output": proc.stdout, "ok": proc.returncode == 0, "clients": {}}
    for line in proc.stdout.splitlines():
        m = re.match(r"(whirl|hyper|tornado)\s+([\d.]+)\s+(\d+)\s+([\d.]+)", line)
        if m:
            result["clients"][m.group(1)] = {"wall": float(m.group(2)), "rps": float(m.group(3)),
                                             "us": float(m.group(4))}
    return result


def run_cargo_bench(ctx, package, bench, quick_env):
    env = dict(os.environ)
    if ctx.quick:
        for k, v in quick_env.items():
            env.setdefault(k, v)
    proc = subprocess.run(["cargo", "bench", "--quiet", "-p", package, "--bench", bench],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    with open(os.path.join(ctx.out, "logs", bench + ".log"), "w") as f:
        f.write(proc.stdout + proc.stderr)
    output = proc.stdout if proc.returncode == 0 else proc.stdout + proc.stderr[-3000:]
    return {"output": output.strip(), "ok": proc.returncode == 0}


# ----- the report ------------------------------------------------------------


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(value, digits=2):
    if value is None:
        return "-"
    if value >= 1000:
        return "{:,.0f}".format(value)
    return "%.*f" % (digits, value)


def goals(results):
    """Issue 8's goals, each with the figure that decides it."""
    w = results["workloads"]

    def med(workload, server, key):
        return median_of(w.get(workload, {}).get(server, []), key)

    rows = []

    def goal(name, value, target, met, note=""):
        rows.append({"goal": name, "value": value, "target": target,
                     "met": None if value is None else met, "note": note})

    raw, web, mio = (med("plaintext", s, "us") for s in ("whirl-raw", "whirl-web", "mio"))
    v = ratio(raw, mio)
    goal("plaintext, raw HttpServer: CPU/req vs raw mio", v, "<= 1.05x", v is not None and v <= 1.05)
    v = ratio(med("plaintext", "tornado", "us"), raw)
    goal("plaintext, raw HttpServer: Tornado CPU/req / whirl's", v, ">= 25x", v is not None and v >= 25)
    v = ratio(web, mio)
    goal("plaintext, web layer: CPU/req vs raw mio", v, "<= 1.15x", v is not None and v <= 1.15)
    for peer in ("hyper", "actix"):
        v = ratio(web, med("plaintext", peer, "us"))
        goal("plaintext, web layer: CPU/req vs %s" % peer, v, "< 1 (ahead)", v is not None and v < 1)
    praw = med("pipelined", "whirl-raw", "us")
    v = ratio(praw, med("pipelined", "mio", "us"))
    goal("pipelined 16, raw HttpServer: CPU/req vs raw mio", v, "<= 1.2x", v is not None and v <= 1.2)
    v = ratio(med("pipelined", "hyper", "us"), praw)
    goal("pipelined 16, raw HttpServer: hyper CPU/req / whirl's", v, ">= 1.9x", v is not None and v >= 1.9)
    idle = results.get("idle", {})
    for s in WHIRL:
        v = median_of(idle.get(s, []), "kib")
        goal("idle keep-alive, %s: KiB of RSS per connection" % s, v, "<= 0.5", v is not None and v <= 0.5)
    v = ratio(med("static", "whirl-web", "rps"), med("static", "nginx", "rps"))
    goal("1 MiB static file: req/s vs nginx", v, ">= 0.9x", v is not None and v >= 0.9)
    v = median_of(results.get("sleep", {}).get("whirl-web", []), "seconds")
    goal("100 concurrent 1 s sleeps: wall seconds", v, "<= 1.1", v is not None and v <= 1.1)
    clients = results.get("client", {}).get("clients", {})
    if "whirl" in clients:
        for peer, target in (("hyper", 1.0), ("tornado", 10.0)):
            if peer in clients:
                v = clients[peer]["us"] / clients["whirl"]["us"]
                goal("HTTP client: %s client CPU/req / whirl's" % peer, v, ">= %gx" % target,
                     v >= target)
                v = clients["whirl"]["rps"] / clients[peer]["rps"]
                goal("HTTP client: whirl req/s / %s client's" % peer, v, ">= %gx" % target,
                     v >= target)
    return rows


def markdown(results):
    lines = []
    add = lines.append
    settings = results["settings"]
    for workload in ("plaintext", "pipelined", "json", "static"):
        runs = results["workloads"].get(workload)
        if not runs:
            continue
        add("### %s" % TITLES[workload])
        add("")
        whirls = [s for s in WHIRL if s in runs]
        head = "| server | req/s | CPU µs/req | CPU µs/req, each run | bytes/resp |"
        rule = "|---|---:|---:|---|---:|"
        for s in whirls:
            head += " %s CPU ÷ this | %s req/s ÷ this |" % (s, s)
            rule += "---:|---:|"
        add(head)
        add(rule)
        for name, server_runs in runs.items():
            rps, us = median_of(server_runs, "rps"), median_of(server_runs, "us")
            each = " ".join(fmt(r["us"]) for r in server_runs if "us" in r) or "failed"
            size = server_runs[0].get("bytes", "-") if server_runs else "-"
            row = "| %s | %s | %s | %s | %s |" % (name, fmt(rps), fmt(us), each, size)
            for s in whirls:
                if s == name:
                    row += " | |"
                    continue
                row += " %s | %s |" % (
                    fmt(ratio(median_of(runs[s], "us"), us)),
                    fmt(ratio(median_of(runs[s], "rps"), rps)))
            add(row)
        errors = sorted({"%s: %s" % (n, r["errors"]) for n, rs in runs.items()
                         for r in rs if r.get("errors")})
        if errors:
            add("")
            add("wrk reported: " + "; ".join(errors))
        add("")
    if results.get("idle"):
        add("### %s" % TITLES["idle"])
        add("")
        add("| server | KiB per connection | each run | RSS before → after (KiB, last run) |")
        add("|---|---:|---|---|")
        for name, runs in results["idle"].items():
            ok = [r for r in runs if "kib" in r]
            last = "%d → %d" % (ok[-1]["rss_before"], ok[-1]["rss_after"]) if ok else "failed"
            add("| %s | %s | %s | %s |" % (name, fmt(median_of(runs, "kib")),
                                           " ".join(fmt(r["kib"]) for r in ok), last))
        add("")
    if results.get("sleep"):
        add("### %s" % TITLES["sleep"])
        add("")
        add("| server | wall seconds | each run |")
        add("|---|---:|---|")
        for name, runs in results["sleep"].items():
            add("| %s | %s | %s |" % (name, fmt(median_of(runs, "seconds"), 3),
                                      " ".join(fmt(r["seconds"], 3) for r in runs if "seconds" in r)))
        add("")
    for key in ("client", "ioloop", "echo"):
        if key in results:
            add("### %s" % TITLES[key])
            add("")
            add("```text")
            add(results[key]["output"].strip() or "(no output)")
            add("```")
            add("")
    add("### Goals (issue 8)")
    add("")
    add("| goal | measured | target | met |")
    add("|---|---:|---|---|")
    for g in results["goals"]:
        met = "n/a" if g["met"] is None else ("**met**" if g["met"] else "not met")
        add("| %s | %s | %s | %s |" % (g["goal"], fmt(g["value"]), g["target"], met))
    add("")
    add("whirl measured: %s." % results.get("tree", "unknown"))
    add("")
    add("Settings: %s round(s), wrk runs of %ds after %ds of warm-up, %d idle connections; "
        "server on CPU %d, clients on CPU %d." % (
            settings["rounds"], settings["duration"], settings["warmup"], settings["idle"],
            settings["server_cpu"], settings["client_cpu"]))
    return "\n".join(lines) + "\n"


TITLES = {
    "plaintext": "(1) plaintext `Hello, World!`, keep-alive, 64 connections",
    "pipelined": "(2) plaintext, pipelined 16 deep, 64 connections",
    "json": "(3) JSON `{\"message\":\"Hello, World!\"}`, keep-alive, 64 connections",
    "static": "(4) 1 MiB static file, keep-alive, 16 connections",
    "idle": "(5) 10,000 idle keep-alive connections: RSS per connection",
    "sleep": "(6) 100 concurrent requests, each awaiting a 1 s async sleep",
    "client": "(7) HTTP client: 20,000 keep-alive GETs, concurrency 50 (bench/client.sh)",
    "ioloop": "(8a) IoLoop vs tokio current_thread (cargo bench -p whirl-ioloop --bench ioloop)",
    "echo": "(8b) IoStream echo vs tokio (cargo bench -p whirl-iostream --bench echo)",
}


def tree():
    """The whirl sources measured: the commit, and whether the crates differ
    from it (WHIRL_BENCH_TREE overrides, for a tree without .git)."""
    if os.environ.get("WHIRL_BENCH_TREE"):
        return os.environ["WHIRL_BENCH_TREE"]
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--", "ioloop", "iostream", "httpserver",
             "httpclient", "web", "src", "bench/src"],
            capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [line[3:] for line in changed if line.strip()]
    return commit + (" + uncommitted changes in " + ", ".join(changed) if changed else "")


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "rustc": version(["rustc", "--version"]), "wrk": version(["wrk", "--version"]),
        "nginx": version(["nginx", "-v"]), "python": platform.python_version(),
        "tornado": version([sys.executable, "-c", "import tornado; print(tornado.version)"]),
    }


class Ctx:
    pass


def main():
    parser = argparse.ArgumentParser(description="whirl's benchmark harness (see bench/run.sh)")
    parser.add_argument("--quick", action="store_true",
                        help="one round, 2 s wrk runs, 1,000 idle connections, smaller client and cargo benches")
    parser.add_argument("--only", default=",".join(ALL + ("client", "ioloop", "echo")),
                        help="comma-separated workloads to run")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated servers")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench"))
    parser.add_argument("--whirl-bin", required=True, help="directory of whirl_raw, whirl_web")
    parser.add_argument("--peers-bin", required=True, help="directory of the Rust peers")
    args = parser.parse_args()

    ctx = Ctx()
    ctx.quick = args.quick
    env = os.environ.get
    ctx.rounds = int(env("WHIRL_BENCH_ROUNDS", "1" if args.quick else "3"))
    # wrk takes whole seconds.
    ctx.duration = int(env("WHIRL_BENCH_DURATION", "2" if args.quick else "5"))
    ctx.warmup = int(env("WHIRL_BENCH_WARMUP", "1"))
    ctx.idle = int(env("WHIRL_BENCH_IDLE", "1000" if args.quick else "10000"))
    ctx.server_cpu = int(env("WHIRL_BENCH_SERVER_CPU", "1"))
    ctx.client_cpu = int(env("WHIRL_BENCH_CLIENT_CPU", "0"))
    ctx.python = env("PYTHON", sys.executable)
    ctx.hz = os.sysconf("SC_CLK_TCK")
    ctx.out = os.path.abspath(args.out)
    ctx.whirl_bin, ctx.peers_bin = args.whirl_bin, args.peers_bin
    ctx.servers = [s for s in args.servers.split(",") if s]
    for s in ctx.servers:
        if s not in SERVERS:
            parser.error("unknown server %r (%s)" % (s, ", ".join(SERVERS)))
    only = [w for w in args.only.split(",") if w]
    os.makedirs(os.path.join(ctx.out, "logs"), exist_ok=True)

    # The static file: 1 MiB of random bytes.
    ctx.static_dir = tempfile.mkdtemp(prefix="whirl-static-")
    with open(os.path.join(ctx.static_dir, STATIC_NAME), "wb") as f:
        f.write(os.urandom(STATIC_SIZE))

    started = time.time()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "tree": tree(),
        "loadavg_start": open("/proc/loadavg").read().strip(),
        "settings": {"rounds": ctx.rounds, "duration": ctx.duration, "warmup": ctx.warmup,
                     "idle": ctx.idle, "server_cpu": ctx.server_cpu, "client_cpu": ctx.client_cpu,
                     "quick": ctx.quick},
        "servers": {s: SERVERS[s][0] for s in ctx.servers},
        "workloads": {},
    }
    try:
        for workload in ("plaintext", "pipelined", "json", "static"):
            if workload in only:
                results["workloads"][workload] = run_rounds(
                    ctx, workload, lambda name, w=workload: measure_wrk(ctx, name, w))
        if "idle" in only:
            results["idle"] = run_rounds(ctx, "idle", lambda name: measure_idle(ctx, name))
        if "sleep" in only:
            results["sleep"] = run_rounds(ctx, "sleep", lambda name: measure_sleep(ctx, name))
        if "client" in only:
            log("client: bench/client.sh")
            results["client"] = run_client(ctx)
        if "ioloop" in only:
            log("ioloop: cargo bench -p whirl-ioloop --bench ioloop")
            results["ioloop"] = run_cargo_bench(
                ctx, "whirl-ioloop", "ioloop", {"WHIRL_BENCH_N": "100000", "WHIRL_BENCH_REPS": "3"})
        if "echo" in only:
            log("echo: cargo bench -p whirl-iostream --bench echo")
            results["echo"] = run_cargo_bench(
                ctx, "whirl-iostream", "echo",
                {"WHIRL_BENCH_BYTES": "268435456", "WHIRL_BENCH_ROUNDS": "1"})
    finally:
        shutil.rmtree(ctx.static_dir, ignore_errors=True)

    results["loadavg_end"] = open("/proc/loadavg").read().strip()
    results["minutes"] = round((time.time() - started) / 60, 1)
    results["goals"] = goals(results)
    with open(os.path.join(ctx.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    report = markdown(results)
    with open(os.path.join(ctx.out, "results.md"), "w") as f:
        f.write(report)
    print(report)
    try:
        sys.dont_write_bytecode = True
        sys.path.insert(0, BENCH)
        import chart

        chart.draw(results, os.path.join(ctx.out, "performance.png"))
        log("chart: %s" % os.path.join(ctx.out, "performance.png"))
    except ImportError as e:
        log("no chart (%s): pip install matplotlib" % e)
    log("done in %.1f min: %s" % (results["minutes"], ctx.out))


if __name__ == "__main__":
    main()
