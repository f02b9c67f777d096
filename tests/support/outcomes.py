"""The fault and bad-input table of ``docs/reliability.md``, written by the tests that try it.

A test that tries a fault or a bad input calls :func:`record` with what it observed (the
error message it got, the job's end state, the counts it checked), *after* its
assertions passed. At the end of the session ``tests/conftest.py`` writes every recorded
row to ``test-artifacts/reliability.md`` (merged with the rows of earlier runs, so a
partial run updates only its own rows); ``python -m tests.support.outcomes docs/reliability.md``
copies that table into that page between its two markers. So the table shows what the tests
saw, not what someone remembered.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "reliability.md"
"""The page that shows the table."""
BEGIN = "<!-- reliability-table: begin (python -m tests.support.outcomes docs/reliability.md) -->"
END = "<!-- reliability-table: end -->"
KINDS = ("fault", "bad input", "security")

_rows: dict[tuple[str, str], tuple[str, str]] = {}


def artifacts_dir() -> Path:
    """Where test runs leave files for people (``$PRODSEG_TEST_ARTIFACTS``, else
    ``test-artifacts/`` in the repository)."""
    return Path(os.environ.get("PRODSEG_TEST_ARTIFACTS") or REPO / "test-artifacts")


def record(kind: str, case: str, outcome: str, test: str | None = None) -> None:
    """Remember one tried case and what happened.

    Args:
        kind: one of :data:`KINDS`.
        case: what was tried, e.g. ``"zero-byte file"``.
        outcome: what the test observed; temporary directories should already be cut
            out (see :func:`without_dirs`).
        test: the test's file, e.g. ``"tests/test_images.py"``; taken from the caller
            when omitted.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if test is None:
        caller = Path(sys._getframe(1).f_code.co_filename)
        test = str(caller.relative_to(REPO)) if caller.is_relative_to(REPO) else caller.name
    _rows[(kind, case)] = (" ".join(outcome.split()), test)


def without_dirs(text: str, *dirs: os.PathLike[str] | str) -> str:
    """``text`` with each of ``dirs`` (and a separator after it) removed."""
    for d in dirs:
        text = text.replace(f"{os.fspath(d)}{os.sep}", "").replace(os.fspath(d), "")
    return text


def recorded() -> dict[tuple[str, str], tuple[str, str]]:
    """Every row recorded so far in this process, by ``(kind, case)``."""
    return dict(_rows)


def table(rows: dict[tuple[str, str], tuple[str, str]]) -> str:
    """A Markdown table of ``rows``: faults first, then bad inputs, then security."""
    lines = ["| kind | tried | outcome seen by the test | test |", "|---|---|---|---|"]
    order = sorted(rows, key=lambda r: (KINDS.index(r[0]), r[1].lower()))
    for kind, case in order:
        outcome, test = rows[(kind, case)]
        cells = [kind, case, outcome, f"`{test}`"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_artifact(rows: dict[tuple[str, str], tuple[str, str]]) -> Path:
    """Merge ``rows`` into ``reliability.json`` in :func:`artifacts_dir` (so running a
    few tests updates their rows and keeps the others), write the table of all of them
    to ``reliability.md`` and return its path. Delete the folder for a fresh table."""
    folder = artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "reliability.json"
    merged: dict[tuple[str, str], tuple[str, str]] = {}
    if store.is_file():
        for kind, case, outcome, test in json.loads(store.read_text(encoding="utf-8")):
            merged[(kind, case)] = (outcome, test)
    merged.update(rows)
    _write(store, json.dumps([[*key, *value] for key, value in sorted(merged.items())],
                             ensure_ascii=False, indent=1))
    path = folder / "reliability.md"
    _write(path, table(merged))
    return path


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def update_page(page: Path, generated: str) -> str:
    """``page``'s text with the block between :data:`BEGIN` and :data:`END` replaced."""
    text = page.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{page}: no '{BEGIN}' ... '{END}' block to replace")
    return pattern.sub(lambda _: f"{BEGIN}\n{generated}{END}", text)


def main(argv: list[str]) -> int:
    """``python -m tests.support.outcomes docs/reliability.md``: copy the last run's table
    into that page (any page holding the two markers)."""
    if len(argv) != 1:
        print("usage: python -m tests.support.outcomes docs/reliability.md", file=sys.stderr)
        return 2
    source = artifacts_dir() / "reliability.md"
    if not source.is_file():
        print(f"{source}: not found; run the tests first (scripts/test.sh)", file=sys.stderr)
        return 1
    page = Path(argv[0])
    page.write_text(update_page(page, source.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"{page}: table updated from {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
