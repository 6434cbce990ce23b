"""One trial of automatic federated learning, from the trusted side: prepare the data once, write
a validated configuration into an app folder, run it in the sandbox, read its learning curve.

Data are prepared here, in the parent, before any generated code runs: the chosen data set is
loaded (tools/federated/data.py), split among the clients with a flwr-datasets partitioner and
written as .npy arrays plus one index array per client; the generated app only reads them. Each
trial keeps its folder under the data home (`fl/<run>/trial-N/`): the generated `app/` (task.py
and the fixed files), `config.json`, `job.json`, the curve as `curve.jsonl`, `curve.csv` and
`curve.png`, the sandbox's logs and the final weights (`out/model.pt`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from edgeai.tools.federated.job import FLJob
from edgeai.tools.federated.template import Manifest
from edgeai.tools.federated.validate import validate
from pydantic import BaseModel, Field


class PreparedData(BaseModel):
    """Arrays on disk and a profile the agents read (sizes, channels, classes, partitions)."""

    spec: str
    data_dir: str
    partitions: str
    clients: int
    scheme: str
    alpha: float | None
    profile: dict[str, Any]


class TrialRecord(BaseModel):
    """What one trial was and what it did (JSON: kept in the graph state and on disk)."""

    trial: int
    config: dict[str, Any]
    source: str = Field(description="who proposed it: default, optuna, llm, tuner")
    status: str = Field(description="ok, rejected, failed, timeout, memory, network")
    message: str = ""
    dir: str = ""
    curve: list[dict[str, Any]] = Field(default_factory=list)
    rounds: int = 0
    clients: int = 0
    seconds: float = 0.0
    isolation: dict[str, Any] = Field(default_factory=dict)

    @property
    def client_rounds(self) -> int:
        return self.rounds * self.clients

    @property
    def client_epochs(self) -> int:
        """Local computation: a client-round of E local epochs is E client-epochs."""
        return self.client_rounds * int(self.config.get("LOCAL_EPOCHS", 1))

    def final(self, key: str = "val_accuracy") -> float | None:
        return self.curve[-1].get(key) if self.curve and self.status == "ok" else None

    def summary(self) -> dict[str, Any]:
        # the median round: round 1 also pays the engine's start (Ray and its actors, ~20 s here)
        comp = [r["compute_s"] for r in self.curve[1:]]
        return {
            "trial": self.trial, "status": self.status, "source": self.source,
            "val_accuracy": self.final("val_accuracy"), "test_accuracy": self.final("test_accuracy"),
            "rounds": self.rounds, "client_rounds": self.client_rounds,
            "client_epochs": self.client_epochs,
            "compute_s_per_round": round(float(np.median(comp)), 3) if comp else None,
            "comm_s_per_round": self.curve[-1].get("comm_s") if len(self.curve) > 1 else None,
            "model_bytes": self.curve[-1].get("model_bytes") if self.curve else None,
            "seconds": round(self.seconds, 1),
        }


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def prepare_data(spec: str, cache_dir: Path, *, clients: int, scheme: str = "iid",
                 alpha: float = 0.5, seed: int = 0, n_train: int | None = None) -> PreparedData:
    """Load, split and write the data once per (spec, size, seed, partitioning)."""
    from edgeai.tools.federated.data import load_data, partition

    data_dir = cache_dir / f"data-{_key(spec, n_train, seed)}"
    data = load_data(spec, cache_dir=cache_dir, n_train=n_train, seed=seed)
    if not (data_dir / "y_test.npy").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        for split in ("train", "val", "test"):
            for prefix in ("x", "y"):
                arr = np.ascontiguousarray(getattr(data, f"{prefix}_{split}"))
                tmp = data_dir / f"{prefix}_{split}.tmp.npy"
                np.save(tmp, arr)
                tmp.replace(data_dir / f"{prefix}_{split}.npy")
    part_path = data_dir / f"partitions-{_key(clients, scheme, alpha if scheme != 'iid' else None, seed)}.npz"
    parts = partition(np.asarray(data.y_train), clients, scheme=scheme, alpha=alpha, seed=seed)
    if not part_path.exists():
        tmp = part_path.with_suffix(".tmp.npz")
        np.savez(tmp, **{f"client_{i}": p for i, p in enumerate(parts)})
        tmp.replace(part_path)
    profile = dict(data.profile())
    profile["classes"] = list(data.classes)
    profile["mean"], profile["std"] = list(data.mean), list(data.std)
    profile["clients"] = clients
    profile["partitioning"] = scheme if scheme == "iid" else f"{scheme} (alpha={alpha})"
    profile["examples_per_client"] = [len(p) for p in parts]
    return PreparedData(spec=spec, data_dir=str(data_dir), partitions=str(part_path),
                        clients=clients, scheme=scheme, alpha=alpha if scheme != "iid" else None,
                        profile=profile)


def pooled(data: PreparedData) -> PreparedData:
    """The same data held by one client: every training example in one place. Trained through
    the same app, rounds and local epochs, it is the centralised reference FL at best approaches
    (no partitioning, no averaging), and it costs the same client-epochs' worth of examples."""
    n = int(np.load(Path(data.data_dir) / "y_train.npy", mmap_mode="r").shape[0])
    path = Path(data.data_dir) / "partitions-pooled.npz"
    if not path.exists():
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, client_0=np.arange(n))
        tmp.replace(path)
    profile = {**data.profile, "clients": 1, "partitioning": "pooled (centralised)",
               "examples_per_client": [n]}
    return data.model_copy(update={"partitions": str(path), "clients": 1, "scheme": "pooled",
                                   "alpha": None, "profile": profile})


