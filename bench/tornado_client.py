"""The HTTP client benchmark's Tornado peer: Tornado's AsyncHTTPClient (the
default simple_httpclient) on its IOLoop -- REQUESTS GETs of one URL,
CONCURRENCY at a time; prints "requests=N seconds=S" for bench/client.sh.

    python3 bench/tornado_client.py --url http://127.0.0.1:8888/
    bench/client.sh

max_clients is the concurrency. simple_httpclient opens a connection per
request (Tornado issue #324), so unlike whirl's and hyper's clients it does
no keep-alive: that is Tornado's AsyncHTTPClient as its users get it.
Every response is checked (status 200, the body's length).
"""

import argparse
import asyncio
import sys
import time

from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop


async def bench(url, requests, concurrency, body_len):
    client = AsyncHTTPClient(max_clients=concurrency)
    left = requests

    async def worker():
        nonlocal left
        done = 0
        while left > 0:
            left -= 1
            response = await client.fetch(url)
            if response.code != 200 or len(response.body) != body_len:
                raise RuntimeError("unexpected response: %r" % response)
            done += 1
        return done

    started = time.perf_counter()
    counts = await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sum(counts), time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--body-len", type=int, default=12)
    args = parser.parse_args()
    try:
        done, seconds = IOLoop.current().run_sync(
            lambda: bench(args.url, args.requests, args.concurrency, args.body_len)
        )
    except Exception as e:  # noqa: BLE001 -- any failure ends the run
        print("tornado_client: %s" % e, file=sys.stderr)
        return 1
    print("requests=%d seconds=%.4f" % (done, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
