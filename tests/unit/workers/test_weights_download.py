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


# --- the Hugging Face Hub first, Meta's URL as the fallback ----------------------------

HUB_REPO = "facebook/sam2.1-hiera-tiny"


def hub_file(url: str, sha: str | None = None) -> WeightFile:
    wf = make_file(url, sha)
    return WeightFile(wf.model, wf.family, wf.filename, wf.url, wf.sha256, wf.size, HUB_REPO)


def test_sam2_comes_from_metas_hub_repositories() -> None:
    from prodseg.workers.models.weights import WEIGHTS

    assert WEIGHTS["hiera_base_plus"].hf_repo == "facebook/sam2.1-hiera-base-plus"
    assert {w.hf_repo for w in WEIGHTS.values() if w.family == "sam2"} == {
        f"facebook/sam2.1-hiera-{s}" for s in ("tiny", "small", "base-plus", "large")}
    assert all(w.hf_repo is None for w in WEIGHTS.values() if w.family == "dinov2")


def test_an_offline_hub_cache_is_used_and_checked(tmp_path: Path) -> None:
    """A Hub cache laid out as huggingface_hub keeps it (refs/main -> a snapshot), read by
    huggingface_hub itself with HF_HUB_OFFLINE=1; Meta's URL is unreachable."""
    import os
    import subprocess
    import sys

    commit = "0" * 40
    repo = tmp_path / "hub" / ("models--" + HUB_REPO.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit / "sam2.1_hiera_tiny.pt"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_bytes(PAYLOAD)
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from prodseg.workers.models.weights import WeightFile, download\n"
        f"wf = WeightFile('hiera_tiny', 'sam2', 'sam2.1_hiera_tiny.pt', 'http://127.0.0.1:9/x',"
        f" {hashlib.sha256(PAYLOAD).hexdigest()!r}, {len(PAYLOAD)}, {HUB_REPO!r})\n"
        f"path, verified = download(wf, Path({str(tmp_path / 'cache')!r}), timeout=2)\n"
        "print(path, verified)\n")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    placed = tmp_path / "cache" / "sam2" / "sam2.1_hiera_tiny.pt"
    assert done.stdout.split() == [str(placed), "True"]
    assert placed.read_bytes() == PAYLOAD and snapshot.read_bytes() == PAYLOAD
    assert require_weights("hiera_tiny", tmp_path / "cache") == placed


def test_a_hub_file_that_is_not_the_pinned_one_falls_back_to_metas_url(
        server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"x" * len(PAYLOAD))
    asked: list[tuple[str, str]] = []

    def fake_download(repo_id: str, filename: str) -> str:
        asked.append((repo_id, filename))
        return str(wrong)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    path, verified = download(hub_file(server), tmp_path / "cache")
    assert asked == [(HUB_REPO, "sam2.1_hiera_tiny.pt")]
    assert verified and path.read_bytes() == PAYLOAD
    assert RangeHandler.requests == [None]  # then Meta's URL gave the right file
    assert wrong.read_bytes() == b"x" * len(PAYLOAD)  # the Hub's cache is left alone
    assert sorted(p.name for p in path.parent.iterdir()) == ["sam2.1_hiera_tiny.pt"]


def test_an_unreachable_hub_falls_back_to_metas_url(
        server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def offline(repo_id: str, filename: str) -> str:
        raise huggingface_hub.errors.LocalEntryNotFoundError("offline and not cached")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    path, verified = download(hub_file(server), tmp_path)
    assert verified and path.read_bytes() == PAYLOAD and RangeHandler.requests == [None]
