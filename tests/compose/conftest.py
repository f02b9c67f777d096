"""The compose tests run only when asked for: ``pytest -m compose`` (scripts/compose-test.sh).

They need a Docker engine, the images scripts/compose-test.sh builds, and the ports the
stack publishes on 127.0.0.1; a plain ``pytest`` run skips them.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``compose`` unless the ``-m`` expression names the marker."""
    if "compose" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="starts the compose stack: pytest -m compose "
                                   "(scripts/compose-test.sh builds its images first)")
    for item in items:
        if item.get_closest_marker("compose") is not None:
            item.add_marker(skip)
