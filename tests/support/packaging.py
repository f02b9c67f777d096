"""The distribution as users get it: a wheel built from the tracked files alone, and a fresh
virtual environment with it installed (a plain install: the torch-free client)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.imports import REPO

CONSTRAINTS = REPO / "constraints.txt"


def build_wheel(out: Path) -> Path:
    """A wheel of prodseg from a copy of the tracked files (no stale build/ folder)."""
    source = out / "source"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    for name in tracked:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    wheels = out / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(source)],
                   check=True, capture_output=True)
    (built,) = wheels.glob("prodseg-*.whl")
    return built


def client_venv(where: Path, wheel: Path, extras: str = "") -> Path:
    """A fresh venv with ``wheel`` (``prodseg`` plus ``extras``) installed at the pinned
    versions; returns its ``bin`` folder. pip finds the packages where it always does
    (its cache, the configured index)."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    spec = f"prodseg{extras} @ {wheel.as_uri()}"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", "-c", str(CONSTRAINTS), spec],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {spec} failed:\n{done.stdout}\n{done.stderr}")
    return where / "bin"
