"""Where a secret of the compose stack must not be: container metadata, the host's process
list, image history and the files of every image layer."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path


def found_in_text(text: str, values: Iterable[str]) -> list[str]:
    """The ``values`` that occur in ``text`` (printed by position, never the value)."""
    return [f"secret #{i}" for i, value in enumerate(values) if value and value in text]


def process_list() -> str:
    """Every command line on the host (containers' processes included), as ``ps`` shows."""
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True,
                          check=True).stdout


def image_history(image: str) -> str:
    """``docker history --no-trunc`` of ``image``: the command of every layer."""
    return subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}",
                           image], capture_output=True, text=True, check=True).stdout


def image_config(image: str) -> str:
    """``docker image inspect`` of ``image``: its environment, labels, command."""
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                          text=True, check=True).stdout


def layer_dirs(image: str) -> list[Path]:
    """The directories of ``image``'s layers in the overlay2 store (needs root)."""
    doc = json.loads(image_config(image))[0]
    data = doc["GraphDriver"]["Data"] or {}
    dirs = [Path(d) for d in data.get("LowerDir", "").split(":") if d]
    if data.get("UpperDir"):
        dirs.append(Path(data["UpperDir"]))
    return dirs


def files_holding(dirs: list[Path], values: Iterable[str]) -> list[str]:
    """Files under ``dirs`` that contain any of ``values`` (``grep -rlF``, binaries too)."""
    patterns = [v for v in values if v]
    if not patterns or not dirs:
        return []
    args = [arg for value in patterns for arg in ("-e", value)]
    done = subprocess.run(["grep", "-r", "-l", "-a", "-F", "--no-messages", *args,
                           *map(str, dirs)], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise AssertionError(f"grep over the layers failed: {done.stderr}")
    return done.stdout.splitlines()


def paths_present(dirs: list[Path], relative: Iterable[str]) -> list[str]:
    """Which of the paths ``relative`` (e.g. ``etc/pip.conf``) exist in any layer."""
    return [str(d / r) for d in dirs for r in relative if (d / r).exists()]
