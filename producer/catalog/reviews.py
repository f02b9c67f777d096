"""A person's review of a catalog product, stored with the catalog.

``catalogs/<id>/reviews/<product>.json`` holds, per view of the product, what a reviewer
decided on it (accept, or reject: "not the product here"), the clicks on the product
where it was missed (a positive prompt: the view becomes a reference), the clicks on
lookalikes, and the product's re-runs. Each change is applied to the latest stored
document and written back as one whole object, under a short lock when the store is
shared with other reviewers, so two reviewers see each other's decisions and closing the
page loses nothing.

The records and ``apply`` are pure; ``ReviewBook`` reads and writes them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from prodseg.errors import InputError
from prodseg.producer.catalog.products import catalog_key
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.layout import is_safe_image_id
from prodseg.storage.manifest import get_json, put_json, validate_job_id

ACCEPT, REJECT = "accept", "reject"
DECISIONS = (ACCEPT, REJECT)
ACTIONS = ("accept", "reject", "undecide", "point", "lookalike", "undo", "clear")
MAX_CLICKS = 32  # per view and kind: a prompt is a few clicks, never hundreds

Point = tuple[float, float]


def now() -> str:
    """The time as ISO-8601 UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class ViewReview:
    """What reviewers said about one view of a product.

    Attributes:
        decision: ``"accept"``, ``"reject"`` (not the product here) or None.
        job: the job whose result the decision was made on.
        points: clicks on the product, in the view's pixels: the view becomes a reference.
        lookalikes: clicks on products that look like it but are not it.
        by: who made the last change.
        at: when (ISO-8601 UTC).
    """

    decision: str | None = None
    job: str = ""
    points: tuple[Point, ...] = ()
    lookalikes: tuple[Point, ...] = ()
    by: str = ""
    at: str = ""

    @property
    def empty(self) -> bool:
        """Nothing was decided or clicked."""
        return self.decision is None and not self.points and not self.lookalikes

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"decision": self.decision, "job": self.job,
                "points": [list(p) for p in self.points],
                "lookalikes": [list(p) for p in self.lookalikes], "by": self.by, "at": self.at}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ViewReview:
        """The inverse of ``to_json``."""
        return cls(doc.get("decision"), str(doc.get("job") or ""), _points(doc.get("points")),
                   _points(doc.get("lookalikes")), str(doc.get("by") or ""),
                   str(doc.get("at") or ""))


@dataclass(frozen=True)
class Run:
    """One re-run of a product: its job, who asked for it and when."""

    job: str
    by: str
    at: str

    def to_json(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"job": self.job, "by": self.by, "at": self.at}


@dataclass(frozen=True)
class ProductReview:
    """Every reviewer's decisions on one product.

    Attributes:
        product: the product id.
        views: per view (image id of the product's job), what was decided and clicked.
        runs: re-runs, oldest first; the last one's job is the product's current result.
        by: who made the last change.
        at: when.
    """

    product: str
    views: dict[str, ViewReview] = field(default_factory=dict)
    runs: tuple[Run, ...] = ()
    by: str = ""
    at: str = ""

    @property
    def reviewers(self) -> list[str]:
        """Everyone who decided, clicked or re-ran something, sorted."""
        names = {v.by for v in self.views.values()} | {r.by for r in self.runs} | {self.by}
        return sorted(n for n in names if n)

    def current_job(self, original: str) -> str:
        """The job whose result stands for the product: the last re-run's, else ``original``."""
        return self.runs[-1].job if self.runs else original

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"product": self.product, "by": self.by, "at": self.at,
                "views": {k: v.to_json() for k, v in sorted(self.views.items())},
                "runs": [r.to_json() for r in self.runs]}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ProductReview:
        """The inverse of ``to_json``."""
        views = {str(k): ViewReview.from_json(v) for k, v in (doc.get("views") or {}).items()}
        runs = tuple(Run(str(r["job"]), str(r.get("by") or ""), str(r.get("at") or ""))
                     for r in doc.get("runs") or [])
        return cls(str(doc["product"]), views, runs, str(doc.get("by") or ""),
                   str(doc.get("at") or ""))


@dataclass(frozen=True)
class Change:
    """One reviewer's action on one view.

    Attributes:
        view: the view's image id.
        action: one of ``ACTIONS``: ``accept``, ``reject``, ``undecide`` (drop the
            decision), ``point`` (a click on the product), ``lookalike``, ``undo`` (the
            last click of ``kind``), ``clear`` (everything on the view).
        job: the job whose result the reviewer was looking at.
        x: the click's x, in the view's pixels (``point`` and ``lookalike``).
        y: the click's y.
        kind: for ``undo``: ``"point"`` or ``"lookalike"``.
    """

    view: str
    action: str
    job: str
    x: float | None = None
    y: float | None = None
    kind: str = "point"

    def check(self) -> None:
        """Raise ``InputError`` naming what is wrong with the change."""
        if not is_safe_image_id(self.view):
            raise InputError(f"invalid view {self.view!r}: give an image id of the job")
        if self.action not in ACTIONS:
            raise InputError(f"unknown action {self.action!r}; one of {', '.join(ACTIONS)}")
        validate_job_id(self.job)
        if self.action in ("point", "lookalike"):
            ok = all(isinstance(v, int | float) and 0 <= v < 2**31 for v in (self.x, self.y))
            if not ok:
                raise InputError(f"{self.action} needs x and y in the view's pixels, "
                                 f"got {self.x!r}, {self.y!r}")
        if self.action == "undo" and self.kind not in ("point", "lookalike"):
            raise InputError(f"undo of {self.kind!r}: undo a 'point' or a 'lookalike'")


