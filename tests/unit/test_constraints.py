"""One constraints file, the versions tested: CI, the demo and the Docker images use it."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

from packaging.utils import canonicalize_name

from tests.support.imports import REPO


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            assert pinned, f"constraints.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = pinned
    return pins


def test_the_test_environment_is_what_constraints_txt_pins() -> None:
    """Each pin is the version installed here, so what ships is what was tested."""
    wrong = {}
    for name, pinned in _pins().items():
        try:
            found = version(name)
        except PackageNotFoundError:
            found = "not installed"
        if found.split("+")[0] != pinned:
            wrong[name] = (pinned, found)
    assert not wrong, f"run scripts/constraints.sh (pinned, installed): {wrong}"


def test_every_dependency_of_every_extra_is_pinned() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for deps in project["optional-dependencies"].values():
        wanted += [d for d in deps if not d.startswith("prodseg[")]
    pins = _pins()
    names = {canonicalize_name(re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0]) for d in wanted}
    assert names - set(pins) == set()


def test_ci_the_demo_and_the_images_install_from_it() -> None:
    env = (REPO / "scripts/env.sh").read_text()
    assert '-c "$ROOT/constraints.txt"' in env
    assert "source" in (REPO / "scripts/demo.sh").read_text()  # the demo sets up through env.sh
    for dockerfile in sorted((REPO / "docker").glob("*Dockerfile*")):
        text = dockerfile.read_text()
        assert re.search(r"COPY [^\n]*constraints\.txt /opt/prodseg/", text), dockerfile.name
        assert re.search(r"pip install [^\n]*-c /opt/prodseg/constraints\.txt", text), dockerfile


def test_the_readme_states_the_tested_torch() -> None:
    assert f"torch {_pins()['torch']}" in (REPO / "README.md").read_text()
