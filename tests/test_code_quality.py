"""The linter and the type checker are part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.settings import PROJECT_DIR

BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)


def test_ruff_finds_nothing() -> None:
    completed = run(str(BIN / "ruff"), "check", ".")
    assert completed.returncode == 0, completed.stdout[-4000:]


def test_mypy_strict_passes() -> None:
    completed = run(str(BIN / "mypy"))
    assert completed.returncode == 0, completed.stdout[-4000:]
