"""What the generated Flower app calls: model building, local training, FedAvg with a learning-rate
schedule, global evaluation and the learning curve (the trusted, fixed half of the template).

Generated code (a trial's task.py) only sets configuration values and may rewrite its regions;
the loops live here, in plain torch, so every trial trains and is measured the same way. The
curve is one JSON line per round in the job's out_dir/curve.jsonl (round 0 = the initial model),
with the validation accuracy the tuner reads, the held-out test accuracy reported at the end,
the round's wall time on this machine and the modelled communication time of the paper's link
(a model download at 500 KB/s and an upload at 250 KB/s per round; clients send in parallel).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.tools.federated.job import JOB_ENV, FLJob
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

OPTIMIZERS = ("sgd", "momentum", "adam")


@lru_cache(maxsize=4)
def _job(path: str) -> FLJob:
    return FLJob.read(path)


def job_of(context: Any) -> FLJob:
    """The job of this run: the run config's "job" (Deployment Engine) or $EDGEAI_FL_JOB."""
    path = (getattr(context, "run_config", None) or {}).get("job") or os.environ.get(JOB_ENV)
    if not path:
        raise RuntimeError(f"no job: set the run config key 'job' or ${JOB_ENV}")
    job = _job(str(path))
    torch.set_num_threads(job.threads)
    return job


@lru_cache(maxsize=8)
def _array(data_dir: str, name: str) -> np.ndarray:
    return np.load(Path(data_dir) / f"{name}.npy", mmap_mode="r")


def split_arrays(job: FLJob, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a split: "train", "val" or "test" (read-only memory maps)."""
    return _array(job.data_dir, f"x_{split}"), _array(job.data_dir, f"y_{split}")


@lru_cache(maxsize=4)
def _partitions(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def partition(job: FLJob, partition_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This client's training examples (its data never leaves it: only weights are sent)."""
    idx = _partitions(job.partitions)[f"client_{partition_id}"]
    x, y = split_arrays(job, "train")
    return torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(np.asarray(y[idx]))


def build_model(job: FLJob, arch: str, warm_start: bool) -> torch.nn.Module:
    """The architecture for the job's data, initialised the same way on server and clients."""
    from edgeai.tools.federated import models

    torch.manual_seed(job.seed)
    model = models.build_model(arch, job.channels, job.num_classes, job.image_size)
    if warm_start:
        models.load_warm_start(model, arch)
    return model


def augment(images: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    from edgeai.tools.federated.data import augment as _augment

    return _augment(images, kind, generator)


def _optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer '{name}' (choose from {', '.join(OPTIMIZERS)})")


def train(
    model: torch.nn.Module,
    job: FLJob,
    partition_id: int,
    server_round: int,
    *,
    optimizer: str,
    lr: float,
    local_decay: float,
    epochs: int,
    batch_size: int,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
) -> tuple[float, int]:
    """`epochs` passes over the client's partition in shuffled mini-batches; the rate is
    multiplied by `local_decay` after each epoch. Returns (mean loss, examples seen)."""
    x, y = partition(job, partition_id)
    g = torch.Generator().manual_seed(job.seed * 1_000_003 + server_round * 1_009 + partition_id)
    opt = _optimizer(optimizer, model.parameters(), lr)
    model.train()
    total, count = 0.0, 0
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g)
        for start in range(0, len(y), batch_size):
            b = order[start:start + batch_size]
            xb, yb = augment(x[b], g), y[b]
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
            count += len(b)
        for group in opt.param_groups:
            group["lr"] *= local_decay
    return total / max(count, 1), len(y)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 500) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of the model on (x, y)."""
    model.eval()
    correct, loss = 0, 0.0
    for s in range(0, len(y), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[s:s + batch]))
        yb = torch.from_numpy(np.asarray(y[s:s + batch]))
        out = model(xb)
        loss += float(torch.nn.functional.cross_entropy(out, yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
    return correct / max(len(y), 1), loss / max(len(y), 1)


class ScheduledFedAvg(FedAvg):
    """FedAvg (McMahan et al.) whose train config carries each round's learning rate, and whose
    global evaluation writes the learning curve as it goes."""

    def __init__(self, schedule: Callable[[int], float], job: FLJob, **kwargs: Any) -> None:
        n = max(1, round(job.clients * job.fraction))
        kwargs.setdefault("fraction_train", job.fraction)
        kwargs.setdefault("fraction_evaluate", 0.0)
        kwargs.setdefault("min_train_nodes", n)
        kwargs.setdefault("min_available_nodes", job.clients)
        super().__init__(**kwargs)
        self.schedule = schedule
        self.job = job
        self.train_loss: float | None = None
        self.started = time.perf_counter()

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Any:
        config["lr"] = float(self.schedule(server_round))
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Any) -> Any:
        replies = list(replies)
        arrays, metrics = super().aggregate_train(server_round, replies)
        self.train_loss = float(metrics["train_loss"]) if metrics and "train_loss" in metrics else None
        return arrays, metrics


def evaluator(job: FLJob, build: Callable[[FLJob], torch.nn.Module],
              strategy: ScheduledFedAvg) -> Callable[[int, ArrayRecord], MetricRecord]:
    """Global evaluation after every round on the server's validation and test splits; appends
    the round to the curve and prints one progress line."""
    from edgeai.tools.federated.models import model_bytes

    model = build(job)
    size = model_bytes(model)
    comm = size / job.downlink_bytes_per_s + size / job.uplink_bytes_per_s
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curve = out / "curve.jsonl"
    last = [time.perf_counter()]

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        val_acc, val_loss = evaluate(model, *split_arrays(job, "val"))
        test_acc, test_loss = evaluate(model, *split_arrays(job, "test"))
        now = time.perf_counter()
        row = {
            "round": server_round,
            "lr": strategy.schedule(server_round) if server_round else None,
            "train_loss": strategy.train_loss if server_round else None,
            "val_accuracy": round(val_acc, 5), "val_loss": round(val_loss, 5),
            "test_accuracy": round(test_acc, 5), "test_loss": round(test_loss, 5),
            "compute_s": round(now - last[0], 3) if server_round else 0.0,
            "comm_s": round(comm, 3) if server_round else 0.0,
            "model_bytes": size,
        }
        last[0] = now
        with curve.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"EDGEAI_ROUND {json.dumps(row)}", flush=True)
        return MetricRecord({"val_accuracy": val_acc, "val_loss": val_loss})

    return evaluate_fn


def save_final(job: FLJob, model: torch.nn.Module, final: ArrayRecord | None) -> Path:
    """The trained global weights as out_dir/model.pt (what a registered model's runtime loads)."""
    if final is not None:
        model.load_state_dict(final.to_torch_state_dict())
    path = Path(job.out_dir) / "model.pt"
    torch.save(model.state_dict(), path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return path


__all__ = ["FLJob", "ScheduledFedAvg", "augment", "build_model", "evaluate",
           "evaluator", "job_of", "partition", "save_final", "train"]
