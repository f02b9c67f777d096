"""The commands the documentation shows, read out of its fenced blocks.

A *command* is one logical line of a ``bash`` block (``\\`` continuations joined, a
here-document kept with its line), or a whole ``python`` block. Blocks of other kinds
(``csv``, ``yaml``, untagged trees of files) are data. Inline code spans name commands in
passing and are not read; a whole command line belongs in a ``bash`` block, and
:func:`untagged_command_lines` finds one that is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.imports import REPO

SHELL_BLOCKS = ("bash", "sh", "shell", "console")


def documents() -> list[Path]:
    """Every page whose commands are checked: the README, docs/ and docker/README.md."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
            REPO / "docker" / "README.md"]


@dataclass(frozen=True)
class Block:
    """One fenced block: its page (relative to the repository), kind and text."""

    doc: str
    kind: str
    text: str


@dataclass(frozen=True)
class Command:
    """One documented command: its page, the number of its block on that page (from 0),
    its kind (``bash`` or ``python``) and its text as shown."""

    doc: str
    block: int
    kind: str
    text: str

    @property
    def key(self) -> str:
        """The text without a trailing comment, whitespace collapsed: how lists name it."""
        if self.kind == "python":
            return self.text.strip()
        return " ".join(re.sub(r"\s+#\s.*$", "", self.text, flags=re.M).split())


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown page, in order."""
    found, kind, lines = [], None, []
    doc = str(path.relative_to(REPO))
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if kind is None:
                kind, lines = line[3:].strip(), []
            else:
                found.append(Block(doc, kind, "\n".join(lines)))
                kind = None
        elif kind is not None:
            lines.append(line)
    return found


def shell_commands(text: str) -> list[str]:
    """The logical lines of a shell block: continuations joined, comment-only and blank
    lines left out, a here-document kept with the line that opens it."""
    commands: list[str] = []
    lines = iter(text.replace("\\\n", " ").splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if heredoc:
            body = [line]
            for more in lines:
                body.append(more)
                if more.strip() == heredoc.group(1):
                    break
            line = "\n".join(body)
        commands.append(line.strip().removeprefix("$ "))
    return commands


def commands(paths: list[Path] | None = None) -> list[Command]:
    """Every documented command of ``paths`` (default: :func:`documents`)."""
    found = []
    for path in paths or documents():
        for number, block in enumerate(blocks(path)):
            if block.kind in SHELL_BLOCKS:
                found += [Command(block.doc, number, "bash", line)
                          for line in shell_commands(block.text)]
            elif block.kind == "python":
                found.append(Command(block.doc, number, "python", block.text))
    return found


def untagged_command_lines(paths: list[Path] | None = None) -> list[tuple[str, str]]:
    """``(page, line)`` for a ``prodseg`` or ``$`` line in a block that is not ``bash``:
    a command there would be neither run nor parsed."""
    found = []
    for path in paths or documents():
        for block in blocks(path):
            if block.kind in (*SHELL_BLOCKS, "python"):
                continue
            found += [(block.doc, line) for line in block.text.splitlines()
                      if re.match(r"\s*(\$ |prodseg )", line)]
    return found


def prodseg_words(command: Command) -> str | None:
    """The ``prodseg ...`` command line inside a shell command (``JOB=$(prodseg ...)``
    included), or None when it runs something else."""
    if command.kind != "bash":
        return None
    line = re.sub(r"\s+#\s.*$", "", command.text.splitlines()[0])
    match = re.search(r"(?:^|\$\()(prodseg\s[^)|>&]*)", line)
    return match.group(1).strip() if match else None
