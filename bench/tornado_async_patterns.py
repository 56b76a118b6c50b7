#!/usr/bin/env python3
"""The async_patterns routes on Python Tornado 6, for bench/async_patterns.sh.

The peer of examples/async_patterns (whirl): the same routes, the same slow
task (a `sh -c` command), the same 10-thread pool and AsyncHTTPClient
defaults, written the way Tornado 6 spells the seed's handlers (async def,
tornado.process.Subprocess, run_in_executor, gen.with_timeout).

    pip install tornado
    python3 bench/tornado_async_patterns.py --port 8888 --task 'sleep 0.1' \
        --upstream http://127.0.0.1:8889/delay/0.1

Not a test and not part of the build; see docs/ASYNC_PATTERNS.md.
"""

import argparse
import datetime
import json
import logging
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import tornado.gen
import tornado.httpclient
import tornado.httputil
import tornado.ioloop
import tornado.process
import tornado.queues
import tornado.web

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
}


def run_blocking(task):
    """Runs the task to its end on this thread (blocking it)."""
    out = subprocess.run(["/bin/sh", "-c", task], stdin=subprocess.DEVNULL,
                         capture_output=True)
    return out.returncode, out.stdout + out.stderr


async def run_async(task):
    """Runs the task as a tornado.process.Subprocess."""
    proc = tornado.process.Subprocess(
        ["/bin/sh", "-c", "exec 2>&1\n" + task],
        stdin=subprocess.DEVNULL, stdout=tornado.process.Subprocess.STREAM)
    output = await proc.stdout.read_until_close()
    code = await proc.wait_for_exit(raise_error=False)
    return code, output


def task_json(task, code, output):
    return {"task": task, "exit_code": code, "success": code == 0,
            "output": output.decode("utf-8", "replace")}


class Base(tornado.web.RequestHandler):
    def initialize(self, options, executor):
        self.options = options
        self.executor = executor


class SyncHandler(Base):
    def get(self):
        run_blocking(self.options.task)
        self.finish("It works")


class AsyncHandler(Base):
    def get(self):
        loop = tornado.ioloop.IOLoop.current()
        loop.call_later(0, lambda: loop.spawn_callback(run_async, self.options.task))
        self.finish("It works")


class AsyncTaskHandler(Base):
    async def get(self):
        code, output = await run_async(self.options.task)
        self.finish(task_json(self.options.task, code, output))


class FutureHandler(Base):
    def get(self):
        self.executor.submit(run_blocking, self.options.task)
        self.finish("It works")


class FutureResponseHandler(Base):
    async def get(self):
        try:
            timeout = float(self.get_query_argument("timeout", "10"))
        except ValueError:
            raise tornado.web.HTTPError(400)
        future = tornado.ioloop.IOLoop.current().run_in_executor(
            self.executor, run_blocking, self.options.task)
        try:
            code, output = await tornado.gen.with_timeout(
                datetime.timedelta(seconds=timeout), future)
        except tornado.gen.TimeoutError:
            raise tornado.web.HTTPError(504)
        self.finish(task_json(self.options.task, code, output))


class ClientSyncHandler(Base):
    def get(self):
        try:
            urllib.request.urlopen(self.options.upstream,
                                   timeout=self.options.upstream_timeout).read()
        except urllib.error.HTTPError:
            pass
        except OSError:
            raise tornado.web.HTTPError(502)
        self.finish("It works")


class ClientAsyncHandler(Base):
    def get(self):
        future = tornado.httpclient.AsyncHTTPClient().fetch(
            self.options.upstream, raise_error=False,
            request_timeout=self.options.upstream_timeout)
        tornado.ioloop.IOLoop.current().add_future(future, lambda f: f.exception())
        self.finish("It works")


class ClientResponseHandler(Base):
    async def get(self):
        try:
            response = await tornado.httpclient.AsyncHTTPClient().fetch(
                self.options.upstream, raise_error=False,
                request_timeout=self.options.upstream_timeout)
        except OSError:
            raise tornado.web.HTTPError(502)
        if response.code == 599:
            raise tornado.web.HTTPError(504 if isinstance(
                response.error, tornado.httpclient.HTTPClientError) else 502)
        self.set_status(response.code, response.reason)
        if "Content-Type" in response.headers:
            self.set_header("Content-Type", response.headers["Content-Type"])
        self.finish(response.body)


