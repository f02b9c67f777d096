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


def cache_entries(cache_dir: Path) -> list[dict[str, object]]:
    """Every known checkpoint and where it stands in the cache (what ``--json`` prints).

    ``state`` is ``present``, ``wrong-size`` (present, but not the published size),
    ``partial`` (a download to resume) or ``missing``.
    """
    entries: list[dict[str, object]] = []
    for wf in WEIGHTS.values():
        path = wf.path(cache_dir)
        size = path.stat().st_size if path.is_file() else None
        if size is not None:
            state = "wrong-size" if wf.size is not None and size != wf.size else "present"
        elif path.with_name(path.name + ".part").exists():
            state = "partial"
        else:
            state = "missing"
        entries.append({"model": wf.model, "family": wf.family, "file": wf.filename,
                        "path": str(path), "state": state, "bytes": size,
                        "expected_bytes": wf.size, "sha256": wf.sha256})
    return entries


def list_models(cache_dir: Path, as_json: bool = False) -> int:
    """Print every known checkpoint and whether it is in the cache."""
    entries = cache_entries(cache_dir)
    if as_json:
        from prodseg.jsonio import dumps

        print(dumps({"cache": str(cache_dir), "models": entries}))
        return 0
    print(f"cache: {cache_dir}")
    print(f"{'model':<32} {'file':<36} {'status'}")
    for entry in entries:
        size, expected = entry["bytes"], entry["expected_bytes"]
        status = {"partial": "partial download (run download again to resume)",
                  "missing": "missing"}.get(str(entry["state"]), "")
        if isinstance(size, int):
            status = f"present, {size / 1e6:.0f} MB"
            if entry["state"] == "wrong-size" and isinstance(expected, int):
                status += f" (expected {expected / 1e6:.0f} MB: run download again)"
        print(f"{entry['model']!s:<32} {entry['file']!s:<36} {status}")
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
    dl.add_argument("model", nargs="*", metavar="MODEL",
                    help="a SAM 2.1 size or DINOv2 model (default: the configured two); "
                    f"choices: {', '.join(WEIGHTS)}")
    dl.add_argument("--all", action="store_true", help="every published checkpoint")
    dl.add_argument("--cache-dir", type=Path, metavar="DIR",
                    help="overrides PRODSEG_MODEL_CACHE_DIR")
    ls = msub.add_parser("list", help="show which checkpoints are in the cache")
    ls.add_argument("--cache-dir", type=Path, metavar="DIR",
                    help="overrides PRODSEG_MODEL_CACHE_DIR")
    ls.add_argument("--json", action="store_true",
                    help="print the cache's checkpoints as one line of JSON, for scripts")
    models.set_defaults(handler=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    settings = load_settings(model_cache_dir=args.cache_dir)
    if args.models_command == "list":
        return list_models(settings.model_cache_dir, as_json=args.json)
    names = args.model or [settings.sam2_checkpoint, settings.dinov2_model]
    return download_models(names, settings.model_cache_dir, every=args.all)
