"""10,000 concurrent keep-alive connections, served with zero errors.

    python3 reliability/keepalive_10k.py [--connections 10000] [--requests 3]
                                         [--rounds 3]

Opens CONNECTIONS connections to one server (at most 500 connecting at
once), sends one GET on each and keeps every one open; once all are open
(the server then holds CONNECTIONS connections at the same time) every
connection sends REQUESTS - 1 more GETs, one after another, all
connections at once. An error is anything but a complete `200 Hello,
world` on the same connection: a refused or reset connection, a timeout,
another status. All that, ROUNDS times against the same server. Prints
the counts, the wall time, and the server's fds and RSS before, while all
connections were open, and after they closed. Passes with zero errors, the
server's fds back where they started after each round, and its RSS after
each round within 8 MiB of that after the first (what the allocator keeps
from the first 10,000 connections is reused, not added to).
"""

import argparse
import asyncio
import time

from common import Server, raise_fd_limit, report

BODY = b"Hello, world"


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def run(args, server):
    request = ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % server.port).encode()
    gate = asyncio.Semaphore(500)
    all_open = asyncio.Event()
    opened = 0
    errors = {}
    served = 0
    peak = {}

    def error(kind):
        errors[kind] = errors.get(kind, 0) + 1

    async def one_request(reader, writer):
        nonlocal served
        writer.write(request)
        status, body = await asyncio.wait_for(read_response(reader), args.timeout)
        if status != 200 or body != BODY:
            raise ValueError("status %d" % status)
        served += 1

    async def client():
        nonlocal opened
        writer = None
        try:
            async with gate:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", server.port), args.timeout
                )
                await one_request(reader, writer)
            opened += 1
            if opened == args.connections:
                all_open.set()
            await all_open.wait()
            for _ in range(args.requests - 1):
                await one_request(reader, writer)
        except Exception as e:  # noqa: BLE001 — every failure is counted
            error(type(e).__name__)
            if opened + sum(errors.values()) >= args.connections:
                all_open.set()
        finally:
            if writer is not None:
                writer.close()

    async def watch():
        await all_open.wait()
        peak["fds"] = server.fds()
        peak["rss"] = server.rss_kib()

    started = time.perf_counter()
    await asyncio.gather(watch(), *(client() for _ in range(args.connections)))
    return time.perf_counter() - started, opened, served, errors, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    raise_fd_limit()
    server = Server("keepalive_10k")
    rounds = []
    try:
        idle_rss = server.rss_kib()
        idle_fds = server.fds()
        for _ in range(args.rounds):
            seconds, opened, served, errors, peak = asyncio.run(run(args, server))
            deadline = time.monotonic() + 10
            while server.fds() > idle_fds and time.monotonic() < deadline:
                time.sleep(0.1)
            rounds.append((seconds, opened, served, errors, peak, server.fds(), server.rss_kib()))
        alive = server.alive()
    finally:
        server.stop()
    expected = args.connections * args.requests
    first_rss = rounds[0][6]
    passed = alive and all(
        not errors and served == expected and fds == idle_fds and rss <= first_rss + 8192
        for _, _, served, errors, _, fds, rss in rounds
    )
    lines = [
        "server: " + server.describe(),
        "before: %d fds, RSS %d KiB" % (idle_fds, idle_rss),
    ]
    for i, (seconds, opened, served, errors, peak, fds, rss) in enumerate(rounds, 1):
        lines += [
            "round %d: %d of %d connections open at once; %d of %d requests answered 200 "
            "(%d per connection); errors: %d %s; %.1f s"
            % (i, opened, args.connections, served, expected, args.requests,
               sum(errors.values()), errors or "", seconds),
            "  server while all were open: %s fds, RSS %s KiB; once they closed: "
            "%d fds, RSS %d KiB" % (peak.get("fds"), peak.get("rss"), fds, rss),
        ]
    report("10k keep-alive connections", passed, lines)


if __name__ == "__main__":
    main()
