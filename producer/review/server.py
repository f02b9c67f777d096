"""The review page's web server: Tornado on 127.0.0.1, every request carrying a token.

The rules every request passes (127.0.0.1 only, the Host and Origin checks, the token,
the body limit, the headers and the log lines) are ``producer.review.guard``'s; this
module holds the review page's routes.
"""

from __future__ import annotations

import threading
from typing import Any

from prodseg.producer.review.guard import (
    CSP,
    HOST,
    MAX_BODY_BYTES,
    GuardedHandler,
    GuardedServer,
)
from prodseg.producer.review.page import PAGE
from prodseg.producer.review.session import ReviewSession

__all__ = ["CSP", "HOST", "MAX_BODY_BYTES", "ReviewServer"]
_PRODUCT = r"([A-Za-z0-9_-][A-Za-z0-9._-]{0,127})"
_VIEW = r"([^/]{1,160})"


class _Handler(GuardedHandler):
    server: ReviewServer


class PageHandler(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(PAGE.replace("{{catalog}}", self.server.session.catalog))


class ProductsHandler(_Handler):
    async def get(self) -> None:
        self.send_json({"catalog": self.server.session.catalog,
                        "reviewer": self.server.session.reviewer,
                        "products": await self.run(self.server.session.products)})


class ProductHandler(_Handler):
    async def get(self, product: str) -> None:
        self.send_json(await self.run(self.server.session.product, product))


class ImageHandler(_Handler):
    async def get(self, product: str, view: str, kind: str) -> None:
        session = self.server.session
        if kind == "image":
            data = await self.run(session.image_jpeg, product, view)
            self.set_header("Content-Type", "image/jpeg")
        else:
            data = await self.run(session.overlay_png, product, view)
            self.set_header("Content-Type", "image/png")
        self.finish(data)


class ActionHandler(_Handler):
    async def post(self, product: str, action: str) -> None:
        session = self.server.session
        if action == "change":
            self.send_json(await self.run(session.change, product, self.body()))
        elif action == "preview":
            self.send_json(await self.run(self.server.previewing, product, self.body()))
        else:
            self.send_json(await self.run(session.rerun, product))


class ReviewServer(GuardedServer):
    """The review page of one session, served on 127.0.0.1.

    Args:
        session: what the page shows and changes.
        port: the port (0: a free one).
        token: the token requests must carry (a random one by default).
    """

    def __init__(self, session: ReviewSession, port: int = 0, token: str | None = None) -> None:
        super().__init__(port, token, "review")
        self.session = session
        self._preview_lock = threading.Lock()

    def previewing(self, product: str, doc: dict[str, Any]) -> dict[str, Any]:
        """One preview at a time: a worker's replies come back in order on one list."""
        with self._preview_lock:
            return self.session.preview(product, doc)

    def routes(self) -> list[tuple[str, type[GuardedHandler], dict[str, Any]]]:
        """The review page's routes."""
        args = {"server": self}
        return [
            (r"/", PageHandler, args),
            (r"/api/products", ProductsHandler, args),
            (rf"/api/product/{_PRODUCT}", ProductHandler, args),
            (rf"/api/product/{_PRODUCT}/view/{_VIEW}/(image|overlay)", ImageHandler, args),
            (rf"/api/product/{_PRODUCT}/(change|preview|rerun)", ActionHandler, args),
        ]
