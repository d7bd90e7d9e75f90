"""Benchmark: `shopchat train` from scratch, and what a retrain with nothing changed costs.

Both in the same run, into a temporary models directory (the live model is not
touched): a forced training from scratch (Rasa's own cache bypassed), then the
same call again, which the training fingerprint turns into a no-op. Repeated
``--runs`` times; prints a table and writes bench/results/train.json. Not a test:
nothing here asserts a speed.

    .venv/bin/python bench/train.py [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.settings import PROJECT_DIR, Settings
from shopchat.training import train

RESULTS = PROJECT_DIR / "bench" / "results" / "train.json"


def _seconds(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"runs": len(ordered), "median_s": round(statistics.median(ordered), 1),
            "max_s": round(ordered[-1], 1)}


def measure(runs: int) -> dict[str, Any]:
    scratch: list[float] = []
    unchanged: list[float] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="shopchat-bench-train-") as tmp:
            settings = Settings(models_dir=Path(tmp))
            start = time.perf_counter()
            train(settings, force=True, guard=False)
            scratch.append(time.perf_counter() - start)
            start = time.perf_counter()
            result = train(settings)
            unchanged.append(time.perf_counter() - start)
            assert result.skipped, "an unchanged project retrained"
    return {"from_scratch": _seconds(scratch), "unchanged": _seconds(unchanged)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="trainings from scratch (default 1)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    figures = {"cores": os.cpu_count(), "machine": platform.machine(),
               "python": platform.python_version(), **measure(args.runs)}
    table = Table(title=f"shopchat train ({figures['cores']} cores)")
    for column in ("case", "runs", "median s", "max s"):
        table.add_column(column)
    for case in ("from_scratch", "unchanged"):
        row = figures[case]
        table.add_row(case.replace("_", " "), str(row["runs"]), str(row["median_s"]),
                      str(row["max_s"]))
    Console().print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
