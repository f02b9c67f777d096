"""The user's side imports without torch: a catalog client on a laptop never needs CUDA."""

from __future__ import annotations

import subprocess
import sys

import pytest

LIGHT = [
    "prodseg.settings", "prodseg.results", "prodseg.prompts", "storage.exports", "storage.s3",
    "storage.manifest", "storage.factory", "producer.cli", "producer.client",
    "producer.sample_scene", "producer.select", "producer.selection", "producer.select_cmd",
    "producer.viewer", "producer.preview", "tasks.app", "tasks.job_tasks", "tasks.progress",
    "tasks.previews", "workers.weights", "workers.preview", "producer.catalog",
    "producer.catalog_client", "producer.catalog_cmd", "producer.catalog_lookup",
    "producer.catalog_review", "storage.catalog_report", "storage.vector_index",
    "workers.capture", "workers.prototype_bank",
]


@pytest.mark.parametrize("module", LIGHT)
def test_imports_without_torch(module: str) -> None:
    code = (f"import sys, {module}; heavy = [m for m in ('torch', 'sam2', 'timm') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
