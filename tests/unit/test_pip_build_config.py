"""scripts/pip_build_config.py: the host's pip settings, rewritten for a docker build.

Local indexes and wheel folders become loopback URLs of the folders the build may read
(an index's parent, so its relative ``../../files/`` links resolve); remote places stay;
the CA bundle is named where the build mounts it; the file starts with a random line the
compose test looks for in image layers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from tests.support.imports import REPO


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pip_build_config",
                                                  REPO / "scripts" / "pip_build_config.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_local_places_are_served_and_remote_ones_kept(tmp_path: Path) -> None:
    script = _script()
    index = tmp_path / "pypi" / "simple"
    wheels = tmp_path / "wheels"
    index.mkdir(parents=True)
    wheels.mkdir()
    serve = tmp_path / "serve"
    serve.mkdir()
    text = script.build_config({
        "extra-index-url": f"file://{index} https://mirror.example/simple",
        "find-links": str(wheels),
        "cert": "/etc/ssl/certs/host-bundle.pem",
    }, 4711, serve)
    lines = text.splitlines()
    assert lines[0].startswith("# build secret ") and len(lines[0]) > len("# build secret ") + 16
    assert ("extra-index-url = http://127.0.0.1:4711/0/simple/ "
            "https://mirror.example/simple") in lines
    assert "find-links = http://127.0.0.1:4711/1/" in lines
    assert f"cert = {script.CA_IN_BUILD}" in lines
    assert (serve / "0").resolve() == index.parent.resolve()  # ../../files/ resolves
    assert (serve / "1").resolve() == wheels.resolve()  # a wheel folder alone
    assert "host-bundle" not in text


def test_each_build_config_has_its_own_marker(tmp_path: Path) -> None:
    script = _script()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = script.build_config({}, 1, tmp_path / "a").splitlines()[0]
    second = script.build_config({}, 1, tmp_path / "b").splitlines()[0]
    assert first != second
