"""``benchmarks/bench_distributed.py`` runs end to end with the classic backend and tiny
settings (a real redis-server, SeaweedFS and worker processes) and reports every
mode asked for, in its table and its JSON, with positive seconds per image for
in-process and for each worker configuration. Speeds are not asserted."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.imports import REPO

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MODES = ("grid", "guided", "guided-bank", "tracking")


def test_distributed_benchmark_reports_every_mode(tmp_path: Path,
                                                  aws_credentials: dict[str, str]) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install -y redis-server)")
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_distributed.py"), "--backend",
         "classic", "--views", "3", "--size", "160x120", "--points-per-side", "2",
         "--modes", *MODES, "--workers", "1", "2", "--threads", "1", "--json", str(figures)],
        capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(figures.read_text())
    assert json.loads(done.stdout.splitlines()[-1]) == doc
    assert doc["configurations"] == [{"workers": 1, "threads": 1},
                                     {"workers": 2, "threads": 1}]
    assert [row["mode"] for row in doc["modes"]] == list(MODES)
    for row in doc["modes"]:
        assert row["in_process_s_per_image"] > 0
        assert [d["workers"] for d in row["distributed"]] == [1, 2]
        for d in row["distributed"]:
            assert d["s_per_image"] > 0
            assert d["same_match_counts"], (row["mode"], d)
        assert math.isfinite(row["overhead_s_per_image"])
        assert math.isfinite(row["overhead_pct"])
        assert sum(row["found_by"].values()) == doc["images"] - 1  # every target
    table = [line.split("|")[1:-1] for line in done.stdout.splitlines()
             if line.startswith("| ")]
    assert len(table[0]) == 7 and "1 worker x 1 thread" in table[0][2]
    assert "2 workers x 1 thread" in table[0][5]
    assert [cells[0].strip() for cells in table[1:]] == list(MODES)
    assert all(float(cell) > 0 for cells in table[1:] for cell in (cells[1], cells[2], cells[5]))
