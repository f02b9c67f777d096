"""What a person sees on the terminal: a progress bar while it works, a summary after."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from prodseg.results import ImageResult


@contextmanager
def progress_bar(total: int | None,
                 disable: bool = False) -> Iterator[Callable[[ImageResult], None]]:
    """A bar over the target images (``total`` None: not known before, a video's
    frames); yields the per-image callback.

    The bar shows matched/failed counts as it goes and writes to stderr, so stdout stays
    clean for the summary.
    """
    counts = {"matched": 0, "failed": 0}
    with tqdm(total=total, unit="img", desc="matching", disable=disable, file=sys.stderr,
              dynamic_ncols=True) as bar:

        def advance(result: ImageResult) -> None:
            if result.status == "error":
                counts["failed"] += 1
            elif result.matches:
                counts["matched"] += 1
            bar.set_postfix(counts, refresh=False)
            bar.update(1)

        yield advance


def summary_lines(job: Any, output_dir: Path | None, max_rows: int = 20) -> list[str]:
    """The end-of-run summary, one screen at most.

    Args:
        job: a ``prodseg.results.JobResult``.
        output_dir: where the outputs were written.
        max_rows: image rows shown before eliding.
    """
    images: list[ImageResult] = list(job.images)
    ref = job.reference
    lines = []
    warning = job.meta.get("warning")
    if warning:
        lines.append(f"!! {warning}")
    models = job.meta.get("models", {})
    lines.append(
        f"models: {models.get('segmenter')} + {models.get('embedder')} on "
        f"{models.get('device', '?')}"
    )
    lines.append(
        f"reference {ref.image_id}: box {list(ref.bbox)}, mask quality {ref.score:.2f}"
    )
    width = max([len(r.image_id) for r in images] + [5])
    lines.append(f"{'image':<{width}}  status  matches  best   box")
    shown = images if len(images) <= max_rows else images[: max_rows - 1]
    for r in shown:
        if r.status == "error":
            lines.append(f"{r.image_id:<{width}}  ERROR   {r.error}")
            continue
        best = r.matches[0] if r.matches else None
        score = f"{best.score:.3f}" if best else "  -  "
        box = str(list(best.bbox)) if best else "no match"
        lines.append(f"{r.image_id:<{width}}  ok      {len(r.matches):>7}  {score}  {box}")
    if len(shown) < len(images):
        lines.append(f"... {len(images) - len(shown)} more in results.json")
    ok = sum(r.status == "ok" for r in images)
    matched = sum(bool(r.matches) for r in images)
    failed = len(images) - ok
    lines.append(
        f"{len(images)} images: {matched} matched, {ok - matched} without a match, "
        f"{failed} failed"
    )
    if output_dir is not None:
        lines.append(f"results: {output_dir / 'results.json'}")
        lines.append(f"gallery: {output_dir / 'gallery.html'}")
    return lines


def summary_document(job: Any, output_dir: Path | None) -> dict[str, Any]:
    """The end-of-run summary as a JSON object, for ``prodseg run --json``.

    Args:
        job: a ``prodseg.results.JobResult``.
        output_dir: where the outputs were written.
    """
    images: list[ImageResult] = list(job.images)
    ok = [r for r in images if r.status == "ok"]
    where = None if output_dir is None else str(output_dir)
    return {
        "images": len(images),
        "matched": sum(bool(r.matches) for r in ok),
        "without_match": sum(not r.matches for r in ok),
        "failed": len(images) - len(ok),
        "warning": job.meta.get("warning"),
        "models": job.meta.get("models", {}),
        "reference": {"image": job.reference.image_id, "bbox": list(job.reference.bbox),
                      "score": job.reference.score},
        "per_image": [{"image": r.image_id, "status": r.status, "error": r.error,
                       "matches": len(r.matches),
                       "best_score": r.matches[0].score if r.matches else None,
                       "best_bbox": list(r.matches[0].bbox) if r.matches else None}
                      for r in images],
        "output": where,
        "results": None if where is None else str(Path(where) / "results.json"),
        "gallery": None if where is None else str(Path(where) / "gallery.html"),
    }


def print_summary(job: Any, output_dir: Path | None) -> None:
    """Print ``summary_lines`` to stdout."""
    print("\n".join(summary_lines(job, output_dir)))