def job_for(data: PreparedData, *, rounds: int, seed: int, out_dir: Path) -> FLJob:
    """The job file of a run on prepared data (both engines read the same one)."""
    p = data.profile
    return FLJob(
        data=data.spec, data_dir=data.data_dir, partitions=data.partitions, clients=data.clients,
        rounds=rounds, seed=seed, threads=1, out_dir=str(out_dir), channels=p["channels"],
        image_size=p["height"], num_classes=p["num_classes"], classes=list(p["classes"]),
    )


def run_trial(
    manifest: Manifest,
    text: str,
    data: PreparedData,
    trial_dir: Path,
    *,
    trial: int,
    source: str,
    rounds: int,
    seed: int = 0,
    seconds: float = 1800.0,
    memory_mb: int = 6144,
    cores: int | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> TrialRecord:
    """Validate `text` again (nothing unvalidated runs), write the app and job, run it in the
    sandbox and return the trial with its curve; never raises for what the code does."""
    from edgeai.tools.federated.sandbox import Limits, run_sandboxed

    config = validate(text, manifest)
    trial_dir.mkdir(parents=True, exist_ok=True)
    app_dir = manifest.write_app(text, trial_dir / "app")
    (trial_dir / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    out_dir = trial_dir / "out"
    if out_dir.exists():
        for stale in out_dir.iterdir():
            stale.unlink()
    job_path = job_for(data, rounds=rounds, seed=seed, out_dir=out_dir).write(trial_dir / "job.json")
    cores = cores or os.cpu_count() or 1
    argv = [sys.executable, "-m", "edgeai.tools.federated.runner", str(app_dir), str(job_path),
            "--cores", str(cores)]

    def line(text_line: str) -> None:
        if on_round and text_line.startswith("EDGEAI_ROUND "):
            on_round(json.loads(text_line.split(" ", 1)[1]))

    result = run_sandboxed(argv, trial_dir / "sandbox", Limits(seconds=seconds, memory_mb=memory_mb),
                           on_line=line)
    curve = read_curve(out_dir / "curve.jsonl")
    status = result.status
    message = result.message
    if status == "ok" and len(curve) < rounds + 1:
        status, message = "failed", f"the run stopped after {max(len(curve) - 1, 0)} of {rounds} rounds"
    record = TrialRecord(trial=trial, config=config, source=source, status=status,
                         message=message, dir=str(trial_dir), curve=curve, rounds=rounds,
                         clients=data.clients, seconds=result.seconds,
                         isolation=dict(result.isolation))
    if curve:
        write_curve_files(record, trial_dir)
    (trial_dir / "trial.json").write_text(record.model_dump_json(indent=1), encoding="utf-8")
    return record


def read_curve(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_curve_files(record: TrialRecord, folder: Path) -> None:
    """curve.csv and curve.png of one trial."""
    keys = list(record.curve[0])
    with (folder / "curve.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(record.curve)
    plot_curves({f"trial {record.trial}": record.curve}, folder / "curve.png",
                title=f"trial {record.trial}: {record.config.get('ARCH')}, "
                      f"{record.config.get('OPTIMIZER')} lr={record.config.get('LEARNING_RATE')}")


def plot_curves(curves: dict[str, list[dict[str, Any]]], path: Path, *, title: str = "",
                key: str = "val_accuracy") -> Path:
    """Accuracy per round, one line per curve (Fig. 4 of the paper)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, curve in curves.items():
        ax.plot([r["round"] for r in curve], [r[key] for r in curve], marker=".", label=label)
    ax.set_xlabel("global round")
    ax.set_ylabel(key.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
