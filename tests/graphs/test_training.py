"""Automatic federated learning end to end, on a small configuration of the real code path:
the training graph (embedded codegen + FL-tuner), the validator, the sandboxed Flower Simulation
Engine, registration in the store, and the registered model planned and run by `edgeai`.

Small: 2 clients, 2 rounds, 300 training examples; the same graph, template and sandbox as the
default 10 clients x 10 rounds (docs/BENCHMARKS.md has those figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SMALL = ["--clients", "2", "--rounds", "2", "--n-train", "300"]
ENV = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "HF_HUB_OFFLINE": "1"}


def edgeai(*argv: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeai.cli", *argv, "--home", str(home)],
                          capture_output=True, text=True, timeout=timeout, env=ENV, check=False)


@pytest.mark.slow
def test_fl_auto_trains_registers_and_the_next_request_uses_the_model(fresh_home: Path):
    # Prepare: a home with the healthcare pool, where nothing classifies images
    home = fresh_home
    # Execute: two trials of automatic FL on generated photos
    proc = edgeai("fl", "auto", "train an image classifier for my photos", "--data", "generated",
                  "--trials", "2", "--yes", "--json", *SMALL, home=home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    # Assert: two trials ran in the sandbox, each kept its code, config and curve
    assert [t["status"] for t in out["trials"]] == ["ok", "ok"]
    assert out["trials"][0]["config"]["ARCH"] == out["trials"][1]["config"]["ARCH"]
    for n in (1, 2):
        trial = Path(out["dir"]) / f"trial-{n}"
        for f in ("app/task.py", "config.json", "curve.csv", "curve.png", "out/model.pt"):
            assert (trial / f).is_file(), f
        rows = (trial / "curve.csv").read_text().splitlines()
        assert len(rows) == 1 + 3  # header, round 0, rounds 1-2
    model = out["model"]
    assert model and model.startswith("fl-generated-")
    # the planner selects the new model for its task ...
    plan = edgeai("plan", "what shape is in my photo? classify it", "--json", home=home)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert [s["model"] for s in json.loads(plan.stdout)["subtasks"]] == [model]
    # ... and ask runs it on the camera's photo, with its measured accuracy in the answer
    ask = edgeai("ask", "what shape is in my photo? classify it", "--json", home=home)
    assert ask.returncode == 0, ask.stderr[-2000:]
    answer = json.loads(ask.stdout)
    result = answer["results"][0]
    assert result["status"] == "ok" and result["model"] == model
    from edgeai.tools.photoworld import KINDS

    assert result["outputs"]["label"] in KINDS and result["details"]["ground_truth"] in KINDS
    assert "accurate on held-out data" in answer["answer"]


@pytest.mark.slow
def test_one_ask_with_yes_trains_registers_and_answers(fresh_home: Path):
    fl = json.dumps({"data": "digits", "clients": 2, "rounds": 2, "trials": 1})
    proc = edgeai("ask", "recognise the handwritten digit in my image", "--yes", "--fl", fl,
                  "--json", home=fresh_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    steps = [s["node"] for s in out["trace"]]
    assert steps[:7] == ["plan_request", "prepare_training", "generate_code", "approve_code",
                         "run_training", "tune_training", "register_model"]
    assert steps[7:] == ["plan_request", "choose_models", "place_work", "run_models", "respond"]
    (trial,) = [s for s in out["trace"] if s["node"] == "run_training"]
    (plot,) = trial["images"]  # the chat page draws it from /files/: named under the data home
    assert plot.startswith("runs/fl/") and (fresh_home / plot).is_file()
    model = out["training"]["model"]
    assert [r["model"] for r in out["results"]] == [model]
    assert out["results"][0]["status"] == "ok"
    assert out["answer"].startswith(f"Trained {model}")


def test_without_approval_the_graph_pauses_and_a_refusal_runs_nothing(fresh_home: Path):
    from edgeai.config import Settings
    from edgeai.graphs.app import App
    from edgeai.graphs.state import FLOptions

    app = App.open(Settings(home=fresh_home))
    fl = FLOptions(data="digits", clients=2, rounds=1, trials=1)
    out = app.ask("train an image classifier for handwritten digit images", None, fl=fl)
    assert out["interrupt"]["kind"] == "approve_code"
    assert "edgeai:region model" in out["interrupt"]["code"]
    runs = list((fresh_home / "runs" / "fl").iterdir())
    assert len(runs) == 1 and not list(runs[0].glob("trial-*"))  # nothing ran yet
    out = app.ask("train an image classifier for handwritten digit images", out["thread"],
                  resume=False, fl=fl)
    assert out["interrupt"] is None
    assert "not approved" in out["answer"]
    assert not list(runs[0].glob("trial-*"))


def test_a_trial_over_its_time_limit_is_stopped_and_reported(tmp_path: Path):
    from edgeai.tools.federated.template import join_regions, load_manifest, split_regions
    from edgeai.tools.federated.trial import prepare_data, run_trial

    m = load_manifest()
    outside, bodies = split_regions(m.render(m.defaults()))
    bodies["augmentation"] = ('AUGMENTATION = "none"\n\n\ndef augment(images, generator):\n'
                              '    while True:\n        images = images + 0\n')
    data = prepare_data("digits", tmp_path / "cache", clients=2)
    record = run_trial(m, join_regions(outside, bodies), data, tmp_path / "t", trial=1,
                       source="test", rounds=1, seconds=20)
    assert record.status == "timeout"
    assert "20" in record.message
