"""A gzip request bomb — 1 GiB of zeros, about 1 MiB compressed — refused
at `max_body_size` without inflating it.

    python3 reliability/gzip_bomb.py [--rounds 3]

The bomb is made once (zlib level 9, gzip framing) and kept in
reliability/target/. It is POSTed with `Content-Encoding: gzip` and its
compressed `Content-Length`, ROUNDS times one after another, to a server
with `--decompress-request` and the default 100 MiB `max_body_size`, then
to one with `--max-body-size 1048576`. Each round records the status, the
time to the answer, and the server's RSS (VmRSS) and peak RSS (VmHWM).

Passes when every round is answered 413 and the connection closed, the
server's peak RSS stays under max_body_size + 64 MiB (the closure server
buffers a body whole, so it may hold up to max_body_size of inflated bytes
before refusing — never the 1 GiB), RSS does not grow from one round to
the next by more than 8 MiB, and a normal GET still gets 200.
"""

import argparse
import os
import socket
import threading
import time
import zlib

from common import LOG_DIR, Server, get, read_response, report

GIB = 1 << 30
MIB = 1 << 20


def bomb_path():
    return os.path.join(os.path.dirname(LOG_DIR), "bomb-1GiB.gz")


def make_bomb():
    """The gzip of 1 GiB of zeros (cached)."""
    path = bomb_path()
    if not os.path.exists(path):
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(MIB)
        parts = [compressor.compress(zeros) for _ in range(GIB // MIB)]
        parts.append(compressor.flush())
        with open(path + ".tmp", "wb") as f:
            f.write(b"".join(parts))
        os.replace(path + ".tmp", path)
    with open(path, "rb") as f:
        return f.read()


def send_bomb(port, bomb):
    """POSTs the bomb; returns (status or error, seconds, connection closed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: gzip\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    ).encode()
    sent = {"error": None}

    def write():
        try:
            sock.sendall(head + bomb)
        except OSError as e:  # the server closes once it has refused
            sent["error"] = type(e).__name__

    started = time.perf_counter()
    writer = threading.Thread(target=write)
    writer.start()
    try:
        status, _ = read_response(sock)
        took = time.perf_counter() - started
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
    except OSError as e:
        status, took, closed = type(e).__name__, time.perf_counter() - started, True
    writer.join()
    sock.close()
    return status, took, closed


def attack(name, flags, limit, bomb, rounds):
    server = Server(name, ["--decompress-request"] + flags)
    rows = []
    try:
        rss_start = server.rss_kib()
        for _ in range(rounds):
            status, took, closed = send_bomb(server.port, bomb)
            time.sleep(0.2)
            rows.append((status, took, closed, server.rss_kib(), server.peak_rss_kib()))
        after_status, _ = get(server.port)
        alive = server.alive()
    finally:
        server.stop()
    rss_after = [row[3] for row in rows]
    peak = max(row[4] for row in rows)
    passed = (
        alive
        and all(row[0] == 413 and row[2] for row in rows)
        and peak * 1024 <= limit + 64 * MIB
        and max(rss_after) - min(rss_after) <= 8 * 1024
        and after_status == 200
    )
    lines = ["server: " + server.describe(), "RSS at start: %d KiB" % rss_start]
    for i, (status, took, closed, rss, hwm) in enumerate(rows, 1):
        lines.append(
            "round %d: %s in %.3f s, connection %s; RSS after %d KiB, peak so far %d KiB"
            % (i, status, took, "closed" if closed else "open", rss, hwm)
        )
    lines.append("GET afterwards: %d" % after_status)
    return passed, lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    bomb = make_bomb()
    intro = [
        "bomb: %d bytes of gzip inflating to %d bytes (ratio %d:1), made or loaded in %.1f s"
        % (len(bomb), GIB, GIB // len(bomb), time.perf_counter() - started)
    ]
    default_ok, default_lines = attack("gzip_bomb_default", [], 100 * MIB, bomb, args.rounds)
    small_ok, small_lines = attack(
        "gzip_bomb_1mib", ["--max-body-size", str(MIB)], MIB, bomb, args.rounds
    )
    report(
        "gzip bomb",
        default_ok and small_ok,
        intro
        + ["max_body_size 100 MiB (default): %s" % ("pass" if default_ok else "FAIL")]
        + ["  " + line for line in default_lines]
        + ["max_body_size 1 MiB: %s" % ("pass" if small_ok else "FAIL")]
        + ["  " + line for line in small_lines],
    )


if __name__ == "__main__":
    main()
