"""The harness's Tornado peer (bench/run.sh): Tornado 6, one process, one
IOLoop, the routes every server answers:

    GET /             Hello, World! (text/plain)
    GET /json         {"message": "Hello, World!"} (RequestHandler.write(dict))
    GET /static/NAME  StaticFileHandler over --static-dir
    GET /sleep        Hello, World! after await asyncio.sleep(1)

    python3 bench/peers/tornado_server.py --port 8888 --static-dir .
    curl -i http://127.0.0.1:8888/json

Logs "listening on http://ADDR:PORT" to stderr; no access log (the logging
module is left unconfigured, as the other servers log no requests).
"""

import argparse
import asyncio
import sys

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

HELLO = "Hello, World!"


class Plaintext(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write(HELLO)


class Json(tornado.web.RequestHandler):
    def get(self):
        self.write({"message": HELLO})


class Sleep(tornado.web.RequestHandler):
    async def get(self):
        await asyncio.sleep(1)
        self.set_header("Content-Type", "text/plain")
        self.write(HELLO)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--static-dir", default=".")
    args = parser.parse_args()
    app = tornado.web.Application(
        [
            (r"/", Plaintext),
            (r"/json", Json),
            (r"/sleep", Sleep),
            (r"/static/(.*)", tornado.web.StaticFileHandler, {"path": args.static_dir}),
        ]
    )
    sockets = tornado.netutil.bind_sockets(args.port, args.address)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    print("listening on http://%s:%d" % (args.address, port), file=sys.stderr, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
