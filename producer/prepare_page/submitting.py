"""``catalog prepare --submit``: each confirmed product submitted at once, from one thread.

The page only hands a confirmed product's id to ``ConfirmedSubmitter.confirmed``. A thread
of its own, in the order products were confirmed, reads the file again (so the product
goes exactly as written), stores the catalog's description (``CatalogClient.update``: the
products not yet submitted follow the file) and enqueues the new ones through
``CatalogClient.run``, with its usual back-pressure: at most ``max_inflight`` of the
catalog's jobs queued or running, the thread waiting for room while the operator goes on.
The catalog is the file's declared id, held (``catalog.lock.exclusive``) while the page
runs, so the jobs are the ones ``catalog submit`` of the finished file gives. Stopping
does not wait for room: what was confirmed and not yet submitted is submitted by the next
``catalog prepare --submit`` of the file, or by ``catalog submit`` of it, which also
submits the skipped products and goes on where this stopped.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from contextlib import ExitStack

from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.lock import exclusive
from prodseg.producer.catalog.products import Product

log = logging.getLogger(__name__)

LoadProducts = Callable[[], tuple[str, list[Product]]]
"""``load() -> (catalog id, products)``: the file's valid products, as ``catalog submit``
reads them."""
Told = Callable[[str, str | None], None]
"""``told(product, refusal or None)``: called after each product is enqueued or refused."""


class ConfirmedSubmitter:
    """Submits confirmed products in the background, in the order they were confirmed.

    Args:
        client: the catalog client.
        load: reads the file's products (the same rules as ``catalog submit``).
        source: the file, as the catalog's description names it.
        max_inflight: the most jobs of the catalog queued or running at once.
        told: called after each product with None or its refusal.
    """

    def __init__(self, client: CatalogClient, load: LoadProducts, source: str,
                 max_inflight: int, told: Told | None = None) -> None:
        self.client = client
        self.load = load
        self.source = source
        self.max_inflight = max_inflight
        self.told = told
        self.catalog, _ = load()
        self.submitted: list[str] = []
        self.refused: dict[str, str] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._stack = ExitStack()
        self._thread: threading.Thread | None = None

    def start(self, confirmed: Iterable[str] = ()) -> None:
        """Hold the catalog and start submitting; ``confirmed``: products confirmed by an
        earlier page that may not have been submitted yet (those already enqueued are not
        submitted again).

        Raises:
            InputError: another process is submitting this catalog.
        """
        self._stack.enter_context(exclusive(self.client.jobs.board, self.catalog,
                                               "prodseg catalog prepare --submit"))
        for product in confirmed:
            self._queue.put(product)
        self._thread = threading.Thread(target=self._loop, name="prepare-submit", daemon=True)
        self._thread.start()

    def confirmed(self, product: str) -> None:
        """Submit ``product`` (its row confirmed in the file) as soon as there is room."""
        self._queue.put(product)

    def finish(self) -> None:
        """Submit everything confirmed so far, waiting for room as needed, then stop."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
        self._stack.close()

    def close(self, wait_s: float = 10.0) -> None:
        """Stop submitting and let the catalog go, without waiting for room.

        The product in hand is finished (for at most ``wait_s``); confirmed products not
        yet submitted are submitted by the next ``catalog prepare --submit`` of the file,
        or by ``catalog submit`` of it.
        """
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(wait_s)
        self._stack.close()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            names = [name for name in batch if name is not None]
            if names and not self._stopping.is_set():
                try:
                    self._submit(names)
                except Exception:  # the page goes on; catalog submit submits them later
                    log.exception("could not submit %s", ", ".join(sorted(names)))
            if None in batch or self._stopping.is_set():
                return

    def _submit(self, names: list[str]) -> None:
        catalog, products = self.load()
        self.client.update(products, catalog, self.source)
        done = self.client.enqueued(catalog)
        by_name = {p.product: p for p in products}
        todo = [by_name[n] for n in dict.fromkeys(names) if n in by_name and n not in done]

        def enqueued(product: Product, error: str | None) -> None:
            if error is None:
                self.submitted.append(product.product)
            else:
                self.refused[product.product] = error
            if self.told is not None:
                self.told(product.product, error)

        for product in todo:  # one at a time: a stop is seen between two
            if self._stopping.is_set():
                return
            self.client.run(catalog, [product], self.max_inflight, on_enqueued=enqueued)
