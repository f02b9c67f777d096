"""Every ``prodseg`` command the documentation shows parses with the real parser, so that
none goes stale when a flag is renamed; ``tests/integration/test_docs_commands_run.py``
then runs them. Commands are the lines of ``bash`` blocks (``tests/support/doc_commands``)."""

from __future__ import annotations

import shlex

import pytest

from prodseg.producer.cli.main import build_parser
from tests.support.doc_commands import commands, documents, prodseg_words, untagged_command_lines

SHOWN = [(c.doc, words) for c in commands() if (words := prodseg_words(c)) is not None]


def test_the_docs_show_commands() -> None:
    assert len(SHOWN) >= 25
    assert {doc for doc, _ in SHOWN} >= {"README.md", "docs/user-guide.md",
                                          "docs/distributed.md", "docs/catalogs.md"}


def test_every_page_is_read() -> None:
    pages = {c.doc for c in commands()} | {str(p) for p in documents()}
    assert {"README.md", "docker/README.md", "docs/reliability.md"} <= pages
    assert any(p.endswith("docs/performance.md") for p in pages)


def test_no_command_hides_in_a_block_that_is_not_bash() -> None:
    assert untagged_command_lines() == []


@pytest.mark.parametrize(("doc", "line"), SHOWN, ids=[f"{d}: {c}" for d, c in SHOWN])
def test_each_command_shown_parses(doc: str, line: str) -> None:
    words = shlex.split(line)[1:]
    try:
        build_parser().parse_args(words)
    except SystemExit as exit_:
        pytest.fail(f"{doc}: `{line}` does not parse (exit {exit_.code})")
