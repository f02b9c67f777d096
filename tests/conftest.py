"""Shared fixtures: the real S3 server (SeaweedFS) and moto's S3 server over HTTP, each
started once per session, the test credentials, and a fake endpoint that answers every
request with an error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.environment import (
    AWS_TEST_CREDENTIALS,
    S3_NO_PERMISSION_KEY,
    S3_TEST_IDENTITY,
    s3_client,
)
from tests.support.servers import start_moto, start_seaweedfs

# Variables that would make boto3 ignore the test credentials or go somewhere else.
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


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test S3 credentials in the environment; the developer's ``~/.aws`` is ignored."""
    for name in _AWS_VARIABLES_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in AWS_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return dict(AWS_TEST_CREDENTIALS)


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SeaweedFS (``weed server -s3``, the S3 server compose ships) on a free loopback
    port for the whole session; yields its endpoint URL.

    It accepts the test credentials (every action) and ``S3_NO_PERMISSION_KEY`` (none),
    and refuses any other key. Tests keep apart by using fresh buckets.
    """
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"),
                             [S3_TEST_IDENTITY, S3_NO_PERMISSION_KEY])
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server (``python -m moto.server``) on a free loopback port for the whole
    session, the second S3 implementation of the store contract; yields its endpoint URL.

    It takes any credentials.
    """
    server = start_moto(tmp_path_factory.mktemp("moto"), {**os.environ, **AWS_TEST_CREDENTIALS})
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint(seaweedfs_server: str, aws_credentials: dict[str, str]) -> str:
    """The S3 store of the tests: SeaweedFS's endpoint URL, with the test credentials set
    for this test."""
    return seaweedfs_server


@pytest.fixture
def moto_endpoint(moto_server: str, aws_credentials: dict[str, str]) -> str:
    """moto's endpoint URL, with the test credentials set for this test."""
    return moto_server


@pytest.fixture(scope="session")
def raw_s3(seaweedfs_server: str) -> Any:
    """A plain boto3 S3 client of SeaweedFS with the test credentials, for set-up only."""
    return s3_client(seaweedfs_server)


@pytest.fixture
def s3_error_server(
    aws_credentials: dict[str, str],
) -> Iterator[Callable[[int, str], tuple[str, list[str]]]]:
    """Starts loopback HTTP servers that answer every request with one S3 error.

    A stand-in, not an S3 server: no real server throttles or fails on demand, so this is
    how a test injects 5xx and throttling answers.

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


# The integration tests' brokers and per-test cluster (tests/support/cluster.py).
from tests.support.cluster import (  # noqa: E402, F401
    broker_url,
    cluster,
    each_broker_url,
    redis_server_broker,
    valkey_broker,
)
