"""Where the trained healthcare models live on disk, and loading them (cached, version-checked).

The joblib files are read through `tools/checkpoints.py`, so a corrupt one is a WeightsError
naming the file; a model with no file is not installed (ModelNotInstalledError).
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import joblib
import sklearn
from edgeai.tools import checkpoints
from edgeai.tools.runtimes import ModelNotInstalledError

log = logging.getLogger(__name__)

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
"""Shipped with the package (package-data `checkpoints/*`); `edgeai models train` rewrites it."""

CHECKPOINT_FILES: dict[str, str] = {
    "traffic-app-usage": "traffic_app_usage.joblib",
    "mood-from-apps": "mood_from_apps.joblib",
    "mood-from-vitals": "mood_from_vitals.joblib",
}
MANIFEST = "manifest.json"


def save_checkpoint(directory: Path, model_id: str, payload: dict[str, Any]) -> Path:
    """Write one model (a dict holding the estimator and its feature names), compressed."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILES[model_id]
    joblib.dump({**payload, "sklearn_version": sklearn.__version__}, path, compress=3)
    load_checkpoint.cache_clear()
    return path


@lru_cache(maxsize=16)
def load_checkpoint(model_id: str, directory: Path = CHECKPOINT_DIR) -> dict[str, Any]:
    """The stored payload of `model_id`; ModelNotInstalledError when it has no file, WeightsError
    when the file does not load."""
    name = CHECKPOINT_FILES.get(model_id)
    if name is None:
        raise ModelNotInstalledError(model_id, "it has no trained weights in this package")
    path = Path(directory) / name
    if not path.is_file():
        raise ModelNotInstalledError(
            model_id, f"weights file {path} is missing (train with `edgeai models train`)"
        )
    payload = checkpoints.load(path, f"{model_id} weights", dict, fmt="joblib")
    if payload.get("sklearn_version") != sklearn.__version__:
        log.warning("%s was saved with scikit-learn %s, running %s; retrain if predictions look off",
                    path.name, payload.get("sklearn_version"), sklearn.__version__)
    return payload


def read_manifest(directory: Path = CHECKPOINT_DIR) -> dict[str, Any]:
    """Training metadata (seed, sizes, validation scores) written next to the weights."""
    path = Path(directory) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}
