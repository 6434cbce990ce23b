"""`edgeai bench split` end to end on a tiny budget: both tables, CSV and PNG files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from edgeai.cli import main


@pytest.mark.slow  # ~40 s on 2 cores; the only test of the bench command, so it stays in CI
def test_bench_split_writes_tables_and_plots(tmp_path: Path) -> None:
    args = ["bench", "split", "--images", "2", "--latency-images", "1", "--rates", "100,1000"]
    assert main([*args, "--no-curve", "--home", str(tmp_path)]) == 0
    out = tmp_path / "bench" / "split"
    quality = list(csv.DictReader((out / "split_quality.csv").open()))
    schemes = {(r["task"], r["scheme"]) for r in quality}
    for task in ("classify", "caption", "vqa"):
        assert {(task, "edge-lossless"), (task, "coinfer"), (task, "client-only")} <= schemes
    latency = list(csv.DictReader((out / "split_latency.csv").open()))
    mix = {
        (float(r["rate_kbps"]), r["scheme"]): float(r["seconds"])
        for r in latency
        if r["task"] == "mix"
    }
    assert {rate for rate, _ in mix} == {100.0, 1000.0}
    # the link is emulated: the photo's upload takes ~10x longer at 100 KB/s than at 1 MB/s
    assert mix[(100.0, "edge-lossless")] > mix[(1000.0, "edge-lossless")] + 0.5
    # co-inference picks a split with a shipped codec at every rate: a few KB at most
    coinfer = [r for r in latency if r["scheme"] == "coinfer" and r["task"] != "mix"]
    assert coinfer and all(0 < float(r["payload_bytes"]) < 5_000 for r in coinfer)
    assert list(out.glob("*.png"))
