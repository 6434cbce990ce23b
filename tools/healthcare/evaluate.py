"""Held-out evaluation of every healthcare-home model on households never used in training.

Each evaluated day runs the models exactly as a plan would, through `run_model`: the mood
classifiers get the outputs of the speaker and router models (end to end from signals), never the
simulator's ground truth. Each metric comes with a simple baseline so a number can be judged.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
from edgeai.errors import UserInputError
from edgeai.tools.healthcare import mood as mood_mod
from edgeai.tools.healthcare.runtime import (
    DECLARED_NOT_INSTALLED,
    MODELS,
    home_recordings,
    model_spec,
    run_model,
)
from edgeai.tools.healthcare.sensors import APP_CATEGORIES, MOODS
from edgeai.tools.healthcare.weights import CHECKPOINT_DIR, load_checkpoint
from edgeai.tools.runtimes import ModelNotInstalledError
from pydantic import BaseModel
from tqdm import tqdm

EVAL_HOUSEHOLD_BASE = 50_000_000
"""Evaluation households: 50_000_000 + 100_000 * seed + k, disjoint from training (1_000_000+)."""


class EvalRow(BaseModel):
    """One metric of one model, with the baseline it should beat."""

    model: str
    device: str
    metric: str
    value: float
    unit: str
    higher_is_better: bool
    baseline: str
    baseline_value: float
    n: int
    note: str = ""


def eval_days(n: int, seed: int) -> list[tuple[int, dt.date]]:
    """(household, date) pairs: n fresh households, one random 2025 day each."""
    rng = np.random.default_rng([seed, 7])
    return [(EVAL_HOUSEHOLD_BASE + 100_000 * seed + k,
             dt.date(2025, 1, 1) + dt.timedelta(days=int(rng.integers(365)))) for k in range(n)]


def _acc(pred: list[str], truth: list[str]) -> float:
    return float(np.mean(np.array(pred) == np.array(truth))) if truth else math.nan


def _majority(truth: list[str]) -> float:
    _, counts = np.unique(np.array(truth), return_counts=True)
    return float(counts.max() / counts.sum()) if counts.size else math.nan


def evaluate_models(n: int = 100, seed: int = 0, *, checkpoint_dir: Path = CHECKPOINT_DIR,
                    progress: bool = True) -> list[EvalRow]:
    """Evaluate every installed model on `n` held-out household-days; rows for a table and CSV."""
    if n < 2:
        raise UserInputError(f"--n must be at least 2 held-out days, got {n}")
    rec: dict[str, list] = {k: [] for k in (
        "hr", "hr_true", "rr", "rr_true", "win_acc", "dom", "dom_true", "min_err", "min_zero",
        "mood_true", "mood_apps", "mood_vitals", "mood_fused", "mood_apps_oracle",
        "mood_vitals_oracle", "fc_err", "fc_persist", "fc_seasonal", "kwh_err", "kwh_naive",
        "kwh_true")}
    apps_tree = load_checkpoint("mood-from-apps", checkpoint_dir)["model"]
    vitals_forest = load_checkpoint("mood-from-vitals", checkpoint_dir)["model"]
    for hh, day in tqdm(eval_days(n, seed), desc="held-out days", disable=not progress, leave=False):
        def run(mid: str, upstream: dict | None = None, day: dt.date = day, hh: int = hh):
            return run_model(mid, upstream or {}, day, hh, checkpoint_dir=checkpoint_dir)

        hr, rr = run("heartbeat-acoustic"), run("respiration-acoustic")
        rec["hr"].append(hr.outputs["heart_rate_bpm"])
        rec["hr_true"].append(hr.details["ground_truth"]["heart_rate_bpm"])
        rec["rr"].append(rr.outputs["respiration_rate_bpm"])
        rec["rr_true"].append(rr.details["ground_truth"]["respiration_rate_bpm"])

        apps = run("traffic-app-usage")
        usage, true_usage = apps.outputs["app_usage"], apps.details["ground_truth"]["app_usage"]
        rec["win_acc"].append(apps.details["window_accuracy_active"])
        rec["dom"].append(max(usage, key=usage.get))
        rec["dom_true"].append(max(true_usage, key=true_usage.get))
        rec["min_err"].append(np.mean([abs(usage[c] - true_usage[c]) for c in APP_CATEGORIES]))
        rec["min_zero"].append(np.mean([true_usage[c] for c in APP_CATEGORIES]))

        m_apps = run("mood-from-apps", apps.outputs)
        m_vit = run("mood-from-vitals", {**hr.outputs, **rr.outputs})
        rec["mood_true"].append(m_apps.details["ground_truth"]["mood"])
        rec["mood_apps"].append(m_apps.outputs["mood"])
        rec["mood_vitals"].append(m_vit.outputs["mood"])
        fused = {k: m_apps.details["probabilities"][k] + m_vit.details["probabilities"][k]
                 for k in MOODS}
        rec["mood_fused"].append(max(fused, key=fused.get))
        # The same classifiers fed the simulator's truth: how much the upstream errors cost.
        rec["mood_apps_oracle"].append(mood_mod.predict_mood(
            apps_tree, mood_mod.app_features(true_usage))[0])
        rec["mood_vitals_oracle"].append(mood_mod.predict_mood(vitals_forest, mood_mod.vital_features(
            hr.details["ground_truth"]["heart_rate_bpm"],
            rr.details["ground_truth"]["respiration_rate_bpm"]))[0])

        fc = run("temperature-forecast")
        future = np.array(fc.details["ground_truth"]["temperature_c"])
        pred = np.array(fc.outputs["temperature_forecast_c"])
        rec["fc_err"].append(float(np.mean(np.abs(pred - future))))
        rec["fc_persist"].append(float(np.mean(np.abs(fc.details["last_reading_c"] - future))))
        hist = _home_history(day, hh)
        rec["fc_seasonal"].append(float(np.mean(np.abs(hist[-24:] - future))))

        en = run("appliance-energy")
        truth_kwh = en.details["ground_truth"]["energy_kwh"]
        rec["kwh_err"].append(abs(en.outputs["energy_kwh"] - truth_kwh))
        rec["kwh_true"].append(truth_kwh)
        rec["kwh_naive"].append(abs(_naive_kwh(day, hh) - truth_kwh))

    def row(model: str, metric: str, value: float, unit: str, hib: bool, base: str, bval: float,
            note: str = "") -> EvalRow:
        return EvalRow(model=model, device=MODELS[model].device, metric=metric, value=value,
                       unit=unit, higher_is_better=hib, baseline=base, baseline_value=bval, n=n,
                       note=note)

    a = {k: np.asarray(v, dtype=float) for k, v in rec.items()
         if k not in ("dom", "dom_true") and not k.startswith("mood")}
    hr_err, rr_err = np.abs(a["hr"] - a["hr_true"]), np.abs(a["rr"] - a["rr_true"])
    truth = rec["mood_true"]
    rows = [
        row("heartbeat-acoustic", "MAE", float(hr_err.mean()), "bpm", False,
            "cohort mean", float(np.abs(a["hr_true"] - a["hr_true"].mean()).mean()),
            f"median {np.median(hr_err):.2f} bpm, {np.mean(hr_err > 5):.0%} off by >5 bpm"),
        row("heartbeat-acoustic", "within 3 bpm", float(np.mean(hr_err <= 3)), "share", True,
            "cohort mean", float(np.mean(np.abs(a["hr_true"] - a["hr_true"].mean()) <= 3))),
        row("respiration-acoustic", "MAE", float(rr_err.mean()), "breaths/min", False,
            "cohort mean", float(np.abs(a["rr_true"] - a["rr_true"].mean()).mean())),
        row("respiration-acoustic", "within 1 breath/min", float(np.mean(rr_err <= 1)), "share", True,
            "cohort mean", float(np.mean(np.abs(a["rr_true"] - a["rr_true"].mean()) <= 1))),
        row("traffic-app-usage", "window accuracy (active minutes)", float(a["win_acc"].mean()),
            "share", True, "chance (1/9 labels)", 1 / 9),
        row("traffic-app-usage", "dominant app of the day", _acc(rec["dom"], rec["dom_true"]),
            "share", True, "most common dominant app", _majority(rec["dom_true"])),
        row("traffic-app-usage", "MAE minutes per category", float(a["min_err"].mean()), "min",
            False, "report nothing (0 min)", float(a["min_zero"].mean())),
        row("mood-from-apps", "accuracy end to end", _acc(rec["mood_apps"], truth), "share", True,
            "majority class", _majority(truth),
            f"same tree on true app usage: {_acc(rec['mood_apps_oracle'], truth):.1%}"),
        row("mood-from-vitals", "accuracy end to end", _acc(rec["mood_vitals"], truth), "share",
            True, "majority class", _majority(truth),
            f"same forest on true rates: {_acc(rec['mood_vitals_oracle'], truth):.1%}; "
            f"both fused (summed probabilities): {_acc(rec['mood_fused'], truth):.1%}"),
        row("temperature-forecast", "MAE over 24 h", float(a["fc_err"].mean()), "degC", False,
            "same hour yesterday", float(a["fc_seasonal"].mean()),
            f"persistence (last reading): {a['fc_persist'].mean():.2f} degC"),
        row("appliance-energy", "MAE per day", float(a["kwh_err"].mean()), "kWh", False,
            "sum of readings (gaps as zero)", float(a["kwh_naive"].mean()),
            f"relative: {float(a['kwh_err'].sum() / max(a['kwh_true'].sum(), 1e-9)):.2%} of energy"),
    ]
    for mid, device in DECLARED_NOT_INSTALLED.items():
        try:
            model_spec(mid)
        except ModelNotInstalledError as exc:
            rows.append(EvalRow(model=mid, device=device, metric="not installed", value=math.nan,
                                unit="", higher_is_better=True, baseline="", baseline_value=math.nan,
                                n=0, note=str(exc)))
    return rows


def _home_history(day: dt.date, seed: int) -> np.ndarray:
    return np.asarray(home_recordings(day, seed).temperature_history.readings_c)


def _naive_kwh(day: dt.date, seed: int) -> float:
    return float(home_recordings(day, seed).power_readings.watts.sum() / 3.6e6)
