"""run_model: registry matches the sample manuals, chains work, errors are typed, classifiers learn."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from edgeai.knowledge.pools import SAMPLES_DIR
from edgeai.tools.healthcare import mood as mood_mod
from edgeai.tools.healthcare import vitals
from edgeai.tools.healthcare.errors import InvalidInputError, MissingInputError
from edgeai.tools.healthcare.runtime import (
    DECLARED_NOT_INSTALLED,
    MODELS,
    RUNTIME,
    run_chain,
    run_model,
)
from edgeai.tools.healthcare.sensors import MOODS, simulate_home
from edgeai.tools.healthcare.weights import CHECKPOINT_DIR, CHECKPOINT_FILES, load_checkpoint
from edgeai.tools.runtimes import ModelNotInstalledError, ModelRuntime

DAY = dt.date(2025, 6, 2)
SAMPLES = SAMPLES_DIR / "healthcare" / "manuals"


def test_registry_matches_the_sample_manuals() -> None:
    from edgeai.knowledge.manuals import parse_manual

    declared = {}
    for path in SAMPLES.glob("*.md"):
        entry = parse_manual(path).entry
        for m in entry.models:
            declared[m.name] = (entry.device, tuple(m.inputs), tuple(m.outputs))
    for mid, spec in MODELS.items():
        assert declared[mid] == (spec.device, spec.inputs, spec.outputs), mid
    assert set(declared) == set(MODELS) | set(DECLARED_NOT_INSTALLED)
    assert "visitor-detection" not in RUNTIME.model_ids()


def test_shipped_checkpoints_are_small_and_load() -> None:
    for mid, name in CHECKPOINT_FILES.items():
        assert (CHECKPOINT_DIR / name).stat().st_size < 400_000, name
        assert hasattr(load_checkpoint(mid)["model"], "predict_proba")


def test_every_installed_model_outputs_its_declared_names() -> None:
    results = {}
    for mid in RUNTIME.model_ids():
        results.update(run_chain(mid, DAY, 3))
    for mid, res in results.items():
        assert set(res.outputs) == set(MODELS[mid].outputs), mid
        assert res.device == MODELS[mid].device
        assert res.summary.endswith(".") and len(res.summary) > 20
        json.dumps(res.model_dump())  # details stay JSON-serialisable
    assert len(results["temperature-forecast"].outputs["temperature_forecast_c"]) == 24
    assert set(results["traffic-app-usage"].outputs["app_usage"]) == set(mood_mod.APP_CATEGORIES)


def test_vitals_chain_into_mood_from_vitals() -> None:
    hr = run_model("heartbeat-acoustic", {}, DAY, 21)
    rr = run_model("respiration-acoustic", {}, DAY, 21)
    truth = hr.details["ground_truth"]["heart_rate_bpm"]
    assert abs(hr.outputs["heart_rate_bpm"] - truth) < 5
    res = run_model("mood-from-vitals", {**hr.outputs, **rr.outputs}, DAY, 21)
    assert res.outputs["mood"] in MOODS
    assert sum(res.details["probabilities"].values()) == pytest.approx(1.0, abs=1e-2)
    assert res.details["ground_truth"]["mood"] == simulate_home(DAY, 21).state.mood
    # Different days of one home give different readings.
    other = run_model("heartbeat-acoustic", {}, DAY - dt.timedelta(days=1), 21)
    assert other.outputs != hr.outputs


def test_missing_input_is_a_typed_error_naming_it() -> None:
    with pytest.raises(MissingInputError) as exc:
        run_model("mood-from-vitals", {"heart_rate_bpm": 70.0}, DAY, 1)
    assert exc.value.missing == "respiration_rate_bpm"
    assert "respiration_rate_bpm" in str(exc.value)
    with pytest.raises(MissingInputError):
        run_model("mood-from-apps", {}, DAY, 1)


def test_unknown_and_uninstalled_models_are_typed_errors() -> None:
    with pytest.raises(ModelNotInstalledError, match="unknown model id"):
        run_model("crystal-ball", {}, DAY, 1)
    with pytest.raises(ModelNotInstalledError, match="doorbell-camera"):
        run_model("visitor-detection", {}, DAY, 1)


def test_bad_upstream_values_are_rejected() -> None:
    with pytest.raises(InvalidInputError):
        run_model("mood-from-vitals", {"heart_rate_bpm": "fast", "respiration_rate_bpm": 14}, DAY, 1)
    with pytest.raises(InvalidInputError):
        run_model("mood-from-vitals", {"heart_rate_bpm": 900.0, "respiration_rate_bpm": 14}, DAY, 1)
    with pytest.raises(InvalidInputError):
        run_model("mood-from-apps", {"app_usage": [1, 2, 3]}, DAY, 1)


def test_missing_weights_are_reported_as_not_installed(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="edgeai models train"):
        run_model("mood-from-vitals", {"heart_rate_bpm": 70.0, "respiration_rate_bpm": 14.0}, DAY,
                  1, checkpoint_dir=tmp_path)


def test_vitals_forest_beats_chance_on_held_out_households() -> None:
    forest = load_checkpoint("mood-from-vitals")["model"]
    pred, truth = [], []
    for k in range(150):
        home = simulate_home(dt.date(2025, 1, 1) + dt.timedelta(days=k), 60_000_000 + k)
        rec = home.audio
        feats = mood_mod.vital_features(vitals.estimate_heart_rate(rec).rate_bpm,
                                        vitals.estimate_respiration(rec).rate_bpm)
        pred.append(mood_mod.predict_mood(forest, feats)[0])
        truth.append(home.state.mood)
    acc = np.mean(np.array(pred) == np.array(truth))
    majority = max(truth.count(m) for m in MOODS) / len(truth)
    assert acc > max(0.4, majority + 0.1)


def test_apps_tree_beats_chance_end_to_end() -> None:
    correct, truth = 0, []
    for k in range(40):
        hh, day = 61_000_000 + k, dt.date(2025, 2, 1) + dt.timedelta(days=k)
        apps = run_model("traffic-app-usage", {}, day, hh)
        res = run_model("mood-from-apps", apps.outputs, day, hh)
        truth.append(res.details["ground_truth"]["mood"])
        correct += res.outputs["mood"] == truth[-1]
    majority = max(truth.count(m) for m in MOODS) / len(truth)
    assert correct / len(truth) > max(0.4, majority + 0.1)


def test_the_healthcare_home_is_a_registered_model_runtime() -> None:
    import subprocess
    import sys

    from edgeai.tools import runtimes

    assert isinstance(RUNTIME, ModelRuntime)
    assert runtimes.installed_models()["mood-from-vitals"] is RUNTIME
    res = runtimes.run_installed(
        runtimes.RunCall("heartbeat-acoustic", DAY, 21, placement={"mode": "local"}))
    assert res.outputs == run_model("heartbeat-acoustic", {}, DAY, 21).outputs
    with pytest.raises(ModelNotInstalledError, match="not installed in any runtime"):
        runtimes.run_installed(runtimes.RunCall("visitor-detection", DAY, 1))
    # Importing the contract loads no runtime and no torch: runtimes load on first use.
    code = "import sys, edgeai.tools.runtimes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_registered_runtime_serves_its_models() -> None:
    from edgeai.tools import runtimes

    class Echo:
        name = "echo"

        def model_ids(self) -> list[str]:
            return ["echo-model", "heartbeat-acoustic"]

        def run(self, call):
            return runtimes.ModelResult(model=call.model_id, device="here",
                                        outputs={"said": call.request}, summary="echo",
                                        seconds=0.0)

    echo = runtimes.register(Echo())
    try:
        assert runtimes.run_installed(runtimes.RunCall("echo-model", DAY, 0, request="hi")).outputs == {
            "said": "hi"}
        assert runtimes.installed_models()["heartbeat-acoustic"] is RUNTIME  # built-in first
        with pytest.raises(TypeError, match="ModelRuntime"):
            runtimes.register(object())  # type: ignore[arg-type]
    finally:
        runtimes._REGISTERED.remove(echo)


def test_a_corrupt_weights_file_is_one_line_naming_it(tmp_path: Path) -> None:
    from edgeai.errors import WeightsError

    (tmp_path / CHECKPOINT_FILES["mood-from-vitals"]).write_bytes(b"not joblib\n\x00")
    load_checkpoint.cache_clear()
    with pytest.raises(WeightsError) as info:
        load_checkpoint("mood-from-vitals", tmp_path)
    assert "\n" not in str(info.value) and CHECKPOINT_FILES["mood-from-vitals"] in str(info.value)
