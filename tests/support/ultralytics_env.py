"""Ultralytics, for reading exported datasets the way its users do, kept apart from the
project's environment.

Ultralytics needs torch and OpenCV, which the project already has, and would replace
them if pip resolved its dependencies. So its wheel alone (``--no-deps``, 1.4 MB) goes
into a folder of its own under the test cache (``PRODSEG_TEST_CACHE``, default
``~/.cache/prodseg-tests``), built once and reused; the reader runs in a child process
of this interpreter with that folder first on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ULTRALYTICS = "ultralytics==8.4.190"
READER = Path(__file__).with_name("ultralytics_read.py")


def ultralytics_dir() -> Path:
    """The folder holding Ultralytics, installed on first use."""
    cache = Path(os.environ.get("PRODSEG_TEST_CACHE", Path.home() / ".cache" / "prodseg-tests"))
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    target = cache / f"{ULTRALYTICS.replace('==', '-')}-{tag}"
    if (target / "ultralytics").is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="ultralytics-", dir=cache))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-compile", "--target", str(building), ULTRALYTICS],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        why = f"cannot install {ULTRALYTICS}: {done.stderr.strip()[-500:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    try:
        building.rename(target)  # whole or not at all; a concurrent build may have won
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
    return target


def read_with_ultralytics(data_yaml: Path, cwd: Path, home: Path) -> dict[str, Any]:
    """What Ultralytics' dataset checker and ``YOLODataset(task="segment")`` read.

    Args:
        data_yaml: the dataset's ``data.yaml``, given as a path relative to ``cwd``.
        cwd: where the reader runs (not the dataset's folder).
        home: a folder for Ultralytics' settings.

    Returns:
        ``{"names": {...}, "images": {file: {"shape": [h, w], "cls": [...],
        "segments": [[[x, y], ...], ...]}}}``, coordinates normalised.
    """
    env = {**os.environ, "PYTHONPATH": str(ultralytics_dir()),
           "YOLO_CONFIG_DIR": str(home), "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "false"}
    # Run by path, the script's folder would shadow ``packaging`` with tests/support's.
    run = f"import runpy, sys; sys.argv[1:] = sys.argv[2:]; runpy.run_path({str(READER)!r}, " \
          "run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", run, "-", os.path.relpath(data_yaml, cwd)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])
