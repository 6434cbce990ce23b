"""Run a healthcare-home model by id: raw inputs from the day's simulated sensors, others from upstream.

The registry holds the models the sample manuals declare, with the same ids, devices, inputs and
outputs. A device model (speaker, router, thermostat, plug) reads its raw input from
`simulate_home(day, seed)`; an edge-server model reads its inputs from `upstream`, the outputs of the
models that ran before it, keyed by output name (`{"heart_rate_bpm": 71.8, ...}`). Every result
carries one human sentence and details (signal statistics and, because the homes are simulated, the
ground truth the output can be checked against). `RUNTIME` serves these models to
`tools/runtimes.py`.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from edgeai.tools.healthcare import appliances, mood, traffic, vitals
from edgeai.tools.healthcare.errors import InvalidInputError, MissingInputError
from edgeai.tools.healthcare.sensors import RAW_INPUTS, HomeRecordings, simulate_home
from edgeai.tools.healthcare.weights import CHECKPOINT_DIR, load_checkpoint
from edgeai.tools.runtimes import ModelNotInstalledError, ModelResult, RunCall


@dataclass(frozen=True)
class RunContext:
    """What a model's run function gets: its resolved inputs and the home it runs in."""

    model: str
    day: dt.date
    seed: int
    inputs: dict[str, Any]
    checkpoint_dir: Path

    @property
    def home(self) -> HomeRecordings:
        return home_recordings(self.day, self.seed)


RunFn = Callable[[RunContext], tuple[dict[str, Any], str, dict[str, Any]]]


@dataclass(frozen=True)
class ModelSpec:
    """One installed model: where it runs, what it reads and writes, and the code that runs it."""

    id: str
    device: str
    task: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    run: RunFn


@lru_cache(maxsize=8)
def home_recordings(day: dt.date, seed: int) -> HomeRecordings:
    """One simulated day per (day, seed), shared by the models of a plan (sensors build lazily)."""
    return simulate_home(day, seed)


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


