"""What every kind of test shares: the test S3 credentials and free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

from tests.support.servers import S3Identity

# The test S3 server's key. The secret is distinctive, so that a test can look for it in
# outputs, logs and stored objects.
S3_TEST_IDENTITY = S3Identity("prodseg-test", "prodseg-test-key", "prodseg-test-secret-5f0c2a91")
# A key the test S3 server knows but lets do nothing (every request: AccessDenied).
S3_NO_PERMISSION_KEY = S3Identity("no-permission", "prodseg-test-nothing",
                                  "prodseg-test-nothing-secret-7d3e", actions=())
AWS_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": S3_TEST_IDENTITY.access_key,
    "AWS_SECRET_ACCESS_KEY": S3_TEST_IDENTITY.secret_key,
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def s3_client(endpoint: str, identity: S3Identity = S3_TEST_IDENTITY) -> Any:
    """A plain boto3 S3 client of ``endpoint`` (path-style), for a test's set-up and checks."""
    import boto3  # here, so that test runs without S3 do not pay for importing it
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=identity.access_key, aws_secret_access_key=identity.secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )


def prodseg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``prodseg`` command line (``python -m prodseg``) and capture it.

    Args:
        *args: the sub-command and its arguments.
        env: variables set on top of this process's environment.
    """
    return subprocess.run(
        [sys.executable, "-m", "prodseg", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600,
    )
