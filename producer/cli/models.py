"""``prodseg models download`` and ``prodseg models list``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from prodseg.errors import TransientError, WeightsError
from prodseg.producer.cli.options import SubParsers
from prodseg.settings import load_settings
from prodseg.workers.models.weights import WEIGHTS, download, weight_file


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


def register(sub: SubParsers) -> None:
    """Add ``prodseg models download`` and ``prodseg models list``."""
    models = sub.add_parser("models", help="download and list model weights")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    dl = msub.add_parser(
        "download",
        help="fetch official checkpoints into the cache (resumes, verifies SHA-256)",
        description="Fetch official checkpoints. With no MODEL, fetches the configured "
        "SAM 2.1 size and DINOv2 model (PRODSEG_SAM2_CHECKPOINT, PRODSEG_DINOV2_MODEL).",
    )
    dl.add_argument("model", nargs="*", help="e.g. hiera_tiny vit_small_patch14_dinov2")
    dl.add_argument("--all", action="store_true", help="every published checkpoint")
    dl.add_argument("--cache-dir", type=Path, help="overrides PRODSEG_MODEL_CACHE_DIR")
    ls = msub.add_parser("list", help="show which checkpoints are in the cache")
    ls.add_argument("--cache-dir", type=Path, help="overrides PRODSEG_MODEL_CACHE_DIR")
    models.set_defaults(handler=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    settings = load_settings(model_cache_dir=args.cache_dir)
    if args.models_command == "list":
        return list_models(settings.model_cache_dir)
    names = args.model or [settings.sam2_checkpoint, settings.dinov2_model]
    return download_models(names, settings.model_cache_dir, every=args.all)
