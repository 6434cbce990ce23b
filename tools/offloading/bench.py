"""`edgeai bench offload`: every solver side by side on fresh instances, both objectives.

(a) N=8, M=4: gap to the exact optimum (mean, p95), feasibility, ms per decision;
(b) N=50, M=4: gap to the certified lower bound (tools/offloading/certified.py);
(c) a 20-step mobility trajectory (N=50), gap to the certified lower bound;
(d) ALEF at N = 50: the shifted distribution's and lambo-50's policy gap to the certified bound
    after each of 4 active-learning rounds of 5 certified labels (with lambo-50 replay);
(e) AED time per decision for N = 20 ... 500;
(f) (only when asked: `--parts f`) the certified reference itself at N = 50, 200, 500: CPU
    seconds (time.process_time, HiGHS included) and the gap it certifies;
(g) (only when asked) the learned policy across sizes: raw policy, guarded policy, the simple
    rule, aed and the search alone at N = 50, 200, 500, both objectives, roomy and tight
    capacities, gap to the certified bound (`--checkpoint` picks the AED checkpoint);
(h) (only when asked) policy + search against the search alone at the same CPU time per
    instance (time.process_time, one thread) at N = 50, 200 and on the shifted scenario.
"aed-policy" is the AED's learned policy alone (greedy decode, no sampling, no search), guarded
by the simple rule (never worse than `rule`); "aed-policy-raw" is the greedy decode unguarded;
"droo" is the DROO learned baseline (DNN + order-preserving quantisation, no search).
Bench seeds start at `seed` (small numbers); training uses seeds from 10 000 000 up.

Every gap is measured against a proven yardstick, never against the best solver that happened
to run: the exact optimum where N <= 12 (`exact`), else the lower bound of the certified MILP,
which no decision beats (its own decision is within `ref_max_gap_pct`, <= 0.1 % when
certified, of that bound; so a gap is an upper bound on the distance to the optimum and
overstates it by at most that much).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.tools.offloading.aed import load_model, policy_targets, save_checkpoint
from edgeai.tools.offloading.cost import score
from edgeai.tools.offloading.evaluate import Evaluator
from edgeai.tools.offloading.problem import OBJECTIVES, Decision, Instance
from edgeai.tools.offloading.registry import get_solver, solve
from edgeai.tools.offloading.scenario import generate_instance, generate_trajectory
from edgeai.tools.offloading.train import AlefArgs, finetune, loaded_from
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

log = logging.getLogger(__name__)
SCENARIOS_AB = ("lambo-50", "lambo-50-tight")


@dataclass
class BenchArgs:
    instances: int = 30
    seed: int = 0
    quick: bool = False
    parts: str = "abcde"
    checkpoint: str | None = None
    """AED checkpoint of the aed rows (default: the shipped one)"""


SOLVER_OPTIONS: dict[str, dict[str, Any]] = {
    "aed": {},
    "aed-policy": {"samples": 1, "search": False},
    "aed-policy-raw": {"samples": 1, "search": False, "guard": False},
}


def run_solver(inst: Instance, name: str, quick: bool) -> tuple[float, bool, float]:
    """(objective value, feasible, seconds) of one solver on one instance."""
    return _scored(inst, _decide(inst, name, quick))


CHECKPOINT: list[str | None] = [None]  # the aed rows' checkpoint (`BenchArgs.checkpoint`)


def _decide(inst: Instance, name: str, quick: bool) -> Decision:
    base = "aed" if name.startswith("aed") else name
    options = dict(SOLVER_OPTIONS.get(name, {}))
    if base == "aed" and CHECKPOINT[0] is not None:
        options["checkpoint"] = CHECKPOINT[0]
    if quick and base == "de":
        options.update(maxiter=10, popsize=5)
    if quick and base == "milp":
        options.update(time_limit=2.0)
    return solve(inst, solver=base, **options)


def _scored(inst: Instance, decision: Decision) -> tuple[float, bool, float]:
    s = score(inst, decision)
    value = s.objective_value if s.objective_value is not None else np.inf
    return float(value), s.feasible, decision.solve_seconds


def reference_name(inst: Instance) -> str:
    """The yardstick of an instance: the exact optimum while the exact solver takes N, else the
    certified MILP's lower bound."""
    max_n = get_solver("exact").max_n
    return "exact" if max_n is None or inst.n <= max_n else "certified"


