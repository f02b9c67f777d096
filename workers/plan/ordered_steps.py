"""The steps of a distributed job that run once per job, in capture order: track and
resolve.

- **track** (``propagation=track``): SAM2's video predictor follows the product around
  the spin, which is sequential by nature, so one task per job does it on a GPU worker
  (a catalog runs its products' tracks in parallel). Tracked views are written as done;
  the others then go to the parallel candidates step.
- **resolve** (``bank_size > 1``): once every view's candidates are stored, the bank is
  grown over them in capture order and every view's outputs written. It runs no model:
  the candidates hold the embeddings, so it costs one image decode per view for the
  cutouts.

Both are deterministic functions of what storage holds, so a redelivered task writes
the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

from prodseg.job_spec import ViewPrompts
from prodseg.prompts import Prompt
from prodseg.storage.base import ObjectStore
from prodseg.storage.job_state import BANK, REFERENCE
from prodseg.storage.manifest import InputImage, JobManifest
from prodseg.workers.match.candidates import ViewCandidates
from prodseg.workers.plan.job_inputs import read_input, stored_capture
from prodseg.workers.plan.job_plan import JobPlan, resolve_in_order
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
from prodseg.workers.plan.steps import (
    load_fixed_bank,
    load_reference_shape,
    store_result,
    unstored_reason,
)
from prodseg.workers.plan.views import Loader, read_for_cutouts, track_spin


def track_step(store: ObjectStore, manifest: JobManifest,
               pipeline: ProductSegmentationPipeline) -> list[str]:
    """Track the spin; write each tracked view's outputs and record, then the track's
    record (``JobState.tracked``).

    Returns:
        The ids of the tracked views (none unless the capture is a spin).
    """
    s = pipeline.settings
    plan = JobPlan.of(s)
    fixed = load_fixed_bank(store, manifest, plan)
    reference = read_input(store, manifest.reference, s)
    prompted = ViewPrompts.from_json(manifest.views)
    left = [k for k, t in enumerate(manifest.images)  # prompted views: the candidates step's
            if t.image_id not in prompted.references and t.image_id not in prompted.no_match]
    views = [(manifest.images[k].image_id, manifest.images[k].source,
              _loader(store, manifest.images[k], pipeline)) for k in left]
    prompt = Prompt.from_json(manifest.state(store).get_json(REFERENCE)["entry"]["prompt"])
    capture = stored_capture(manifest.state(store).get_json(REFERENCE), plan)
    tracked = track_spin(pipeline, capture, prompt, fixed,
                         load_reference_shape(store, manifest),
                         (manifest.reference.source, reference), views)
    for k in sorted(tracked.results):
        store_result(store, manifest, left[k], tracked.results[k], tracked.images[k])
    ids = [manifest.images[left[k]].image_id for k in sorted(tracked.results)]
    manifest.state(store).put_tracked(ids)
    return ids


def resolve_step(store: ObjectStore, manifest: JobManifest,
                 pipeline: ProductSegmentationPipeline,
                 unstored: Mapping[str, str] | None = None) -> list[str]:
    """Grow the bank over the stored candidates in capture order; write every untracked
    view's outputs and record, then the bank's record.

    Args:
        unstored: image id -> why, for views whose candidates task gave up; they are
            errors in the results, and ``prodseg resume`` runs them again.

    Returns:
        The bank's members (image ids, ``reference`` first).
    """
    s = pipeline.settings
    plan = JobPlan.of(s)
    state = manifest.state(store)
    prompted = ViewPrompts.from_json(manifest.views)
    # Tracked views and the views the job prompts already have their results.
    done = (state.tracked() or set()) | set(prompted.references) | prompted.no_match
    ref = state.get_json(REFERENCE)
    order = [k for k, t in enumerate(manifest.images) if t.image_id not in done]
    records = [state.candidates_record(manifest.images[k].image_id) for k in order]
    capture = stored_capture(ref, plan)
    scores = [float("-inf") if not r or r["best_score"] is None else float(r["best_score"])
              for r in records]
    visit = plan.visit_order(capture, ref["entry"]["source"],
                             [manifest.images[k].source for k in order], scores)
    bank = load_fixed_bank(store, manifest, plan)
    def view(position: int) -> ViewCandidates:
        return _stored_view(store, manifest, manifest.images[order[position]], unstored or {})

    for position, result in resolve_in_order(view, visit, bank, plan.select,
                                             load_reference_shape(store, manifest)):
        index = order[position]
        result, image = read_for_cutouts(
            result, _loader(store, manifest.images[index], pipeline))
        store_result(store, manifest, index, result, image)
    record = plan.bank_record(bank)
    if record is not None:
        state.put_json(BANK, record)
    return list(bank.sources)


def _loader(store: ObjectStore, target: InputImage,
            pipeline: ProductSegmentationPipeline) -> Loader:
    return lambda: read_input(store, target, pipeline.settings)


def _stored_view(store: ObjectStore, manifest: JobManifest, target: InputImage,
                 unstored: Mapping[str, str]) -> ViewCandidates:
    """The view's stored candidates; without them (its task gave up), a failed view."""
    blob = manifest.state(store).candidates(target.image_id)
    if blob is not None:
        return ViewCandidates.from_bytes(blob)
    why = unstored.get(target.image_id, "no candidates were stored")
    return ViewCandidates.failed(target.image_id, target.source,
                                 unstored_reason(target, why))
