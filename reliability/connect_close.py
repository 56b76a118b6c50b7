"""100,000 connect/close cycles with no fd or memory growth.

    python3 reliability/connect_close.py [--cycles 100000] [--threads 4]

THREADS client threads open and close CYCLES connections between them,
rotating through four ways to go: close at once (FIN), reset at once
(SO_LINGER 0: RST), send half a request head and close, and send a whole
`Connection: close` request, read the 200 and close. After 2,000 warm-up
cycles the server's open fds (/proc/PID/fd) and VmRSS are read; again at
each quarter; and at the end, once the server has seen every close.

Passes when the fds at the end equal the fds after the warm-up, RSS grew
by at most 1 MiB, every whole request got its 200, and a normal GET still
gets 200.
"""

import argparse
import socket
import struct
import threading
import time

from common import Server, get, raise_fd_limit, read_response, report

MODES = ("close", "reset", "half head", "request")


def cycle(port, mode, request):
    """One connection, ended the way `mode` says; returns False on a wrong
    answer to a whole request."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if mode == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "half head":
            sock.sendall(request[:20])
        elif mode == "request":
            sock.sendall(request)
            status, _ = read_response(sock)
            return status == 200
        return True
    finally:
        sock.close()


def run(port, cycles, threads):
    """Runs `cycles` cycles on `threads` threads; returns (done, errors)."""
    request = (
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % port
    ).encode()
    counts = {"done": 0, "errors": 0}
    lock = threading.Lock()

    def worker(index):
        done = errors = 0
        for i in range(index, cycles, threads):
            try:
                if not cycle(port, MODES[i % len(MODES)], request):
                    errors += 1
            except OSError:
                errors += 1
            done += 1
        with lock:
            counts["done"] += done
            counts["errors"] += errors

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return counts["done"], counts["errors"]


def settle(server, target, seconds=10):
    """Waits until the server's fds fall to `target` (it may still be
    closing the last connections); returns its fds."""
    deadline = time.monotonic() + seconds
    while server.fds() > target and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.fds()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    raise_fd_limit()
    server = Server("connect_close")
    samples = []
    try:
        fds_start = server.fds()
        run(server.port, 2000, args.threads)
        fds_before = settle(server, fds_start)
        rss_before = server.rss_kib()
        started = time.perf_counter()
        done = errors = 0
        for quarter in range(4):
            n, e = run(server.port, args.cycles // 4, args.threads)
            done, errors = done + n, errors + e
            samples.append((done, server.fds(), server.rss_kib()))
        seconds = time.perf_counter() - started
        fds_after = settle(server, fds_before)
        rss_after = server.rss_kib()
        after_status, _ = get(server.port)
        alive = server.alive()
    finally:
        server.stop()
    passed = (
        alive
        and errors == 0
        and fds_after == fds_before
        and rss_after - rss_before <= 1024
        and after_status == 200
    )
    report(
        "connect/close cycles",
        passed,
        [
            "server: " + server.describe(),
            "cycles: %d in %.1f s (%.0f/s), %d threads, modes %s in turn"
            % (done, seconds, done / seconds, args.threads, ", ".join(MODES)),
            "errors: %d" % errors,
            "after warm-up: %d fds, VmRSS %d KiB" % (fds_before, rss_before),
        ]
        + ["after %d cycles: %d fds, VmRSS %d KiB (sampled mid-run)" % s for s in samples]
        + [
            "at the end: %d fds, VmRSS %d KiB (growth %+d KiB)"
            % (fds_after, rss_after, rss_after - rss_before),
            "GET afterwards: %d" % after_status,
        ],
    )


if __name__ == "__main__":
    main()
