"""``prodseg.propose``: a product's proposed reference and prompt, on a worker.

Not a step of any job: ``prodseg catalog prepare`` asks for it and waits for the reply
on a short-lived Redis list, as previews are answered (``tasks.previews``).
"""

from __future__ import annotations

from typing import Any

from prodseg.jsonio import dumps
from prodseg.storage.manifest import InputImage
from prodseg.tasks import worker_cache as cache
from prodseg.tasks.app import app
from prodseg.tasks.names import PROPOSE_TASK


@app.task(name=PROPOSE_TASK, ignore_result=True)
def propose(session: str, n: int, image_keys: list[str], settings: dict[str, Any]) -> None:
    """A product's proposed reference and prompt (``prodseg catalog prepare``), replied
    as previews are: ``{"n", "proposal": ProposedPrompt.to_json()}`` or ``{"n", "error"}``.
    """
    from prodseg.tasks.previews import check_session, replying
    from prodseg.workers.plan.job_inputs import read_input
    from prodseg.workers.plan.propose import propose_stored

    with replying(lambda: cache.board().redis, session, n, "propose") as reply:
        check_session(session)
        s, store = cache.settings(), cache.store()
        pipeline = cache.pipeline(dumps(settings, sort_keys=True))
        reply["proposal"] = propose_stored(
            pipeline, image_keys, lambda key: read_input(store, InputImage(key, key, key), s))
