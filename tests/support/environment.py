"""What every kind of test shares: dummy AWS credentials and free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

AWS_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