def apply(review: ProductReview, change: Change, by: str, at: str) -> ProductReview:
    """``review`` with ``change`` made by ``by`` at ``at`` (pure).

    A decision and clicks belong to the job the reviewer was looking at: a change made
    on a newer job than the view's earlier one starts the view afresh.

    Raises:
        InputError: the change is malformed or would put more than ``MAX_CLICKS`` clicks
            of one kind on a view.
    """
    change.check()
    view = review.views.get(change.view, ViewReview())
    if view.job and view.job != change.job:
        view = ViewReview()
    view = replace(view, job=change.job, by=by, at=at)
    action = change.action
    if action in DECISIONS:
        view = replace(view, decision=action)
    elif action == "undecide":
        view = replace(view, decision=None)
    elif action in ("point", "lookalike"):
        clicks = view.points if action == "point" else view.lookalikes
        if len(clicks) >= MAX_CLICKS:
            raise InputError(f"{change.view}: at most {MAX_CLICKS} {action}s on one view")
        added = (*clicks, (float(change.x or 0), float(change.y or 0)))
        if action == "point":  # a click says "the product is here": no decision stands
            view = replace(view, points=added, decision=None)
        else:
            view = replace(view, lookalikes=added)
    elif action == "undo":
        if change.kind == "point":
            view = replace(view, points=view.points[:-1])
        else:
            view = replace(view, lookalikes=view.lookalikes[:-1])
    else:  # clear
        view = replace(view, decision=None, points=(), lookalikes=())
    views = dict(review.views)
    if view.empty:
        views.pop(change.view, None)
    else:
        views[change.view] = view
    return replace(review, views=views, by=by, at=at)


def with_run(review: ProductReview, job: str, by: str, at: str) -> ProductReview:
    """``review`` with one more re-run (pure)."""
    return replace(review, runs=(*review.runs, Run(validate_job_id(job), by, at)), by=by,
                   at=at)


def reviews_prefix(catalog: str) -> str:
    """``catalogs/<catalog>/reviews/``."""
    return catalog_key(catalog, "reviews/")


def review_key(catalog: str, product: str) -> str:
    """``catalogs/<catalog>/reviews/<product>.json``."""
    return f"{reviews_prefix(catalog)}{validate_job_id(product)}.json"


Lock = Callable[[str], AbstractContextManager[None]]
"""A lock factory: ``lock(name)`` holds the named lock for the ``with`` block."""


@contextlib.contextmanager
def no_lock(name: str) -> Iterator[None]:
    """For a store only this process writes."""
    yield


class ReviewBook:
    """Reviews of one catalog in its store.

    Args:
        store: the catalog's store.
        catalog: the catalog id.
        lock: serialises read-change-write across reviewers (a Redis lock when several
            reviewers share the store; see ``redis_lock``).
    """

    def __init__(self, store: ObjectStore, catalog: str, lock: Lock = no_lock) -> None:
        self.store = store
        self.catalog = validate_job_id(catalog)
        self.lock = lock

    def get(self, product: str) -> ProductReview:
        """The product's review (an empty one when nobody has reviewed it)."""
        try:
            return ProductReview.from_json(get_json(self.store, review_key(self.catalog,
                                                                           product)))
        except ObjectNotFound:
            return ProductReview(validate_job_id(product))

    def all(self) -> dict[str, ProductReview]:
        """Every stored review, by product."""
        out = {}
        for key in self.store.list(reviews_prefix(self.catalog)):
            review = ProductReview.from_json(get_json(self.store, key))
            out[review.product] = review
        return out

    def update(self, product: str,
               edit: Callable[[ProductReview], ProductReview]) -> ProductReview:
        """Apply ``edit`` to the latest stored review and store the result."""
        key = review_key(self.catalog, product)
        with self.lock(key):
            review = edit(self.get(product))
            put_json(self.store, key, review.to_json())
        return review

    def change(self, product: str, change: Change, by: str) -> ProductReview:
        """Store one reviewer's change."""
        change.check()
        return self.update(product, lambda r: apply(r, change, by, now()))


def redis_lock(client: Any, timeout_s: float = 10.0) -> Lock:
    """A ``Lock`` on a Redis server: ``SET NX`` with an expiry, released only by its owner.

    Args:
        client: a ``redis.Redis`` client.
        timeout_s: how long a holder may keep it (a crashed reviewer frees it by then), and
            how long a waiter waits.
    """
    import secrets

    @contextlib.contextmanager
    def lock(name: str) -> Iterator[None]:
        key, token = f"prodseg:lock:{name}", secrets.token_hex(8)
        deadline = time.monotonic() + timeout_s
        while not client.set(key, token, nx=True, px=int(timeout_s * 1000)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} is locked by another reviewer")
            time.sleep(0.02)
        try:
            yield
        finally:
            client.eval(_RELEASE, 1, key, token)

    return lock


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


def _points(value: Any) -> tuple[Point, ...]:
    return tuple((float(x), float(y)) for x, y in value or [])
