"""Each job step's message says what it is for (Celery's ``shadow`` name, which Flower and
the worker's log lines show): its job, and for a match task its photo. Read back from the
real Redis broker's queue."""

from __future__ import annotations

import json

import pytest

from prodseg.settings import load_settings
from prodseg.tasks.app import make_app
from prodseg.tasks.names import (
    BATCH_QUEUE,
    FINALIZE_TASK,
    INTERACTIVE_QUEUE,
    MATCH_TASK,
    REFERENCE_TASK,
    task_label,
)

pytestmark = pytest.mark.integration


def test_job_steps_are_named_by_their_job_and_photo(broker_url: str) -> None:
    import redis

    broker = redis.Redis.from_url(broker_url)
    broker.flushall()
    app = make_app(load_settings(broker_url=broker_url))
    app.send_task(REFERENCE_TASK, args=("cat-1-milk",), queue=INTERACTIVE_QUEUE)
    app.send_task(FINALIZE_TASK, args=("cat-1-milk",))
    app.send_task(MATCH_TASK, args=("cat-1-milk", 6),
                  shadow=task_label(MATCH_TASK, "cat-1-milk", "view_007"))
    queued = [json.loads(m) for m in broker.lrange(BATCH_QUEUE, 0, -1)]
    queued += [json.loads(m) for m in broker.lrange(INTERACTIVE_QUEUE, 0, -1)]
    shadows = sorted(m["headers"]["shadow"] for m in queued)
    assert shadows == ["prodseg.finalize cat-1-milk", "prodseg.match cat-1-milk view_007",
                       "prodseg.reference cat-1-milk"]
    assert sorted(m["headers"]["task"] for m in queued) == sorted(
        [FINALIZE_TASK, MATCH_TASK, REFERENCE_TASK])  # the task that runs is unchanged
