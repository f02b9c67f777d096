"""Where a catalog stands: its products counted per state."""

from __future__ import annotations

from dataclasses import dataclass

from prodseg.tasks.names import CANCELLED, DONE, ENDED, FAILED, QUEUED, RUNNING
from prodseg.tasks.progress import JobStatus

# The order of states in summaries: not yet enqueued first, then as a job goes.
STATES = ("waiting", "refused", QUEUED, RUNNING, DONE, FAILED, CANCELLED)


@dataclass(frozen=True)
class CatalogStatus:
    """Where a catalog stands.

    Attributes:
        catalog: the catalog id.
        states: product count per state (``STATES``).
        products: all products.
        images: target images of the jobs that have started.
        images_finished: of those, finished.
        jobs: each product's job status (None while it waits or was refused), by product.
        refused: why a product could not be submitted, by product.
    """

    catalog: str
    states: dict[str, int]
    products: int
    images: int
    images_finished: int
    jobs: dict[str, JobStatus | None]
    refused: dict[str, str]

    @property
    def ended(self) -> int:
        """Products whose job ended (done, failed, cancelled) or that were refused."""
        return sum(self.states.get(s, 0) for s in ("refused", *ENDED))

    @property
    def complete(self) -> bool:
        """Every product has ended."""
        return self.ended == self.products
