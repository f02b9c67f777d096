"""Failure messages suggest `prodseg resume` only where resuming can help."""

from __future__ import annotations

from botocore.exceptions import ClientError

from prodseg.errors import (
    BucketMissingError,
    ImageReadError,
    InputError,
    TransientError,
    recovery_hint,
)
from prodseg.storage.s3_errors import map_s3_error
from prodseg.tasks.step_task import gave_up


def _no_bucket() -> Exception:
    error = ClientError({"Error": {"Code": "NoSuchBucket", "Message": "gone"},
                         "ResponseMetadata": {"HTTPStatusCode": 404}}, "GetObject")
    return map_s3_error(error, operation="GetObject", bucket="shop", endpoint="http://s3:8333",
                        key="jobs/j1/job.json")


def test_a_lost_bucket_says_submit_again_not_resume() -> None:
    lost = _no_bucket()
    assert isinstance(lost, BucketMissingError) and isinstance(lost, InputError)
    message = gave_up("resolve", lost, 0, "j1")
    assert "prodseg resume" not in message
    assert "submitted again" in message and "'shop' does not exist" in message


def test_an_outage_says_resume() -> None:
    message = gave_up("matching", TransientError("endpoint did not answer"), 6, "j1")
    assert message.startswith("matching gave up after 6 retries: TransientError")
    assert message.endswith("run `prodseg resume j1` to go on once the store and the broker "
                            "answer")


def test_a_bad_input_suggests_nothing() -> None:
    bad = ImageReadError("view_003.jpg", "not an image")
    assert recovery_hint(bad, "j1") == ""
    assert gave_up("reference", bad, 0, "j1") == "reference: view_003.jpg: not an image"
