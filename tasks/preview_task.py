"""``prodseg.preview``: the mask for one click of an interactive selection, on a worker.

Not a step of any job: ``prodseg select --submit`` and the review pages ask for it and
wait for the reply on a short-lived Redis list (``tasks.previews``).
"""

from __future__ import annotations

from typing import Any

from prodseg.jsonio import dumps
from prodseg.tasks import worker_cache as cache
from prodseg.tasks.app import app
from prodseg.tasks.names import PREVIEW_TASK


@app.task(name=PREVIEW_TASK, ignore_result=True)
def preview(session: str, n: int, image_key: str, prompt: dict[str, Any],
            settings: dict[str, Any]) -> None:
    """The mask for one click of an interactive selection.

    Every outcome, an error included, is replied (``tasks.previews.replying``).
    """
    from prodseg.tasks.previews import check_session, replying
    from prodseg.workers.plan.preview import preview_step

    with replying(lambda: cache.board().redis, session, n, "preview") as reply:
        mask_key = f"previews/{check_session(session)}/masks/{int(n)}.png"
        segmenter = cache.pipeline(dumps(settings, sort_keys=True)).segmenter
        reply.update(preview_step(cache.store(), segmenter, image_key, prompt, mask_key,
                                  cache.settings().max_image_pixels))
