"""The edge benchmarks still run (tiny sizes, nothing recorded), so they do not rot.
Benchmarks are not tests: this checks they work end to end, not their figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.requirements import require_binary

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_ingest_bench_runs_tiny() -> None:
    require_binary("mosquitto", "apt-get install mosquitto")
    out = run("bench/ingest.py", "--tiny", "--no-record")
    assert "| edge (`edge-node run --role ingest`)" in out and "| naive" in out
    assert "| yes |" in out  # the lossless check passed


@pytest.mark.slow
def test_paper_query_bench_runs_tiny(tmp_path: Path) -> None:
    require_binary("mariadbd", "apt-get install mariadb-server")
    # Its own server in tmp_path: never the full-scale run's datadir.
    out = run("bench/paper_query.py", "--tiny", "--no-record", "--central-dir", str(tmp_path))
    for query in ("raw 23", "raw 3", "down 23", "down 3"):
        assert query in out
    assert out.count("│         yes │") == 4  # both designs gave the edge's answers


@pytest.mark.slow
def test_edge_query_bench_runs_tiny() -> None:
    out = run("bench/edge_query.py", "--tiny", "--no-record")
    for row in ("raw 23 -> numpy", "down 23 -> JSON", "raw 23 -> JSON", "GET /api/health"):
        assert row in out


@pytest.mark.slow
def test_confirm_bench_runs_tiny() -> None:
    require_binary("mosquitto", "apt-get install mosquitto")
    out = run("bench/confirm.py", "--readings", "3000", "--repeat", "1", "--no-record")
    assert "`confirm: edge`" in out and "`confirm: broker`" in out


@pytest.mark.slow
def test_fleet_rollout_bench_runs_tiny() -> None:
    require_binary("mosquitto", "apt-get install mosquitto")
    out = run("bench/fleet_rollout.py", "--gateways", "4", "--no-record")
    for what in ("`fleet status --json`, 4 gateways", "staged rollout to 4", "naive: one"):
        assert what in out


def test_buffer_bench_runs_tiny() -> None:
    out = run("bench/buffer.py", "--tiny", "--no-record")
    assert "| one connector: hands a poll over, polls again |" in out
    assert "| batches of 500 |" in out
