"""The distribution: the user's folders install under the one import name ``prodseg``."""

from __future__ import annotations

import zipfile

import pytest
import tomllib

from tests.support.imports import FOLDERS, REPO, modules
from tests.support.packaging import build_wheel


def _declared_packages() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {k: v for k, v in config["package-dir"].items()} == {
        package: folder for folder, package in FOLDERS.items()}
    return list(config["packages"])


def test_every_package_folder_is_declared() -> None:
    found = sorted(name for name, path in modules().items() if path.name == "__init__.py")
    assert sorted(_declared_packages()) == found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built from the tracked files alone (no stale build/ folder)."""
    return zipfile.ZipFile(build_wheel(tmp_path_factory.mktemp("build")))


def test_the_wheel_installs_prodseg_only(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert tops == {"prodseg", next(t for t in tops if t.endswith(".dist-info"))}


def test_the_wheel_holds_every_module_under_its_installed_name(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = {name.replace(".", "/") + ("/__init__.py" if path.name == "__init__.py" else ".py")
                for name, path in modules().items()}
    assert expected <= names
    entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt")))
    assert b"prodseg = prodseg.producer.cli.main:main" in entry_points
