"""The host's pip configuration, rewritten for ``docker build`` (scripts/compose-test.sh).

A build sees none of the host's files, so the indexes and wheel folders the host's pip
reads from its disk (``file://`` indexes, ``find-links`` folders) are served over HTTP on
the host's loopback instead, and the CA bundle is named where the build mounts it. The
result goes into the build as a BuildKit secret, never into an image layer.

    python scripts/pip_build_config.py --port PORT --out DIR

writes ``DIR/pip.conf`` and ``DIR/serve/<n>`` (links to the local folders' parents, for
``python -m http.server --directory DIR/serve``). Builds run with ``--network host``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

CA_IN_BUILD = "/run/secrets/pip-ca.crt"
"""Where the Dockerfiles mount the CA bundle (secret ``pip-ca.crt``)."""

LIST_KEYS = ("extra-index-url", "find-links")
"""The pip settings that hold a list of places to read packages from."""


def host_settings() -> dict[str, str]:
    """pip's merged configuration (files, then ``PIP_*`` variables), ``key -> value``."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                            capture_output=True, text=True, check=True).stdout
    found: dict[str, str] = {}
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        found[name.split(".", 1)[-1]] = value.strip().strip("'\"")
    for variable, value in os.environ.items():
        if variable.startswith("PIP_") and value:
            found[variable[4:].lower().replace("_", "-")] = value
    return found


def local_folder(place: str) -> Path | None:
    """The folder on this machine that ``place`` (a URL or a path) names, if it is one."""
    if place.startswith("file://"):
        return Path(unquote(urlsplit(place).path))
    if "://" not in place:
        return Path(place)
    return None


def build_config(settings: dict[str, str], port: int, serve: Path) -> str:
    """pip.conf for the build: local places served from ``serve`` on 127.0.0.1:``port``."""
    served: dict[Path, str] = {}

    def reachable(place: str, index: bool) -> str:
        folder = local_folder(place)
        if folder is None:
            return place
        folder = folder.resolve()
        if folder not in served:
            # An index's parent is served, so that its relative links to ../../files/ (a
            # `simple` folder beside a `files` one) still resolve; a find-links folder
            # is served alone.
            name = str(len(served))
            (serve / name).symlink_to(folder.parent if index else folder,
                                      target_is_directory=True)
            tail = f"{folder.name}/" if index else ""
            served[folder] = f"http://127.0.0.1:{port}/{name}/{tail}"
        return served[folder]

    # A random first line: the compose test looks for it in every image layer.
    lines = [f"# build secret {secrets.token_hex(16)}", "[global]"]
    if "index-url" in settings:
        lines.append(f"index-url = {reachable(settings['index-url'], index=True)}")
    for key in LIST_KEYS:
        if key in settings:
            places = [reachable(p, index=key != "find-links") for p in settings[key].split()]
            lines.append(f"{key} = {' '.join(places)}")
    if "cert" in settings:
        lines.append(f"cert = {CA_IN_BUILD}")
    if "default-timeout" in settings or "timeout" in settings:
        lines.append(f"timeout = {settings.get('default-timeout', settings.get('timeout'))}")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Write ``--out``/pip.conf and ``--out``/serve/; print the CA bundle's path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    serve = args.out / "serve"
    serve.mkdir(parents=True, exist_ok=True)
    settings = host_settings()
    (args.out / "pip.conf").write_text(build_config(settings, args.port, serve))
    print(settings.get("cert", "/etc/ssl/certs/ca-certificates.crt"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
