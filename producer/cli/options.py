"""What the commands share: setting flags, the prompt flags, image lists, exit codes.

Every setting of ``prodseg.settings.Settings`` is also a flag (``--similarity-threshold
0.7``) that overrides its ``PRODSEG_*`` environment variable; which settings a command
offers follows from their declared scope.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from prodseg.errors import InputError
from prodseg.prompts import MAX_CANDIDATES, Prompt
from prodseg.settings import (
    CONNECTION,
    DINOV2_MODELS,
    JOB,
    SAM2_SIZES,
    WORKER,
    Settings,
    default_cache_dir,
    load_settings,
    setting_flag,
    settings_with,
)
from prodseg.storage.image_formats import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from prodseg.job_spec import ViewPrompts
    from prodseg.producer.client import JobClient

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_RUNNING = 0, 1, 2, 3
"""Exit codes: 0 done, 1 some images (or the job) failed, 2 nothing could start (usage,
bad input, unknown job, unreachable broker), 3 the job is still queued or running."""

SubParsers = argparse._SubParsersAction  # the type of ``add_subparsers()``

RUN_SETTINGS = frozenset(Settings.model_fields) - settings_with(CONNECTION) - settings_with(WORKER)
"""What ``run`` offers: the settings that act on an in-process run (no broker, storage or
Celery ones)."""
SUBMIT_SETTINGS = settings_with(JOB) | settings_with(CONNECTION)
"""What ``submit`` offers: the job settings and how to reach the broker and the store."""


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


def count_arg(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {text!r}")
        return value

    return parse


def job_client(args: argparse.Namespace) -> JobClient:
    """The distributed-mode client of the settings given, once the broker and the bucket
    have answered.

    The checks take at most a few seconds, so an unreachable broker, a wrong password or
    a missing bucket is said before anything is uploaded or waited for (SeaweedFS would
    create a misspelt bucket on the first upload).
    """
    from prodseg.producer.client import JobClient
    from prodseg.storage.s3 import S3Store
    from prodseg.tasks.progress import ProgressBoard

    settings = settings_from_args(args)
    ProgressBoard.check(settings.broker_url)
    store = S3Store.from_settings(settings)
    store.check_bucket()
    return JobClient(settings, store=store)


def job_id_arg(text: str) -> str:
    """A job id argument, checked as ``storage.manifest.validate_job_id`` checks it."""
    from prodseg.storage.manifest import validate_job_id

    try:
        return validate_job_id(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def catalog_id_arg(text: str) -> str:
    """A catalog id argument (the same rules as a job id)."""
    try:
        return job_id_arg(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"invalid catalog id {text!r}: give the id that prodseg catalog submit printed"
        ) from None


class Choices(tuple[str, ...]):
    """The names a setting offers, for ``--help`` and completion, that also lets through
    what the setting's validator accepts besides (``vit-l/14``, ``sam2.1_hiera_large``)."""

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and bool(value.strip())


def _choices(name: str, annotation: Any) -> tuple[str, ...] | None:
    if get_origin(annotation) is Literal:
        return tuple(str(a) for a in get_args(annotation))
    named = SETTING_CHOICES.get(name)
    return None if named is None else Choices(named)


def _metavar(name: str, annotation: Any) -> str:
    """What a setting's value is, from its type, not from its name's last word."""
    kinds = {a for a in (get_args(annotation) or (annotation,)) if a is not type(None)}
    if kinds == {Path}:
        return "DIR"
    if name.endswith("_url"):
        return "URL"
    if name.endswith("_s") and kinds == {int}:
        return "SECONDS"
    if kinds == {int}:
        return "N"
    if kinds == {float}:
        return "X"
    return SETTING_METAVARS.get(name, "NAME")


SETTING_CHOICES = {"sam2_checkpoint": SAM2_SIZES, "dinov2_model": DINOV2_MODELS}
"""Settings whose validator takes a name of a list (and its aliases)."""
SETTING_METAVARS = {"device": "DEVICE", "s3_bucket": "BUCKET", "s3_region": "REGION",
                    "sam2_checkpoint": "SIZE", "dinov2_model": "MODEL"}


def add_settings_flags(
    parser: argparse.ArgumentParser, only: Collection[str] | None = None
) -> None:
    """One flag per setting (or per setting in ``only``); ``Settings`` validates values.

    A choice setting lists its choices, a boolean one is ``--x/--no-x``, and the metavar
    says what kind of value the others take.
    """
    group = parser.add_argument_group("settings (each also read from PRODSEG_<NAME>)")
    for name, field in Settings.model_fields.items():
        if only is not None and name not in only:
            continue
        default = field.default if field.default_factory is None else default_cache_dir()
        text = f"{field.description} (default: {default})"
        if field.annotation is bool:
            group.add_argument(setting_flag(name), dest=f"setting_{name}", default=None,
                               action=argparse.BooleanOptionalAction, help=text)
            continue
        choices = _choices(name, field.annotation)
        metavar = None  # argparse shows a Literal's choices as {a,b}
        if choices is None or isinstance(choices, Choices):
            metavar = _metavar(name, field.annotation)
        if isinstance(choices, Choices):  # too long for the usage line: listed in the help
            text += f"; choices: {', '.join(choices)}"
        group.add_argument(setting_flag(name), dest=f"setting_{name}", choices=choices,
                           metavar=metavar, help=text)


def setting_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The setting flags given on the command line, by setting name (values as typed;
    ``--x``/``--no-x`` as ``"true"``/``"false"``)."""
    return {
        key.removeprefix("setting_"): (str(value).lower() if isinstance(value, bool) else value)
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment with the given flags on top."""
    return load_settings(**setting_overrides(args))


def expand_sources(items: Sequence[str]) -> list[str]:
    """Local items expanded (``expand_images``), ``s3://`` URLs and prefixes kept for the
    client to list; in the order given."""
    out: list[str] = []
    for item in items:
        out.extend([item] if item.startswith("s3://") else map(str, expand_images([item])))
    return out


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


def add_json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: print ``what`` as one line of JSON on stdout, for scripts."""
    parser.add_argument("--json", action="store_true",
                        help=f"print {what} as one line of JSON, for scripts")


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
