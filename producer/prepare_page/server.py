"""The prepare page's web server: the review page's rules (``producer.review.guard``: 127.0.0.1
only, a token per start, Host and Origin checks, a body limit, no caching or framing, a
same-origin CSP, no token in a log line), and the prepare page's routes.

Products are addressed by their index in the file, views by their index in the product:
the page asks for one product at a time, and for its photos when it draws them.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prodseg.producer.prepare_page.page import PAGE
from prodseg.producer.prepare_page.session import PrepareSession
from prodseg.producer.review.guard import GuardedHandler, GuardedServer
from prodseg.storage.exports.markup import escape

_INDEX = r"(\d{1,7})"


class _Handler(GuardedHandler):
    server: PrepareServer


class PageHandler(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(PAGE.replace("{{catalog}}", escape(self.server.session.catalog)))


class StateHandler(_Handler):
    async def get(self) -> None:
        self.send_json(await self.run(self.server.session.state))


class ProductHandler(_Handler):
    async def get(self, index: str) -> None:
        self.send_json(await self.run(self.server.session.product, int(index)))


class ImageHandler(_Handler):
    async def get(self, index: str, view: str, size: str) -> None:
        data = await self.run(self.server.session.image_jpeg, int(index), int(view),
                              size == "thumb")
        self.set_header("Content-Type", "image/jpeg")
        self.finish(data)


class ActionHandler(_Handler):
    async def post(self, index: str, action: str) -> None:
        if action == "preview":
            self.send_json(await self.run(self.server.previewing, int(index), self.body(),
                                          self.server.asked(), pool=self.server.previews))
        else:
            self.send_json(await self.run(self.server.session.decide, int(index), self.body()))


class PrepareServer(GuardedServer):
    """The prepare page of one catalog file, served on 127.0.0.1.

    Args:
        session: what the page shows and changes.
        port: the port (0: a free one).
        token: the token requests must carry (a random one by default).
    """

    def __init__(self, session: PrepareSession, port: int = 0, token: str | None = None
                 ) -> None:
        super().__init__(port, token, "prepare")
        self.session = session
        self.previews = ThreadPoolExecutor(1, thread_name_prefix="prepare-preview")
        self._latest = itertools.count(1)
        self._newest = 0

    def asked(self) -> int:
        """A number for a preview request, higher than every earlier one's."""
        self._newest = next(self._latest)
        return self._newest

    def previewing(self, index: int, doc: dict[str, Any], number: int) -> dict[str, Any]:
        """One preview at a time, on a thread of its own so the page's other requests never
        wait behind a worker; one asked before the newest is not computed (the operator
        moved on, and the page draws only the newest)."""
        if number != self._newest:
            return {"index": index, "superseded": True}
        return self.session.preview(index, doc)

    def stop(self) -> None:
        """Stop serving, and the preview thread."""
        super().stop()
        self.previews.shutdown(wait=False, cancel_futures=True)

    def routes(self) -> list[tuple[str, type[GuardedHandler], dict[str, Any]]]:
        """The prepare page's routes."""
        args = {"server": self}
        return [
            (r"/", PageHandler, args),
            (r"/api/state", StateHandler, args),
            (rf"/api/product/{_INDEX}", ProductHandler, args),
            (rf"/api/product/{_INDEX}/view/(\d{{1,5}})/(thumb|full)", ImageHandler, args),
            (rf"/api/product/{_INDEX}/(preview|decide)", ActionHandler, args),
        ]
