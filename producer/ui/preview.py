"""Where ``prodseg select`` gets its mask previews: this process, or a worker.

Both are callables ``preview(path, image, prompt) -> PreviewMask`` for
``prodseg.producer.ui.select.Selector``. ``LocalPreview`` builds the segmenter on first use, in
this process. ``RemotePreview`` uploads each image once to
``previews/<session>/inputs/`` in the job store, sends each prompt through the
``interactive`` queue to a worker (``prodseg.preview``), waits for the reply and reads
the mask back; ``close()`` removes everything the session stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prodseg.errors import InputError, TransientError
from prodseg.prompts import Prompt
from prodseg.settings import Settings
from prodseg.tasks.names import INTERACTIVE_QUEUE, PREVIEW_TASK

if TYPE_CHECKING:
    from prodseg.producer.client import JobClient
    from prodseg.workers.segment.protocol import Segmenter


@dataclass(frozen=True)
class PreviewMask:
    """One preview.

    Attributes:
        mask: ``(H, W)`` bool, in the image's displayed orientation.
        score: the segmenter's quality estimate (SAM2's predicted IoU).
        seconds: from the request to the mask in hand, as the person waits for it.
        candidate_areas: pixel areas of the segmenter's candidate masks for the prompt,
            smallest first (SAM2's three); empty when it does not say.
        candidate: which of them ``mask`` is; None when it does not say.
    """

    mask: np.ndarray
    score: float
    seconds: float
    candidate_areas: tuple[int, ...] = ()
    candidate: int | None = None


class LocalPreview:
    """Previews from a segmenter in this process (built from ``settings`` on first use)."""

    def __init__(self, settings: Settings, segmenter: Segmenter | None = None) -> None:
        self.settings = settings
        self._segmenter = segmenter

    def __call__(self, path: Path, image: np.ndarray, prompt: Prompt) -> PreviewMask:
        """The mask for ``prompt`` on ``image`` (``(H, W, 3)`` uint8 RGB)."""
        start = time.perf_counter()
        if self._segmenter is None:
            from prodseg.workers.models.factory import build_backends

            self._segmenter = build_backends(self.settings)[0]
        segmented = self._segmenter.segment(image, prompt)
        return PreviewMask(np.asarray(segmented.mask, dtype=bool), float(segmented.score),
                           time.perf_counter() - start, segmented.candidate_areas,
                           segmented.candidate)

    def close(self) -> None:
        """Nothing to clean up."""


class RemotePreview:
    """Previews computed by a worker, through the ``interactive`` queue.

    Args:
        client: the job client (its store, broker and settings).
        timeout_s: how long to wait for a reply (the first may load the models).
    """

    def __init__(self, client: JobClient, timeout_s: float = 180.0) -> None:
        from prodseg.storage.manifest import new_job_id

        self.client = client
        self.timeout_s = timeout_s
        self.session = f"sel-{new_job_id()}"
        self._uploaded: dict[Path, str] = {}
        self._n = 0

    def _image_key(self, path: Path) -> str:
        key = self._uploaded.get(path)
        if key is None:
            key = f"previews/{self.session}/inputs/{len(self._uploaded)}{path.suffix.lower()}"
            self.client.store.put(key, path.read_bytes())
            self._uploaded[path] = key
        return key

    def __call__(self, path: Path, image: np.ndarray, prompt: Prompt) -> PreviewMask:
        """Send the prompt to a worker and wait for its mask.

        Raises:
            InputError: the worker could not segment (the message says why).
            TransientError: no worker answered within ``timeout_s``.
        """
        start = time.perf_counter()
        return self.stored(self._image_key(path), prompt, start)

    def stored(self, key: str, prompt: Prompt, start: float | None = None,
               settings: Settings | None = None) -> PreviewMask:
        """The mask for ``prompt`` on an image already in the job store, under ``key``,
        segmented with ``settings`` (the client's by default).

        Raises:
            InputError: the worker could not segment (the message says why).
            TransientError: no worker answered within ``timeout_s``.
        """
        from prodseg.settings import recorded
        from prodseg.storage.images import read_mask_png
        from prodseg.tasks.previews import wait_reply

        start = time.perf_counter() if start is None else start
        self._n += 1
        self.client.app.send_task(
            PREVIEW_TASK, queue=INTERACTIVE_QUEUE,
            args=(self.session, self._n, key, prompt.to_json(),
                  recorded(settings or self.client.settings)))
        try:
            reply = wait_reply(self.client.board.redis, self.session, self._n, self.timeout_s)
        except TimeoutError:
            raise TransientError(
                f"no worker answered the preview within {self.timeout_s:g} s: is a worker "
                "listening on the 'interactive' queue (prodseg worker)?") from None
        if "error" in reply:
            raise InputError(str(reply["error"]))
        mask = read_mask_png(self.client.store.get(str(reply["mask"])))
        candidate = reply.get("candidate")
        return PreviewMask(mask, float(reply["score"]), time.perf_counter() - start,
                           tuple(int(a) for a in reply.get("candidate_areas") or ()),
                           int(candidate) if candidate is not None else None)

    def close(self) -> None:
        """Remove every object this session stored (inputs and masks)."""
        for key in list(self.client.store.list(f"previews/{self.session}/")):
            self.client.store.delete(key)
