"""An unreachable broker or a wrong password: one line within seconds, nothing uploaded."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, render
from tests.support.environment import free_port
from tests.support.outcomes import record
from tests.support.servers import BROKER_KINDS, start_broker

pytestmark = pytest.mark.integration


@pytest.fixture(params=BROKER_KINDS)
def password_broker(request: pytest.FixtureRequest,
                    tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """Each broker, Valkey and redis-server, on a free port wanting a password:
    (kind, URL without the password, password)."""
    password = "pw-" + uuid.uuid4().hex
    server = start_broker(request.param, tmp_path, config={"requirepass": password})
    try:
        yield request.param, server.url, password
    finally:
        server.stop()


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line


def test_unreachable_broker_and_wrong_password(password_broker: tuple[str, str, str],
                                               s3_endpoint: str, tmp_path: Path) -> None:
    kind, url, password = password_broker
    host = url.removeprefix("redis://")
    closed = f"redis://:{password}@127.0.0.1:{free_port()}/0"
    cases = {
        "nothing listening": closed,
        "a wrong password": f"redis://:not-{password}@{host}",
        "no password": url,
    }
    c = Cluster(f"redis://:{password}@{host}", s3_endpoint, tmp_path)
    images, ref, point = render(c, views=2, shelf=0, size="160x120")
    catalog = tmp_path / "shelf.csv"
    catalog.write_text(f'product_id,images,reference,point\nmilk-1l,{images},{ref},"{point}"\n')
    before = sorted(c.store.list(""))
    for case, broker in cases.items():
        for command in (["status", "some-job"],
                        ["submit", "--images", str(images), "--reference", str(ref),
                         "--ref-point", point, "--no-progress"],
                        ["catalog", "submit", str(catalog), "--no-progress"]):
            started = time.monotonic()
            done = c.cli(*command, PRODSEG_BROKER_URL=broker)
            seconds = time.monotonic() - started
            line = _one_line(done)
            assert password not in line and not done.stdout.strip()  # no job id printed
            assert seconds < 15, seconds  # a generous bound for a loaded 2-core machine
            if command[-1] == "--no-progress":  # submit and catalog submit
                assert sorted(c.store.list("")) == before  # nothing uploaded: no orphan
        expected = {"nothing listening": "cannot reach the broker at redis://127.0.0.1:",
                    "a wrong password": "refused the credentials",
                    "no password": "wants a password"}[case]
        assert expected in line
        shown = re.sub(r"127\.0\.0\.1:\d+", "<host>", line.removeprefix("prodseg: error: "))
        server = "broker" if case == "nothing listening" else kind
        record("bad input", f"{server} with {case} (status, submit, catalog submit)",
               f"'{shown}', exit 2 in {seconds:.1f} s; submit and catalog submit uploaded "
               "nothing and printed no id; the password is not shown")