def reference_bound(inst: Instance, decision: Decision) -> tuple[float, float]:
    """(value no decision beats, the reference decision's own gap to it in %) from the
    reference solver's decision: the exact optimum (gap 0) or the certified lower bound."""
    value = score(inst, decision).objective_value
    if decision.solver == "exact":
        return float(value), 0.0
    bound = decision.model_extra.get("lower_bound")
    if bound is None or value is None:
        return -np.inf, np.inf
    return float(bound), 100.0 * (float(value) / float(bound) - 1.0)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _table(title: str, rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()])
    return table


def _plot(path: Path, draw: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    draw(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


REFERENCES: dict[str, tuple[float, float]] = {}  # instance digest -> (bound, reference's gap)
REFERENCE_FILE: list[Path | None] = [None]  # where (g) and (h) keep them between runs


def _reference(inst: Instance, quick: bool) -> tuple[str, Decision | None, float, float]:
    """(reference name, its decision or None when remembered, bound, its own gap %). Bounds
    are remembered per instance content (sha256 of its JSON) in `REFERENCE_FILE`, so a second
    run on the same held-out instances (another checkpoint) does not solve the MILPs again."""
    ref = reference_name(inst)
    key = f"{ref}:{hashlib.sha256(inst.model_dump_json().encode()).hexdigest()}"
    path = REFERENCE_FILE[0]
    if not REFERENCES and path is not None and path.exists():
        REFERENCES.update({k: tuple(v) for k, v in json.loads(path.read_text()).items()})
    if key in REFERENCES:
        return ref, None, *REFERENCES[key]
    decision = _decide(inst, ref, quick)
    bound, gap = reference_bound(inst, decision)
    if np.isfinite(bound) and not quick:
        REFERENCES[key] = (bound, gap)
        if path is not None:
            path.write_text(json.dumps(REFERENCES))
    return ref, decision, bound, gap


def compare(
    instances: Sequence[Instance],
    solvers: Sequence[str],
    quick: bool,
    desc: str,
) -> list[dict[str, Any]]:
    """Per solver: gap (%) to each instance's reference (`reference_name`: the exact optimum,
    or the certified lower bound), feasibility and time. The reference solver runs once per
    instance; when it is also in `solvers`, that run is its row too."""
    values = {s: [] for s in solvers}
    feas = {s: [] for s in solvers}
    secs = {s: [] for s in solvers}
    bounds, ref_gaps, refs = [], [], set()
    for inst in tqdm(instances, desc=desc, leave=False):
        ref, ref_decision, bound, ref_gap = _reference(inst, quick)
        refs.add(ref)
        bounds.append(bound)
        ref_gaps.append(ref_gap)
        for s in solvers:
            reuse = s == ref and ref_decision is not None
            decision = ref_decision if reuse else _decide(inst, s, quick)
            v, f, t = _scored(inst, decision)
            values[s].append(v)
            feas[s].append(f)
            secs[s].append(t)
    bound = np.array(bounds)
    rows = []
    for s in solvers:
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = 100.0 * (np.array(values[s]) / bound - 1.0)
        rows.append(
            {
                "solver": s,
                "mean_gap_pct": float(np.mean(gap)),
                "p95_gap_pct": float(np.percentile(gap, 95)),
                "feasible_pct": 100.0 * float(np.mean(feas[s])),
                "ms_per_decision": 1e3 * float(np.mean(secs[s])),
                "reference": "+".join(sorted(refs)),
                "ref_max_gap_pct": float(np.max(ref_gaps)),
            }
        )
    return rows


def part_a(args: BenchArgs, out: Path, console: Console) -> list[dict[str, Any]]:
    solvers = [
        "aed",
        "aed-policy",
        "droo",
        "exact",
        "certified",
        "milp",
        "de",
        "greedy",
        "random",
        "local",
    ]
    rows = []
    for scenario in SCENARIOS_AB:
        for objective in OBJECTIVES:
            insts = [
                generate_instance(8, 4, args.seed + k, scenario, objective)
                for k in range(args.instances)
            ]
            for r in compare(insts, solvers, args.quick, f"(a) {scenario} {objective}"):
                rows.append({"scenario": scenario, "objective": objective, **r})
    _write_csv(out / "a_n8_gap_to_exact.csv", rows)
    console.print(_table("(a) N=8, M=4: gap to the exact optimum", rows))
    return rows


def part_b(args: BenchArgs, out: Path, console: Console) -> list[dict[str, Any]]:
    solvers = ["aed", "aed-policy", "droo", "certified", "milp", "de", "greedy", "random", "local"]
    count = max(3, args.instances // 3)
    rows = []
    for scenario in SCENARIOS_AB:
        for objective in OBJECTIVES:
            insts = [
                generate_instance(50, 4, args.seed + 1000 + k, scenario, objective)
                for k in range(count)
            ]
            for r in compare(insts, solvers, args.quick, f"(b) {scenario} {objective}"):
                rows.append({"scenario": scenario, "objective": objective, **r})
    _write_csv(out / "b_n50_gap_to_certified.csv", rows)
    console.print(_table("(b) N=50, M=4: gap to the certified lower bound", rows))
    return rows


def part_c(args: BenchArgs, out: Path, console: Console) -> list[dict[str, Any]]:
    solvers = ["aed", "aed-policy", "certified", "milp", "greedy", "local"]
    rows = []
    steps = 5 if args.quick else 20
    for objective in OBJECTIVES:
        traj = generate_trajectory(50, 4, steps, args.seed + 2000, "lambo-50", objective)
        for r in compare(traj, solvers, args.quick, f"(c) trajectory {objective}"):
            rows.append({"objective": objective, "steps": steps, **r})
    _write_csv(out / "c_trajectory.csv", rows)
    console.print(
        _table(f"(c) {steps}-step mobility trajectory, N=50: gap to the certified bound", rows)
    )
    return rows


ALEF_N = 50  # the target size of (d): beyond the exact solver, so the certified MILP is expert


def _policy_gap(loaded: Any, evals: Sequence[Evaluator], bounds: Sequence[float]) -> float:
    """Mean gap (%) of the greedy policy decode (no search, no guard) to each instance's bound."""
    gaps = []
    for ev, bound in zip(evals, bounds, strict=True):
        targets, _ = policy_targets(loaded, ev, 1, want_entropy=False)
        value = ev.objective_of_total(float(ev.total(targets)[0]))
        gaps.append(value / bound - 1.0)
    return 100.0 * float(np.mean(gaps))


def part_d(args: BenchArgs, out: Path, console: Console) -> list[dict[str, Any]]:
    """ALEF as active learning at N = ALEF_N: 4 query rounds of 5 certified labels on the shifted
    distribution, with lambo-50 replay labels; the policy's gap on held-out shifted and
    lambo-50 instances (bench seeds, never labelled) after each round."""
    n, count = ALEF_N, max(2, args.instances)
    sets = {}
    for name, scenario, base in (("shifted", "shifted", 3000), ("original", "lambo-50", 3500)):
        evals = [
            Evaluator(generate_instance(n, 4, args.seed + base + k // 2, scenario, o), o)
            for k, o in ((k, OBJECTIVES[k % 2]) for k in range(count))
        ]
        bounds = [_reference(ev.instance, args.quick)[2] for ev in tqdm(evals, desc=f"(d) {name}")]
        sets[name] = (evals, bounds)
    alef = AlefArgs(n=n, labels=20, rounds=4, pool=40 if args.quick else 80)
    rows: list[dict[str, Any]] = []

    def measure(labels: int, model: Any) -> None:
        loaded = loaded_from(model)
        rows.append(
            {
                "expert_labels": labels,
                "shifted_policy_gap_pct": _policy_gap(loaded, *sets["shifted"]),
                "original_policy_gap_pct": _policy_gap(loaded, *sets["original"]),
            }
        )
        console.print(rows[-1])

    model = copy.deepcopy(load_model().model)
    measure(0, model)
    done = finetune(model, alef, on_round=measure)
    save_checkpoint(model, out / "d_alef_20.pt", done)
    base, orig = rows[0]["shifted_policy_gap_pct"], rows[0]["original_policy_gap_pct"]
    for r in rows:
        r["shifted_gap_recovered_pct"] = (
            100.0 * (base - r["shifted_policy_gap_pct"]) / base if base > 0 else 0.0
        )
        r["original_gap_rise_pts"] = r["original_policy_gap_pct"] - orig
    _write_csv(out / "d_alef_shifted.csv", rows)
    console.print(
        _table(f"(d) ALEF at N={n} ({done['expert']} expert, replay): policy gap vs labels", rows)
    )
    _plot(
        out / "d_alef_shifted.png",
        lambda ax: (
            ax.plot(
                [r["expert_labels"] for r in rows],
                [r["shifted_policy_gap_pct"] for r in rows],
                "o-",
                label="shifted (policy, greedy decode)",
            ),
            ax.plot(
                [r["expert_labels"] for r in rows],
                [r["original_policy_gap_pct"] for r in rows],
                "s-",
                label="lambo-50 (policy, greedy decode)",
            ),
            ax.set_xlabel(f"expert-labelled instances (ALEF, N = {n})"),
            ax.set_ylabel("mean gap to the certified bound (%)"),
            ax.legend(),
        ),
    )
    return rows


def part_e(args: BenchArgs, out: Path, console: Console) -> list[dict[str, Any]]:
    sizes = (20, 50, 100, 200) if args.quick else (20, 50, 100, 200, 500)
    rows = []
    for n in sizes:
        for objective in OBJECTIVES:
            insts = [
                generate_instance(n, 4, args.seed + 4000 + k, "lambo-50", objective)
                for k in range(3 if args.quick else 5)
            ]
            for name in ("aed", "aed-policy"):
                run_solver(insts[0], name, args.quick)  # warm caches
                secs = [run_solver(i, name, args.quick)[2] for i in insts]
                rows.append(
                    {
                        "n": n,
                        "objective": objective,
                        "solver": name,
                        "ms_per_decision": 1e3 * float(np.mean(secs)),
                    }
                )
    _write_csv(out / "e_time_vs_n.csv", rows)
    console.print(_table("(e) AED time per decision (batch of 1, model loaded)", rows))

    def draw(ax: Any) -> None:
        for name in ("aed", "aed-policy"):
            for objective in OBJECTIVES:
                pts = [r for r in rows if r["solver"] == name and r["objective"] == objective]
                ax.loglog(
                    [r["n"] for r in pts],
                    [r["ms_per_decision"] for r in pts],
                    "o-",
                    label=f"{name} {objective}",
                )
        ax.set_xlabel("UEs (N)")
        ax.set_ylabel("ms per decision")
        ax.legend()

    _plot(out / "e_time_vs_n.png", draw)
    return rows


def part_f(args: BenchArgs, out: Path, console: Console) -> list[dict[str, Any]]:
    from edgeai.tools.offloading.certified import certify

    sizes = (50, 200) if args.quick else (50, 200, 500)
    rows = []
    for n in sizes:
        for scenario in SCENARIOS_AB:
            for objective in OBJECTIVES:
                for k in range(1 if args.quick else 3):
                    ev = Evaluator(
                        generate_instance(n, 4, args.seed + 5000 + k, scenario, objective),
                        objective,  # type: ignore[arg-type]
                    )
                    cpu = time.process_time()
                    cert = certify(ev)
                    rows.append(
                        {
                            "n": n,
                            "scenario": scenario,
                            "objective": objective,
                            "seed": args.seed + 5000 + k,
                            "cpu_s": time.process_time() - cpu,
                            "gap_pct": 100.0 * cert.gap,
                            "certified": cert.certified,
                            "rounds": cert.rounds,
                            "cost": cert.cost,
                            "lower_bound": cert.lower_bound,
                        }
                    )
    _write_csv(out / "f_certified_reference.csv", rows)
    console.print(_table("(f) the certified reference: CPU seconds and certified gap", rows))
    return rows


GEN_SOLVERS = ("aed-policy-raw", "aed-policy", "rule", "aed", "search")


def part_g(args: BenchArgs, out: Path, console: Console) -> list[dict[str, Any]]:
    """The policy across sizes on held-out seeds (6000 + k): is the learned decode alone within
    reach of the certified bound at N = 50, 200, 500, and what do the guard and search add."""
    sizes = (50, 200) if args.quick else (50, 200, 500)
    count = 1 if args.quick else max(2, args.instances // 6)
    rows = []
    for n in sizes:
        for scenario in SCENARIOS_AB:
            for objective in OBJECTIVES:
                insts = [
                    generate_instance(n, 4, args.seed + 6000 + k, scenario, objective)
                    for k in range(count)
                ]
                desc = f"(g) N={n} {scenario} {objective}"
                for r in compare(insts, GEN_SOLVERS, args.quick, desc):
                    rows.append({"n": n, "scenario": scenario, "objective": objective, **r})
    _write_csv(out / "g_policy_across_sizes.csv", rows)
    console.print(_table("(g) policy across sizes: gap to the certified lower bound", rows))
    return rows


H_CELLS = (
    (50, "lambo-50"),
    (50, "lambo-50-tight"),
    (200, "lambo-50"),
    (200, "lambo-50-tight"),
    (50, "shifted"),
    (200, "shifted"),
)


def part_h(args: BenchArgs, out: Path, console: Console) -> list[dict[str, Any]]:
    """Policy + search ("aed") against the search alone given, on every instance, exactly the
    CPU time (time.process_time, one thread) that aed took there; same held-out seeds as (g)."""
    from edgeai.tools.offloading.search import solve_search

    count = 1 if args.quick else max(2, args.instances // 6)
    cells = H_CELLS[:2] + H_CELLS[4:5] if args.quick else H_CELLS
    warm = generate_instance(50, 4, 0, "lambo-50", "min_latency")
    _decide(warm, "aed", args.quick)  # model loaded before any CPU time is counted
    rows = []
    for n, scenario in cells:
        for objective in OBJECTIVES:
            gaps: dict[str, list[float]] = {"aed": [], "search": [], "aed-policy-raw": []}
            cpu, ref_gaps = [], []
            insts = [
                generate_instance(n, 4, args.seed + 6000 + k, scenario, objective)
                for k in range(count)
            ]
            for inst in tqdm(insts, desc=f"(h) N={n} {scenario} {objective}", leave=False):
                _, _, bound, ref_gap = _reference(inst, args.quick)
                ref_gaps.append(ref_gap)
                t0 = time.process_time()
                aed = _decide(inst, "aed", args.quick)
                spent = time.process_time() - t0
                cpu.append(spent)
                alone = solve_search(inst, inst.objective, cpu_seconds=spent)
                raw = _decide(inst, "aed-policy-raw", args.quick)
                for name, decision in (("aed", aed), ("search", alone), ("aed-policy-raw", raw)):
                    gaps[name].append(100.0 * (_scored(inst, decision)[0] / bound - 1.0))
            rows.append(
                {
                    "n": n,
                    "scenario": scenario,
                    "objective": objective,
                    "instances": count,
                    "cpu_ms_each": 1e3 * float(np.mean(cpu)),
                    "cpu_ms_max": 1e3 * float(np.max(cpu)),
                    "aed_mean_gap_pct": float(np.mean(gaps["aed"])),
                    "search_alone_mean_gap_pct": float(np.mean(gaps["search"])),
                    "aed_wins": int(
                        np.sum(np.array(gaps["aed"]) < np.array(gaps["search"]) - 1e-9)
                    ),
                    "search_wins": int(
                        np.sum(np.array(gaps["search"]) < np.array(gaps["aed"]) - 1e-9)
                    ),
                    "aed_policy_raw_mean_gap_pct": float(np.mean(gaps["aed-policy-raw"])),
                    "ref_max_gap_pct": float(np.max(ref_gaps)),
                }
            )
    _write_csv(out / "h_same_cpu.csv", rows)
    console.print(_table("(h) policy + search vs the search alone at the same CPU time", rows))
    return rows


def run_bench(args: BenchArgs, out: Path) -> dict[str, list[dict[str, Any]]]:
    """Run the chosen parts; tables to the terminal, CSV and PNG under `out`."""
    torch.set_num_threads(1)
    CHECKPOINT[0] = args.checkpoint
    REFERENCE_FILE[0] = out / "certified_bounds.json"
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    parts = {
        "a": part_a,
        "b": part_b,
        "c": part_c,
        "d": part_d,
        "e": part_e,
        "f": part_f,
        "g": part_g,
        "h": part_h,
    }
    results = {}
    for key in args.parts:
        if key in parts:
            results[key] = parts[key](args, out, console)
    if "a" in results:
        rows = [r for r in results["a"] if r["solver"] not in ("local", "random")]
        _plot(out / "a_n8_gap.png", lambda ax: _bars(ax, rows, "mean_gap_pct"))
    console.print(f"CSV and PNG under {out}")
    return results


def _bars(ax: Any, rows: Sequence[dict[str, Any]], key: str) -> None:
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    groups = list(dict.fromkeys((r["scenario"], r["objective"]) for r in rows))
    width = 0.8 / len(solvers)
    for k, s in enumerate(solvers):
        vals = [
            next(r[key] for r in rows if r["solver"] == s and (r["scenario"], r["objective"]) == g)
            for g in groups
        ]
        ax.bar(np.arange(len(groups)) + k * width, vals, width, label=s)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{a}\n{b}" for a, b in groups], fontsize=7)
    ax.set_ylabel("mean gap to exact (%)")
    ax.legend(fontsize=7)
