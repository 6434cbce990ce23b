"""`edgeai bench serve` runs for real at a tiny size (a real `edgeai serve` subprocess, two
concurrent chats of one turn) and writes its table, CSVs and figure; bad sizes are refused in one
line. No timing is asserted: the numbers are the bench's to report, not the test's."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path


def _bench(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeai.cli", "bench", "serve", *args],
                          check=False, capture_output=True, text=True, timeout=timeout)


def test_two_chats_of_one_turn_run_and_write_serve_csv(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = _bench("--chats", "2", "--requests-per-chat", "1", "--home", str(home),
                  "--timeout", "600")
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    out = home / "bench"
    rows = list(csv.DictReader((out / "serve.csv").open(encoding="utf-8")))
    assert [(r["chats"], r["requests_per_chat"], r["turns"], r["errors"], r["unfinished"],
             r["checkpointer"], r["workers"]) for r in rows] == [
        ("2", "1", "2", "0", "0", "sqlite", "1")]
    assert rows[0]["machine"] and rows[0]["date"] and float(rows[0]["p95_s"]) > 0
    turns = list(csv.DictReader((out / "serve-turns.csv").open(encoding="utf-8")))
    assert len(turns) == 2 and all(t["ok"] == "True" for t in turns)
    assert (out / "serve.png").stat().st_size > 0
    assert "p95 (s)" in done.stdout and "machine:" in done.stdout


def test_bad_sizes_and_checkpointers_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (["--chats", "0"], ["--requests-per-chat", "x"], ["--workers", "99"],
                 ["--checkpointer", "redis://h/0"], ["--timeout", "-1"],
                 ["--store", "redis://h:1"], ["--store", "http://127.0.0.1:1"]):
        done = _bench(*args, "--home", str(tmp_path / "h"), timeout=120)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
    assert not (tmp_path / "h").exists()
