"""Inputs that used to give a traceback, hang or pass silently: now one line, or a warning.

Each case runs the real ``prodseg`` command (classic backend: seconds, no weights).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from prodseg.settings import unknown_variables
from prodseg.storage.manifest import input_key
from tests.support.environment import prodseg
from tests.support.outcomes import record, without_dirs

CLASSIC = {"PRODSEG_BACKEND": "classic"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    out = tmp_path_factory.mktemp("sample")
    done = prodseg("sample", "--output", str(out), "--views", "3", "--shelf-only", "0",
                   "--size", "320x240")
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "sample.json").read_text())
    x, y = doc["reference_point"]
    return out / "images", out / doc["reference"], f"{x},{y}"


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize("command", ["status", "watch", "fetch", "cancel", "resume"])
def test_job_ids_that_leave_jobs_are_refused(command: str) -> None:
    extra = ["--output", "/nonexistent/out"] if command == "fetch" else []
    line = _one_line_error(prodseg(command, "../../etc", *extra,
                                   env={"PRODSEG_BROKER_URL": "redis://127.0.0.1:9/0"}))
    assert "invalid job id '../../etc'" in line
    record("bad input", f"prodseg {command} ../../etc", line)


@pytest.mark.parametrize(("args", "words"), [
    (["--views", "0"], "argument --views: expected a whole number >= 1, got '0'"),
    (["--size", "20x20"], "the image must be at least 32x32"),
])
def test_sample_counts_and_sizes(tmp_path: Path, args: list[str], words: str) -> None:
    line = _one_line_error(prodseg("sample", "--output", str(tmp_path / "s"), *args))
    assert words in line
    record("bad input", f"prodseg sample {' '.join(args)}", line)


def test_gif_in_a_folder_is_read(sample: tuple[Path, Path, str], tmp_path: Path) -> None:
    images, reference, point = sample
    folder = tmp_path / "with-gif"
    folder.mkdir()
    for path in images.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    view = sorted(images.glob("view_*.jpg"))[-1]
    Image.open(view).convert("P").save(folder / "extra.gif")
    out = tmp_path / "out"
    done = prodseg("run", "--images", str(folder), "--reference", str(folder / reference.name),
                   "--ref-point", point, "--output", str(out), "--no-progress", env=CLASSIC)
    assert done.returncode == 0, done.stderr
    ids = {e["image"] for e in json.loads((out / "results.json").read_text())["images"]}
    assert "extra" in ids
    record("bad input", "a .gif inside an --images folder",
           f"read with the others ({len(ids)} targets, 'extra.gif' among them)")


@pytest.mark.parametrize("special", ["a FIFO", "/dev/zero", "a file over max_image_bytes"])
def test_only_regular_files_of_bounded_size_are_read(sample: tuple[Path, Path, str],
                                                    tmp_path: Path, special: str) -> None:
    images, reference, point = sample
    env = dict(CLASSIC)
    if special == "a FIFO":
        target = tmp_path / "pipe.jpg"
        os.mkfifo(target)
    elif special == "/dev/zero":
        target = Path("/dev/zero")
    else:
        target = images  # the reference among them is over the limit too
        env["PRODSEG_MAX_IMAGE_BYTES"] = "1000"
    out = tmp_path / "out"
    given = [str(target)] if target == images else [str(target), str(images)]
    done = prodseg("run", "--images", *given, "--reference", str(reference),
                   "--ref-point", point, "--output", str(out), "--no-progress", env=env)
    if special == "a file over max_image_bytes":  # the reference too is over the limit
        line = _one_line_error(done)
        assert "bytes exceeds the limit of 1000 (setting max_image_bytes)" in line
        outcome = without_dirs(line, images)
    else:
        assert done.returncode == 1, done.stderr  # that image failed, the others ran
        entry = next(e for e in json.loads((out / "results.json").read_text())["images"]
                     if e["source"] == str(target))
        assert "is not a regular file" in entry["error"]
        outcome = without_dirs(entry["error"], tmp_path) + "; the other images were matched"
    record("bad input", f"{special} given as an image", outcome)


def test_misspelt_variables_are_warned_about(sample: tuple[Path, Path, str],
                                            tmp_path: Path) -> None:
    images, reference, point = sample
    done = prodseg("run", "--images", str(images), "--reference", str(reference),
                   "--ref-point", point, "--output", str(tmp_path / "out"), "--no-progress",
                   env={**CLASSIC, "PRODSEG_SIMILARITY_TRESHOLD": "0.99"})
    assert done.returncode == 0, done.stderr
    warning = ("prodseg: warning: PRODSEG_SIMILARITY_TRESHOLD is not a prodseg setting and is "
               "ignored; did you mean PRODSEG_SIMILARITY_THRESHOLD?")
    assert done.stderr.count(warning) == 1
    assert unknown_variables({"PRODSEG_DEVICE": "cpu", "PRODSEG_ENV_FILE": "x"}) == []
    record("bad input", "a misspelt variable (PRODSEG_SIMILARITY_TRESHOLD=0.99)",
           warning.removeprefix("prodseg: warning: ") + " (once, on stderr; the run goes on)")


def test_odd_file_suffixes_make_valid_keys() -> None:
    assert input_key("j1", "pic", ".jp\ng") == "jobs/j1/inputs/pic"
    assert input_key("j1", "pic", ".JPG") == "jobs/j1/inputs/pic.jpg"
    record("bad input", "prodseg submit --images $'pic.jp\\ng' (a newline in the suffix)",
           "uploaded as inputs/pic (the odd suffix left out; images are decoded by content)")


def test_no_secret_reaches_a_local_run(sample: tuple[Path, Path, str], tmp_path: Path) -> None:
    images, reference, point = sample
    out = tmp_path / "out"
    env = {**CLASSIC, "PRODSEG_BROKER_URL": "redis://:redis-pw-1234@broker.invalid:6379/0",
           "PRODSEG_S3_ENDPOINT_URL": "http://s3user:s3-pw-5678@s3.invalid:9000",
           "AWS_SECRET_ACCESS_KEY": "aws-secret-9012"}
    done = prodseg("run", "--images", str(images), "--reference", str(reference),
                   "--ref-point", point, "--output", str(out), "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) > 5
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert "broker_url" not in settings and "s3_endpoint_url" not in settings
    for secret in ("redis-pw-1234", "s3-pw-5678", "s3user", "aws-secret-9012"):
        assert secret not in done.stdout + done.stderr
        assert not [p for p in written if secret.encode() in p.read_bytes()]
    record("security", "PRODSEG_BROKER_URL with a password and an S3 endpoint with "
           "user:password@ on prodseg run",
           f"neither is in any of the {len(written)} files written nor in the output; "
           "results.json records job settings only")
