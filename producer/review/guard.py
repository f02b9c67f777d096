"""The rules a page's server on 127.0.0.1 holds to: token, host, origin, body size, headers.

The review page and the prepare page are both served this way (``GuardedServer``).

Tornado is the web framework Flower already brings into prodseg, so the page costs no
new dependency; it is both the framework and the server, and its event loop runs in one
thread beside the blocking work (storage, previews on a worker), which it hands to a
thread pool.

Rules every request passes before it is served:

- the server listens on 127.0.0.1 only;
- the ``Host`` header must name that address (or ``localhost``) and the server's port,
  so a page elsewhere cannot reach it by pointing a name at 127.0.0.1;
- the token, random per start, must come as ``?token=`` or the ``X-Prodseg-Token``
  header (compared in constant time); without it: 403 and nothing else;
- the token is checked when the headers arrive, before any body is read, and a body
  may hold at most ``MAX_BODY_BYTES`` (a click or a decision is a few hundred bytes);
- changes are POSTs with a JSON body and the token in the header, which a page on
  another origin cannot send without a CORS grant, and none is ever given; a POST whose
  ``Origin`` is not the page's own is refused too;
- every answer, a 404 for an unknown path included, forbids caching and framing and
  names no server, and the page's Content-Security-Policy lets it load and fetch from
  its own origin only;
- no log line holds the token: access lines and errors name the path, never the query.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

import tornado.http1connection
import tornado.httpserver
import tornado.netutil
import tornado.web

from prodseg.errors import InputError, TransientError
from prodseg.jsonio import dumps
from prodseg.storage.base import ObjectNotFound

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
MAX_BODY_BYTES = 64 * 1024


@tornado.web.stream_request_body
class GuardedHandler(tornado.web.RequestHandler):
    """Token, host and headers for every route; blocking work off the event loop.

    The body streams in (``data_received``) only after ``prepare`` let the request in, so
    nobody without the token makes the server read a byte of one.
    """

    def initialize(self, server: GuardedServer) -> None:
        self.server = server
        self._chunks: list[bytes] = []
        self._received = 0

    def prepare(self) -> None:
        host = self.request.host or ""
        if host not in self.server.hosts:
            raise tornado.web.HTTPError(403, reason="wrong host")
        given = self.request.headers.get("X-Prodseg-Token") or self.get_query_argument(
            "token", "")
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            raise tornado.web.HTTPError(403, reason="no token")
        origin = self.request.headers.get("Origin")
        if self.request.method == "POST" and origin is not None \
                and origin not in self.server.origins:
            raise tornado.web.HTTPError(403, reason="another origin")
        connection = self.request.connection
        if isinstance(connection, tornado.http1connection.HTTP1Connection):
            connection.set_max_body_size(MAX_BODY_BYTES)  # a longer body is refused unread

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > MAX_BODY_BYTES:  # a body sent without a Content-Length
            raise tornado.web.HTTPError(413, reason="the body is too large")
        self._chunks.append(chunk)

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", CSP)
        self.clear_header("Server")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {self._reason}\n")

    def _request_summary(self) -> str:
        """Tornado's summary of a request for its own log lines, without the query."""
        return f"{self.request.method} {self.request.path}"

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        """Tornado's error lines, less the request's repr (its URI holds the token)."""
        if isinstance(value, tornado.web.HTTPError):
            if value.log_message:
                log.warning("%d %s: %s", value.status_code, self._request_summary(),
                            value.get_message())
            return
        log.error("uncaught error in %s", self._request_summary(), exc_info=value)

    def check_xsrf_cookie(self) -> None:
        """The token header stands in for Tornado's XSRF cookie."""
        if "X-Prodseg-Token" not in self.request.headers:
            raise tornado.web.HTTPError(403, reason="changes need the token header")

    async def run(self, fn: Callable[..., Any], *args: Any,
                  pool: ThreadPoolExecutor | None = None) -> Any:
        """``fn(*args)`` in the server's thread pool (or ``pool``); input errors become
        400s."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool or self.server.pool, fn, *args)
        except InputError as error:
            raise tornado.web.HTTPError(400, reason=_one_line(error)) from None
        except (TransientError, TimeoutError) as error:
            raise tornado.web.HTTPError(503, reason=_one_line(error)) from None
        except ObjectNotFound as error:
            log.warning("%s: missing in storage: %s", self._request_summary(), error)
            raise tornado.web.HTTPError(404, reason="not in storage") from None

    def body(self) -> dict[str, Any]:
        """The request's JSON object."""
        try:
            doc = json.loads(b"".join(self._chunks) or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400, reason="the body is not JSON") from None
        if not isinstance(doc, dict):
            raise tornado.web.HTTPError(400, reason="the body is not a JSON object")
        return doc

    def send_json(self, doc: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(dumps(doc))


class NotFoundHandler(GuardedHandler):
    """Any other path: the same checks first, then a plain 404."""

    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404, reason="not found")


class GuardedServer:
    """A page's server on 127.0.0.1; subclasses give the routes (``routes``).

    Args:
        port: the port (0: a free one).
        token: the token requests must carry (a random one by default).
        name: names its threads.
    """

    def __init__(self, port: int = 0, token: str | None = None, name: str = "page") -> None:
        self.token = token or secrets.token_urlsafe(24)
        self.pool = ThreadPoolExecutor(4, thread_name_prefix=name)
        self.name = name
        sockets = tornado.netutil.bind_sockets(port, address=HOST)
        self._sockets = sockets
        self.port = int(sockets[0].getsockname()[1])
        self.hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}
        self.origins = {f"http://{host}" for host in self.hosts}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address, token included."""
        return f"http://{HOST}:{self.port}/?token={self.token}"

    def routes(self) -> list[tuple[str, type[GuardedHandler], dict[str, Any]]]:
        """The page's routes, ``(pattern, handler, {"server": self})`` each."""
        raise NotImplementedError

    def application(self) -> tornado.web.Application:
        """The routes, behind the rules; any other path is a 404 after the same checks."""
        return tornado.web.Application(
            self.routes(), xsrf_cookies=True, compress_response=False, log_function=self._log,
            default_handler_class=NotFoundHandler, default_handler_args={"server": self})

    def serve_forever(self) -> None:
        """Serve until the process is interrupted."""
        asyncio.run(self._serve())

    def start(self) -> None:
        """Serve from a background thread (for tests and embedding)."""
        ready = threading.Event()

        def run() -> None:
            asyncio.run(self._serve(ready))

        self._thread = threading.Thread(target=run, name=f"{self.name}-server", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        """Stop a server started with ``start``."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        for sock in self._sockets:
            sock.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _serve(self, ready: threading.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = tornado.httpserver.HTTPServer(self.application(), xheaders=False,
                                               max_body_size=MAX_BODY_BYTES)
        server.add_sockets(self._sockets)
        if ready is not None:
            ready.set()
        try:
            await self._stop.wait()
        finally:
            server.stop()

    def _log(self, handler: tornado.web.RequestHandler) -> None:
        """Access lines without the query string: it holds the token."""
        request = handler.request
        log.info("%d %s %s %.0f ms", handler.get_status(), request.method, request.path,
                 1000 * request.request_time())

    _stop: asyncio.Event | None = None


def _one_line(error: BaseException) -> str:
    """An error as one line of ASCII (what an HTTP reason phrase can hold)."""
    text = " ".join(str(error).split())[:400]
    return text.encode("ascii", "replace").decode("ascii")
