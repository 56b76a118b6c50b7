"""What every reliability script shares: starting the server under test,
reading its fds and memory from /proc, a raw HTTP/1.1 client and the
summary statistics. Standard library only; Linux only (/proc).
"""

import os
import re
import resource
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where run.sh copies the server binary, so builds by others cannot swap it
# in the middle of a run.
DEFAULT_SERVER = os.path.join(ROOT, "reliability", "target", "hello_httpserver")
LOG_DIR = os.path.join(ROOT, "reliability", "target", "logs")


def raise_fd_limit():
    """Raises this process's soft fd limit to its hard limit; returns it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Server:
    """The server under test: `hello_httpserver` on a free loopback port,
    its log (stderr) in reliability/target/logs/NAME.log.

    `nofile` sets its fd limit (soft and hard, as `ulimit -n` does);
    `flags` are extra command-line flags."""

    def __init__(self, name, flags=(), nofile=None, binary=None, rust_log=None):
        binary = binary or os.environ.get("WHIRL_SERVER", DEFAULT_SERVER)
        os.makedirs(LOG_DIR, exist_ok=True)
        self.log_path = os.path.join(LOG_DIR, name + ".log")
        self.log = open(self.log_path, "wb")
        self.command = [binary, "--port", "0"] + list(flags)
        env = dict(os.environ)
        if rust_log:
            env["RUST_LOG"] = rust_log

        def limit():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,
            env=env,
        )
        self.pid = self.process.pid
        self.port = self._wait_for_port()

    def _wait_for_port(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                found = re.search(rb"listening on http://[^:]+:(\d+)", f.read())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        sys.exit("server did not start; see " + self.log_path)

    def describe(self):
        """The server's command line, for the report."""
        return " ".join([os.path.basename(self.command[0])] + self.command[1:])

    def fds(self):
        """Open file descriptors (entries in /proc/PID/fd)."""
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def status(self, field):
        """A /proc/PID/status field in KiB (VmRSS, VmHWM, …)."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def rss_kib(self):
        return self.status("VmRSS")

    def peak_rss_kib(self):
        return self.status("VmHWM")

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        """Stops the server with SIGTERM (SIGKILL after 15 s); returns its
        exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def request_bytes(port, path="/", extra=""):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (path, port, extra)).encode()


def read_response(sock):
    """Reads one response with a Content-Length body from a blocking
    socket; returns (status, body). Raises on EOF before its end."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError("closed before a response head (%d bytes)" % len(data))
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError("closed inside a response body")
        body += more
    return status, body[:length]


def get(port, path="/", timeout=10.0):
    """One GET on a fresh connection; returns (status, seconds taken)."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request_bytes(port, path, "Connection: close\r\n"))
        status, _ = read_response(sock)
    return status, time.perf_counter() - started


def percentile(values, p):
    """The p-th percentile (nearest rank) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def machine():
    """One line naming the machine and the date, for the report."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, Linux %s, Python %s, %s" % (
        cpu,
        os.cpu_count() or 0,
        os.uname().release,
        sys.version.split()[0],
        time.strftime("%Y-%m-%d %H:%M %Z"),
    )


def report(name, passed, lines):
    """Prints the measurements and the verdict; exits 1 on failure."""
    print("== %s: %s" % (name, "PASS" if passed else "FAIL"))
    for line in lines:
        print("   " + line)
    print("   machine: " + machine())
    sys.stdout.flush()
    if not passed:
        sys.exit(1)
