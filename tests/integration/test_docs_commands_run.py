"""Every command the documentation shows is run, so that none goes stale.

Each page's commands (``tests/support/doc_commands``: the lines of its ``bash`` blocks and
its ``python`` blocks) run in order in one bash process, in a folder of the page's own,
against a real Valkey, SeaweedFS and a ``prodseg worker``, with the classic
backend (``PRODSEG_BACKEND=classic``) so that no weights are needed. The pages' example
inputs are there as small rendered captures (:func:`_fixtures`), and the few values that
name another machine or another photo are replaced as :data:`PLACEHOLDERS` declares.
A command that cannot run on a test machine is in :data:`NOT_RUN` with the reason; one
that is neither run nor listed, or a listing that no page shows any more, fails.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.cluster import Cluster
from tests.support.doc_commands import Command, commands
from tests.support.environment import AWS_TEST_CREDENTIALS
from tests.support.imports import REPO
from tests.support.outcomes import table
from tests.support.video import encode_video

_WINDOW = "opens a window; tests/unit/producer/test_select.py and test_viewer.py drive it"
_DOCKER = "needs Docker Engine; tests/unit/docker/test_compose.py checks the stack it starts"
_STACK = ("talks to the compose stack's fixed ports 127.0.0.1:6379 and :8333; the same "
          "prodseg commands run here from docs/distributed.md")

NOT_RUN: dict[str, str] = {
    "scripts/demo.sh": "downloads the pretrained weights and runs for minutes",
    "scripts/test.sh": "runs the whole test suite, this test among it",
    "prodseg models download": "downloads weights from the Hugging Face Hub or Meta; "
    "tests/unit/workers/test_weights.py serves the files from a local server",
    "prodseg select --images sample/images/ --output results/sample": _WINDOW,
    "prodseg select --images captures/milk/ --output results/milk": _WINDOW,
    "prodseg select --images captures/milk/ --submit --watch": _WINDOW,
    "prodseg view results/sample": _WINDOW,
    "prodseg worker": "serves until stopped; the worker the other commands use here is "
    "this command, started by the cluster (python -m prodseg worker --name ...)",
    "prodseg monitor --port 5555 --address 127.0.0.1 --basic-auth-file flower-users.txt":
    "serves until stopped; tests/integration/test_distributed.py::"
    "test_flower_sees_workers_and_tasks starts Flower with it",
    "prodseg catalog prepare shelf/ -o prepared.csv --review --submit": "serves the page "
    "until stopped; tests/integration/test_prepare_browser.py drives that page with --submit "
    "in headless Chromium",
    "cd docker": _DOCKER,
    "cp .env.example .env": _DOCKER,
    "docker compose build": _DOCKER,
    "docker compose --profile setup run --rm models": _DOCKER,
    "docker compose up -d": _DOCKER,
    "docker compose ps": _DOCKER,
    "docker/submit.sh --images captures/milk/ --reference captures/milk/img_001.jpg "
    "--ref-point 250,300": _STACK,
    ". docker/submit.sh": _STACK,
    "prodseg watch JOB": _STACK,
    "prodseg fetch JOB --output results/JOB": _STACK,
}
"""Command (as :attr:`Command.key` spells it) -> why it is not run here."""

EXPECTED_EXIT: dict[str, int] = {
    # By then the job has ended: cancel says so and exits 1 (docs/user-guide.md's table).
    "prodseg cancel $JOB": 1,
}
"""Commands whose documented outcome is another exit code than 0."""

PLACEHOLDERS: list[tuple[str, str]] = [
    # docs/distributed.md's environment: the test's own broker, store and credentials.
    ("redis://:PASSWORD@redis-host:6379/0", "{broker_url}"),
    ("http://s3-host:8333", "{s3_endpoint}"),
    ("PRODSEG_S3_BUCKET=prodseg", "PRODSEG_S3_BUCKET={bucket}"),
    ("AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...",
     f"AWS_ACCESS_KEY_ID={AWS_TEST_CREDENTIALS['AWS_ACCESS_KEY_ID']} "
     f"AWS_SECRET_ACCESS_KEY={AWS_TEST_CREDENTIALS['AWS_SECRET_ACCESS_KEY']}"),
    # A click on the product in captures/milk/img_001.jpg and photo.jpg (rendered here).
    ("--ref-point 250,300", "--ref-point {point}"),
    ("--ref-point 251,298", "--ref-point {point}"),
    ("--point 410,220", "--point {point}"),
    # docs/api.md's example photos are img1.jpg ... img3.jpg, clicked at (250, 300).
    ("reference_point=(250, 300)", "reference_point=({point})"),
]
"""Text of a documented command -> what it becomes here (``{name}``: :func:`_values`)."""


def test_every_command_is_run_or_listed_with_a_reason() -> None:
    """Holds without running anything: the lists name only what the pages show."""
    keys = {c.key for c in commands()}
    assert set(NOT_RUN) - keys == set(), "listed in NOT_RUN but shown on no page"
    assert set(EXPECTED_EXIT) - keys == set(), "in EXPECTED_EXIT but shown on no page"
    shown = "\n".join(c.text for c in commands())
    unused = [text for text, _ in PLACEHOLDERS if text not in shown]
    assert unused == [], "placeholders no command holds"
    assert all(reason.strip() for reason in NOT_RUN.values())
    run = [c for c in commands() if c.key not in NOT_RUN]
    assert len(run) >= 20  # most commands run; the rest are listed one by one above


def _render(cluster: Cluster, out: Path, views: int, seed: int,
            shelf_only: int = 1) -> tuple[list[Path], str]:
    """A small rendered capture: its photos (the reference first) and the click on it."""
    done = cluster.cli("sample", "--output", str(out), "--views", str(views),
                       "--shelf-only", str(shelf_only), "--size", "160x120", "--seed",
                       str(seed))
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "sample.json").read_text())
    photos = sorted((out / "images").glob("*.jpg"))
    reference = out / doc["reference"]
    x, y = doc["reference_point"]
    return [reference, *[p for p in photos if p != reference]], f"{x},{y}"


def _fixtures(cluster: Cluster, work: Path) -> dict[str, str]:
    """The example inputs the pages name, made in ``work``: ``captures/milk/`` (its
    reference ``img_001.jpg``) and ``captures/milk.mp4`` of the same photos,
    ``photo.jpg``, ``img1.jpg``..``img3.jpg``, ``shelf.csv`` of two products, and a
    ``docs/reliability.md`` with its table markers; returns :func:`_values`."""
    milk, point = _render(cluster, cluster.tmp / "render-milk", views=3, seed=0)
    tea, _ = _render(cluster, cluster.tmp / "render-tea", views=3, seed=1)
    (work / "captures" / "milk").mkdir(parents=True)
    for n, photo in enumerate(milk, start=1):
        (work / "captures" / "milk" / f"img_{n:03d}.jpg").write_bytes(photo.read_bytes())
    (work / "photo.jpg").write_bytes(milk[0].read_bytes())
    for n, photo in enumerate(milk[:3], start=1):
        (work / f"img{n}.jpg").write_bytes(photo.read_bytes())
    from PIL import Image  # captures/milk.mp4: the same photos filmed, the reference first

    encode_video([np.asarray(Image.open(p).convert("RGB")) for p in milk],
                 work / "captures" / "milk.mp4")
    (work / "tea").mkdir()
    for photo in tea:
        (work / "tea" / photo.name).write_bytes(photo.read_bytes())
    # The catalog's products: spins the classic backend matches well enough that their
    # results pass the report's rules, so the export has something to write.
    spin, spin_point = _render(cluster, cluster.tmp / "render-spin", views=5, seed=0,
                               shelf_only=0)
    for product in ("milk-1l", "tea-green"):
        (work / "shelf" / product).mkdir(parents=True)
        for photo in spin:
            (work / "shelf" / product / photo.name).write_bytes(photo.read_bytes())
    (work / "shelf.csv").write_text(
        "product_id,images,reference,point\n"
        f'milk-1l,shelf/milk-1l/,shelf/milk-1l/{spin[0].name},"{spin_point}"\n'
        f'tea-green,shelf/tea-green/,shelf/tea-green/{spin[0].name},"{spin_point}"\n')
    (work / "docs").mkdir()
    (work / "docs" / "reliability.md").write_text(
        (REPO / "docs" / "reliability.md").read_text(encoding="utf-8"), encoding="utf-8")
    artifacts = work / "test-artifacts"
    artifacts.mkdir()
    (artifacts / "reliability.md").write_text(
        table({("fault", "a documented command run"): ("it ran", "tests/integration")}))
    env = cluster.env
    return {"broker_url": env["PRODSEG_BROKER_URL"], "s3_endpoint": env["PRODSEG_S3_ENDPOINT_URL"],
            "bucket": env["PRODSEG_S3_BUCKET"], "point": point}


def _values(text: str, values: dict[str, str]) -> str:
    for shown, used in PLACEHOLDERS:
        text = text.replace(shown, used.format(**values))
    return text


def _script(page: list[Command], values: dict[str, str], logs: Path) -> str:
    """One bash script running ``page``'s commands in order, each one's output in
    ``logs/N.log`` and its exit code appended to ``logs/exit-codes``."""
    lines = ["set -o pipefail"]
    for n, command in enumerate(page):
        if command.key in NOT_RUN:
            continue
        text = _values(command.text, values)
        if command.kind == "python":
            (logs / f"{n}.py").write_text(text)
            text = f"python {shlex.quote(str(logs / f'{n}.py'))}"
        lines += ["{ " + text, f"}} > {logs}/{n}.log 2>&1",
                  f'echo "{n} $?" >> {logs}/exit-codes']
    return "\n".join(lines) + "\n"


PAGES = sorted({c.doc for c in commands()})


@pytest.mark.integration
def test_each_page_s_commands_run(cluster: Cluster) -> None:
    cluster.worker("docs", PRODSEG_BACKEND="classic")
    failures = []
    for doc in PAGES:
        page = [c for c in commands() if c.doc == doc]
        if all(c.key in NOT_RUN for c in page):
            continue
        work = cluster.tmp / "pages" / doc.replace("/", "_")
        logs = work / ".logs"
        logs.mkdir(parents=True)
        values = _fixtures(cluster, work)
        env = {**cluster.env, "PRODSEG_BACKEND": "classic", "HOME": str(work / "home"),
               "PRODSEG_TEST_ARTIFACTS": str(work / "test-artifacts"),
               "PATH": f"{Path(sys.executable).parent}:{cluster.env.get('PATH', '')}",
               "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
        done = subprocess.run(["bash", "-c", _script(page, values, logs)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        codes = dict(line.split() for line in (logs / "exit-codes").read_text().splitlines())
        for n, command in enumerate(page):
            if command.key in NOT_RUN:
                continue
            want = EXPECTED_EXIT.get(command.key, 0)
            got = codes.get(str(n))
            if got != str(want):
                log = (logs / f"{n}.log").read_text(errors="replace")[-2000:]
                failures.append(f"{doc}: `{command.key}` exited {got}, not {want}:\n{log}"
                                f"{done.stderr[-500:]}")
    assert not failures, "\n\n".join(failures)
