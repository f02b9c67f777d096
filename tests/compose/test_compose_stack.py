"""docker/compose.yaml, started with Docker: healthy, taking jobs from the host's client,
surviving a worker stop and a broker restart mid-job, and keeping its secrets.

Run by scripts/compose-test.sh (``pytest -m compose``), which first builds the images.
The tests share one stack and run in order; each prints what it measured, and the module
writes the figures to ``test-artifacts/compose-figures.txt``.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compose import leaks
from tests.compose.stack import LONG_RUNNING, PUBLISHED_PORTS, Stack, wait_for
from tests.support.environment import prodseg
from tests.support.modes import assert_same_outputs
from tests.support.outcomes import artifacts_dir, record

pytestmark = pytest.mark.compose

VIEWS, SHELF, SIZE = 16, 2, "640x480"
TARGETS = VIEWS + SHELF - 1
"""Every photo but the reference one."""
BUILD_SECRETS = Path("/tmp/prodseg-compose-test/pip/pip.conf")
"""The pip configuration scripts/compose-test.sh gave the builds as a secret."""
FIGURES: list[str] = []
SECONDS_PER_PHOTO: list[float] = []
"""The undisturbed job's time per photo: what the faults are measured against."""


def figure(line: str) -> None:
    """Print a measured figure and keep it for compose-figures.txt."""
    print(f"figure: {line}", flush=True)
    FIGURES.append(line)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack, up and healthy; its logs kept and its volumes removed afterwards."""
    for port in PUBLISHED_PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"127.0.0.1:{port} is taken; the stack publishes it")
    s = Stack(tmp_path_factory.mktemp("compose"))
    start = time.monotonic()
    s.compose("up", "-d", "--no-build", "--pull", "never", timeout=900)
    try:
        s.wait_healthy(timeout=600)
        figure(f"time to healthy: {time.monotonic() - start:.1f} s from `up -d` "
               f"({', '.join(LONG_RUNNING)} healthy, create-bucket exited 0)")
        yield s
    finally:
        out = artifacts_dir()
        out.mkdir(parents=True, exist_ok=True)
        (out / "compose-logs.txt").write_text(s.compose("logs", "--no-color",
                                                        check=False).stdout)
        (out / "compose-figures.txt").write_text("\n".join(FIGURES) + "\n")
        s.down()


@pytest.fixture(scope="module")
def scene(stack: Stack) -> tuple[Path, Path, str, Path]:
    """Rendered captures with their click, and what `prodseg run` makes of them."""
    out = stack.workdir / "sample"
    done = prodseg("sample", "--output", str(out), "--views", str(VIEWS), "--shelf-only",
                   str(SHELF), "--size", SIZE)
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "sample.json").read_text())
    x, y = doc["reference_point"]
    images, ref, point = out / "images", out / doc["reference"], f"{x},{y}"
    local = stack.workdir / "local"
    ran = prodseg("run", "--images", str(images), "--reference", str(ref), "--ref-point",
                  point, "--output", str(local), "--no-progress", "--backend", "classic")
    assert ran.returncode == 0, ran.stderr
    return images, ref, point, local


def undisturbed() -> float:
    """Seconds the undisturbed job took (the first test's)."""
    assert SECONDS_PER_PHOTO, "the undisturbed job did not run"
    return SECONDS_PER_PHOTO[0] * TARGETS


def submit(stack: Stack, scene: tuple[Path, Path, str, Path]) -> str:
    images, ref, point, _ = scene
    done = stack.client("submit", "--images", str(images), "--reference", str(ref),
                        "--ref-point", point, "--no-progress", "--backend", "classic")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def finish(stack: Stack, scene: tuple[Path, Path, str, Path], job: str) -> float:
    """Watch ``job`` to its end, fetch it, compare it with `prodseg run`; the time it took
    from here. Every target has one record and was started once."""
    start = time.monotonic()
    watched = stack.client("watch", job, timeout=900)
    assert f"{job}: done, {TARGETS}/{TARGETS} images" in watched.stdout, (
        watched.stdout + watched.stderr)
    took = time.monotonic() - start
    out = stack.workdir / f"fetched-{job}"
    fetched = stack.client("fetch", job, "--output", str(out))
    assert fetched.returncode == 0, fetched.stderr
    (out / ".job").write_text(job)  # what assert_same_outputs compares results.json with
    assert_same_outputs(scene[3], out)
    deliveries = stack.broker().hgetall(f"prodseg:job:{job}:deliveries")
    assert len(deliveries) == TARGETS
    assert {int(v) for v in deliveries.values()} == {1}, deliveries  # none done twice
    return took


def in_progress(stack: Stack, job: str) -> tuple[int, int]:
    """(targets started, targets done) of ``job``, from the broker's counters."""
    r = stack.broker()
    return r.hlen(f"prodseg:job:{job}:deliveries"), r.scard(f"prodseg:job:{job}:done")


def test_a_job_from_the_host_client_equals_prodseg_run(
        stack: Stack, scene: tuple[Path, Path, str, Path]) -> None:
    job = submit(stack, scene)
    start = time.monotonic()
    finish(stack, scene, job)
    took = time.monotonic() - start
    figure(f"job of {TARGETS} photos ({SIZE}, classic backend, the CPU worker): {took:.1f} s "
           f"from submitted to fetched, {took / TARGETS:.2f} s per photo; fetched = "
           "`prodseg run`")
    SECONDS_PER_PHOTO.append(took / TARGETS)


def test_flower_answers_with_its_login_and_refuses_without(stack: Stack) -> None:
    url = "http://127.0.0.1:5555/api/workers"

    def status(auth: tuple[str, str] | None) -> int:
        request = urllib.request.Request(url)
        if auth:
            import base64
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    login = (stack.secrets["FLOWER_USER"], stack.secrets["FLOWER_PASSWORD"])
    assert status(login) == 200
    assert status(None) == 401
    assert status((login[0], "wrong-" + login[1])) == 401
    figure("Flower: 200 with its login, 401 without it and with a wrong password")


def test_a_worker_stopped_mid_job_finishes_its_target_and_loses_nothing(
        stack: Stack, scene: tuple[Path, Path, str, Path]) -> None:
    job = submit(stack, scene)
    start = time.monotonic()
    wait_for(lambda: in_progress(stack, job)[1] >= 2, 600, "two targets done")
    before = in_progress(stack, job)
    stopped = time.monotonic()
    stack.compose("stop", "worker", timeout=2000)
    stop_took = time.monotonic() - stopped
    after = in_progress(stack, job)
    assert after[0] == after[1], after  # what it had started, it finished
    assert after[1] < TARGETS, "the job ended before the worker stopped: nothing was tried"
    time.sleep(5)
    assert in_progress(stack, job) == after  # no worker: nothing moves
    stack.compose("start", "worker")
    stack.wait_healthy(timeout=300, services=("worker",))
    finish(stack, scene, job)
    took = time.monotonic() - start - 5
    cost = took - undisturbed()
    figure(f"worker stop mid-job ({before[1]}/{TARGETS} done): `compose stop worker` took "
           f"{stop_took:.1f} s, {after[1]}/{TARGETS} done when it had stopped; job done after "
           f"`start worker`, every target once; cost {cost:+.1f} s over the undisturbed job "
           "(less the 5 s held stopped)")
    record("fault", "compose: `docker compose stop worker` mid-job, then `start worker`",
           f"warm shutdown in {stop_took:.1f} s with every started target finished; the job "
           f"completed {TARGETS}/{TARGETS}, equal to prodseg run, every target started once",
           test="tests/compose/test_compose_stack.py")


def test_a_broker_restarted_mid_job_loses_nothing(
        stack: Stack, scene: tuple[Path, Path, str, Path]) -> None:
    job = submit(stack, scene)
    start = time.monotonic()
    wait_for(lambda: in_progress(stack, job)[1] >= 2, 600, "two targets done")
    before = in_progress(stack, job)
    restarted = time.monotonic()
    stack.compose("restart", "redis", timeout=300)
    stack.wait_healthy(timeout=300, services=("redis",))
    restart_took = time.monotonic() - restarted
    assert in_progress(stack, job)[1] >= before[1]  # the append-only file kept the counters
    finish(stack, scene, job)
    cost = time.monotonic() - start - undisturbed()
    stack.wait_healthy(timeout=300)
    figure(f"broker restart mid-job ({before[1]}/{TARGETS} done): healthy again in "
           f"{restart_took:.1f} s; job done, equal to prodseg run, every target once; cost "
           f"{cost:+.1f} s over the undisturbed job")
    record("fault", "compose: `docker compose restart redis` (Valkey) mid-job",
           f"healthy again in {restart_took:.1f} s; counters and queue kept (append-only "
           f"file); the job completed {TARGETS}/{TARGETS}, equal to prodseg run, every target "
           "started once", test="tests/compose/test_compose_stack.py")


def test_no_secret_in_inspect_ps_history_or_any_layer(stack: Stack) -> None:
    """The stack's passwords and keys (fresh random values) are in no container's inspect
    output, no host command line, no image's history or config, no file of any layer;
    nor is the pip configuration the builds got as a secret."""
    values = [v for k, v in stack.secrets.items() if k != "FLOWER_USER"]
    inspected = stack.inspect()
    assert set(LONG_RUNNING) <= set(inspected)
    assert leaks.found_in_text(json.dumps(inspected), values) == []
    assert leaks.found_in_text(leaks.process_list(), values) == []
    marker = ""
    if BUILD_SECRETS.exists():
        marker = BUILD_SECRETS.read_text().splitlines()[0]
        assert marker.startswith("# build secret ")
    images = sorted({info["Config"]["Image"] for info in inspected.values()})
    scanned = 0
    for image in images:
        assert leaks.found_in_text(leaks.image_history(image) + leaks.image_config(image),
                                   [*values, marker]) == [], image
        dirs = leaks.layer_dirs(image)
        assert leaks.files_holding(dirs, [*values, marker]) == [], image
        assert leaks.paths_present(dirs, ["etc/pip.conf", "run/secrets/pip-ca.crt",
                                          "run/secrets/pip.conf"]) == [], image
        scanned += len(dirs)
    figure(f"secrets: none of {len(values)} in docker inspect of {len(inspected)} "
           f"containers, in ps, or in the history, config and {scanned} layer folders of "
           f"{len(images)} images" + (" (nor the builds' pip configuration)" if marker else ""))
    record("security", "compose: the running stack's passwords and keys",
           f"in no docker inspect output ({len(inspected)} containers), no command line in "
           f"ps, no image history or config, no file of the {scanned} layers of "
           f"{len(images)} images; the builds' pip configuration (a BuildKit secret) in none "
           "either", test="tests/compose/test_compose_stack.py")


def test_compose_config_shows_no_secret_on_a_command_line(stack: Stack) -> None:
    """`docker compose config` resolves the file: the commands and environments in it
    hold no secret (the config files' contents are where they are meant to be)."""
    import yaml

    resolved = yaml.safe_load(stack.compose("config").stdout)
    values = [v for k, v in stack.secrets.items() if k != "FLOWER_USER"]
    for name, service in resolved["services"].items():
        shown = json.dumps([service.get("command"), service.get("entrypoint"),
                            service.get("environment"), service.get("healthcheck")])
        assert leaks.found_in_text(shown, values) == [], name
