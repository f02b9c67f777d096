"""A command whose extra is not installed says which, in one line, and exits 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from prodseg.extras import EXTRAS, MissingExtraError, missing_extra, require


def _without(modules: list[str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``prodseg argv`` in a process where ``modules`` cannot be imported."""
    code = ("import sys\n"
            f"for m in {modules!r}: sys.modules[m] = None\n"
            "from prodseg.producer.cli.main import main\n"
            f"sys.exit(main({argv!r}))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("blocked", "argv", "extra"), [
    (["torch"], ["run", "-i", "a.jpg", "-r", "a.jpg", "--ref-point", "1,1", "-o", "out"],
     "worker"),
    (["torch"], ["worker"], "worker"),
    (["matplotlib"], ["view", "."], "gui"),
    (["matplotlib"], ["select", "-i", "a.jpg", "--submit"], "gui"),
    (["torch"], ["select", "-i", "a.jpg", "-o", "out"], "worker"),
    (["faiss"], ["catalog", "lookup", "cat-1", "a.jpg", "--point", "1,1"], "catalog"),
    # Flower: without the extra Celery itself would say "No such command 'flower'".
    (["flower"], ["monitor", "--broker-url", "redis://127.0.0.1:1/0"], "monitor"),
])
def test_the_missing_extra_is_named_in_one_line(blocked: list[str], argv: list[str],
                                                extra: str) -> None:
    done = _without(blocked, argv)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"needs the [{extra}] extra" in done.stderr
    assert f"pip install 'prodseg[{extra}]'" in done.stderr


def test_commands_of_the_client_need_no_extra() -> None:
    blocked = sorted({m for modules in EXTRAS.values() for m in modules})
    done = _without(blocked, ["status", "job-1", "--broker-url", "redis://127.0.0.1:1/0"])
    assert done.returncode == 2
    assert "cannot reach the broker" in done.stderr and "extra" not in done.stderr


def test_an_import_failure_of_an_extra_package_becomes_its_line() -> None:
    try:
        import pillow_heif_absent_for_the_test  # type: ignore[import-not-found]  # noqa: F401
    except ModuleNotFoundError as error:
        assert missing_extra(error, "x") is None  # not an extra's package: re-raised
    error = ModuleNotFoundError("No module named 'cv2'", name="cv2")
    found = missing_extra(error, "prodseg sample")
    assert isinstance(found, MissingExtraError) and found.extra == "worker"
    assert str(found) == ("prodseg sample needs the [worker] extra (opencv-python-headless "
                          "is not installed): pip install 'prodseg[worker]'")


def test_require_passes_when_the_extra_is_installed() -> None:
    for extra in EXTRAS:
        require(extra, "the test environment")  # the dev extra holds them all
