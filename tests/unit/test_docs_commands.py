"""Every ``prodseg`` command the README shows parses with the real parser, so that none
goes stale when a flag is renamed; ``--help`` of each command shown runs."""

from __future__ import annotations

import re
import shlex

import pytest

from prodseg.producer.cli.main import build_parser
from tests.support.imports import REPO

DOCS = [REPO / "README.md", REPO / "docker" / "README.md"]


def _lines(text: str) -> list[str]:
    """Command lines of the fenced blocks (not python or csv); inline spans name commands
    in passing (`prodseg run`) and are not whole command lines."""
    out, fence, block = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if fence is None:
                fence, block = line[3:].strip(), []
            else:
                if fence not in ("python", "csv"):
                    out += "\n".join(block).replace("\\\n", " ").splitlines()
                fence = None
        elif fence is not None:
            block.append(line)
    return out


def shown_commands() -> list[tuple[str, str]]:
    """``(file, command line)`` for each whole ``prodseg ...`` command the docs show;
    a line with ``...`` or ``[`` is a pattern, not a command."""
    found = []
    for doc in DOCS:
        for line in _lines(doc.read_text(encoding="utf-8")):
            line = re.split(r" #| > | \| | && ", line)[0].strip().removeprefix("$ ")
            if line.startswith("prodseg ") and not re.search(r"\.\.\.|…|\[|<", line):
                found.append((doc.name, line))
    return found


COMMANDS = shown_commands()


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize(("doc", "line"), COMMANDS, ids=[c for _, c in COMMANDS])
def test_each_command_shown_parses(doc: str, line: str) -> None:
    words = shlex.split(line)[1:]
    try:
        build_parser().parse_args(words)
    except SystemExit as exit_:
        pytest.fail(f"{doc}: `{line}` does not parse (exit {exit_.code})")
