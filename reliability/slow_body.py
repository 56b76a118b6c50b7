"""Slow request bodies bounded by `body_timeout`.

    python3 reliability/slow_body.py [--connections 100] [--body-timeout 5]

The server runs with `--body-timeout BODY_TIMEOUT`. CONNECTIONS clients each
send a POST whose body stops midway and then wait, silent, for the server
to close: half declare `Content-Length: 1000000` and send 500,000 bytes,
half send `Transfer-Encoding: chunked` chunks and stop inside one. Each
records the time from its last byte to the server's close. A few more
clients trickle a body one byte every BODY_TIMEOUT / 2 seconds: they are
never silent for BODY_TIMEOUT, and show what the limit is — the longest
silence inside a body (nginx's `client_body_timeout`), not a deadline for
the whole body (Tornado's `body_timeout`).

Passes when every stalled connection was closed within [BODY_TIMEOUT - 0.5 s,
BODY_TIMEOUT + 2 s] of its last byte, without a response, the server's fds
came back to where they were, and a normal GET still gets 200.
"""

import argparse
import asyncio
import time

from common import Server, get, percentile, raise_fd_limit, report


async def stalled(port, chunked, timeout):
    """Sends half a body, then waits; returns (what happened, seconds from
    the last byte to the close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if chunked:
        head = "Transfer-Encoding: chunked"
        body = b"".join(b"1000\r\n" + b"x" * 4096 + b"\r\n" for _ in range(100))
        body += b"1000\r\n" + b"x" * 100  # stops inside a chunk
    else:
        head = "Content-Length: 1000000"
        body = b"x" * 500_000
    writer.write(
        ("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n\r\n" % head).encode() + body
    )
    await writer.drain()
    last_byte = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(4096), timeout * 4)
        what = "closed by server" if not data else "answered " + repr(data[:20])
    except asyncio.TimeoutError:
        what = "still open"
    except (ConnectionError, OSError):
        what = "reset by server"
    writer.close()
    return what, time.monotonic() - last_byte


async def trickle(port, interval, seconds):
    """Sends one body byte every `interval` seconds for `seconds`; returns
    what happened."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
    end = time.monotonic() + seconds
    sent = 0
    try:
        while time.monotonic() < end:
            writer.write(b"x")
            await writer.drain()
            sent += 1
            try:
                data = await asyncio.wait_for(reader.read(4096), interval)
                return "closed by server after %d bytes" % sent if not data else "answered"
            except asyncio.TimeoutError:
                pass
        return "still open after %d bytes in %.0f s" % (sent, seconds)
    except (ConnectionError, OSError):
        return "reset by server after %d bytes" % sent
    finally:
        writer.close()


async def run(args, port):
    stalls = [stalled(port, i % 2 == 1, args.body_timeout) for i in range(args.connections)]
    trickles = [
        trickle(port, args.body_timeout / 2, args.body_timeout * 4) for _ in range(args.trickles)
    ]
    results = await asyncio.gather(*stalls, *trickles)
    return results[: len(stalls)], results[len(stalls):]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--trickles", type=int, default=5)
    parser.add_argument("--body-timeout", type=float, default=5.0)
    args = parser.parse_args()
    raise_fd_limit()
    server = Server("slow_body", ["--body-timeout", str(args.body_timeout)])
    try:
        fds_before = server.fds()
        stalls, trickles = asyncio.run(run(args, server.port))
        time.sleep(0.5)
        fds_after = server.fds()
        after_status, _ = get(server.port)
        alive = server.alive()
    finally:
        server.stop()

    outcomes = {}
    for what, _ in stalls:
        outcomes[what] = outcomes.get(what, 0) + 1
    waits = [seconds for what, seconds in stalls if what in ("closed by server", "reset by server")]
    low, high = args.body_timeout - 0.5, args.body_timeout + 2.0
    in_bounds = [w for w in waits if low <= w <= high]
    trickled = {}
    for what in trickles:
        trickled[what] = trickled.get(what, 0) + 1
    passed = (
        alive
        and len(in_bounds) == len(stalls)
        and fds_after == fds_before
        and after_status == 200
    )
    report(
        "slow bodies",
        passed,
        [
            "server: " + server.describe(),
            "stalled bodies: %d (%d Content-Length, %d chunked): %s"
            % (len(stalls), (len(stalls) + 1) // 2, len(stalls) // 2, outcomes),
            "last byte to close: min %.2f s, p50 %.2f s, max %.2f s; %d of %d within "
            "[%.1f, %.1f] s"
            % (min(waits, default=0), percentile(waits, 50), max(waits, default=0),
               len(in_bounds), len(stalls), low, high),
            "trickled bodies (a byte every %.1f s, %.0f s): %s (informational)"
            % (args.body_timeout / 2, args.body_timeout * 4, trickled),
            "server fds before %d, after %d" % (fds_before, fds_after),
            "GET afterwards: %d" % after_status,
        ],
    )


if __name__ == "__main__":
    main()
