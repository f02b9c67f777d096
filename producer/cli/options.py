"""What the commands share: setting flags, the prompt flags, image lists, exit codes.

Every setting of ``prodseg.settings.Settings`` is also a flag (``--similarity-threshold
0.7``) that overrides its ``PRODSEG_*`` environment variable; which settings a command
offers follows from their declared scope.
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Collection, Sequence
from pathlib import Path

from prodseg.errors import InputError
from prodseg.prompts import MAX_CANDIDATES, Prompt
from prodseg.settings import Settings, default_cache_dir, load_settings, setting_flag
from prodseg.storage.images import IMAGE_SUFFIXES

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

SubParsers = argparse._SubParsersAction  # the type of ``add_subparsers()``


def parse_pair(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (two numbers), got {text!r}") from None
    return x, y


def parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected X0,Y0,X1,Y1 (four numbers), got {text!r}"
        ) from None
    return x0, y0, x1, y1


def add_settings_flags(
    parser: argparse.ArgumentParser, only: Collection[str] | None = None
) -> None:
    """One flag per setting (or per setting in ``only``); ``Settings`` validates values."""
    group = parser.add_argument_group("settings (each also read from PRODSEG_<NAME>)")
    for name, field in Settings.model_fields.items():
        if only is not None and name not in only:
            continue
        default = field.default if field.default_factory is None else default_cache_dir()
        group.add_argument(
            setting_flag(name),
            dest=f"setting_{name}",
            metavar=name.split("_")[-1].upper(),
            help=f"{field.description} (default: {default})",
        )


def setting_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The setting flags given on the command line, by setting name (values as typed)."""
    return {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment with the given flags on top."""
    return load_settings(**setting_overrides(args))


def expand_images(items: Sequence[str]) -> list[Path]:
    """Files, directories (their images, sorted) and glob patterns, in the order given.

    A path that does not exist is kept, so that it is reported as a failed image.
    """
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif any(ch in item for ch in "*?[") and not path.exists():
            out.extend(Path(p) for p in sorted(glob.glob(item)))
        else:
            out.append(path)
    return out


def add_prompt_flags(parser: argparse.ArgumentParser) -> None:
    """The images and the reference prompt (shared by ``run`` and later ``submit``)."""
    parser.add_argument(
        "--images", "-i", nargs="+", required=True, metavar="IMAGE",
        help="image files, directories or glob patterns",
    )
    parser.add_argument("--reference", "-r", required=True, help="the image you clicked on")
    parser.add_argument(
        "--ref-point", type=parse_pair, action="append", metavar="X,Y",
        help="a click on the product, in the reference's pixels (repeatable)",
    )
    parser.add_argument(
        "--ref-neg-point", type=parse_pair, action="append", metavar="X,Y",
        help="a click on what is NOT the product, to refine the mask (repeatable)",
    )
    parser.add_argument(
        "--ref-bbox", type=parse_box, metavar="X0,Y0,X1,Y1", help="a box around the product"
    )
    parser.add_argument(
        "--ref-candidate", type=int, choices=range(MAX_CANDIDATES), metavar="K",
        help="which of SAM2's three masks for the prompt to take, by area: 0 the smallest "
        "(a part), 2 the largest (the whole product); default: the best predicted IoU "
        "(results.json lists the three areas)",
    )


def prompt_from_args(args: argparse.Namespace) -> Prompt:
    """The reference prompt the flags describe."""
    pos = [tuple(p) for p in (args.ref_point or [])]
    neg = [tuple(p) for p in (args.ref_neg_point or [])]
    if not pos and args.ref_bbox is None:
        raise InputError("give --ref-point X,Y or --ref-bbox X0,Y0,X1,Y1 on the reference image")
    return Prompt(
        points=tuple(pos + neg),
        labels=tuple([1] * len(pos) + [0] * len(neg)),
        box=tuple(args.ref_bbox) if args.ref_bbox is not None else None,
        candidate=getattr(args, "ref_candidate", None),
    )
