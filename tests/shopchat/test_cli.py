"""The CLI: every command documented in the README; clear errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from bot.settings import PROJECT_DIR
from shopchat.cli import cli

SHOPCHAT = str(Path(sys.executable).parent / "shopchat")


def command_paths(group: click.Group, prefix: str = "shopchat") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
        else:
            paths.append(path)
    return paths


def test_every_command_is_in_the_readme() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    missing = [path for path in command_paths(cli) if path not in readme]
    assert not missing, f"undocumented commands: {missing}"


def test_eval_nlu_on_a_missing_file_says_so() -> None:
    completed = subprocess.run([SHOPCHAT, "eval", "nlu", "--data", "/nonexistent.csv"],
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 1
    assert "/nonexistent.csv: no such file." in completed.stderr
    assert "Traceback" not in completed.stderr


def test_bad_configuration_is_reported_without_a_traceback() -> None:
    completed = subprocess.run([SHOPCHAT, "train"], capture_output=True, text=True, check=False,
                               env={"SHOPCHAT_PORT": "not-a-port", "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 1
    assert "Bad configuration" in completed.stderr and "port" in completed.stderr
    assert "Traceback" not in completed.stderr
