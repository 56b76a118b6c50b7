"""The harness's small clients (bench/run.sh), for what wrk does not do.

    python3 bench/loadgen.py idle --port 8888 --connections 10000
        Opens CONNECTIONS keep-alive connections (at most 200 connecting at
        once), sends one GET / on each and reads its response, then prints
        "parked N" and holds every connection open until its standard input
        closes. The harness reads the server's RSS meanwhile.

    python3 bench/loadgen.py sleep --port 8888 --requests 100
        Opens REQUESTS connections, then sends GET /sleep on all of them at
        once and prints "seconds=S": the wall time from the first request
        written to the last response read.

Every response must be a 200 with a complete body (Content-Length or
chunked); anything else exits non-zero. Standard library only.
"""

import argparse
import asyncio
import resource
import sys
import time


async def read_response(reader):
    """Reads one response; returns its status and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                # Trailers, up to the empty line.
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    else:
        raise RuntimeError("response without Content-Length or chunked")
    return status, body


def request(path, port):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (path, port)).encode()


async def fetch_on(reader, writer, path, port):
    writer.write(request(path, port))
    status, _ = await read_response(reader)
    if status != 200:
        raise RuntimeError("%s answered %d" % (path, status))


async def idle(args):
    gate = asyncio.Semaphore(200)
    streams = []

    async def park():
        async with gate:
            reader, writer = await asyncio.open_connection(args.address, args.port)
            await fetch_on(reader, writer, args.path, args.port)
            streams.append((reader, writer))

    await asyncio.gather(*(park() for _ in range(args.connections)))
    print("parked %d" % len(streams), flush=True)
    # Hold them until the harness closes our standard input.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for _, writer in streams:
        writer.close()


async def sleep(args):
    streams = [
        await asyncio.open_connection(args.address, args.port) for _ in range(args.requests)
    ]
    started = time.perf_counter()
    await asyncio.gather(*(fetch_on(r, w, args.path, args.port) for r, w in streams))
    seconds = time.perf_counter() - started
    for _, writer in streams:
        writer.close()
    print("requests=%d seconds=%.4f" % (len(streams), seconds), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, path in (("idle", "/"), ("sleep", "/sleep")):
        command = commands.add_parser(name)
        command.add_argument("--address", default="127.0.0.1")
        command.add_argument("--port", type=int, required=True)
        command.add_argument("--path", default=path)
    commands.choices["idle"].add_argument("--connections", type=int, default=10000)
    commands.choices["sleep"].add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    # One descriptor per connection, and some to spare.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(idle(args) if args.command == "idle" else sleep(args))


if __name__ == "__main__":
    main()
