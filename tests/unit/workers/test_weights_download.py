"""``prodseg models download``: a real HTTP server on loopback, resume, checksum checks."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from prodseg.errors import TransientError, WeightsError
from prodseg.workers.models.weights import WeightFile, download, require_weights

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path, honouring ``Range: bytes=N-``."""

    requests: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        rng = self.headers.get("Range")
        RangeHandler.requests.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        body = PAYLOAD[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/w.pt"
    httpd.shutdown()


def make_file(url: str, sha: str | None = None) -> WeightFile:
    digest = hashlib.sha256(PAYLOAD).hexdigest() if sha is None else sha
    return WeightFile("hiera_tiny", "sam2", "sam2.1_hiera_tiny.pt", url, digest, len(PAYLOAD))


def test_download_verifies_and_places_file(server: str, tmp_path: Path) -> None:
    seen: list[tuple[int | None, int]] = []

    def progress(total: int | None, already: int, label: str):  # type: ignore[no-untyped-def]
        seen.append((total, already))
        return lambda n: None

    path, verified = download(make_file(server), tmp_path, progress=progress)
    assert verified and path.read_bytes() == PAYLOAD
    assert path == tmp_path / "sam2" / "sam2.1_hiera_tiny.pt"
    assert seen == [(len(PAYLOAD), 0)]
    assert require_weights("hiera_tiny", tmp_path) == path


def test_download_resumes_a_partial_file(server: str, tmp_path: Path) -> None:
    part = tmp_path / "sam2" / "sam2.1_hiera_tiny.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:300_000])
    path, verified = download(make_file(server), tmp_path)
    assert verified and path.read_bytes() == PAYLOAD
    assert RangeHandler.requests == ["bytes=300000-"]
    assert not part.exists()


def test_checksum_mismatch_removes_the_file(server: str, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not match"):
        download(make_file(server, sha="0" * 64), tmp_path)
    assert not any((tmp_path / "sam2").iterdir())


def test_unreachable_server_is_transient_and_keeps_nothing(tmp_path: Path) -> None:
    with pytest.raises(TransientError, match="run the same command again"):
        download(make_file("http://127.0.0.1:9/nothing"), tmp_path, timeout=2)
    assert not (tmp_path / "sam2" / "sam2.1_hiera_tiny.pt").exists()
