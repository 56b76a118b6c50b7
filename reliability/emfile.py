"""`ulimit -n 256` on the server with 1,000 clients: it answers what it
can, logs EMFILE once, and recovers when fds free up.

    python3 reliability/emfile.py [--clients 1000] [--nofile 256] [--hold 5]

The server runs with an fd limit of NOFILE (soft and hard, as `ulimit -n`
sets). CLIENTS clients arrive at once; each connects (the kernel queues
what the server cannot accept yet), sends a GET, and once answered keeps
its connection for HOLD seconds, sending a GET every second, then leaves.
The server runs out of fds after about NOFILE - 12 connections; as clients
leave, it accepts the ones waiting. Every second the script samples the
server's fds and how many answers the clients got so far.

Passes when the server never dies, answers every GET of every client that
got in (errors are only connects or first answers that did not come
within the client timeout), logs EMFILE at most once per episode of fd
exhaustion (here: once), ends with its fds back where they started, and
answers a fresh GET afterwards.
"""

import argparse
import asyncio
import re
import time

from common import Server, get, raise_fd_limit, report


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    await reader.readexactly(length)
    return status


async def run(args, server):
    request = ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % server.port).encode()
    answers = {"first": 0, "later": 0}
    errors = {}
    waits = []
    samples = []
    done = asyncio.Event()
    finished = 0

    def error(kind):
        errors[kind] = errors.get(kind, 0) + 1

    async def client():
        nonlocal finished
        arrived = time.monotonic()
        writer = None
        stage = "connect"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", server.port), args.timeout
            )
            stage = "first answer"
            writer.write(request)
            status = await asyncio.wait_for(
                read_response(reader), args.timeout - (time.monotonic() - arrived)
            )
            if status != 200:
                raise ValueError(status)
            answers["first"] += 1
            waits.append(time.monotonic() - arrived)
            stage = "later answer"
            for _ in range(int(args.hold)):
                await asyncio.sleep(1)
                writer.write(request)
                if await asyncio.wait_for(read_response(reader), 10) != 200:
                    raise ValueError(status)
                answers["later"] += 1
        except (asyncio.TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as e:
            error("%s: %s" % (stage, type(e).__name__))
        finally:
            if writer is not None:
                writer.close()
            finished += 1
            if finished == args.clients:
                done.set()

    async def sample():
        started = time.monotonic()
        while not done.is_set():
            samples.append((time.monotonic() - started, server.fds(), answers["first"],
                            answers["later"]))
            try:
                await asyncio.wait_for(done.wait(), 1)
            except asyncio.TimeoutError:
                pass

    started = time.monotonic()
    await asyncio.gather(sample(), *(client() for _ in range(args.clients)))
    return time.monotonic() - started, answers, errors, waits, samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--nofile", type=int, default=256)
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    raise_fd_limit()
    server = Server("emfile", nofile=args.nofile)
    try:
        fds_start = server.fds()
        seconds, answers, errors, waits, samples = asyncio.run(run(args, server))
        deadline = time.monotonic() + 10
        while server.fds() > fds_start and time.monotonic() < deadline:
            time.sleep(0.1)
        fds_end = server.fds()
        after = [get(server.port)[0] for _ in range(20)]
        alive = server.alive()
    finally:
        server.stop()
    log = server.log_text()
    emfile_lines = [line for line in log.splitlines() if "Too many open files" in line]
    errors_total = sum(errors.values())
    later_expected = answers["first"] * int(args.hold)
    passed = (
        alive
        and answers["later"] == later_expected
        and not any(kind.startswith("later") for kind in errors)
        and len(emfile_lines) == 1
        and fds_end == fds_start
        and after == [200] * 20
    )
    waits.sort()
    lines = [
        "server: ulimit -n %d; %s" % (args.nofile, server.describe()),
        "clients: %d arriving at once, each holding its connection %.0f s with a GET a second"
        % (args.clients, args.hold),
        "clients served: %d of %d in %.1f s; errors: %d %s"
        % (answers["first"], args.clients, seconds, errors_total, errors or ""),
        "answers on held connections: %d of %d" % (answers["later"], later_expected),
        "wait for a first answer: min %.2f s, median %.2f s, max %.2f s"
        % (waits[0] if waits else 0, waits[len(waits) // 2] if waits else 0,
           waits[-1] if waits else 0),
        "server fds: %d at start, at most %d, %d at the end"
        % (fds_start, max(s[1] for s in samples), fds_end),
        "EMFILE lines in the server log: %d" % len(emfile_lines),
    ]
    lines += ["  " + line.strip() for line in emfile_lines[:5]]
    lines += [
        "fresh GETs afterwards: %d of 20 answered 200" % after.count(200),
        "samples (s, fds, clients served, later answers): "
        + " ".join("(%.0f,%d,%d,%d)" % s for s in samples[:: max(1, len(samples) // 12)]),
    ]
    report("EMFILE", passed, lines)


if __name__ == "__main__":
    main()
