"""`edgeai bench fl`'s engine: the grid-searched baseline, and the table, CSV and figure that
set automatic FL's trials beside it (the analogue of Fig. 4 of the paper).

The baseline is the paper's: one fixed model (a ResNet-style net by default) trained with SGD
(with momentum 0.9, the usual practice, so the baseline is not handicapped by its optimizer), no
augmentation and no schedule, its learning rate chosen by grid search on the server-held
validation split; same clients, rounds, data and partitions as the trials. Both
sides choose by validation accuracy only; the test split is read only to report, with a 95 %
Wilson interval (the test set is a sample). Budgets are counted in client-rounds (one client
training for one round): the grid spends len(grid) x rounds x clients, the trials spend
trials x rounds x clients.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeai.tools.federated.template import Manifest
from edgeai.tools.federated.trial import PreparedData, TrialRecord, plot_curves, run_trial
from edgeai.tools.stats import wilson


def baseline_config(manifest: Manifest, arch: str, lr: float, epochs: int = 1) -> dict[str, Any]:
    return {**manifest.defaults(), "ARCH": arch, "OPTIMIZER": "momentum", "LEARNING_RATE": lr,
            "AUGMENTATION": "none", "GLOBAL_DECAY": 1.0, "LOCAL_DECAY": 1.0,
            "LOCAL_EPOCHS": epochs}


def run_grid(manifest: Manifest, data: PreparedData, root: Path, *, grid: list[float], arch: str,
             rounds: int, seed: int, epochs: int = 1,
             on_round: Callable[[dict[str, Any]], None] | None = None) -> list[TrialRecord]:
    """One sandboxed run per learning rate of the grid."""
    out = []
    for i, lr in enumerate(grid, 1):
        config = baseline_config(manifest, arch, lr, epochs)
        out.append(run_trial(manifest, manifest.render(config), data, root / f"grid-{i}",
                             trial=i, source="grid", rounds=rounds, seed=seed, on_round=on_round))
    return out


def best_by_validation(records: list[TrialRecord]) -> TrialRecord | None:
    ok = [r for r in records if r.status == "ok" and r.final() is not None]
    return max(ok, key=lambda r: r.final()) if ok else None


def rows_for(data: str, partition: str, method: str, records: list[TrialRecord],
             n_test: int) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        s = r.summary()
        lo, hi = wilson(s["test_accuracy"], n_test)
        c = r.config
        rows.append({
            "data": data, "partition": partition, "method": method, "run": r.trial,
            "status": r.status, "arch": c.get("ARCH"), "optimizer": c.get("OPTIMIZER"),
            "lr": c.get("LEARNING_RATE"), "augmentation": c.get("AUGMENTATION"),
            "global_decay": c.get("GLOBAL_DECAY"), "decay_every": c.get("GLOBAL_DECAY_EVERY"),
            "local_decay": c.get("LOCAL_DECAY"), "local_epochs": c.get("LOCAL_EPOCHS"),
            "batch_size": c.get("BATCH_SIZE"), "val_accuracy": s["val_accuracy"],
            "test_accuracy": s["test_accuracy"], "test_ci_low": lo, "test_ci_high": hi,
            "client_rounds": s["client_rounds"], "client_epochs": s["client_epochs"],
            "compute_s_per_round": s["compute_s_per_round"],
            "comm_s_per_round": s["comm_s_per_round"], "model_bytes": s["model_bytes"],
            "seconds": s["seconds"],
        })
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
    return path


def figure(panels: dict[str, dict[str, list[dict[str, Any]]]], path: Path) -> Path:
    """One panel per (data, partition): test accuracy per round of the baseline's best rate and
    of each trial."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 3.8 * rows), squeeze=False)
    for ax, (title, curves) in zip(axes.flat, panels.items(), strict=False):
        for label, curve in curves.items():
            style = ("--" if label.startswith("baseline") else
                     ":" if label.startswith("central") else "-")
            ax.plot([r["round"] for r in curve], [r["test_accuracy"] for r in curve], style,
                    marker=".", label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("global round")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


__all__ = ["baseline_config", "best_by_validation", "figure", "plot_curves", "rows_for",
           "run_grid", "wilson", "write_csv"]
