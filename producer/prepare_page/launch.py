"""``prodseg catalog prepare --review [--submit]``'s parts put together: the file, previews
(here or on a worker, as the review page's), the submitter and the server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.prepare_page.decisions import CONFIRMED, PreparedFile, decision_of
from prodseg.producer.prepare_page.server import PrepareServer
from prodseg.producer.prepare_page.session import PrepareSession
from prodseg.producer.prepare_page.submitting import ConfirmedSubmitter, LoadProducts, Told
from prodseg.producer.review.launch import local_preview, worker_preview
from prodseg.settings import Settings

if TYPE_CHECKING:
    from prodseg.producer.ui.preview import RemotePreview


@dataclass
class PreparePage:
    """A prepare page ready to serve, and what to close after it.

    Attributes:
        server: the page's server (not yet serving).
        submitter: submits confirmed products (``--submit``), or None.
        closing: what to close when the page stops (worker previews).
    """

    server: PrepareServer
    submitter: ConfirmedSubmitter | None = None
    closing: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Submit what was confirmed and not yet submitted; clean up previews."""
        if self.submitter is not None:
            self.submitter.close()
        for close in self.closing:
            close()


def prepare_page(path: Path, settings: Settings, client: CatalogClient | None,
                 where: str = "worker", port: int = 0, load: LoadProducts | None = None,
                 max_inflight: int = 32, told: Told | None = None) -> PreparePage:
    """The prepare page of the catalog file ``path``.

    Args:
        path: a prepared catalog file; it is given a catalog id (``catalog`` column) at once
            when it has none.
        settings: how images are read and previews computed.
        client: the catalog client (needed for worker previews and ``--submit``).
        where: ``"worker"`` (previews through the ``interactive`` queue) or ``"local"``.
        port: the port on 127.0.0.1 (0: a free one).
        load: with ``--submit``, reads the file's products as ``catalog submit`` does.
        max_inflight: with ``--submit``, the most jobs queued or running at once.
        told: with ``--submit``, called after each product is enqueued or refused.

    Raises:
        InputError: the file is unusable, or another process submits its catalog.
    """
    prepared = PreparedFile(path)
    prepared.ensure_catalog()
    closing: list[Callable[[], None]] = []
    if where == "local" or client is None:
        preview = local_preview()
    else:
        preview, remote = worker_preview(client)
        closing.append(cast("RemotePreview", remote).close)
    submitter = None
    if load is not None and client is not None:
        submitter = ConfirmedSubmitter(client, load, str(path), max_inflight, told)
        submitter.start(str(r.get("product_id")) for r in prepared.rows
                        if r.get("prompt_source") == CONFIRMED and decision_of(r))
    session = PrepareSession(prepared, settings, preview,
                             None if submitter is None else submitter.confirmed)
    return PreparePage(PrepareServer(session, port), submitter, closing)
