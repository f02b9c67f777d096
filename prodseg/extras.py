"""The optional parts of prodseg, and the one line that names the one a command lacks.

A plain ``pip install prodseg`` is the torch-free client. The extras of ``pyproject.toml``
add the rest; ``EXTRAS`` lists the modules each brings, and ``require`` and
``missing_extra`` turn a missing one into ``MissingExtraError``: one line that names the
extra and the ``pip install`` that adds it.
"""

from __future__ import annotations

import importlib.util

from prodseg.errors import ProdsegError

EXTRAS: dict[str, tuple[str, ...]] = {
    "worker": ("torch", "torchvision", "sam2", "timm", "cv2", "pycocotools",
               "huggingface_hub"),
    "gui": ("matplotlib",),
    "catalog": ("faiss",),
    "monitor": ("flower",),
    "heic": ("pillow_heif",),
    "video": ("av",),
}
"""Extra -> the import names of the packages it installs (what ``require`` looks for)."""

DISTRIBUTIONS = {"torch": "torch", "torchvision": "torchvision", "sam2": "rf-sam-2",
                 "timm": "timm", "cv2": "opencv-python-headless",
                 "pycocotools": "pycocotools", "huggingface_hub": "huggingface_hub",
                 "matplotlib": "matplotlib", "faiss": "faiss-cpu", "flower": "flower",
                 "pillow_heif": "pillow-heif", "av": "av"}
"""Import name -> the name pip knows it by, for the message."""

_EXTRA_OF = {module: extra for extra, names in EXTRAS.items() for module in names}


class MissingExtraError(ProdsegError):
    """A command needs packages of an extra that is not installed.

    Args:
        extra: the extra's name (``worker``, ``gui``, ...).
        module: the import name that is missing.
        what: what needs it, e.g. ``prodseg run``.
    """

    def __init__(self, extra: str, module: str, what: str) -> None:
        package = DISTRIBUTIONS.get(module, module)
        super().__init__(f"{what} needs the [{extra}] extra ({package} is not installed): "
                         f"pip install 'prodseg[{extra}]'")
        self.extra, self.module = extra, module


def installed(module: str) -> bool:
    """Whether ``module`` (a top-level import name) can be imported here."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(extra: str, what: str) -> None:
    """Raise ``MissingExtraError`` unless every package of ``extra`` is installed.

    Args:
        extra: a key of ``EXTRAS``.
        what: what needs it, for the message (``prodseg run``).
    """
    for module in EXTRAS[extra]:
        if not installed(module):
            raise MissingExtraError(extra, module, what)


def missing_extra(error: ModuleNotFoundError, what: str) -> MissingExtraError | None:
    """The ``MissingExtraError`` an import failure means, or None when it is no extra's.

    Args:
        error: what ``import`` raised.
        what: what was running, for the message.
    """
    top = (error.name or "").split(".")[0]
    extra = _EXTRA_OF.get(top)
    return None if extra is None else MissingExtraError(extra, top, what)
