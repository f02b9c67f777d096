"""``prodseg monitor``: no flag takes a password (a command line is readable in /proc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodseg.errors import InputError
from prodseg.producer.cli.monitor import basic_auth_from_file
from tests.support.environment import prodseg


def test_no_flag_takes_a_password() -> None:
    done = prodseg("monitor", "--basic-auth", "ops:s3cret")
    assert done.returncode == 2 and "--basic-auth-file" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    assert "--basic-auth-file" in prodseg("monitor", "--help").stdout


def test_the_basic_auth_file(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("# ops team\nops:s3cret\n\nana:pa:ss\n")
    assert basic_auth_from_file(users) == "ops:s3cret,ana:pa:ss"
    for text, problem in (("ops\n", "entry 1 is not USER:PASSWORD"), (":pw\n", "entry 1"),
                          ("ops:\n", "entry 1"), ("a:b,c:d\n", "no commas"),
                          ("# none\n", "no USER:PASSWORD line")):
        users.write_text(text)
        with pytest.raises(InputError, match=problem):
            basic_auth_from_file(users)
    with pytest.raises(InputError, match="cannot read"):
        basic_auth_from_file(tmp_path / "missing.txt")


def test_a_bad_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = prodseg("monitor", "--basic-auth-file", str(tmp_path / "missing.txt"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "missing.txt" in done.stderr
