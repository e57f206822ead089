"""A real HTTP server on 127.0.0.1 for tests: serves scripted responses per path, in order,
and records every request. Used in place of arXiv and blog hosts."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (for timeouts)
    truncate_at: int | None = None  # send only this many bytes, then close
    trickle: float = 0.0  # seconds between 64-byte pieces of the body (a slow server)


@dataclass
class Request:
    path: str
    query: str
    headers: dict[str, str]
    at: float


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # a client that hung up (its timeout or size cap fired) is what the fault tests
        # provoke; anything else is printed as usual
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            super().handle_error(request, client_address)


class LocalServer:
    """`route(path, *replies)`: the replies are served in order; the last one repeats.
    A route given a callable gets the Request and returns a Reply."""

    def __init__(self) -> None:
        self.routes: dict[str, list] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server API)
                server._handle(self)

            def log_message(self, *args):  # keep test output quiet
                pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, *replies) -> None:
        with self._lock:
            self.routes[path] = list(replies)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            replies = self.routes.get(request.path)
            if not replies:
                return Reply(404, b"not found")
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return reply(request) if callable(reply) else reply

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        request = Request(parts.path, parts.query, dict(handler.headers.items()), time.time())
        reply = self._next_reply(request)
        if reply.delay:
            time.sleep(reply.delay)
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        if reply.truncate_at is not None:
            handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            body = body if reply.truncate_at is None else body[: reply.truncate_at]
            pieces = [body[i:i + 64] for i in range(0, len(body), 64)] if reply.trickle else [body]
            for piece in pieces:
                handler.wfile.write(piece)
                handler.wfile.flush()
                time.sleep(reply.trickle)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # no next request to read on it
            return  # the client gave up (e.g. its timeout fired); that is the point
        if reply.truncate_at is not None:
            handler.close_connection = True

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
