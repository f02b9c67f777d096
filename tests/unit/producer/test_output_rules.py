"""Output directories and prompts that used to break a run: one line, exit 2, nothing mixed.

Each case runs the real ``prodseg`` command on a small rendered spin set with the classic
backend (seconds, no weights).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from prodseg.errors import InputError
from prodseg.jsonio import dumps
from prodseg.storage.output_dir import LOCK_NAME, OutputDir
from tests.support.environment import prodseg
from tests.support.outcomes import record, without_dirs

CLASSIC = {"PRODSEG_BACKEND": "classic"}


def _render(out: Path, size: str, views: int = 4) -> tuple[Path, str]:
    done = prodseg("sample", "--output", str(out), "--views", str(views), "--shelf-only", "1",
                   "--size", size)
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "sample.json").read_text())
    x, y = doc["reference_point"]
    return out / doc["reference"], f"{x},{y}"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    out = tmp_path_factory.mktemp("sample")
    reference, point = _render(out, "320x240")
    return out / "images", reference, point


def _run(sample: tuple[Path, Path, str], output: Path | str, *extra: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    images, reference, point = sample
    return prodseg("run", "--images", str(images), "--reference", str(reference),
                   "--ref-point", point, "--output", str(output), "--no-progress", *extra,
                   env={**CLASSIC, **(env or {})})


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("where", ["a regular file", "/dev/null"])
def test_output_that_is_not_a_directory(sample: tuple[Path, Path, str], tmp_path: Path,
                                        where: str) -> None:
    target = tmp_path / "afile" if where == "a regular file" else Path("/dev/null")
    if where == "a regular file":
        target.write_text("keep me")
    line = _one_line_error(_run(sample, target))
    assert f"{target}: not a directory" in line
    if where == "a regular file":
        assert target.read_text() == "keep me"
    record("bad input", f"prodseg run --output {where}",
           without_dirs(line, tmp_path) + "; exit 2 before the reference is processed")


def test_foreign_directory_needs_force(sample: tuple[Path, Path, str], tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    line = _one_line_error(_run(sample, out))
    assert "not empty and not a prodseg output (holiday.jpg)" in line and "--force" in line
    assert sorted(p.name for p in out.iterdir()) == ["holiday.jpg"]
    done = _run(sample, out, "--force")
    assert done.returncode == 0, done.stderr
    assert (out / "holiday.jpg").read_bytes() == b"precious" and (out / "results.json").is_file()
    record("bad input", "prodseg run into a non-empty directory that is not a prodseg output",
           without_dirs(line, tmp_path) + "; with --force the run writes beside the files "
           "and keeps them")


def test_symlink_out_of_the_directory_is_refused(sample: tuple[Path, Path, str],
                                                 tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "masks").symlink_to(elsewhere)
    line = _one_line_error(_run(sample, out))
    assert "a symbolic link to" in line and "outside the output directory" in line
    assert list(elsewhere.iterdir()) == []
    record("bad input", "output directory whose masks/ is a symbolic link leading out of it",
           without_dirs(line, tmp_path) + "; nothing written there")


def test_second_writer_is_refused(sample: tuple[Path, Path, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputDir(out):
        line = _one_line_error(_run(sample, out))
    assert "another prodseg is writing here (pid " in line
    with OutputDir(out):  # released on exit: the next writer gets it
        pass
    record("fault", "two prodseg run into one directory at the same time",
           without_dirs(line, tmp_path).split(" (pid")[0] + "; the second is refused with "
           "exit 2 while the first holds the directory")


def test_rerun_with_fewer_matches_leaves_no_stale_files(sample: tuple[Path, Path, str],
                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    many = ("--similarity-threshold", "-1", "--top-k-matches", "3")
    assert _run(sample, out, *many).returncode == 0
    before = sorted(p.name for p in (out / "masks").iterdir())
    assert any(name.endswith("_2.png") for name in before)
    done = _run(sample, out, "--similarity-threshold", "-1", "--top-k-matches", "1")
    assert done.returncode == 0, done.stderr
    named = {m["mask"] for entry in json.loads((out / "results.json").read_text())["images"]
             for m in entry["matches"]}
    after = {f"masks/{p.name}" for p in (out / "masks").iterdir()}
    assert after == named and all(name.endswith("_0.png") for name in after)
    record("fault", "a rerun into the same directory with fewer matches",
           f"{len(before)} masks before, {len(after)} after: exactly the ones the new "
           "results.json names; no stale masks or cutouts")


def test_interrupted_rerun_leaves_no_mixed_results(sample: tuple[Path, Path, str],
                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _run(sample, out).returncode == 0
    old = json.loads((out / "results.json").read_text())["reference"]
    big_images = tmp_path / "big"
    reference, point = _render(big_images, "640x480", views=12)
    argv = [sys.executable, "-m", "prodseg", "run", "--images", str(big_images / "images"),
            "--reference", str(reference), "--ref-point", point, "--output", str(out),
            "--no-progress"]
    rerun = subprocess.Popen(argv, env={**os.environ, **CLASSIC}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and rerun.poll() is None:
        if _mask_size(out / "reference" / "mask.png") == (640, 480):  # the rerun is writing
            break
        time.sleep(0.02)
    rerun.send_signal(signal.SIGINT)
    rerun.communicate(timeout=120)
    with Image.open(out / "reference" / "mask.png") as mask:
        size = mask.size
    assert size == (640, 480)
    if (out / "results.json").exists():  # the rerun had finished: then all of it is new
        new = json.loads((out / "results.json").read_text())["reference"]
        assert (new["width"], new["height"]) == size
        outcome = "the rerun finished before the interrupt; results.json is the new run's"
    else:
        outcome = ("no results.json after the interrupt (the old one was removed before the "
                   "rerun wrote anything); reference/ is the new 640x480 run's")
    assert (old["width"], old["height"]) == (320, 240)
    record("fault", "SIGINT during a rerun into a directory holding a finished 320x240 job",
           outcome)


def _mask_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as mask:
            return mask.size
    except (OSError, ValueError):
        return None


def test_output_dir_invalidates_results_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "masks").mkdir()
    (tmp_path / "results.json").write_text("{}")
    (tmp_path / "masks" / "old_0.png").write_bytes(b"old")
    with OutputDir(tmp_path) as held:
        assert not (tmp_path / "results.json").exists()
        assert not (tmp_path / "masks").exists()
        held.store.put("masks/new_0.png", b"new")
    assert (tmp_path / "masks" / "new_0.png").read_bytes() == b"new"
    with pytest.raises(InputError, match="another prodseg is writing here"), \
            OutputDir(tmp_path), OutputDir(tmp_path):
        pass


@pytest.mark.parametrize("box", ["nan,nan,nan,nan", "-inf,-inf,inf,inf", "0,0,nan,100"])
@pytest.mark.parametrize("command", ["run", "submit"])
def test_prompts_must_be_finite(sample: tuple[Path, Path, str], tmp_path: Path, box: str,
                                command: str) -> None:
    images, reference, _ = sample
    out = tmp_path / "out"
    argv = ["--images", str(images), "--reference", str(reference), f"--ref-bbox={box}"]
    if command == "run":
        argv += ["--output", str(out)]
    # An unreachable broker: the prompt is refused first, so the message is about it.
    done = prodseg(command, *argv, env={**CLASSIC, "PRODSEG_BROKER_URL": "redis://127.0.0.1:9/0"})
    line = _one_line_error(done)
    assert "4 finite numbers" in line and box in line
    assert not out.exists()
    record("bad input", f"prodseg {command} --ref-bbox {box}", line)


def test_json_is_written_strictly() -> None:
    with pytest.raises(ValueError, match="Out of range float values") as refused:
        dumps({"score": float("nan")})
    assert dumps({"a": "ü"}) == '{"a": "ü"}'
    record("bad input", "a NaN or infinite number in a document being written",
           f"refused where it is written ('{refused.value}'): every document goes through "
           "prodseg.jsonio with allow_nan=False, so no invalid JSON is ever stored")


def test_user_folders_named_like_outputs_are_not_prodseg_s(tmp_path: Path) -> None:
    """A directory that only holds the user's own ``masks/`` is not prodseg's to empty."""
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "ground_truth.png").write_bytes(b"mine")
    with pytest.raises(InputError, match=r"not a prodseg output \(masks\)"):
        OutputDir(tmp_path).__enter__()
    with OutputDir(tmp_path, force=True) as held:
        held.store.put("masks/view_0.png", b"new")
    assert (tmp_path / "masks" / "ground_truth.png").read_bytes() == b"mine"
    assert not (tmp_path / LOCK_NAME).exists()  # still the user's: refused again without --force
    with pytest.raises(InputError, match="not a prodseg output"):
        OutputDir(tmp_path).__enter__()


def test_a_lock_link_or_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(outside)
    with pytest.raises(InputError, match="a symbolic link where prodseg keeps its lock"):
        OutputDir(out).__enter__()
    assert outside.read_text() == "keep"
    with pytest.raises(InputError, match="cannot write here"):
        OutputDir(Path("/proc/no-such-output")).__enter__()
    record("security", "a .prodseg.lock symbolic link planted in an output directory",
           "refused in one line; the file it points to is not written")
