"""The Flower apps of federated fine-tuning: a ClientApp per user and the ServerApp.

ClientApp (one per user, i.e. per SuperNode): reads only its own texts (`user_<id>.json` under
the job's users folder, the user's device storage), loads the frozen base + adapter once per
process, and answers two messages: train (set the adapter arrays it got, train locally, reply
with the new adapter arrays and numeric metrics) and evaluate (held-out loss/accuracy of the
adapter it got, or of the base model alone when config["base"] = 1). Nothing else leaves it.

ServerApp: builds the initial adapter, the simulated clock and the strategy of the job's method
(strategies.py) and runs it; each round's row goes to `<out>/rounds.jsonl` as it finishes, the
final adapters to `<out>/adapters.npz` and the run's summary to `<out>/result.json`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.tools.channel import Cell
from edgeai.tools.federated.fedtune import local
from edgeai.tools.federated.fedtune.job import FedtuneJob, job_of
from edgeai.tools.federated.fedtune.model import (
    adapter_arrays,
    load_adapter_arrays,
    load_base,
    make_adapter,
)
from edgeai.tools.federated.fedtune.strategies import (
    STRATEGIES,
    AdapterFedAvg,
    ClusteredFedAvg,
    Timing,
    from_record,
    to_record,
)
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

client_app = ClientApp()
server_app = ServerApp()
ROUND_HOOKS: list[Any] = []  # in-process observers of each round's row (the CLI's progress bar)


@lru_cache(maxsize=2)
def _adapter(adapter: str, base: str | None, seed: int) -> tuple[Any, Any]:
    torch.set_num_threads(1)
    return make_adapter(adapter, base, seed)


def _user_rows(job: FedtuneJob, user: int) -> dict:
    return json.loads((Path(job.users_dir) / f"user_{user}.json").read_text(encoding="utf-8"))


def _labels(job: FedtuneJob, tok: Any) -> tuple[dict[str, int] | None, list[int] | None]:
    if job.task != "classification":
        return None, None
    ids = local.label_ids(tok, job.label_words)
    return dict(zip(job.categories, ids, strict=True)), ids


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    job = job_of(context)
    user = int(context.node_config["partition-id"])
    model, tok = _adapter(job.adapter, job.base, job.seed)
    load_adapter_arrays(model, from_record(msg.content["arrays"]))
    rows = _user_rows(job, user)["train"]
    labels, cands = _labels(job, tok)
    rnd = int(msg.content["config"]["server-round"])
    loss, cpu_s = local.train_local(
        model, tok, rows, job.task, steps=job.local_steps, batch=job.batch,
        lr=job.learning_rate, max_tokens=job.max_tokens, seed=job.seed * 100_003 + rnd * 1009 + user,
        labels=labels, candidates=cands)
    metrics = MetricRecord({"train_loss": loss, "num-examples": len(rows), "user": user,
                            "cpu_s": cpu_s, "steps": job.local_steps})
    content = RecordDict({"arrays": to_record(adapter_arrays(model)), "metrics": metrics})
    return Message(content=content, reply_to=msg)


@client_app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    job = job_of(context)
    user = int(context.node_config["partition-id"])
    model, tok = _adapter(job.adapter, job.base, job.seed)
    if int(msg.content["config"].get("base", 0)):
        model = load_base(job.base)[0]
    else:
        load_adapter_arrays(model, from_record(msg.content["arrays"]))
    rows = _user_rows(job, user)["test"]
    labels, cands = _labels(job, tok)
    loss, acc = local.evaluate_local(model, tok, rows, job.task, job.max_tokens, labels, cands)
    values: dict[str, float | int] = {"eval_loss": loss, "num-examples": len(rows), "user": user}
    if acc >= 0:
        values["accuracy"] = acc
    return Message(content=RecordDict({"metrics": MetricRecord(values)}), reply_to=msg)


def timing_of(job: FedtuneJob) -> Timing:
    """Users placed at random in the cell (seeded); the last `stragglers` share is slower."""
    rng = np.random.default_rng(job.seed + 7)
    slow = np.ones(job.users)
    n_slow = round(job.stragglers * job.users)
    if n_slow:
        slow[job.users - n_slow :] = job.slowdown
    return Timing(Cell().place_users(job.users, rng), slow)


def build_strategy(job: FedtuneJob, audit: bool = False) -> AdapterFedAvg:
    def on_round(row: dict) -> None:
        if job.out_dir:
            with open(Path(job.out_dir) / "rounds.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
        for hook in ROUND_HOOKS:
            hook(row)

    common: dict[str, Any] = {"users": job.users, "timing": timing_of(job), "on_round": on_round,
                              "audit": audit}
    cls = STRATEGIES[job.strategy]
    if job.strategy == "cfl":
        return cls(clusters=job.clusters, cluster_round=job.cluster_round, seed=job.seed, **common)
    if job.strategy == "hier":
        return cls(edges=job.edges, cloud_period=job.cloud_period, **common)
    if job.strategy == "async":
        return cls(mixing=job.mixing, decay=job.decay, budget=job.async_budget,
                   target_loss=job.target_loss, **common)
    return cls(**common)


STRATEGY_HOOKS: list[Any] = []  # in-process observers of the built strategy (tests' audit)


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    job = job_of(context)
    torch.set_num_threads(1)
    model, _ = _adapter(job.adapter, job.base, job.seed)
    init = adapter_arrays(model)
    strategy = build_strategy(job, audit=bool(STRATEGY_HOOKS))
    for hook in STRATEGY_HOOKS:
        hook(strategy)
    strategy.start(grid, to_record(init), num_rounds=job.rounds,
                   train_config=ConfigRecord({"lr": job.learning_rate}),
                   evaluate_config=ConfigRecord({}))
    out = Path(job.out_dir)
    np.savez(out / "adapters.npz", **{f"g{g}/{k}": v for g, a in strategy.groups.items()
                                      for k, v in a.items()})
    result = {"method": job.method, "adapter_bytes": int(sum(v.nbytes for v in init.values())),
              "user_groups": strategy.user_groups(), "sim_s": strategy.clock_s,
              "round_s": strategy.round_s, "bytes_up": strategy.bytes_up,
              "bytes_down": strategy.bytes_down, "backhaul_bytes": strategy.backhaul_bytes,
              "energy_j": strategy.energy_j,
              "distances_m": strategy.timing.distances_m.tolist(),
              "slowdown": strategy.timing.slowdown.tolist()}
    if isinstance(strategy, ClusteredFedAvg):
        result["found_clusters"] = strategy.found
    result["evaluations"] = len(strategy.history)
    if getattr(strategy, "target_loss", None) is not None:
        result["target_loss"], result["reached"] = strategy.target_loss, strategy.reached
    tmp = out / "result.tmp"
    tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
    tmp.replace(out / "result.json")


__all__ = ["ArrayRecord", "client_app", "server_app"]