@tornado.web.stream_request_body
class ProxyHandler(Base):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def prepare(self):
        path = self.request.path[len("/proxy/"):]  # still percent-encoded
        if any(s.lower().replace("%2e", ".") in (".", "..") for s in path.split("/")):
            raise tornado.web.HTTPError(400)
        query = "&".join(p for p in self.request.query.split("&")
                         if p and p.split("=")[0] != "validate_cert")
        url = self.options.upstream.rstrip("/") + "/" + path + ("?" + query if query else "")
        connection_named = {t.strip().lower()
                            for t in self.request.headers.get("Connection", "").split(",")}
        headers = tornado.httputil.HTTPHeaders()
        for name, value in self.request.headers.get_all():
            low = name.lower()
            if low in HOP_BY_HOP or low in connection_named or low in ("host", "expect"):
                continue
            headers.add(name, value)
        headers["X-Forwarded-For"] = ", ".join(
            filter(None, [self.request.headers.get("X-Forwarded-For"), self.request.remote_ip]))
        self.body = tornado.queues.Queue(maxsize=4)
        chunked = "chunked" in self.request.headers.get("Transfer-Encoding", "").lower()
        has_body = chunked or self.request.headers.get("Content-Length", "0") != "0"
        if chunked:
            headers["Transfer-Encoding"] = "chunked"

        async def producer(write):
            while True:
                chunk = await self.body.get()
                if chunk is None:
                    return
                await write(chunk)

        self.head_seen = False
        request = tornado.httpclient.HTTPRequest(
            url, method=self.request.method, headers=headers,
            body_producer=producer if has_body else None,
            body=None if has_body else (b"" if "Content-Length" in self.request.headers else None),
            allow_nonstandard_methods=True, follow_redirects=False,
            decompress_response=False, request_timeout=self.options.upstream_timeout,
            connect_timeout=self.options.upstream_timeout,
            validate_cert=self.get_query_argument("validate_cert", "1") != "0",
            header_callback=self.on_header_line, streaming_callback=self.on_piece)
        self.fetch = tornado.httpclient.AsyncHTTPClient().fetch(request, raise_error=False)

    def on_header_line(self, line):
        line = line.rstrip("\r\n")
        if line.startswith("HTTP/"):
            parts = line.split(" ", 2)
            self.upstream_status = (int(parts[1]), parts[2] if len(parts) > 2 else "")
            self.upstream_headers = []
        elif line and ":" in line:
            name, value = line.split(":", 1)
            self.upstream_headers.append((name.strip(), value.strip()))
        elif not line and not 100 <= self.upstream_status[0] < 200:
            code, reason = self.upstream_status
            self.set_status(code, reason or None)
            self.clear_header("Content-Type")
            named = {v.strip().lower() for n, v in self.upstream_headers
                     if n.lower() == "connection" for v in v.split(",")}
            seen = set()
            for name, value in self.upstream_headers:
                low = name.lower()
                if low in HOP_BY_HOP or low in named:
                    continue
                (self.add_header if low in seen else self.set_header)(name, value)
                seen.add(low)
            self.head_seen = True

    def on_piece(self, piece):
        self.write(piece)
        self.flush()

    async def data_received(self, chunk):
        await self.body.put(chunk)

    async def relay(self, *args):
        await self.body.put(None)
        response = await self.fetch
        if response.code == 599 and not self.head_seen:
            timeout = "Timeout" in str(response.error)
            raise tornado.web.HTTPError(504 if timeout else 502)
        self.finish()

    get = head = post = put = patch = delete = options = relay


class UploadHandler(Base):
    async def post(self):
        upload_type = self.get_argument("type", None)
        files = self.request.files.get("file")
        if not files:
            raise tornado.web.HTTPError(400)
        upload = files[0]
        if (not upload.filename or re.search(r"[/\\\0:]", upload.filename)
                or upload.filename in (".", "..")):
            raise tornado.web.HTTPError(400)
        ext = os.path.splitext(upload.filename)[1].lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,8}", ext):
            ext = ""
        name = "upload-%d-%s%s" % (time.time() * 1000, uuid.uuid4().hex[:8], ext)
        path = os.path.join(self.options.upload_dir, name)
        await tornado.ioloop.IOLoop.current().run_in_executor(
            None, lambda: open(path, "xb").write(upload.body))
        logging.info("upload %r (type %r) saved as %s", upload.filename, upload_type, name)
        boundary = uuid.uuid4().hex
        parts = []
        for key, value in (("api_key", self.options.api_key),
                           ("api_secret", self.options.api_secret)):
            parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                         % (boundary.encode(), key.encode(), value.encode()))
        with open(path, "rb") as f:
            image = f.read()
        parts.append(b'--%s\r\nContent-Disposition: form-data; name="image"; filename="%s"\r\n'
                     b"Content-Type: %s\r\n\r\n%s\r\n"
                     % (boundary.encode(), name.encode(), upload.content_type.encode(), image))
        body = b"".join(parts) + b"--%s--\r\n" % boundary.encode()
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            self.options.ocr_url, method="POST", body=body, raise_error=False,
            headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
        if response.code != 200:
            raise tornado.web.HTTPError(502)
        self.set_header("X-Saved-As", name)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(response.body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--upstream", default="http://127.0.0.1:8889")
    parser.add_argument("--ocr-url", default="http://127.0.0.1:8890/")
    parser.add_argument("--upload-dir", default="/tmp/whirl-uploads")
    parser.add_argument("--task", default="sleep 1")
    parser.add_argument("--api-key", default="whirl-demo-key")
    parser.add_argument("--api-secret", default="whirl-demo-secret")
    parser.add_argument("--upstream-timeout", type=float, default=20.0)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--max-clients", type=int, default=10)
    options = parser.parse_args()
    os.makedirs(options.upload_dir, exist_ok=True)
    tornado.httpclient.AsyncHTTPClient.configure(None, max_clients=options.max_clients)
    shared = dict(options=options, executor=ThreadPoolExecutor(options.pool_size))
    app = tornado.web.Application([
        (r"/sync", SyncHandler, shared),
        (r"/async", AsyncHandler, shared),
        (r"/async_task", AsyncTaskHandler, shared),
        (r"/future", FutureHandler, shared),
        (r"/future_response", FutureResponseHandler, shared),
        (r"/client/sync", ClientSyncHandler, shared),
        (r"/client/async", ClientAsyncHandler, shared),
        (r"/client/response", ClientResponseHandler, shared),
        (r"/proxy/(.*)", ProxyHandler, shared),
        (r"/upload", UploadHandler, shared),
    ])
    app.listen(options.port, options.address)
    print("listening on http://%s:%d" % (options.address, options.port), flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
