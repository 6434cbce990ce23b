"""One federated fine-tuning run on Flower's Simulation Engine: data, job, apps, CSV and PNG.

`run_fedtune(job)` partitions the corpus among the users (text.py), writes each user's texts to
its own file, runs the ServerApp and one ClientApp per user with `flwr.simulation.run_simulation`
(one virtual SuperNode per user) and returns the rounds' rows plus the run's summary. The rows
land in `<out>/rounds.csv` and a loss/perplexity/accuracy plot in `<out>/curve.png`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeai.tools.federated.fedtune import text
from edgeai.tools.federated.fedtune.job import JOB_ENV, FedtuneJob


@dataclass
class FedtuneResult:
    job: FedtuneJob
    rows: list[dict]
    summary: dict
    out_dir: Path

    @property
    def base_losses(self) -> dict[int, float]:
        return _losses(self.rows[0])

    @property
    def final_losses(self) -> dict[int, float]:
        return _losses(self.rows[-1])

    @property
    def true_clusters(self) -> dict[int, int]:
        return {u: u % len(text.FORTUNE_DOMAINS) for u in range(self.job.users)}


def _losses(row: dict) -> dict[int, float]:
    return {int(k[6:]): float(v) for k, v in row.items() if k.startswith("loss_u")}


def prepare(job: FedtuneJob, out_dir: Path) -> FedtuneJob:
    """Users' files and the job file under out_dir; returns the job with its paths filled in."""
    job.check()
    from edgeai.tools.federated.fedtune.model import load_base

    load_base(job.base)  # a bad path fails here with one line (and the ServerApp reuses it)
    examples = text.corpus_examples(job.corpus, per_category=(job.per_user + job.held_out)
                                    * max(1, -(-job.users // 4)), seed=job.seed)
    users = text.partition_users(examples, job.users, job.per_user, job.held_out, job.seed)
    pairs = sorted({(e.domain, e.category) for e in examples})
    words = [text.LABEL_WORDS[c] for _, c in pairs]
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    text.write_user_files(users, out_dir / "users")
    job = job.model_copy(update={"users_dir": str(out_dir / "users"), "out_dir": str(out_dir),
                                 "label_words": words, "categories": [c for _, c in pairs]})
    job.write(out_dir / "job.json")
    return job


def simulate(job: FedtuneJob) -> None:
    """The apps on the Simulation Engine, one virtual SuperNode per user."""
    from edgeai.tools.federated.fedtune.app import client_app, server_app
    from flwr.simulation import run_simulation

    os.environ[JOB_ENV] = str(Path(job.out_dir) / "job.json")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": job.cores, "num_gpus": 0, "include_dashboard": False,
                      "log_to_driver": True, "configure_logging": True, "logging_level": 40},
    }
    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=job.users,
                   backend_config=backend)


def app_folder(folder: Path) -> Path:
    """A Flower app folder whose components are the fedtune apps (for `flwr run`)."""
    from edgeai.tools.federated.template import pyproject_text

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(
        pyproject_text("fedtune", "fedtune", "edgeai's federated fine-tuning apps"),
        encoding="utf-8")
    (folder / "server_app.py").write_text(
        "from edgeai.tools.federated.fedtune.app import server_app\n\napp = server_app\n",
        encoding="utf-8")
    (folder / "client_app.py").write_text(
        "from edgeai.tools.federated.fedtune.app import client_app\n\napp = client_app\n",
        encoding="utf-8")
    return folder


def deploy(job: FedtuneJob, timeout_s: float = 3600.0,
           on_line: Callable[[str], None] | None = None) -> None:
    """The same apps on Flower's Deployment Engine: a SuperLink and one SuperNode per user on
    127.0.0.1 (tools/federated/deployment.py starts and stops every process); the job file is
    the run config's "job". On real edge boxes the same app folder runs with `flwr run`."""
    from edgeai.tools.federated.deployment import run_deployment

    out = Path(job.out_dir)
    run_deployment(app_folder(out / "app"), num_supernodes=job.users,
                   run_config={"job": str(out / "job.json")}, work_dir=out / "deployment",
                   timeout_s=timeout_s, on_line=on_line)


def run_fedtune(job: FedtuneJob, out_dir: Path,
                on_round: Callable[[dict], None] | None = None, *, deployment: bool = False,
                on_line: Callable[[str], None] | None = None,
                timeout_s: float = 3600.0) -> FedtuneResult:
    from edgeai.tools.federated.fedtune import app

    job = prepare(job, out_dir)
    if deployment:
        deploy(job, timeout_s, on_line)
        return collect(job)
    if on_round:
        app.ROUND_HOOKS.append(on_round)
    try:
        simulate(job)
    finally:
        if on_round:
            app.ROUND_HOOKS.remove(on_round)
    return collect(job)


def collect(job: FedtuneJob) -> FedtuneResult:
    out = Path(job.out_dir)
    lines = (out / "rounds.jsonl").read_text(encoding="utf-8").splitlines() \
        if (out / "rounds.jsonl").exists() else []
    rows = [json.loads(line) for line in lines]
    summary = json.loads((out / "result.json").read_text(encoding="utf-8")) \
        if (out / "result.json").exists() else {}
    # an asynchronous run that reached its target loss stops early: its own count is the bar
    expected = summary.get("evaluations", job.rounds + 1)
    if not summary or len(rows) < expected or len(rows) < 2:
        raise RuntimeError(f"the run stopped after {max(len(rows) - 1, 0)} of {job.rounds} rounds "
                           f"(see the log above)")
    write_csv(rows, out / "rounds.csv")
    plot([(job.method, rows)], out / "curve.png", job.task)
    return FedtuneResult(job, rows, summary, out)


def write_csv(rows: list[dict], path: Path) -> Path:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
    return path


def plot(curves: list[tuple[str, list[dict]]], path: Path, task: str,
         x: str = "round", title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    second = "mean_acc" if task == "classification" else "mean_ppl"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, rows in curves:
        xs = [r[x] for r in rows]
        axes[0].plot(xs, [r["mean_loss"] for r in rows], marker="o", label=name)
        axes[1].plot(xs, [r.get(second, float("nan")) for r in rows], marker="o", label=name)
    xlabel = "simulated wall-clock (s)" if x == "sim_s" else "round (0 = base model)"
    axes[0].set(xlabel=xlabel, ylabel="mean held-out loss per user")
    axes[1].set(xlabel=xlabel, ylabel="mean accuracy" if second == "mean_acc" else "mean perplexity")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def summary_line(result: FedtuneResult) -> dict[str, Any]:
    base, final = result.base_losses, result.final_losses
    return {
        "method": result.job.method, "task": result.job.task, "users": result.job.users,
        "rounds": result.job.rounds, "base_loss": round(sum(base.values()) / len(base), 4),
        "final_loss": round(sum(final.values()) / len(final), 4),
        "users_improved": sum(final[u] < base[u] for u in base),
        "adapter_bytes": result.summary["adapter_bytes"], "bytes_up": result.summary["bytes_up"],
        "backhaul_bytes": result.summary["backhaul_bytes"],
        "sim_s": round(result.summary["sim_s"], 2),
    }
