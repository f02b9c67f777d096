"""The official checkpoints: where they come from, where they live, how they are checked.

Torch-free, so ``prodseg models download`` runs on a machine without PyTorch. SAM 2.1
comes from the Hugging Face Hub first (Meta's ``facebook/sam2.1-hiera-*`` repositories,
through ``huggingface_hub``: resumable, and the ``HF_HOME`` cache users already have),
with Meta's download URL as the fallback; DINOv2's Meta checkpoints are on Meta's URLs
only (the Hub's copies are converted to other formats). Whatever the source, each file is
checked against the SHA-256 pinned here before it takes its place in prodseg's cache, and
the models are built from that cache alone, so offline use needs nothing else.

Meta publishes no checksums; the SHA-256 values below are the ones other projects pin for
the same files (micro-sam, Intel's geti-instant-learn and others agree on each). The DINOv2
giant checkpoints have no pinned checksum anywhere we could find: they download with a
warning that their integrity was not verified.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prodseg.errors import TransientError, WeightsError

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "RANDOM WEIGHTS: the models were built with seeded random weights (--weights random). "
    "Masks, scores and matches are meaningless; use this only for smoke runs and benchmarks."
)

SAM2_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
DINOV2_BASE_URL = "https://dl.fbaipublicfiles.com/dinov2/"


@dataclass(frozen=True)
class WeightFile:
    """One checkpoint file.

    Attributes:
        model: the setting value that selects it (``hiera_tiny``, ``vit_small_patch14_dinov2``).
        family: ``"sam2"`` or ``"dinov2"`` (also the cache subdirectory).
        filename: file name in the cache directory (the official one).
        url: where it is published.
        sha256: expected SHA-256 hex digest, or None where none is pinned.
        size: expected size in bytes, or None.
        hf_repo: the Hugging Face Hub repository holding the same file, or None.
    """

    model: str
    family: str
    filename: str
    url: str
    sha256: str | None
    size: int | None
    hf_repo: str | None = None

    def path(self, cache_dir: Path) -> Path:
        """Where the file lives in the cache directory."""
        return Path(cache_dir) / self.family / self.filename


def _sam2(size: str, sha256: str, nbytes: int) -> WeightFile:
    name = f"sam2.1_{size}.pt"
    repo = "facebook/sam2.1-" + size.replace("_", "-")  # facebook/sam2.1-hiera-base-plus
    return WeightFile(size, "sam2", name, SAM2_BASE_URL + name, sha256, nbytes, repo)


def _dino(model: str, arch: str, reg: bool, sha256: str | None, nbytes: int | None) -> WeightFile:
    name = f"dinov2_{arch}{'_reg4' if reg else ''}_pretrain.pth"
    url = f"{DINOV2_BASE_URL}dinov2_{arch}/{name}"
    return WeightFile(model, "dinov2", name, url, sha256, nbytes)


WEIGHTS: dict[str, WeightFile] = {
    w.model: w
    for w in (
        _sam2("hiera_tiny", "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
              156008466),
        _sam2("hiera_small", "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
              184416285),
        _sam2("hiera_base_plus",
              "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5", 323606802),
        _sam2("hiera_large", "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
              898083611),
        _dino("vit_small_patch14_dinov2", "vits14", False,
              "b938bf1bc15cd2ec0feacfe3a1bb553fe8ea9ca46a7e1d8d00217f29aef60cd9", 88283115),
        _dino("vit_base_patch14_dinov2", "vitb14", False,
              "0b8b82f85de91b424aded121c7e1dcc2b7bc6d0adeea651bf73a13307fad8c73", 346378731),
        _dino("vit_large_patch14_dinov2", "vitl14", False,
              "d5383ea8f4877b2472eb973e0fd72d557c7da5d3611bd527ceeb1d7162cbf428", 1217586395),
        _dino("vit_giant_patch14_dinov2", "vitg14", False, None, None),
        _dino("vit_small_patch14_reg4_dinov2", "vits14", True,
              "f433177089a681826f849f194ece3bb48f4d63fb38d32fc837e3dc7a4e5641fb", 88291785),
        _dino("vit_base_patch14_reg4_dinov2", "vitb14", True,
              "73182a088cf94833c94b1666d1c99e02fe87e2007bff57b564fb6206e25dba71", 346393545),
        _dino("vit_large_patch14_reg4_dinov2", "vitl14", True,
              "36e4deffbaef061a2576705b0c36f93621e2ae20bf6274694821b0b492551b51", 1217607321),
        _dino("vit_giant_patch14_reg4_dinov2", "vitg14", True, None, None),
    )
}


def weight_file(model: str) -> WeightFile:
    """The checkpoint of a SAM2 size or DINOv2 model name (as in the settings)."""
    try:
        return WEIGHTS[model]
    except KeyError:
        raise WeightsError(f"no published checkpoint for model {model!r}") from None


def download_command(model: str, *more: str, cache_dir: Path | None = None) -> str:
    """The command that fetches the checkpoints of the models named, for error messages.

    With ``cache_dir`` the command says where to put them, so that it is right whatever
    the shell that runs it has in ``PRODSEG_MODEL_CACHE_DIR``.
    """
    command = " ".join(("prodseg models download", model, *more))
    if cache_dir is not None:
        command += f" --cache-dir {shlex.quote(str(cache_dir))}"
    return command


def missing_weights(models: Sequence[str], cache_dir: Path) -> list[WeightFile]:
    """The checkpoints of ``models`` that are not in the cache, in the order given."""
    files = [weight_file(m) for m in models]
    return [wf for wf in files if not wf.path(cache_dir).is_file()]


def require_weights(model: str, cache_dir: Path) -> Path:
    """Path of a model's checkpoint, or a ``WeightsError`` naming the fix.

    Raises:
        WeightsError: the file is missing.
    """
    wf = weight_file(model)
    path = wf.path(cache_dir)
    if not path.is_file():
        raise WeightsError(
            f"weights for {model} not found at {path}. Fetch them with:\n"
            f"    {download_command(model)}\n"
            f"(or set PRODSEG_MODEL_CACHE_DIR to where they are; or use --weights random "
            "for a smoke run with meaningless results)"
        )
    return path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


ProgressFactory = Callable[[int | None, int, str], Callable[[int], None]]


def download(
    wf: WeightFile,
    cache_dir: Path,
    progress: ProgressFactory | None = None,
    timeout: float = 60.0,
) -> tuple[Path, bool]:
    """Fetch a checkpoint into the cache, resuming a partial download, checking SHA-256.

    The file is written to ``<name>.part`` and renamed only once complete and verified,
    so the cache never holds a half-written or corrupt checkpoint under its real name.

    Args:
        wf: the checkpoint.
        cache_dir: the cache directory.
        progress: ``progress(total, already, label)`` returns a callback taking byte counts.
        timeout: socket timeout in seconds.

    Returns:
        ``(path, verified)``: verified is False only where no checksum is pinned.

    Raises:
        WeightsError: checksum mismatch (the partial file is removed).
        TransientError: the network failed; run again to resume.
    """
    path = wf.path(cache_dir)
    if path.is_file():
        return path, _verify(wf, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if wf.hf_repo is not None and wf.sha256 is not None and _from_hub(wf, path):
        return path, True
    part = path.with_name(path.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(wf.url, headers={"User-Agent": "prodseg"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if have and response.status != 206:
                have = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else wf.size
            advance = progress(total, have, wf.filename) if progress else None
            with open(part, "ab" if have else "wb") as out:
                while block := response.read(1 << 20):
                    out.write(block)
                    if advance:
                        advance(len(block))
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        kept = f" (partial file kept at {part})" if part.exists() else ""
        raise TransientError(
            f"download of {wf.url} failed ({exc}); run the same command again to resume{kept}"
        ) from exc
    verified = _verify(wf, part)
    os.replace(part, path)
    return path, verified


def _from_hub(wf: WeightFile, path: Path) -> bool:
    """Fetch ``wf`` from its Hub repository into ``path``, checked; False when the Hub
    cannot give the right file (no huggingface_hub, no network, another file), so that
    the caller falls back to Meta's URL."""
    from prodseg.extras import installed

    if not installed("huggingface_hub") or os.environ.get("PRODSEG_NO_HF_HUB"):
        return False
    import huggingface_hub

    assert wf.hf_repo is not None
    try:
        hub_file = Path(huggingface_hub.hf_hub_download(wf.hf_repo, wf.filename))
    except Exception as exc:  # offline, no such repo, rate limits: Meta's URL is next
        log.info("%s: the Hugging Face Hub did not give %s (%s); trying %s", wf.model,
                 wf.filename, exc, wf.url)
        return False
    part = path.with_name(path.name + ".hub.part")
    shutil.copyfile(hub_file, part)  # the Hub's cache keeps its own copy
    try:
        _verify(wf, part)
    except (WeightsError, TransientError) as exc:
        part.unlink(missing_ok=True)
        log.warning("%s: the Hub's %s is not the pinned file (%s); trying %s", wf.model,
                    wf.filename, exc, wf.url)
        return False
    os.replace(part, path)
    return True


def _verify(wf: WeightFile, path: Path) -> bool:
    """Check a file's size and SHA-256; remove it and raise if they are wrong."""
    if wf.sha256 is None:
        return False
    if wf.size is not None and path.stat().st_size != wf.size:
        size = path.stat().st_size
        if path.name.endswith(".part") and size < wf.size:
            raise TransientError(
                f"{path} is incomplete ({size} of {wf.size} bytes); run the same command "
                "again to resume"
            )
    digest = sha256_of(path)
    if digest != wf.sha256:
        path.unlink(missing_ok=True)
        raise WeightsError(
            f"{path}: SHA-256 {digest} does not match the published {wf.sha256}; the file "
            f"was removed, run {download_command(wf.model)} again"
        )
    return True
