"""Training of the three learned healthcare models on simulated homes (`edgeai models train`).

Order matters: the router's window classifier is trained first, then every mood-training day is run
through the real upstream models (the trained traffic classifier for app usage, the spectral
estimators for the rates). The mood classifiers therefore learn from what their inputs will really
look like at run time, estimation errors included, not from the simulator's ground truth.

Households used for training are 1_000_000 + 100_000 * seed + k; evaluation and demos use other
seeds, so no evaluated household was seen in training. Validation holds out whole households.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from edgeai.errors import UserInputError
from edgeai.tools.healthcare import mood, traffic, vitals
from edgeai.tools.healthcare.sensors import MOODS, simulate_home
from edgeai.tools.healthcare.weights import (
    CHECKPOINT_DIR,
    CHECKPOINT_FILES,
    MANIFEST,
    save_checkpoint,
)
from sklearn.metrics import accuracy_score
from threadpoolctl import threadpool_limits
from tqdm import tqdm

log = logging.getLogger(__name__)

TRAIN_HOUSEHOLD_BASE = 1_000_000
TRAIN_FIRST_DAY = dt.date(2022, 1, 1)
TRAIN_SPAN_DAYS = 3 * 365


@dataclass
class TrainConfig:
    """Every knob of a training run."""

    seed: int = 0
    """Picks the training households and dates and seeds the estimators."""
    traffic_days: int = 120
    """Simulated days whose minute windows train the router's app classifier (~500 windows/day)."""
    apps_days: int = 1000
    """Days run through the router model to train mood-from-apps (the slow part: ~0.15 s/day)."""
    vitals_days: int = 3000
    """Days run through the speaker models to train mood-from-vitals (~10 ms/day)."""
    days_per_household: int = 5
    """Days drawn per training household: classifiers must generalise across people, not memorise."""
    val_fraction: float = 0.2
    """Share of households held out for the validation scores in the manifest."""
    out_dir: Path = field(default_factory=lambda: CHECKPOINT_DIR)
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("traffic_days", "apps_days", "vitals_days", "days_per_household"):
            if getattr(self, name) < 1:
                raise UserInputError(f"{name} must be at least 1, got {getattr(self, name)}")
        self.vitals_days = max(self.vitals_days, self.apps_days)  # every apps day also yields a vitals sample
        if not 0.0 < self.val_fraction < 1.0:
            raise UserInputError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


