"""Where ``catalog prepare`` proposes a product's prompt: in this process, or on a worker.

Both take a product's images (local paths or ``s3://`` URLs) and return its
``ProposedPrompt`` with the reference as one of them. The worker proposer uploads local
photos under ``previews/<session>/inputs/`` (``s3://`` images are read where they are),
sends the ``propose`` task on the ``interactive`` queue and waits for its reply, as a
review's preview does; ``close`` removes what it uploaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prodseg.errors import InputError, TransientError
from prodseg.producer.inputs import is_s3, read_input_bytes
from prodseg.proposed import ProposedPrompt
from prodseg.settings import Settings
from prodseg.storage.images import decode_image
from prodseg.tasks.names import INTERACTIVE_QUEUE, PROPOSE_TASK

if TYPE_CHECKING:
    from prodseg.producer.client import JobClient


class LocalProposer:
    """Proposals in this process, with the models the settings build."""

    def __init__(self, settings: Settings) -> None:
        from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

        self.settings = settings
        self.pipeline = ProductSegmentationPipeline(settings)

    def __call__(self, images: Sequence[str]) -> ProposedPrompt:
        from prodseg.workers.plan.propose import propose_prompt

        limit = self.settings.max_image_pixels
        views = [(image, decode_image(read_input_bytes(image, self.settings), image, limit))
                 for image in images]
        return propose_prompt(views, self.pipeline)

    def close(self) -> None:
        """Nothing to release."""


class WorkerProposer:
    """Proposals on a worker, through the ``interactive`` queue.

    Args:
        client: the job client (its store, broker and settings).
        timeout_s: how long to wait for one product's reply (the first loads models).
    """

    def __init__(self, client: JobClient, timeout_s: float = 600.0) -> None:
        from prodseg.storage.manifest import new_job_id

        self.client = client
        self.timeout_s = timeout_s
        self.session = f"prep-{new_job_id()}"
        self._n = 0

    def __call__(self, images: Sequence[str]) -> ProposedPrompt:
        from prodseg.settings import recorded
        from prodseg.tasks.previews import wait_reply

        self._n += 1
        keys = [image if is_s3(image) else self._upload(image, k)
                for k, image in enumerate(images)]
        self.client.app.send_task(PROPOSE_TASK, queue=INTERACTIVE_QUEUE,
                                  args=(self.session, self._n, keys,
                                        recorded(self.client.settings)))
        try:
            reply = wait_reply(self.client.board.redis, self.session, self._n,
                               self.timeout_s)
        except TimeoutError:
            raise TransientError(
                f"no worker proposed within {self.timeout_s:g} s: is a worker listening on "
                "the 'interactive' queue (prodseg worker)? --propose local proposes here"
            ) from None
        finally:
            self._remove(f"previews/{self.session}/inputs/{self._n}/")
        if "error" in reply:
            raise InputError(str(reply["error"]))
        proposal = ProposedPrompt.from_json(reply["proposal"])
        source = dict(zip(keys, images, strict=True))[proposal.reference]
        return ProposedPrompt(source, proposal.point, proposal.box, proposal.confidence,
                              proposal.why)

    def _upload(self, image: str, k: int) -> str:
        key = f"previews/{self.session}/inputs/{self._n}/{k}{Path(image).suffix.lower()}"
        self.client.store.put(key, read_input_bytes(image, self.client.settings))
        return key

    def _remove(self, prefix: str) -> None:
        for key in list(self.client.store.list(prefix)):
            self.client.store.delete(key)

    def close(self) -> None:
        """Remove anything this session stored."""
        self._remove(f"previews/{self.session}/")
