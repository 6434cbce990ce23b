"""Models trained here by federated learning: registered in the data home, described in a device
manual the knowledge store reads, and served by a `ModelRuntime` so the next request can use them.

`register_trained` copies a finished trial's weights to `<home>/models/<model id>/model.pt` with
`model.json` (architecture, data, classes, normalisation, the trial's held-out test accuracy and
where its code and curve are), then rewrites one manual, `<home>/models/edgeai-trained-models.md`,
for the device that hosts every trained model: the home's edge server tier (compute rate copied
from the home's edge device when it has one). The caller adds that manual to the store (it owns
the unit builder), so `edgeai plan` can select the model. `TrainedRuntime` runs a registered model
on the request's image: the one a producer passed (`upstream["image"]`), else the camera's photo
of the day (generated data) or the test image of the day (digits, CIFAR-10).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from edgeai.errors import WeightsError
from edgeai.tools.runtimes import ModelNotInstalledError, ModelResult, RunCall

DEVICE = "edgeai-trained-models"
MANUAL = f"{DEVICE}.md"


def models_dir(home: Path) -> Path:
    return Path(home) / "models"


def registered(home: Path, file: str = "model.json") -> dict[str, dict[str, Any]]:
    """{model id: its model.json} of every model trained and registered in this home (`file`:
    "adapter.json" lists the language models adapted by federated fine-tuning instead)."""
    root = models_dir(home)
    out: dict[str, dict[str, Any]] = {}
    if root.is_dir():
        for meta in sorted(root.glob(f"*/{file}")):
            try:
                out[meta.parent.name] = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue  # half-written by a killed run: not registered
    return out


def model_id_for(purpose: str, data: str, home: Path) -> str:
    """A readable, unused id: fl-<data>-<task words>-<n>."""
    words = re.findall(r"[a-z0-9]+", purpose.lower())
    stop = {"a", "an", "the", "my", "for", "of", "to", "me", "train", "please", "model", "on",
            "and", "that", "which", "in", "from", "can", "you", "i", "want", "need", "new"}
    core = "-".join([w for w in words if w not in stop][:3]) or "classifier"
    base = f"fl-{re.sub(r'[^a-z0-9]+', '-', data.split(':')[0])}-{core}"
    taken = registered(home)
    n = 1
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def register_trained(home: Path, *, trial: Any, data: Any, purpose: str,
                     edge_compute_hz: float | None = None) -> tuple[str, Path]:
    """Copy the trial's weights into the home, write model.json and the manual; returns
    (model id, manual path). `trial` is a TrialRecord, `data` a PreparedData."""
    weights = Path(trial.dir) / "out" / "model.pt"
    if not weights.is_file():
        raise WeightsError(f"{weights}: the trial wrote no weights")
    home = Path(home)
    mid = model_id_for(purpose, data.spec, home)
    target = models_dir(home) / mid
    tmp = models_dir(home) / f".{mid}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(weights, tmp / "model.pt")
    p = data.profile
    meta = {
        "model": mid, "purpose": purpose, "data": data.spec, "arch": trial.config["ARCH"],
        "channels": p["channels"], "image_size": p["height"], "num_classes": p["num_classes"],
        "classes": list(p["classes"]), "mean": list(p["mean"]), "std": list(p["std"]),
        "data_dir": data.data_dir, "test_accuracy": trial.final("test_accuracy"),
        "val_accuracy": trial.final("val_accuracy"), "config": trial.config,
        "trial_dir": trial.dir, "clients": trial.clients, "rounds": trial.rounds,
        "partitioning": p.get("partitioning"), "registered_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (tmp / "model.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp.replace(target)  # the model appears whole or not at all
    return mid, write_manual(home, edge_compute_hz)


def write_manual(home: Path, edge_compute_hz: float | None = None) -> Path:
    """The device manual of every registered model (rewritten whole on each registration)."""
    models = registered(home)
    entries, sections = [], []
    for mid, m in models.items():
        classes = ", ".join(m["classes"])
        acc = m.get("test_accuracy")
        acc_text = f"{100 * acc:.1f} %" if acc is not None else "not measured"
        size = m["image_size"]
        entries.append({
            "name": mid,
            "task": "image classification",
            "inputs": ["image"],
            "outputs": ["label"],
            "description": (f"Image classifier trained at the edge by federated learning "
                            f"for: {m['purpose']}. Names which of {m['num_classes']} classes "
                            f"({classes}) an image or photo shows; held-out test accuracy "
                            f"{acc_text}."),
            "input_bits": float(size * size * m["channels"] * 8),
            "cycles": 2.0e8,
        })
        sections.append(
            f"**{mid}** classifies an image ({size}x{size} pixels, {m['channels']} channel(s)) "
            f"into one of: {classes}. It was trained by {m['clients']} clients with federated "
            f"learning ({m['rounds']} rounds, {m.get('partitioning') or 'iid'} data, "
            f"{m['arch']} network) for the request \"{m['purpose']}\"; nobody's data left "
            f"their device. Held-out test accuracy: {acc_text}.\n")
    import yaml

    front = {"device": DEVICE, "kind": "edge server models trained here by federated learning",
             "location": "edge server", "tier": "edge", "compute_hz": float(edge_compute_hz or 1e12),
             "models": entries}
    body = ("# Models trained by federated learning: manual\n\n## Hosted AI models\n"
            + "\n".join(sections)
            + "\n## Limits\nEach model only names its own classes: it does not caption photos, "
              "answer questions, read text or detect several objects.\n")
    path = models_dir(home) / MANUAL
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
                   + "---\n" + body, encoding="utf-8")
    tmp.replace(path)
    return path


def _day_index(call: RunCall, n: int) -> int:
    """Which of n test images is the day's (the same crc32 mapping as split inference's camera)."""
    return zlib.crc32(f"{call.day.isoformat()}:{call.seed}".encode()) % max(n, 1)


class TrainedRuntime:
    """The models registered in one data home, as a `tools.runtimes.ModelRuntime`."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.name = f"models trained by federated learning ({self.home.name})"
        self._models: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def model_ids(self) -> list[str]:
        return list(registered(self.home))

    def _model(self, mid: str, meta: dict[str, Any]) -> Any:
        from edgeai.tools.checkpoints import load
        from edgeai.tools.federated.models import build_model

        path = models_dir(self.home) / mid / "model.pt"
        stamp = path.stat().st_mtime
        with self._lock:
            cached = self._models.get(mid)
            if cached and cached[0] == stamp:
                return cached[1]
            model = build_model(meta["arch"], meta["channels"], meta["num_classes"], meta["image_size"])

            def fit(state: Any) -> Any:
                model.load_state_dict(state)
                return model

            # the one checkpoint loader: a truncated or foreign file is one WeightsError
            load(path, f"the trained model {mid}", fit, hint="train it again with `edgeai fl auto`")
            model.eval()
            self._models[mid] = (stamp, model)
            return model

    def _input(self, call: RunCall, meta: dict[str, Any]) -> tuple[np.ndarray, str | None, str]:
        """(image as float CHW normalised, ground truth or None, where it came from)."""
        given = call.upstream.get("image")
        size, channels = meta["image_size"], meta["channels"]
        truth = None
        if given is not None:
            img = np.asarray(given if not isinstance(given, (str, Path)) else _read(given, channels))
            where = "the given image"
            x = _resize(img, size, channels)
        elif meta["data"] == "generated":
            from edgeai.tools.photoworld import KINDS, photos
            from edgeai.tools.split_inference.service import camera_seed

            seed = camera_seed(call.day, call.seed)  # the photo split inference's camera takes
            imgs, labels = photos(1, seed, size)
            x = imgs[0].astype(np.float32) / 255.0
            truth = KINDS[int(labels[0])]
            where = f"the camera's photo of {call.day.isoformat()}"
            x = x.transpose(2, 0, 1)
        else:
            xs = np.load(Path(meta["data_dir"]) / "x_test.npy", mmap_mode="r")
            ys = np.load(Path(meta["data_dir"]) / "y_test.npy", mmap_mode="r")
            i = _day_index(call, len(ys))
            truth = meta["classes"][int(ys[i])]
            return np.asarray(xs[i], dtype=np.float32), truth, f"test image {i} of {meta['data']}"
        mean = np.asarray(meta["mean"], np.float32)[:, None, None]
        std = np.asarray(meta["std"], np.float32)[:, None, None]
        return ((x - mean) / std).astype(np.float32), truth, where

    def run(self, call: RunCall) -> ModelResult:
        import torch

        meta = registered(self.home).get(call.model_id)
        if meta is None:
            raise ModelNotInstalledError(call.model_id, "not registered in this data home")
        started = time.perf_counter()
        model = self._model(call.model_id, meta)
        x, truth, where = self._input(call, meta)
        with torch.no_grad():
            p = torch.softmax(model(torch.from_numpy(x)[None]), dim=1)[0]
        k = int(p.argmax())
        label, conf = meta["classes"][k], float(p[k])
        acc = meta.get("test_accuracy")
        acc_text = f"; {100 * acc:.1f} % accurate on held-out data" if acc is not None else ""
        return ModelResult(
            model=call.model_id,
            device=DEVICE,
            outputs={"label": label, "confidence": round(conf, 4)},
            summary=f"{call.model_id} says {where} shows a {label} ({conf:.0%} sure{acc_text})",
            details={"input": where, "ground_truth": truth, "test_accuracy": acc},
            seconds=round(time.perf_counter() - started, 4),
        )


def _read(path: str | Path, channels: int) -> np.ndarray:
    from PIL import Image

    img = Image.open(path).convert("RGB" if channels == 3 else "L")
    return np.asarray(img)


def _resize(img: np.ndarray, size: int, channels: int) -> np.ndarray:
    """uint8 HWC (or HW) -> float CHW in [0, 1] at size x size."""
    from PIL import Image

    pil = Image.fromarray(img.astype(np.uint8)).convert("RGB" if channels == 3 else "L")
    arr = np.asarray(pil.resize((size, size), Image.BOX), dtype=np.float32) / 255.0
    return arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]