def training_days(cfg: TrainConfig, n: int, stream: int) -> list[tuple[int, dt.date]]:
    """(household seed, date) pairs for training, `days_per_household` days per household."""
    rng = np.random.default_rng([cfg.seed, stream])
    n_households = max(1, n // cfg.days_per_household)
    base = TRAIN_HOUSEHOLD_BASE + 100_000 * cfg.seed + 10_000 * stream
    pairs = []
    for i in range(n):
        hh = base + (i % n_households)
        day = TRAIN_FIRST_DAY + dt.timedelta(days=int(rng.integers(TRAIN_SPAN_DAYS)))
        pairs.append((hh, day))
    return pairs


def _household_split(groups: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: all rows of a random `val_fraction` of households."""
    uniq = np.unique(groups)
    rng = np.random.default_rng(seed)
    n_val = max(1, round(len(uniq) * val_fraction)) if len(uniq) > 1 else 0
    val = rng.choice(uniq, size=n_val, replace=False)
    return np.isin(groups, val)


def train_traffic_classifier(cfg: TrainConfig) -> tuple[Any, dict[str, float]]:
    """Fit the window classifier; returns it (refit on all data) and its held-out window accuracy."""
    rng = np.random.default_rng([cfg.seed, 99])
    traces, groups = [], []
    for hh, day in tqdm(training_days(cfg, cfg.traffic_days, stream=1), desc="traffic traces",
                        disable=not cfg.progress, leave=False):
        traces.append(simulate_home(day, hh).network_traffic)
        groups.append(hh)
    val_hh = _household_split(np.array(groups), cfg.val_fraction, cfg.seed)
    fit_traces = [t for t, v in zip(traces, val_hh) if not v] or traces
    x_fit, y_fit = traffic.training_windows(fit_traces, rng)
    model = traffic.new_classifier(cfg.seed).fit(x_fit, y_fit)
    scores: dict[str, float] = {}
    val_traces = [t for t, v in zip(traces, val_hh) if v]
    if val_traces:
        labels = np.concatenate([traffic.classify_windows(model, t) for t in val_traces])
        truth = np.concatenate([t.window_labels(traffic.WINDOW_S) for t in val_traces])
        active = truth != traffic.IDLE
        scores["val_window_accuracy_active"] = float(np.mean(labels[active] == truth[active]))
        scores["val_window_accuracy_all"] = float(np.mean(labels == truth))
        x_all, y_all = traffic.training_windows(traces, rng)
        model = traffic.new_classifier(cfg.seed).fit(x_all, y_all)
    scores["train_windows"] = float(len(y_fit))
    return model, scores


def mood_training_set(cfg: TrainConfig, traffic_model: Any) -> dict[str, np.ndarray]:
    """Model outputs (not ground truth) and the true mood for every training day."""
    pairs = training_days(cfg, cfg.vitals_days, stream=2)
    vit_x, app_x, y, groups, has_apps = [], [], [], [], []
    for i, (hh, day) in enumerate(tqdm(pairs, desc="mood training days", disable=not cfg.progress,
                                       leave=False)):
        home = simulate_home(day, hh)
        rec = home.audio
        vit_x.append(mood.vital_features(vitals.estimate_heart_rate(rec).rate_bpm,
                                         vitals.estimate_respiration(rec).rate_bpm))
        if i < cfg.apps_days:
            usage = traffic.app_usage_minutes(traffic.classify_windows(traffic_model,
                                                                       home.network_traffic))
            app_x.append(mood.app_features(usage))
        y.append(home.state.mood)
        groups.append(hh)
        has_apps.append(i < cfg.apps_days)
    has = np.array(has_apps)
    return {
        "vitals_x": np.array(vit_x), "apps_x": np.array(app_x), "y": np.array(y),
        "groups": np.array(groups), "has_apps": has,
    }


def _fit_with_validation(make: Any, x: np.ndarray, y: np.ndarray, groups: np.ndarray,
                         cfg: TrainConfig) -> tuple[Any, dict[str, float]]:
    val = _household_split(groups, cfg.val_fraction, cfg.seed + 1)
    scores: dict[str, float] = {"train_rows": float(len(y))}
    if val.any() and (~val).any():
        held = make(cfg.seed).fit(x[~val], y[~val])
        scores["val_accuracy"] = float(accuracy_score(y[val], held.predict(x[val])))
        counts = {m: int(np.sum(y[~val] == m)) for m in MOODS}
        scores["val_majority_baseline"] = float(np.mean(y[val] == max(counts, key=counts.get)))
    return make(cfg.seed).fit(x, y), scores


def train_all(cfg: TrainConfig) -> dict[str, Any]:
    """Train and save the three models under cfg.out_dir; returns the manifest it wrote.

    OpenMP is held to one thread: on a small shared machine the gradient-boosting fit spends most
    of its time in thread synchronisation otherwise.
    """
    with threadpool_limits(limits=1, user_api="openmp"):
        return _train_all(cfg)


def _train_all(cfg: TrainConfig) -> dict[str, Any]:
    started = time.perf_counter()
    out = Path(cfg.out_dir)
    log.info("training healthcare models into %s (seed %d)", out, cfg.seed)
    traffic_model, traffic_scores = train_traffic_classifier(cfg)
    data = mood_training_set(cfg, traffic_model)
    has = data["has_apps"]
    apps_model, apps_scores = _fit_with_validation(
        mood.new_apps_tree, data["apps_x"], data["y"][has], data["groups"][has], cfg)
    vitals_model, vitals_scores = _fit_with_validation(
        mood.new_vitals_forest, data["vitals_x"], data["y"], data["groups"], cfg)

    save_checkpoint(out, "traffic-app-usage", {
        "model": traffic_model, "feature_names": list(traffic.FEATURE_NAMES),
        "labels": list(traffic.LABELS), "window_s": traffic.WINDOW_S})
    save_checkpoint(out, "mood-from-apps", {
        "model": apps_model, "feature_names": list(mood.APP_FEATURES),
        "trained_on": "app_usage output of traffic-app-usage on simulated traces"})
    save_checkpoint(out, "mood-from-vitals", {
        "model": vitals_model, "feature_names": list(mood.VITAL_FEATURES),
        "trained_on": "rates output of heartbeat-acoustic/respiration-acoustic on simulated audio"})
    manifest = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()
                   if k not in ("out_dir", "progress")},
        "sklearn_version": sklearn.__version__,
        "seconds": round(time.perf_counter() - started, 1),
        "scores": {"traffic-app-usage": traffic_scores, "mood-from-apps": apps_scores,
                   "mood-from-vitals": vitals_scores},
        "files": {m: {"file": f, "bytes": (out / f).stat().st_size}
                  for m, f in CHECKPOINT_FILES.items()},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
