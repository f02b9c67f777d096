"""``benchmarks/gpu.sh`` runs end to end on the CPU with tiny settings and prints every
figure as a finite number, in every mode it was asked for. Speeds are not asserted."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tests.support.imports import REPO

pytestmark = pytest.mark.slow

FIGURES = ("encoder_ms_per_image", "decoder_ms_per_64_prompts", "dinov2_ms_per_image",
           "grid_s_per_image", "guided_s_per_image", "grid_images_per_s", "peak_memory_mib")


def test_gpu_script_prints_every_figure_on_the_cpu() -> None:
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([str(REPO / "benchmarks" / "gpu.sh"), "--tiny", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    modes = ("compile=off,batch=1",)
    for name in FIGURES:
        for mode in modes:
            shown = [line.split() for line in lines if line.split()[:2] == [name, mode]]
            assert len(shown) == 1, (name, mode, done.stdout)
            assert math.isfinite(float(shown[0][2])) and float(shown[0][2]) > 0
    document = json.loads(lines[-1])
    assert document["all_finite"] and document["device"] == "cpu"
    assert [row["mode"] for row in document["figures"]] == list(modes)
