"""`edgeai fl run --deployment`: the template's app on Flower's Deployment Engine (a SuperLink and
two SuperNodes on loopback, inside the sandbox), two rounds, and no process left behind."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest


def _ours(home: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and str(home) in " ".join(p.info["cmdline"] or []):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


@pytest.mark.slow
def test_deployment_engine_runs_two_rounds_on_two_supernodes_and_stops_everything(tmp_path: Path):
    from edgeai.tools.federated.fl_run import run_once

    out = run_once(tmp_path, None, data="digits", clients=2, rounds=2, deployment=True,
                   seconds=300)
    assert out["status"] == "ok", out["message"] + out.get("log_tail", "")
    assert out["engine"] == "deployment" and out["rounds"] == 2
    assert out["val_accuracy"] > 0.3  # two rounds of a ResNet on digits learn something
    curve = (Path(out["dir"]) / "curve.csv").read_text().splitlines()
    assert len(curve) == 1 + 3
    assert "completed" in out["log_tail"] and "all stopped" in out["log_tail"]
    assert _ours(tmp_path) == []
