"""Prompt flags: the images, the reference's clicks and box, and prompts on other views.

``run`` and ``submit`` share them; the functions here turn what was typed into the
reference's ``Prompt`` and the other views' ``ViewPrompts``.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prodseg.errors import InputError
from prodseg.prompts import MAX_CANDIDATES, Prompt

if TYPE_CHECKING:
    from prodseg.job_spec import ViewPrompts


def _finite_numbers(text: str, n: int, form: str) -> tuple[float, ...]:
    """``n`` comma-separated finite numbers, or an argparse error naming the form."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected {form} ({n} finite numbers), got {text!r}")
    return values


def parse_pair(text: str) -> tuple[float, float]:
    """``X,Y`` as two finite numbers."""
    x, y = _finite_numbers(text, 2, "X,Y")
    return x, y


AUTO = "auto"


def parse_pair_or_auto(text: str) -> tuple[float, float] | str:
    """``X,Y`` as two finite numbers, or ``auto`` (the click is to be proposed)."""
    return AUTO if text.strip().lower() == AUTO else parse_pair(text)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``X0,Y0,X1,Y1`` as four finite numbers."""
    x0, y0, x1, y1 = _finite_numbers(text, 4, "X0,Y0,X1,Y1")
    return x0, y0, x1, y1


def add_prompt_flags(parser: argparse.ArgumentParser) -> None:
    """The images and the reference prompt (shared by ``run`` and later ``submit``)."""
    parser.add_argument(
        "--images", "-i", nargs="+", required=True, metavar="IMAGE",
        help="image files, directories or glob patterns",
    )
    parser.add_argument("--reference", "-r", metavar="IMAGE",
                        help="the image you clicked on (default: the first --ref VIEW, "
                        "whose clicks are then the reference's)")
    parser.add_argument(
        "--ref-point", type=parse_pair_or_auto, action="append", metavar="X,Y",
        help="a click on the product, in the reference's pixels (repeatable); 'auto': "
        "proposed from all the images when the job runs, on --reference (default: the "
        "first image), and recorded as proposed with its confidence",
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


def parse_on_view(numbers: int, form: str) -> Callable[[str], tuple[str | None, tuple[float, ...]]]:
    """An argparse type: ``[VIEW:]`` then ``numbers`` comma-separated finite numbers."""

    def parse(text: str) -> tuple[str | None, tuple[float, ...]]:
        view, _, values = text.rpartition(":")
        return (view or None), _finite_numbers(values, numbers, form)

    return parse


def parse_view_prompt(text: str) -> tuple[str, tuple[float, ...]]:
    """``VIEW:X,Y`` (a click) or ``VIEW:X0,Y0,X1,Y1`` (a box)."""
    view, _, values = text.rpartition(":")
    n = values.count(",") + 1
    if not view or n not in (2, 4):
        raise argparse.ArgumentTypeError(f"expected VIEW:X,Y or VIEW:X0,Y0,X1,Y1, got {text!r}")
    return view, _finite_numbers(values, n, "X,Y" if n == 2 else "X0,Y0,X1,Y1")


def add_lookalike_flag(parser: argparse.ArgumentParser) -> None:
    """``--distractor-point [VIEW:]X,Y``, ``--ref VIEW:...``, ``--ref-neg VIEW:X,Y`` and
    ``--not-here VIEW`` (each repeatable), for ``run`` and ``submit`` alike."""
    parser.add_argument(
        "--distractor-point", type=parse_on_view(2, "[VIEW:]X,Y"), action="append",
        metavar="[VIEW:]X,Y", default=[],
        help="a click on a lookalike that is NOT the product, on the reference image or on "
        "VIEW (a path, file name or image id); matches must then look more like the "
        "product than like it (repeatable)",
    )
    parser.add_argument(
        "--ref", type=parse_view_prompt, action="append", metavar="VIEW:X,Y", default=[],
        help="a click on the product on another view (or VIEW:X0,Y0,X1,Y1, a box): VIEW "
        "is segmented and becomes a reference too (repeatable)",
    )
    parser.add_argument(
        "--ref-neg", type=parse_on_view(2, "VIEW:X,Y"), action="append", metavar="VIEW:X,Y",
        default=[], help="a click on what is NOT the product on a --ref view (repeatable)",
    )
    parser.add_argument(
        "--not-here", action="append", metavar="VIEW", default=[],
        help="VIEW does not show the product: it gets no match (repeatable)",
    )


def lookalikes_from_args(args: argparse.Namespace) -> list[tuple[float, float]]:
    """The ``--distractor-point`` clicks given on the reference."""
    return [(float(v[0]), float(v[1])) for view, v in args.distractor_point if view is None]


def views_from_args(args: argparse.Namespace) -> ViewPrompts:
    """What ``--ref``, ``--ref-neg``, ``--not-here`` and ``--distractor-point VIEW:X,Y``
    say about views other than the reference (keyed as typed; the job resolves them)."""
    from prodseg.job_spec import ViewPrompts

    points: dict[str, list[tuple[float, float]]] = {}
    labels: dict[str, list[int]] = {}
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for view, values in args.ref:
        if len(values) == 4:
            if view in boxes:
                raise InputError(f"--ref {view}: two boxes on one view; give one")
            boxes[view] = (values[0], values[1], values[2], values[3])
        else:
            points.setdefault(view, []).append((values[0], values[1]))
            labels.setdefault(view, []).append(1)
    for view, values in args.ref_neg:
        if view is None or (view not in points and view not in boxes):
            raise InputError(f"--ref-neg {view or ''}:{values[0]:g},{values[1]:g}: give the "
                             "view's --ref click or box first (VIEW:X,Y)")
        points.setdefault(view, []).append((values[0], values[1]))
        labels.setdefault(view, []).append(0)
    references = {view: Prompt(tuple(points.get(view, [])), tuple(labels.get(view, [])),
                               boxes.get(view)) for view in {*points, *boxes}}
    lookalikes: dict[str, tuple[tuple[float, float], ...]] = {}
    for view, v in args.distractor_point:
        if view is not None:
            lookalikes[view] = (*lookalikes.get(view, ()), (float(v[0]), float(v[1])))
    return ViewPrompts(references, frozenset(args.not_here), lookalikes)


def reference_from_refs(args: argparse.Namespace, images: Sequence[str]) -> None:
    """Without ``--reference``, the first ``--ref VIEW:...`` names the reference: every
    ``--ref`` and ``--ref-neg`` on VIEW becomes the reference's prompt, and VIEW, found
    among ``images`` by path, file name or image id, the reference image (in place).

    Raises:
        InputError: no ``--reference`` and no ``--ref``; reference clicks without a
            reference; or VIEW is none of ``images`` (or several).
    """
    if args.reference is not None:
        return
    if auto_prompt(args) and images:
        args.reference = images[0]
        return
    if not args.ref:
        raise InputError("give --reference IMAGE with --ref-point X,Y (or --ref-bbox), or "
                         "--ref VIEW:X,Y: the first --ref view is then the reference")
    if args.ref_point or args.ref_neg_point or args.ref_bbox is not None:
        raise InputError("--ref-point, --ref-neg-point and --ref-bbox are on --reference: "
                         "give --reference IMAGE too, or put the clicks in --ref VIEW:X,Y")
    view = args.ref[0][0]
    found = [i for i in images if view in (i, os.path.basename(i),
                                           os.path.splitext(os.path.basename(i))[0])
             or (os.path.exists(view) and os.path.exists(i) and os.path.samefile(view, i))]
    if len(set(found)) != 1:
        raise InputError(f"--ref {view}: {'no' if not found else 'more than one'} image of "
                         "--images is that view; name it by its path")
    args.reference = found[0]
    mine = [values for v, values in args.ref if v == view]
    args.ref = [(v, values) for v, values in args.ref if v != view]
    args.ref_point = [(values[0], values[1]) for values in mine if len(values) == 2]
    boxes = [tuple(values) for values in mine if len(values) == 4]
    if len(boxes) > 1:
        raise InputError(f"--ref {view}: two boxes on one view; give one")
    args.ref_bbox = boxes[0] if boxes else None
    args.ref_neg_point = [(values[0], values[1]) for v, values in args.ref_neg if v == view]
    args.ref_neg = [(v, values) for v, values in args.ref_neg if v != view]


def auto_prompt(args: argparse.Namespace) -> bool:
    """Whether the flags ask for a proposed prompt (``--ref-point auto``).

    Raises:
        InputError: ``auto`` given with other clicks or a box on the reference.
    """
    points = args.ref_point or []
    if AUTO not in points:
        return False
    if len(points) > 1 or args.ref_neg_point or args.ref_bbox is not None:
        raise InputError("--ref-point auto proposes the whole prompt: give it alone, "
                         "without other --ref-point, --ref-neg-point or --ref-bbox")
    return True


def reference_prompt_from_args(args: argparse.Namespace) -> Prompt | None:
    """The reference prompt the flags describe; None for ``--ref-point auto``."""
    return None if auto_prompt(args) else prompt_from_args(args)


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
