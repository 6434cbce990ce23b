"""The edge server's two mood classifiers: a decision tree on app usage, a random forest on vitals.

Both read exactly what their upstream models output (`app_usage` minutes per category from the
router; `heart_rate_bpm` and `respiration_rate_bpm` from the speaker) and predict one of MOODS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from edgeai.tools.healthcare.errors import InvalidInputError
from edgeai.tools.healthcare.sensors import APP_CATEGORIES, MOODS
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

APP_FEATURES: tuple[str, ...] = (
    *(f"{c}_min" for c in APP_CATEGORIES),
    *(f"{c}_share" for c in APP_CATEGORIES),
    "total_min",
)
VITAL_FEATURES: tuple[str, ...] = ("heart_rate_bpm", "respiration_rate_bpm")


def app_features(app_usage: Mapping[str, Any]) -> np.ndarray:
    """(len(APP_FEATURES),) minutes per category, each category's share of screen time, total.

    Unknown categories are ignored and missing ones count as zero minutes, so a router reporting a
    subset of categories still works.
    """
    if not isinstance(app_usage, Mapping):
        raise InvalidInputError(
            "mood-from-apps", "app_usage",
            f"must map category -> minutes, got {type(app_usage).__name__}",
        )
    try:
        minutes = np.array([max(float(app_usage.get(c, 0.0)), 0.0) for c in APP_CATEGORIES])
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("mood-from-apps", "app_usage", f"minutes must be numbers: {exc}") from exc
    total = minutes.sum()
    shares = minutes / total if total > 0 else np.zeros_like(minutes)
    return np.concatenate([minutes, shares, [total]])


def vital_features(heart_rate_bpm: float, respiration_rate_bpm: float) -> np.ndarray:
    return np.array([float(heart_rate_bpm), float(respiration_rate_bpm)])


def new_apps_tree(seed: int = 0) -> DecisionTreeClassifier:
    """Depth-limited so it stays readable and does not memorise individual households."""
    return DecisionTreeClassifier(max_depth=6, min_samples_leaf=15, random_state=seed)


def new_vitals_forest(seed: int = 0) -> RandomForestClassifier:
    """Shallow trees: two noisy inputs do not support deep splits, and the checkpoint stays small."""
    return RandomForestClassifier(n_estimators=60, max_depth=7, min_samples_leaf=10,
                                  random_state=seed, n_jobs=1)


def predict_mood(model: Any, features: np.ndarray) -> tuple[str, dict[str, float]]:
    """The most likely mood and the probability of every mood (zeros for classes never seen)."""
    proba = model.predict_proba(features.reshape(1, -1))[0]
    probs = dict.fromkeys(MOODS, 0.0)
    for cls, p in zip(model.classes_, proba):
        probs[str(cls)] = float(p)
    return max(probs, key=probs.get), probs