def _number(ctx: RunContext, name: str, lo: float, hi: float) -> float:
    value = ctx.inputs[name]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(ctx.model, name, f"must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise InvalidInputError(ctx.model, name, f"{value} is outside the accepted range {lo}-{hi}")
    return value


# --------------------------------------------------------------------------------------------------
# Run functions, one per model
# --------------------------------------------------------------------------------------------------


def _run_vital_rate(ctx: RunContext, output: str, estimate: Callable[[Any], Any], sentence: str,
                    with_carrier: bool = False) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A rate the speaker measures from the day's acoustic recording (heart beat, breathing);
    `output` names both the model's output and the recording's true value."""
    rec = ctx.home.audio
    est = estimate(rec)
    bpm = _r(est.rate_bpm, 1)
    truth = getattr(rec, output)
    details: dict[str, Any] = {"peak_hz": _r(est.peak_hz, 4),
                               "peak_to_median": _r(est.peak_to_median, 1),
                               "duration_s": rec.duration_s, "baseband_fs_hz": rec.fs_hz}
    if with_carrier:
        details["carrier_hz"] = rec.carrier_hz
    details |= {"motion_events": rec.motion_events, "ground_truth": {output: _r(truth, 1)},
                "error_bpm": _r(bpm - truth, 1)}
    return {output: bpm}, sentence.format(bpm=bpm), details


def _run_heartbeat(ctx: RunContext) -> tuple[dict[str, Any], str, dict[str, Any]]:
    return _run_vital_rate(
        ctx, "heart_rate_bpm", vitals.estimate_heart_rate,
        "The speaker measured a heart rate of {bpm:.0f} beats per minute from chest micro-motion.",
        with_carrier=True)


def _run_respiration(ctx: RunContext) -> tuple[dict[str, Any], str, dict[str, Any]]:
    return _run_vital_rate(
        ctx, "respiration_rate_bpm", vitals.estimate_respiration,
        "The speaker measured {bpm:.0f} breaths per minute from chest and abdomen movement.")


def _run_app_usage(ctx: RunContext) -> tuple[dict[str, Any], str, dict[str, Any]]:
    trace = ctx.home.network_traffic
    model = load_checkpoint("traffic-app-usage", ctx.checkpoint_dir)["model"]
    labels = traffic.classify_windows(model, trace)
    usage = {c: _r(m, 1) for c, m in traffic.app_usage_minutes(labels).items()}
    truth = trace.window_labels(traffic.WINDOW_S)
    active = truth != traffic.IDLE
    top = sorted(usage, key=usage.get, reverse=True)[:3]
    total = sum(usage.values())
    summary = "The router saw no app use today."
    if total > 0:
        mostly = ", ".join(f"{c.replace('_', ' ')} ({usage[c]:.0f} min)" for c in top if usage[c] > 0)
        summary = f"The router saw {total / 60:.1f} hours of app use, mostly {mostly}."
    return (
        {"app_usage": usage},
        summary,
        {"packets": int(trace.time_s.shape[0]), "window_s": traffic.WINDOW_S,
         "dominant_app": top[0] if total > 0 else None,
         "window_accuracy_active": _r(np.mean(labels[active] == truth[active]), 4) if active.any()
         else None,
         "ground_truth": {"app_usage": {c: _r(m, 1) for c, m in trace.true_minutes.items()}}},
    )


def _mood_result(ctx: RunContext, model_id: str, features: np.ndarray, evidence: str
                 ) -> tuple[dict[str, Any], str, dict[str, Any]]:
    model = load_checkpoint(model_id, ctx.checkpoint_dir)["model"]
    label, probs = mood.predict_mood(model, features)
    return (
        {"mood": label},
        f"From {evidence}, the mood looks {label} ({probs[label]:.0%} confidence).",
        {"probabilities": {k: _r(v, 3) for k, v in probs.items()},
         "features": [_r(v, 3) for v in features],
         "ground_truth": {"mood": ctx.home.state.mood}},
    )


def _run_mood_from_apps(ctx: RunContext) -> tuple[dict[str, Any], str, dict[str, Any]]:
    usage = ctx.inputs["app_usage"]
    features = mood.app_features(usage)
    return _mood_result(ctx, "mood-from-apps", features,
                        f"{features[-1] / 60:.1f} hours of app use")


def _run_mood_from_vitals(ctx: RunContext) -> tuple[dict[str, Any], str, dict[str, Any]]:
    hr = _number(ctx, "heart_rate_bpm", 30.0, 220.0)
    rr = _number(ctx, "respiration_rate_bpm", 3.0, 60.0)
    return _mood_result(ctx, "mood-from-vitals", mood.vital_features(hr, rr),
                        f"a pulse of {hr:.0f} bpm and {rr:.0f} breaths per minute")


def _run_temperature_forecast(ctx: RunContext) -> tuple[dict[str, Any], str, dict[str, Any]]:
    hist = ctx.home.temperature_history
    fc = appliances.forecast_temperature(hist)
    hourly = [_r(v, 2) for v in fc.hourly_c]
    summary = (f"Indoors it will be {hourly[0]:.1f} °C in an hour and range from "
               f"{min(hourly):.1f} to {max(hourly):.1f} °C over the next 24 hours.")
    return (
        {"temperature_forecast_c": hourly},
        summary,
        {"horizon_h": len(hourly), "history_h": int(hist.readings_c.shape[0]),
         "last_reading_c": float(hist.readings_c[-1]), "ar_coefficient": _r(fc.ar_coefficient, 3),
         "ground_truth": {"temperature_c": [float(v) for v in hist.future_c]},
         "mae_c": _r(np.mean(np.abs(fc.hourly_c - hist.future_c)), 3)},
    )


def _run_energy(ctx: RunContext) -> tuple[dict[str, Any], str, dict[str, Any]]:
    pr = ctx.home.power_readings
    est = appliances.integrate_energy(pr)
    kwh = _r(est.energy_kwh, 4)
    summary = (f"The {pr.appliance.replace('_', ' ')} on the smart plug used {kwh:.2f} kWh today, "
               f"{est.active_kwh:.2f} kWh of it while running ({est.active_minutes:.0f} min).")
    return (
        {"energy_kwh": kwh},
        summary,
        {"appliance": pr.appliance, "active_kwh": _r(est.active_kwh, 4),
         "standby_kwh": _r(est.standby_kwh, 4), "standby_w": _r(est.standby_w, 2),
         "active_minutes": _r(est.active_minutes, 1), "coverage": _r(est.coverage, 4),
         "ground_truth": {"energy_kwh": _r(pr.true_energy_kwh, 4)},
         "error_kwh": _r(est.energy_kwh - pr.true_energy_kwh, 4)},
    )


def _spec(id_: str, device: str, task: str, inputs: tuple[str, ...], outputs: tuple[str, ...],
          run: RunFn) -> tuple[str, ModelSpec]:
    return id_, ModelSpec(id_, device, task, inputs, outputs, run)


MODELS: dict[str, ModelSpec] = dict([
    _spec("heartbeat-acoustic", "living-room-speaker", "heartbeat monitoring",
          ("audio",), ("heart_rate_bpm",), _run_heartbeat),
    _spec("respiration-acoustic", "living-room-speaker", "respiration monitoring",
          ("audio",), ("respiration_rate_bpm",), _run_respiration),
    _spec("traffic-app-usage", "home-wifi-router", "app usage detection",
          ("network_traffic",), ("app_usage",), _run_app_usage),
    _spec("mood-from-apps", "edge-server", "mood classification from app usage",
          ("app_usage",), ("mood",), _run_mood_from_apps),
    _spec("mood-from-vitals", "edge-server", "mood classification from physiological signals",
          ("heart_rate_bpm", "respiration_rate_bpm"), ("mood",), _run_mood_from_vitals),
    _spec("temperature-forecast", "smart-thermostat", "indoor temperature forecasting",
          ("temperature_history",), ("temperature_forecast_c",), _run_temperature_forecast),
    _spec("appliance-energy", "smart-plug", "appliance energy metering",
          ("power_readings",), ("energy_kwh",), _run_energy),
])
"""Installed models by id."""

DECLARED_NOT_INSTALLED: dict[str, str] = {"visitor-detection": "doorbell-camera"}
"""Models a sample manual declares that have no runtime here (model id -> device)."""


def model_spec(model_id: str) -> ModelSpec:
    """The registry entry of `model_id`; ModelNotInstalledError for anything else."""
    spec = MODELS.get(model_id)
    if spec is not None:
        return spec
    if model_id in DECLARED_NOT_INSTALLED:
        raise ModelNotInstalledError(
            model_id, f"the {DECLARED_NOT_INSTALLED[model_id]} declares it, but no runtime for it "
            "is installed on this system")
    raise ModelNotInstalledError(model_id, f"unknown model id (installed: {', '.join(MODELS)})")


def run_model(model_id: str, upstream: Mapping[str, Any], day: dt.date, seed: int, *,
              checkpoint_dir: Path = CHECKPOINT_DIR) -> ModelResult:
    """Run `model_id` for household `seed` on `day`; consumer inputs come from `upstream`."""
    spec = model_spec(model_id)
    if not isinstance(day, dt.date):
        raise InvalidInputError(model_id, "day", f"must be a datetime.date, got {type(day).__name__}")
    inputs: dict[str, Any] = {}
    for name in spec.inputs:
        if name in RAW_INPUTS:
            continue  # read lazily from the simulated sensors by the run function
        if name not in upstream:
            raise MissingInputError(model_id, name, list(upstream))
        inputs[name] = upstream[name]
    started = time.perf_counter()
    outputs, summary, details = spec.run(RunContext(model_id, day, int(seed), inputs,
                                                    Path(checkpoint_dir)))
    return ModelResult(model=model_id, device=spec.device, outputs=outputs, summary=summary,
                       details=details, seconds=round(time.perf_counter() - started, 4))


class HealthcareRuntime:
    """The healthcare home as a `tools.runtimes.ModelRuntime` (runs wherever it is placed)."""

    name = "healthcare home"

    def model_ids(self) -> list[str]:
        """Ids of the models that really run here."""
        return list(MODELS)

    def run(self, call: RunCall) -> ModelResult:
        # simulated sensors: the same reading wherever the model runs, whatever was asked
        return run_model(call.model_id, call.upstream, call.day, call.seed)


RUNTIME = HealthcareRuntime()


def producers_of(name: str) -> list[str]:
    """Installed models whose outputs include `name`."""
    return [m for m, spec in MODELS.items() if name in spec.outputs]


def run_chain(model_id: str, day: dt.date, seed: int, *,
              checkpoint_dir: Path = CHECKPOINT_DIR) -> dict[str, ModelResult]:
    """Run `model_id` after the installed producers of each of its inputs (first producer wins).

    A convenience for the CLI and demos; the planner decides chains itself from the manuals.
    """
    results: dict[str, ModelResult] = {}

    def visit(mid: str, stack: tuple[str, ...]) -> dict[str, Any]:
        if mid in results:
            return results[mid].outputs
        spec = model_spec(mid)
        upstream: dict[str, Any] = {}
        for name in spec.inputs:
            if name in RAW_INPUTS:
                continue
            producers = [p for p in producers_of(name) if p not in stack]
            if not producers:
                raise MissingInputError(mid, name, list(upstream))
            upstream[name] = visit(producers[0], (*stack, mid))[name]
        results[mid] = run_model(mid, upstream, day, seed, checkpoint_dir=checkpoint_dir)
        return results[mid].outputs

    visit(model_id, ())
    return results
