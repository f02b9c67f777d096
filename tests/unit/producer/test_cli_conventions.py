"""The command line follows the field's conventions, checked on the real parser tree.

``-v``/``-q`` anywhere, ``--json`` where scripts read, ``--version``, shell completion,
choices listed, booleans as ``--x/--no-x``, metavars that say what a value is, help on
every positional, and ``run`` offering only the settings that act on an in-process run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from prodseg import __version__
from prodseg.producer.cli.main import EXIT_PIPE_CLOSED, build_parser, log_level, main
from prodseg.settings import CONNECTION, WORKER, Settings, setting_flag, settings_with
from tests.support.environment import prodseg

Tree = Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]


def parsers(parser: argparse.ArgumentParser | None = None, path: tuple[str, ...] = ()) -> Tree:
    """Every parser of the tree, with the command words that reach it."""
    parser = parser or build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, (*path, name))


COMMANDS = [path for path, p in parsers() if not any(
    isinstance(a, argparse._SubParsersAction) for a in p._actions)]


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def _parser(*words: str) -> argparse.ArgumentParser:
    return dict(parsers())[words]


def test_every_command_has_verbose_and_quiet() -> None:
    for path in COMMANDS:
        options = _options(_parser(*path))
        assert {"-v", "--verbose", "-q", "--quiet"} <= set(options), path


@pytest.mark.parametrize("argv", [
    ["-v", "status", "job-1"], ["status", "-v", "job-1"], ["status", "job-1", "-v"]])
def test_verbose_anywhere_on_the_line(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert log_level(args) == logging.INFO and args.job == "job-1"


def test_quiet_and_very_verbose() -> None:
    parser = build_parser()
    assert log_level(parser.parse_args(["sample", "-o", "x", "-q"])) == logging.ERROR
    assert log_level(parser.parse_args(["-vv", "sample", "-o", "x"])) == logging.DEBUG
    assert log_level(parser.parse_args(["sample", "-o", "x"])) == logging.WARNING


def test_sample_takes_verbose_after_its_flags(tmp_path: Path) -> None:
    """The line the issue quotes: ``prodseg sample ... -v`` was 'unrecognized arguments'."""
    done = prodseg("sample", "--output", str(tmp_path), "--views", "1", "--shelf-only", "0",
                   "--size", "64x48", "-v")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("words", [("status",), ("watch",), ("cancel",), ("submit",),
                                   ("resume",), ("run",), ("catalog", "status"),
                                   ("models", "list")])
def test_json_where_scripts_read(words: tuple[str, ...]) -> None:
    assert "--json" in _options(_parser(*words))


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"prodseg {__version__}"


@pytest.mark.parametrize(("argv", "code"), [
    (["models", "list"], EXIT_PIPE_CLOSED),
    (["completion", "bash"], EXIT_PIPE_CLOSED),
    (["--help"], 0),  # argparse drops what it cannot write, and exits 0 itself
])
def test_a_pipe_closed_early_ends_the_command_quietly(argv: list[str], code: int) -> None:
    """``prodseg models list | head -1``: the reader is gone; no BrokenPipe traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already gone, as head does after its line
    try:
        done = subprocess.run([sys.executable, "-m", "prodseg", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == code


def test_models_list_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sam2").mkdir()
    (tmp_path / "sam2" / "sam2.1_hiera_tiny.pt").write_bytes(b"x" * 10)
    assert main(["models", "list", "--cache-dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    states = {m["model"]: m["state"] for m in doc["models"]}
    assert states["hiera_tiny"] == "wrong-size" and states["hiera_large"] == "missing"
    assert doc["cache"] == str(tmp_path)


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_know_the_commands_and_flags(shell: str) -> None:
    done = prodseg("completion", shell)
    assert done.returncode == 0, done.stderr
    for word in ("submit", "catalog", "--similarity-threshold", "--compile-models",
                 "hiera_large", "grid"):
        assert word in done.stdout, word


def test_the_bash_completion_script_is_valid_bash(tmp_path: Path) -> None:
    script = tmp_path / "prodseg.bash"
    script.write_text(prodseg("completion", "bash").stdout)
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_choice_settings_list_their_choices() -> None:
    options = _options(_parser("run"))
    for name, field in Settings.model_fields.items():
        flag = setting_flag(name)
        if flag not in options:
            continue
        if "Literal" in str(field.annotation):
            assert options[flag].choices, flag
    assert list(options["--proposals"].choices) == ["grid", "guided"]
    assert "hiera_large" in list(options["--sam2-checkpoint"].choices)
    # Aliases the setting takes still pass the parser; the setting checks the rest.
    args = build_parser().parse_args(["run", "-i", "a", "-r", "a", "-o", "o",
                                      "--dinov2-model", "vit-l/14"])
    assert args.setting_dinov2_model == "vit-l/14"
    help_text = _parser("run").format_help()
    assert "vit_large_patch14_reg4_dinov2" in help_text and "{grid,guided}" in help_text


def test_booleans_are_x_and_no_x() -> None:
    parser = build_parser()
    base = ["run", "-i", "a", "-r", "a", "-o", "o"]
    assert parser.parse_args(base).setting_compile_models is None
    assert parser.parse_args([*base, "--compile-models"]).setting_compile_models is True
    assert parser.parse_args([*base, "--no-compile-models"]).setting_compile_models is False
    usage = _parser("run").format_usage()
    assert "--compile-models | --no-compile-models" in usage
    assert "MODELS" not in usage


def test_metavars_say_what_a_value_is() -> None:
    """No metavar is argparse's guess from the flag's last word."""
    guessed = []
    for path, parser in parsers():
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0 or action.choices is not None:
                continue
            if action.metavar is None:
                guessed.append((path, action.option_strings[0]))
    assert not guessed
    options = _options(_parser("run"))
    assert options["--similarity-threshold"].metavar == "X"
    assert options["--sam2-points-per-side"].metavar == "N"
    assert options["--model-cache-dir"].metavar == "DIR"
    assert _options(_parser("submit"))["--broker-url"].metavar == "URL"
    assert _options(_parser("worker"))["--task-time-limit-s"].metavar == "SECONDS"


def test_every_positional_and_option_has_help() -> None:
    missing = [(path, action.dest) for path, parser in parsers() for action in parser._actions
               if not action.help and not isinstance(action, argparse._SubParsersAction)]
    assert not missing


def test_run_offers_only_settings_that_act_on_an_in_process_run() -> None:
    help_text = _parser("run").format_help()
    for name in settings_with(CONNECTION) | settings_with(WORKER):
        assert setting_flag(name) + " " not in help_text, name
    submit, worker = _parser("submit").format_help(), _parser("worker").format_help()
    assert "--broker-url" in submit and "--s3-bucket" in submit
    assert "--task-time-limit-s" in worker and "--broker-visibility-timeout-s" in worker
    assert "--similarity-threshold" in help_text and "--device" in help_text
