"""The worker image's health check finds the broker where docker/compose.yaml puts it.

compose gives the workers the broker URL only as the file ``prodseg_broker_url`` in
``$PRODSEG_SECRETS_DIR`` (no password in ``docker inspect``); the check must ping that
broker, with that password, as the worker itself does. A real redis-server with a password
on a free loopback port stands for the compose file's Valkey.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.environment import free_port

PASSWORD = "health-check-password"


@pytest.fixture(scope="module")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server that refuses clients without :data:`PASSWORD`."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    conf = tmp_path_factory.mktemp("broker") / "redis.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\n"
                    f"requirepass {PASSWORD}\n")
    server = subprocess.Popen([exe, str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=PASSWORD, socket_connect_timeout=1)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                server.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield port
    server.terminate()
    server.wait(timeout=10)


def _health(secrets: Path | None, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m prodseg.tasks.health`` as the image's HEALTHCHECK runs it."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("PRODSEG_") or k == "PRODSEG_TEST_ARTIFACTS"}
    if secrets is not None:
        environ["PRODSEG_SECRETS_DIR"] = str(secrets)
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "prodseg.tasks.health"], env=environ,
                          capture_output=True, text=True, timeout=60)


def _secrets(folder: Path, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prodseg_broker_url").write_text(url)
    return folder


def test_the_broker_url_in_the_secrets_folder_is_the_one_pinged(
    broker_port: int, tmp_path: Path
) -> None:
    """Healthy with only the file compose mounts; before, the check pinged
    localhost:6379 without a password and called every compose worker unhealthy."""
    good = _secrets(tmp_path / "good", f"redis://:{PASSWORD}@127.0.0.1:{broker_port}/0")
    healthy = _health(good)
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stderr == ""


def test_a_wrong_password_in_the_secrets_folder_is_unhealthy(
    broker_port: int, tmp_path: Path
) -> None:
    bad = _secrets(tmp_path / "bad", f"redis://:not-{PASSWORD}@127.0.0.1:{broker_port}/0")
    sick = _health(bad)
    assert sick.returncode == 1
    assert "broker does not answer" in sick.stderr
    assert PASSWORD not in sick.stderr


def test_the_environment_wins_over_the_secrets_folder(broker_port: int, tmp_path: Path) -> None:
    """The same order as the worker's settings: PRODSEG_BROKER_URL first."""
    bad = _secrets(tmp_path / "bad", f"redis://:not-{PASSWORD}@127.0.0.1:{broker_port}/0")
    healthy = _health(bad, PRODSEG_BROKER_URL=f"redis://:{PASSWORD}@127.0.0.1:{broker_port}/0")
    assert healthy.returncode == 0, healthy.stderr


def test_an_invalid_broker_setting_is_one_line_without_the_value(tmp_path: Path) -> None:
    bad = _secrets(tmp_path / "bad", f"http://user:{PASSWORD}@127.0.0.1:1/0")
    sick = _health(bad)
    assert sick.returncode == 1
    lines = sick.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unhealthy: settings: "), sick.stderr
    assert PASSWORD not in sick.stderr
