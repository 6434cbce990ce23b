"""`edgeai bench split` end to end on a tiny budget: both tables, CSV and PNG files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from edgeai.cli import main


@pytest.mark.slow  # ~40 s on 2 cores; the only test of the bench command, so it stays in CI
def test_bench_split_writes_tables_and_plots(tmp_path: Path) -> None:
    args = ["bench", "split", "--images", "8", "--latency-images", "1", "--rates", "100,1000"]
    assert main([*args, "--formats", "webp", "--home", str(tmp_path)]) == 0
    out = tmp_path / "bench" / "split"
    rows = list(csv.DictReader((out / "split_equal_quality.csv").open()))
    schemes = {(r["task"], r["scheme"]) for r in rows}
    for task in ("classify", "caption", "vqa"):
        assert {
            (task, "edge-lossless-png-64px"),
            (task, "edge-lossless-png-224px"),
            (task, "edge-lossy-webp-64px"),
            (task, "coinfer"),
        } <= schemes
    # wire bytes are the frame (prefix + JSON header) plus the payload
    assert all(float(r["wire_bytes"]) > float(r["payload_bytes"]) + 100 for r in rows)
    heads = list(csv.DictReader((out / "split_headline.csv").open()))
    assert [h["task"] for h in heads] == ["classify", "caption", "vqa"]
    assert all(h["baseline"].startswith("edge-") and float(h["ratio"]) > 0 for h in heads)
    latency = list(csv.DictReader((out / "split_latency.csv").open()))
    mix = {
        (float(r["rate_kbps"]), r["scheme"]): float(r["emulated_s"])
        for r in latency
        if r["task"] == "mix"
    }
    assert {rate for rate, _ in mix} == {100.0, 1000.0}
    assert {"edge-lossy", "edge-lossless", "coinfer"} <= {s for _, s in mix}
    # emulated: the 224-px PNG's upload takes ~10x longer at 100 KB/s than at 1 MB/s
    assert mix[(100.0, "edge-lossless")] > mix[(1000.0, "edge-lossless")] + 0.5
    # the resized lossy photo is far smaller than the PNG
    assert mix[(100.0, "edge-lossy")] < mix[(100.0, "edge-lossless")]
    # co-inference picks a split with a shipped codec at every rate: a few KB at most
    coinfer = [r for r in latency if r["scheme"] == "coinfer" and r["task"] != "mix"]
    assert coinfer and all(0 < float(r["payload_bytes"]) < 5_000 for r in coinfer)
    assert list(out.glob("*.png"))
