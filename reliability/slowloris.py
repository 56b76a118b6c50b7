"""1,000 slowloris connections closed at the header timeout while normal
requests keep their latency.

    python3 reliability/slowloris.py [--connections 1000] [--header-timeout 5]
                                     [--attack 20] [--baseline 10]

The server runs with `--header-timeout HEADER_TIMEOUT`. First, for
BASELINE seconds, one client sends GETs one after another, each on a fresh
connection, and records their latencies. Then an attacker process opens
CONNECTIONS connections that each send a request head one byte per second
and never finish it, reopening each connection the server closes, for
ATTACK seconds; while all of them are up, the client measures again. The
attacker records how long each of its connections lived, from connect to
the server's close.

Passes when every slowloris connection was closed by the server within
[HEADER_TIMEOUT - 0.5 s, HEADER_TIMEOUT + 2 s] of its connect, every normal
request got 200, and the p99 latency during the attack is at most twice
the baseline p99 plus 2 ms (the attacker shares the machine's CPUs).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time

from common import Server, get, percentile, raise_fd_limit, report

HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slowloris: "


async def attack(port, connections, seconds):
    """The attacker: prints `open N` once N connections are up, then a JSON
    summary of the connections' lifetimes."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    lifetimes = []
    outcomes = {}
    up = 0
    announced = False

    def outcome(kind):
        outcomes[kind] = outcomes.get(kind, 0) + 1

    async def one():
        nonlocal up, announced
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened = loop.time()
        up += 1
        if up == connections and not announced:
            announced = True
            print("open %d" % up, flush=True)
        sent = 0
        try:
            while loop.time() < end:
                byte = HEAD[sent : sent + 1] if sent < len(HEAD) else b"a"
                writer.write(byte)
                sent += 1
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                except asyncio.TimeoutError:
                    continue
                if data:
                    outcome("answered " + data.split(b"\r\n", 1)[0].decode("latin-1"))
                    continue
                lifetimes.append(loop.time() - opened)
                outcome("closed by server")
                return
            outcome("still open at the end")
        except (ConnectionError, OSError):
            lifetimes.append(loop.time() - opened)
            outcome("reset by server")
        finally:
            up -= 1
            writer.close()

    async def slot(index):
        # Spread the connects (and so the bytes) over the first second.
        await asyncio.sleep(index / connections)
        while loop.time() < end:
            try:
                await one()
            except OSError as e:
                outcome("connect failed: %s" % e)
                await asyncio.sleep(0.1)

    await asyncio.gather(*(slot(i) for i in range(connections)))
    print(json.dumps({"lifetimes": lifetimes, "outcomes": outcomes}), flush=True)


def measure(port, seconds, interval=0.01):
    """GETs on fresh connections for `seconds`; returns (latencies, failures)."""
    latencies, failures = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            status, took = get(port, timeout=5)
            if status == 200:
                latencies.append(took)
            else:
                failures += 1
        except OSError:
            failures += 1
        time.sleep(interval)
    return latencies, failures


def ms(value):
    return "%.2f ms" % (value * 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--header-timeout", type=float, default=5.0)
    parser.add_argument("--attack", type=float, default=20.0)
    parser.add_argument("--baseline", type=float, default=10.0)
    parser.add_argument("--attacker-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()
    if args.attacker_port:
        asyncio.run(attack(args.attacker_port, args.connections, args.attack))
        return

    server = Server("slowloris", ["--header-timeout", str(args.header_timeout)])
    try:
        before, before_failed = measure(server.port, args.baseline)
        attacker = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--attacker-port", str(server.port),
             "--connections", str(args.connections), "--attack", str(args.attack)],
            stdout=subprocess.PIPE,
        )
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(attacker.stdout), daemon=True)
        reader.start()
        started = time.monotonic()
        while not lines and attacker.poll() is None and time.monotonic() - started < 30:
            time.sleep(0.05)
        fds_under_attack = server.fds()
        # Measure while the attack lasts, leaving a second at its end.
        window = max(1.0, args.attack - (time.monotonic() - started) - 1.0)
        during, during_failed = measure(server.port, window)
        attacker.wait(args.attack + 60)
        reader.join(10)
        summary = json.loads(lines[-1])
        time.sleep(1)
        after_status, _ = get(server.port)
        alive = server.alive()
    finally:
        server.stop()

    lifetimes = summary["lifetimes"]
    low, high = args.header_timeout - 0.5, args.header_timeout + 2.0
    in_bounds = [t for t in lifetimes if low <= t <= high]
    p99_bar = 2 * percentile(before, 99) + 0.002
    passed = (
        alive
        and lifetimes
        and len(in_bounds) == len(lifetimes)
        and set(summary["outcomes"]) <= {"closed by server", "reset by server",
                                         "still open at the end"}
        and before_failed == during_failed == 0
        and percentile(during, 99) <= p99_bar
        and after_status == 200
    )
    report(
        "slowloris",
        passed,
        [
            "server: " + server.describe(),
            "attack: %d connections, one header byte per second, reopened when closed, "
            "for %.0f s" % (args.connections, args.attack),
            "attack connections: %s" % summary["outcomes"],
            "their lifetime (connect to server close): min %.2f s, p50 %.2f s, "
            "max %.2f s; %d of %d within [%.1f, %.1f] s"
            % (min(lifetimes, default=0), percentile(lifetimes, 50),
               max(lifetimes, default=0), len(in_bounds), len(lifetimes), low, high),
            "server fds under attack: %d" % fds_under_attack,
            "normal GETs before: %d, p50 %s, p99 %s, max %s, failed %d"
            % (len(before), ms(percentile(before, 50)), ms(percentile(before, 99)),
               ms(max(before, default=0)), before_failed),
            "normal GETs during: %d, p50 %s, p99 %s, max %s, failed %d (p99 bar %s)"
            % (len(during), ms(percentile(during, 50)), ms(percentile(during, 99)),
               ms(max(during, default=0)), during_failed, ms(p99_bar)),
            "GET after the attack: %d" % after_status,
        ],
    )


if __name__ == "__main__":
    main()
