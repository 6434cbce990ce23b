"""Training on a tiny budget writes loadable checkpoints; the bench CLI writes its table files."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import json
from pathlib import Path

import edgeai
import pytest
from edgeai.cli import main
from edgeai.errors import UserInputError
from edgeai.tools.healthcare.runtime import run_model
from edgeai.tools.healthcare.training import TrainConfig
from edgeai.tools.healthcare.weights import CHECKPOINT_FILES, MANIFEST

ROOT = Path(edgeai.__file__).resolve().parent  # the repository root is the package


def _script():
    spec = importlib.util.spec_from_file_location("train_healthcare",
                                                  ROOT / "scripts" / "train_healthcare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_script_on_a_tiny_budget(tmp_path: Path) -> None:
    rc = _script().main(["--seed", "3", "--out", str(tmp_path), "--traffic-days", "4",
                         "--apps-days", "6", "--vitals-days", "12"])
    assert rc == 0
    for name in CHECKPOINT_FILES.values():
        assert (tmp_path / name).stat().st_size > 0
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["config"]["seed"] == 3
    assert manifest["scores"]["mood-from-vitals"]["train_rows"] == 12
    # The fresh checkpoints drive the runtime.
    day = dt.date(2025, 4, 1)
    apps = run_model("traffic-app-usage", {}, day, 5, checkpoint_dir=tmp_path)
    res = run_model("mood-from-apps", apps.outputs, day, 5, checkpoint_dir=tmp_path)
    assert res.outputs["mood"] in ("positive", "neutral", "negative", "anxious")


def test_train_config_rejects_empty_budgets() -> None:
    with pytest.raises(UserInputError):
        TrainConfig(apps_days=0)


def test_bench_models_cli_writes_csv_and_png(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "models", "--n", "3", "--seed", "1", "--home", str(tmp_path)]) == 0
    out = tmp_path / "bench" / "models"
    rows = list(csv.DictReader((out / "models.csv").open()))
    models = {r["model"] for r in rows}
    assert {"heartbeat-acoustic", "mood-from-apps", "mood-from-vitals", "appliance-energy",
            "temperature-forecast", "traffic-app-usage", "visitor-detection"} <= models
    assert (out / "models.png").stat().st_size > 10_000
    assert "held-out" in capsys.readouterr().out


def test_models_run_cli_prints_the_chain(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "run", "mood-from-vitals", "--day", "2025-05-01", "--seed", "2",
                 "--json", "--home", str(tmp_path)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert list(results) == ["heartbeat-acoustic", "respiration-acoustic", "mood-from-vitals"]
    assert main(["models", "run", "visitor-detection", "--home", str(tmp_path)]) == 2
    assert "not installed" in capsys.readouterr().err
