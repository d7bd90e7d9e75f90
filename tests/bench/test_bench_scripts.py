"""The benchmarks keep working: each runs on a tiny load and writes its JSON (no speed asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import PROJECT_DIR


@pytest.mark.slow
def test_agent_relay_bench_runs_and_reports_both_servers(tmp_path: Path) -> None:
    output = tmp_path / "relay.json"
    completed = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "bench" / "agent_relay.py"), "--shoppers", "12",
         "--agents", "3", "--messages", "30", "--rate", "100", "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=False, cwd=PROJECT_DIR,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["machine"]["cores"] >= 1
    for server in ("gateway", "baseline_websockets_relay"):
        figures = result[server]
        assert figures["relay"]["n"] == 30
        assert 0 < figures["relay"]["p50_ms"] <= figures["relay"]["p99_ms"]
        # With a dozen sockets the RSS difference is page noise; only its presence is checked.
        assert isinstance(figures["kib_per_idle_connection"], int | float)
    assert set(result["ratios"]) >= {"p50", "p95", "p99"}
    assert len(result["runs"]) == 1 and result["params"]["connected"] == 12


@pytest.mark.slow
def test_agent_relay_bench_holds_idle_sockets_beside_the_measured_ones(tmp_path: Path) -> None:
    """--idle: more shoppers connected to each server (held by helper processes), the
    relay measured while they are."""
    output = tmp_path / "relay.json"
    completed = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "bench" / "agent_relay.py"), "--shoppers", "6",
         "--agents", "2", "--messages", "12", "--rate", "100", "--idle", "30", "--holders",
         "2", "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=False, cwd=PROJECT_DIR,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["params"]["connected"] == 36
    for server in ("gateway", "baseline_websockets_relay"):
        figures = result[server]
        assert figures["sockets"] == 36 and figures["relay"]["n"] == 12
        # 36 sockets held open show in the server's memory.
        assert figures["rss_connected_kib"] > figures["rss_before_kib"]


@pytest.mark.slow
def test_kb_search_bench_runs_and_reports_every_step(tmp_path: Path) -> None:
    output = tmp_path / "kb.json"
    completed = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "bench" / "kb_search.py"), "--articles", "60",
         "--rounds", "1", "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=False, cwd=PROJECT_DIR,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["kb"]["articles"] == 60
    for step in ("embed+search", "embed", "faiss search", "numpy brute force"):
        figures = result["results"][step]
        assert figures["n"] == result["questions"]
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]


@pytest.mark.slow
def test_train_bench_trains_from_scratch_and_finds_nothing_to_redo(tmp_path: Path) -> None:
    output = tmp_path / "train.json"
    completed = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "bench" / "train.py"), "--output", str(output)],
        capture_output=True, text=True, timeout=900, check=False, cwd=PROJECT_DIR,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["cores"] >= 1
    assert result["from_scratch"]["runs"] == result["unchanged"]["runs"] == 1
    # The unchanged retrain is the fingerprint check alone: far less than a training.
    assert result["unchanged"]["median_s"] < result["from_scratch"]["median_s"]


def test_fuzz_run_finds_nothing_unhandled(tmp_path: Path) -> None:
    """A short fuzz run over both sockets and the HTTP API (bench/fuzz_gateway.py): no
    unhandled exception in the gateway's log, no 5xx, no undocumented close."""
    output = tmp_path / "fuzz.json"
    completed = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "bench" / "fuzz_gateway.py"), "--frames", "120",
         "--requests", "120", "--seed", "7", "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=False, cwd=PROJECT_DIR,
    )
    result = json.loads(output.read_text())
    assert completed.returncode == 0, (result["first_unhandled"], {
        name: edge["first_failures"] for name, edge in result["edges"].items()})
    assert result["unhandled_exceptions"] == 0 and result["http_5xx"] == 0
    assert result["sqlite_integrity"] == "ok"
    edges = result["edges"]
    assert edges["shopper (joined)"]["sent"] == 120 and edges["http"]["sent"] == 120
    # The run did reach the parsers' refusals, not just the happy path.
    assert edges["shopper (joined)"]["answers"].get("error:bad_unicode", 0) > 0
    assert edges["agent (first frame)"]["closes"].get("4401", 0) > 0
