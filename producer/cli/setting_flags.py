"""Setting flags: every setting of ``prodseg.settings.Settings`` is also a flag.

A flag (``--similarity-threshold 0.7``) overrides its ``PRODSEG_*`` environment variable;
which settings a command offers follows from their declared scope (``RUN_SETTINGS``,
``SUBMIT_SETTINGS``).
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

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

RUN_SETTINGS = frozenset(Settings.model_fields) - settings_with(CONNECTION) - settings_with(WORKER)
"""What ``run`` offers: the settings that act on an in-process run (no broker, storage or
Celery ones)."""
SUBMIT_SETTINGS = settings_with(JOB) | settings_with(CONNECTION)
"""What ``submit`` offers: the job settings and how to reach the broker and the store."""


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

