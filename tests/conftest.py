"""Shared fixtures: a real S3 endpoint (moto's server mode over HTTP), dummy AWS credentials,
moto's IAM checks switched on, and a fake endpoint that answers every request with an error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.environment import AWS_TEST_CREDENTIALS, free_port

# Variables that would make boto3 ignore the dummy credentials or go somewhere else.
_AWS_VARIABLES_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)
_MOTO_START_TIMEOUT_S = 30.0


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Dummy AWS credentials in the environment; the developer's ``~/.aws`` is ignored."""
    for name in _AWS_VARIABLES_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in AWS_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return dict(AWS_TEST_CREDENTIALS)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server process answering S3 (and IAM) over HTTP; yields its endpoint URL.

    Started once per session with ``python -m moto.server -H 127.0.0.1 -p PORT`` on a
    free loopback port; its log goes to a file in the session's temporary directory.
    Tests keep apart by using fresh buckets.
    """
    log_path = tmp_path_factory.mktemp("moto") / "moto-server.log"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    env = {**os.environ, **AWS_TEST_CREDENTIALS}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_answering(endpoint, process, log_path)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_endpoint(moto_server: str, aws_credentials: dict[str, str]) -> str:
    """The moto server's endpoint URL, with dummy credentials set for this test."""
    return moto_server


@pytest.fixture(scope="session")
def moto_s3(moto_server: str) -> Any:
    """A plain boto3 S3 client of the moto server (dummy credentials), for set-up only."""
    return _moto_client(moto_server, "s3")


@pytest.fixture
def moto_iam_enforced(s3_endpoint: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh bucket and an IAM user's access key (no policies), with moto checking
    signatures and permissions; yields ``(bucket, {"id": ..., "secret": ...})``.

    moto's server accepts any credentials until ``/moto-api/reset-auth`` gets the number
    of requests to let through unchecked (``0``); ``inf`` switches the checks off again.
    """
    bucket = f"prodseg-test-{uuid.uuid4().hex[:16]}"
    _moto_client(s3_endpoint, "s3").create_bucket(Bucket=bucket)
    iam = _moto_client(s3_endpoint, "iam")
    user = f"user-{uuid.uuid4().hex[:12]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    _set_moto_auth(s3_endpoint, "0")
    try:
        yield bucket, {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        _set_moto_auth(s3_endpoint, "inf")


@pytest.fixture
def s3_error_server(
    aws_credentials: dict[str, str],
) -> Iterator[Callable[[int, str], tuple[str, list[str]]]]:
    """Starts loopback HTTP servers that answer every request with one S3 error.

    Call the fixture's value with an HTTP status and an S3 error code (``503``,
    ``"SlowDown"``); it returns the endpoint URL and the list of request methods the
    server has seen so far.
    """
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(status: int, code: str) -> tuple[str, list[str]]:
        seen: list[str] = []
        body = f"<Error><Code>{code}</Code><Message>try later</Message></Error>".encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue"

            def _answer(self) -> None:
                seen.append(self.command)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join()


def _moto_client(endpoint: str, service: str) -> Any:
    """A boto3 client of ``service`` at ``endpoint`` with the dummy credentials."""
    import boto3  # here, so that test runs without S3 do not pay for importing it

    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=AWS_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _set_moto_auth(endpoint: str, unchecked_requests: str) -> None:
    """Tell the moto server how many requests to let through before checking IAM."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=unchecked_requests.encode(), method="POST",
        headers={"Content-Type": "text/plain"},  # a form type would hide the body from moto
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def _wait_until_answering(endpoint: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once ``endpoint`` answers HTTP; fail with the server's log if it never does."""
    deadline = time.monotonic() + _MOTO_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"moto server exited with status {process.returncode}:\n{_tail(log)}"
            )
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is serving
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"moto server did not answer at {endpoint} within {_MOTO_START_TIMEOUT_S} s:\n"
        f"{_tail(log)}"
    )


def _tail(path: Path, size: int = 4000) -> str:
    """The last ``size`` characters of a log file."""
    return path.read_text(errors="replace")[-size:]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Write the fault and bad-input table the tests recorded, and say if docs/reliability.md's
    differs."""
    from tests.support import outcomes

    rows = outcomes.recorded()
    if not rows:
        return
    path = outcomes.write_artifact(rows)
    page = outcomes.PAGE.read_text(encoding="utf-8")
    missing = [case for (_, case) in rows if f"| {case} |" not in page]
    note = f"; {len(missing)} not yet in docs/reliability.md" if missing else ""
    terminalreporter.write_line(
        f"reliability table: {len(rows)} cases tried -> {path}{note}"
        + (" (python -m tests.support.outcomes docs/reliability.md)" if missing else "")
    )


# The integration tests' redis-server and per-test cluster (tests/cluster.py).
from tests.support.cluster import cluster, redis_url  # noqa: E402, F401
