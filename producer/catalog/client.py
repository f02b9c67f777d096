"""Store catalogs in the distributed mode: one job per product, with back-pressure.

A catalog (``prodseg.producer.catalog.file``) is submitted once under a stable id. Its state lives
in storage, the source of truth:

- ``catalogs/<id>/catalog.json``: every product with its job id, images, reference,
  prompt and settings, so ``resume`` needs nothing but the id;
- ``catalogs/<id>/products/<product>.json``: written when the product's job was
  enqueued (``{"job": ...}``); ``catalogs/<id>/refused/<product>.json`` when its
  submission was refused (``{"error": ...}``). Which products were enqueued is read from
  a listing alone, so following a catalog of thousands of products costs a few list
  calls and one Redis round trip, not a read per product.

``submit`` prepares products in a few threads (uploads, manifests) and enqueues them
from one thread, never letting more than ``max_inflight`` of the catalog's jobs be
queued or running at once: 5,000 products x 36 views never flood Redis or the workers'
memory. Killed midway, ``resume`` enqueues the products that have no record and resumes
jobs that storage shows incomplete; a product enqueued just before the kill may run
twice, with identical outputs counted once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from prodseg.errors import InputError
from prodseg.job_spec import ViewPrompts
from prodseg.producer.catalog.products import CATALOGS_PREFIX, Product, catalog_key, product_job
from prodseg.producer.catalog.reviews import ReviewBook
from prodseg.producer.catalog.status import STATES, CatalogStatus
from prodseg.producer.client import JobClient
from prodseg.producer.polling import poll
from prodseg.prompts import Prompt
from prodseg.settings import Settings, load_settings
from prodseg.storage.base import ObjectNotFound
from prodseg.storage.manifest import get_json, put_json
from prodseg.tasks.names import CANCELLED, DONE, QUEUED, RUNNING
from prodseg.tasks.progress import JobStatus

log = logging.getLogger(__name__)


class CatalogClient:
    """Submit, follow and resume a catalog through a ``JobClient``.

    Args:
        jobs: the job client (store, broker, settings).
        prepare_threads: products prepared at once (uploads and manifests overlap).
    """

    def __init__(self, jobs: JobClient, prepare_threads: int = 8) -> None:
        self.jobs = jobs
        self.store = jobs.store
        self.prepare_threads = prepare_threads

    # -- submit and resume ------------------------------------------------------------------

    def create(self, products: list[Product], catalog: str, source: str) -> bool:
        """Store the catalog's description; False when that catalog already exists."""
        key = catalog_key(catalog, "catalog.json")
        if self.store.exists(key):
            return False
        put_json(self.store, key, {"catalog": catalog, "source": source,
                                   "products": [p.to_json() for p in products]})
        return True

    def update(self, products: list[Product], catalog: str, source: str) -> None:
        """Store the catalog's description as ``products``, but for the products already
        enqueued, which keep what their jobs were submitted with.

        A prepared file (``catalog prepare --submit``) is submitted product by product as
        the operator confirms them; the products not yet submitted follow the file.
        """
        key = catalog_key(catalog, "catalog.json")
        enqueued = self.enqueued(catalog)
        stored = {p.product: p for p in self.products(catalog)} if self.store.exists(key) \
            else {}
        kept = [stored.get(p.product, p) if p.product in enqueued else p for p in products]
        given = {p.product for p in products}
        kept += [p for name, p in stored.items() if name not in given and name in enqueued]
        put_json(self.store, key, {"catalog": catalog, "source": source,
                                   "products": [p.to_json() for p in kept]})

    def products(self, catalog: str) -> list[Product]:
        """The catalog's products, from storage.

        Raises:
            InputError: there is no such catalog.
        """
        try:
            doc = get_json(self.store, catalog_key(catalog, "catalog.json"))
        except ObjectNotFound:
            where = self.store.describe(CATALOGS_PREFIX.rstrip("/"))
            raise InputError(f"no catalog {catalog!r} in {where}") from None
        return [Product.from_json(p) for p in doc["products"]]

    def enqueued(self, catalog: str) -> set[str]:
        """The products whose job was enqueued (from a listing; nothing is read)."""
        prefix = catalog_key(catalog, "products/")
        return {k.removeprefix(prefix).removesuffix(".json") for k in self.store.list(prefix)}

    def refused(self, catalog: str) -> dict[str, str]:
        """Why each refused product (not enqueued since) could not be submitted."""
        prefix = catalog_key(catalog, "refused/")
        return {k.removeprefix(prefix).removesuffix(".json"): str(get_json(self.store, k)["error"])
                for k in self.store.list(prefix)}

    def run(self, catalog: str, todo: list[Product], max_inflight: int,
            on_enqueued: Callable[[Product, str | None], None] | None = None) -> None:
        """Prepare and enqueue ``todo`` with at most ``max_inflight`` jobs in flight.

        A product whose submission is refused (unreadable reference, missing files, a
        prompt outside the image) is recorded with the reason; the others go on.

        Args:
            catalog: the catalog id.
            todo: products to submit, in order.
            max_inflight: the most jobs of this catalog queued or running at once.
            on_enqueued: called after each product with None, or with the refusal.
        """
        if max_inflight < 1:
            raise InputError(f"--max-inflight must be at least 1, not {max_inflight}")
        in_flight = self._live_jobs(catalog)  # an earlier run's jobs count too
        lookahead = max(2 * self.prepare_threads, 4)
        with ThreadPoolExecutor(self.prepare_threads, thread_name_prefix="prepare") as pool:
            pending: deque[tuple[Product, Future[str]]] = deque()
            queue = iter(todo)
            for product in _take(queue, lookahead):
                pending.append((product, pool.submit(self._prepare, product)))
            while pending:
                product, future = pending.popleft()
                for nxt in _take(queue, 1):
                    pending.append((nxt, pool.submit(self._prepare, nxt)))
                try:
                    job = future.result()
                except InputError as exc:
                    put_json(self.store, _refused_key(catalog, product), {"error": str(exc)})
                    if on_enqueued is not None:
                        on_enqueued(product, str(exc))
                    continue
                self._wait_for_room(in_flight, max_inflight)
                self.jobs.enqueue(job)
                put_json(self.store, _enqueued_key(catalog, product), {"job": job})
                self.store.delete(_refused_key(catalog, product))  # refused before, not now
                in_flight.add(job)
                if on_enqueued is not None:
                    on_enqueued(product, None)

    def _prepare(self, product: Product) -> str:
        settings = _job_settings(self.jobs.settings, product.settings)
        prompt = None if product.prompt is None else Prompt.from_json(product.prompt)
        try:
            return self.jobs.prepare(product.images, product.reference, prompt,
                                     job=product.job, settings=settings,
                                     distractor_points=product.distractors,
                                     views=ViewPrompts.from_json(product.views))
        except InputError as exc:
            raise InputError(f"line {product.line} ({product.product}): {exc}") from None

    def _live_jobs(self, catalog: str) -> set[str]:
        """The catalog's jobs that are queued or running now."""
        jobs = [product_job(catalog, p) for p in sorted(self.enqueued(catalog))]
        return {s.job for s in self.jobs.board.read_many(jobs)
                if s.state in (QUEUED, RUNNING)}

    def _wait_for_room(self, in_flight: set[str], limit: int, poll_s: float = 0.25) -> None:
        """Block until fewer than ``limit`` of ``in_flight`` are queued or running."""
        while len(in_flight) >= limit:
            jobs = sorted(in_flight)
            for job, progress in zip(jobs, self.jobs.board.read_many(jobs), strict=True):
                # "unknown": Redis lost the job; status and resume sort it out.
                if progress.ended or progress.state == "unknown":
                    in_flight.discard(job)
            if len(in_flight) >= limit:
                time.sleep(poll_s)

    def resume(self, catalog: str) -> tuple[list[Product], list[str]]:
        """What ``prodseg catalog resume`` redoes: products never enqueued or refused
        (to submit again), and jobs that storage shows incomplete and that are not
        running (resumed here through ``JobClient.resume``).

        Returns:
            The products to submit (pass them to ``run``) and the jobs resumed.
        """
        products = self.products(catalog)
        done = self.enqueued(catalog)
        todo = [p for p in products if p.product not in done]
        resumed = []
        enqueued = [p.job for p in products if p.product in done]
        for job, progress in zip(enqueued, self.jobs.board.read_many(enqueued), strict=True):
            if progress.state in (QUEUED, RUNNING, DONE, CANCELLED):
                continue  # live, or finished (a done job is complete by construction)
            report = self.jobs.resume(job)
            if report.step != "nothing":
                resumed.append(job)
        return todo, resumed

    # -- follow -----------------------------------------------------------------------------

    def current_jobs(self, catalog: str) -> dict[str, str]:
        """The job standing for each product: its newest re-run (``catalog review``), else
        its own."""
        reruns = {p: r.runs[-1].job for p, r in ReviewBook(self.store, catalog).all().items()
                  if r.runs}
        return {p.product: reruns.get(p.product, p.job) for p in self.products(catalog)}

    def status(self, catalog: str) -> CatalogStatus:
        """Counts per state and images finished, from Redis and, where Redis forgot a
        job, from storage. A product re-run after review counts with its newest run."""
        products = self.products(catalog)
        listed = self.enqueued(catalog)
        current = self.current_jobs(catalog)
        enqueued = [p for p in products if p.product in listed]
        progress = self.jobs.board.read_many([current[p.product] for p in enqueued])
        jobs: dict[str, JobStatus | None] = {p.product: None for p in products}
        for product, prog in zip(enqueued, progress, strict=True):
            known = prog.state != "unknown"
            job = current[product.product]
            jobs[product.product] = prog if known else self.jobs.status(job)
        refused = {p: why for p, why in self.refused(catalog).items() if p not in listed}
        counts: Counter[str] = Counter()
        for product in products:
            status = jobs[product.product]
            if status is not None:
                counts[status.state] += 1
            else:
                counts["refused" if product.product in refused else "waiting"] += 1
        started = [s for s in jobs.values() if s is not None]
        return CatalogStatus(
            catalog=catalog, states={s: counts.get(s, 0) for s in STATES},
            products=len(products), images=sum(s.total for s in started),
            images_finished=sum(s.finished for s in started), jobs=jobs, refused=refused)

    def watch(self, catalog: str, on_change: Callable[[CatalogStatus], None] | None = None,
              interval: float = 1.0, timeout: float | None = None) -> CatalogStatus:
        """Poll until every product has ended.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        return poll(lambda: self.status(catalog), lambda s: s.complete, on_change, interval,
                    timeout, f"catalog {catalog}")


def _take(items: Iterator[Product], n: int) -> list[Product]:
    out = []
    for _ in range(n):
        try:
            out.append(next(items))
        except StopIteration:
            break
    return out


def _job_settings(base: Settings, overrides: dict[str, Any]) -> Settings:
    """The client's settings with one product's overrides on top."""
    if not overrides:
        return base
    return load_settings(**{**base.model_dump(), **overrides})


def _enqueued_key(catalog: str, product: Product) -> str:
    return catalog_key(catalog, f"products/{product.product}.json")


def _refused_key(catalog: str, product: Product) -> str:
    return catalog_key(catalog, f"refused/{product.product}.json")
