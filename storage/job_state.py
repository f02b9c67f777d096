"""What the workers of a distributed job keep under ``jobs/<job>/_state/``: every name, and
how each object is encoded.

This module is the only place that names a ``_state/`` object (the architecture test
holds the package to that). Beside ``JobLayout``, which keys a job's outputs, it keys
the job's bookkeeping:

- ``reference.json``: the reference step's record (its ``results.json`` entry, COCO
  parts, the run's description and the capture mode); ``negatives.npy`` (lookalikes),
  ``prototypes.npy`` (the views prompted as references) and ``neighbours.npy`` (the
  reference photo's other objects), float32 ``.npy`` arrays;
- ``tracking.json``: the views the track step finished;
- ``candidates/<id>.bin`` and ``.json``: a view's candidates and their record, kept for
  the resolve step when the bank grows;
- ``bank.json``: the grown bank's record, written once the resolve step is done;
- ``images/<id>.json``: a finished view's record;
- ``end.json``: how the job ended.

Each record is written after the objects it describes, so its presence means they are
whole; the step list (``workers.plan.step_list``) tells from these whether a step is done.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from prodseg.jsonio import dump_bytes
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.layout import JobLayout

STATE = "_state/"
"""The folder of a job's bookkeeping, relative to the job root."""

REFERENCE = "reference.json"
NEGATIVES = "negatives.npy"
PROTOTYPES = "prototypes.npy"
NEIGHBOURS = "neighbours.npy"
TRACKING = "tracking.json"
BANK = "bank.json"
END = "end.json"


@dataclass(frozen=True)
class JobState:
    """The ``_state/`` objects of one job in its store.

    Args:
        store: the job's store.
        layout: the job's output layout (``jobs/<job>/``); state lives under its prefix.
    """

    store: ObjectStore
    layout: JobLayout

    def key(self, name: str) -> str:
        """The full key of the state object ``name`` (e.g. ``reference.json``)."""
        return self.layout.key(STATE + name)

    def image_key(self, image_id: str) -> str:
        """Key of a finished view's record."""
        return self.key(f"images/{image_id}.json")

    def candidates_key(self, image_id: str) -> str:
        """Key of a view's stored candidates (``ViewCandidates.to_bytes``)."""
        return self.key(f"candidates/{image_id}.bin")

    def candidates_record_key(self, image_id: str) -> str:
        """Key of a view's candidates record (written after the candidates)."""
        return self.key(f"candidates/{image_id}.json")

    # -- codecs ---------------------------------------------------------------------------

    def put_json(self, name: str, doc: Any) -> None:
        """Write a JSON state object as one whole object."""
        self.store.put(self.key(name), dump_bytes(doc), "application/json")

    def get_json(self, name: str) -> Any:
        """Read a JSON state object (``ObjectNotFound`` if it is missing)."""
        return json.loads(self.store.get(self.key(name)))

    def find_json(self, name: str) -> Any | None:
        """A JSON state object, or None when it is not stored."""
        try:
            return self.get_json(name)
        except ObjectNotFound:
            return None

    def has(self, name: str) -> bool:
        """Whether the state object ``name`` is stored."""
        return self.store.exists(self.key(name))

    def put_array(self, name: str, array: np.ndarray) -> None:
        """Write an array as float32 ``.npy`` (no pickles)."""
        self.store.put(self.key(name), encode_array(array))

    def get_array(self, name: str) -> np.ndarray:
        """Read an array written by ``put_array`` (``ObjectNotFound`` if missing)."""
        return decode_array(self.store.get(self.key(name)))

    # -- per view ---------------------------------------------------------------------------

    def put_image_record(self, image_id: str, record: dict[str, Any]) -> None:
        """Write a finished view's record (after its outputs)."""
        self.store.put(self.image_key(image_id), dump_bytes(record), "application/json")

    def image_record(self, image_id: str) -> dict[str, Any] | None:
        """A finished view's record, or None when the view is not finished."""
        try:
            record: dict[str, Any] = json.loads(self.store.get(self.image_key(image_id)))
        except ObjectNotFound:
            return None
        return record

    def put_candidates(self, image_id: str, blob: bytes, record: dict[str, Any]) -> None:
        """Write a view's candidates, then their record (its presence means both are
        whole)."""
        self.store.put(self.candidates_key(image_id), blob)
        self.store.put(self.candidates_record_key(image_id), dump_bytes(record),
                       "application/json")

    def candidates_record(self, image_id: str) -> dict[str, Any] | None:
        """A view's candidates record, or None when its candidates are not stored."""
        try:
            record: dict[str, Any] = json.loads(
                self.store.get(self.candidates_record_key(image_id)))
        except ObjectNotFound:
            return None
        return record

    def candidates(self, image_id: str) -> bytes | None:
        """A view's stored candidates (``ViewCandidates.to_bytes``), or None when their
        record is missing (they may be half-written)."""
        if self.candidates_record(image_id) is None:
            return None
        try:
            return self.store.get(self.candidates_key(image_id))
        except ObjectNotFound:
            return None

    # -- the job's steps ------------------------------------------------------------------

    def tracked(self) -> set[str] | None:
        """The views the track step finished, or None when it has not run."""
        doc = self.find_json(TRACKING)
        return None if doc is None else set(doc["tracked"])

    def put_tracked(self, image_ids: list[str]) -> None:
        """Record the track step as done, with the views it finished."""
        self.put_json(TRACKING, {"tracked": image_ids})

    def end(self) -> dict[str, Any] | None:
        """How the job ended (``{"state", "error"}``), or None while it has not."""
        doc = self.find_json(END)
        return doc if isinstance(doc, dict) else None

    def put_end(self, state: str, message: str = "") -> None:
        """Record how the job ended."""
        self.put_json(END, {"state": state, "error": message or None})


def record_status(record: dict[str, Any]) -> bool:
    """Whether a view's record (result or candidates) says it went well; records written
    by 0.1.0 keep the status in their entry only."""
    status = record.get("status") or record["entry"]["status"]
    return bool(status == "ok")


def encode_array(array: np.ndarray) -> bytes:
    """An array as float32 ``.npy`` bytes."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def decode_array(data: bytes) -> np.ndarray:
    """The inverse of ``encode_array``."""
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False), dtype=np.float32)
