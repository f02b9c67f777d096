"""``prodseg models download`` and ``prodseg models list``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from prodseg.errors import TransientError, WeightsError
from workers.weights import WEIGHTS, download, weight_file


def _progress(total: int | None, already: int, label: str) -> Callable[[int], None]:
    bar = tqdm(total=total, initial=already, unit="B", unit_scale=True, unit_divisor=1024,
               desc=label, file=sys.stderr, dynamic_ncols=True)

    def advance(n: int) -> None:
        bar.update(n)
        if total is not None and bar.n >= total:
            bar.close()

    return advance


def download_models(names: Sequence[str], cache_dir: Path, every: bool = False) -> int:
    """Fetch the named checkpoints (or all); returns an exit code.

    Each file is resumed if a partial download exists and checked against its pinned
    SHA-256 before it takes its real name.
    """
    files = list(WEIGHTS.values()) if every else [weight_file(n) for n in names]
    failed = 0
    for wf in files:
        try:
            path, verified = download(wf, cache_dir, progress=_progress)
        except (TransientError, WeightsError) as exc:
            print(f"FAILED {wf.model}: {exc}", file=sys.stderr)
            failed += 1
            continue
        note = "SHA-256 verified" if verified else "WARNING: no published checksum, not verified"
        print(f"{wf.model}: {path} ({note})")
    return 1 if failed else 0


def list_models(cache_dir: Path) -> int:
    """Print every known checkpoint and whether it is in the cache."""
    print(f"cache: {cache_dir}")
    print(f"{'model':<32} {'file':<36} {'status'}")
    for wf in WEIGHTS.values():
        path = wf.path(cache_dir)
        if path.is_file():
            size = path.stat().st_size
            status = f"present, {size / 1e6:.0f} MB"
            if wf.size is not None and size != wf.size:
                status += f" (expected {wf.size / 1e6:.0f} MB: run download again)"
        elif path.with_name(path.name + ".part").exists():
            status = "partial download (run download again to resume)"
        else:
            status = "missing"
        print(f"{wf.model:<32} {wf.filename:<36} {status}")
    return 0
