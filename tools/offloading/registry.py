"""The solver registry: every offloading solver by name, and `solve`, the one entry point.

A solver is a function `fn(instance, objective, *, seed=0, **options) -> Decision` that
returns a feasible decision whenever one is known (all-local in the default scenario) and
sets `solve_seconds`. Entries name their function as "module:attribute" and are imported
on first use, so a heavy solver (the learned AED, DROO) costs nothing until it is asked for;
a later module plugs in with `register_solver("aed", "edgeai.tools.offloading.aed:solve_aed")`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeai.errors import UserInputError, lookup
from edgeai.tools.offloading.problem import Decision, Instance, instance_from_dict

SolverFn = Callable[..., Decision]


@dataclass
class SolverEntry:
    """One registered solver: where its function lives and what it can handle."""

    name: str
    target: str | SolverFn  # "package.module:function" (imported lazily) or the function
    description: str
    exact: bool = False  # proves optimality (the yardstick for the others)
    max_n: int | None = None  # largest number of UEs it accepts

    def load(self) -> SolverFn:
        if callable(self.target):
            return self.target
        module_name, _, attr = self.target.partition(":")
        fn = getattr(importlib.import_module(module_name), attr)
        self.target = fn
        return fn


SOLVERS: dict[str, SolverEntry] = {}


def register_solver(
    name: str,
    target: str | SolverFn,
    description: str,
    *,
    exact: bool = False,
    max_n: int | None = None,
    replace: bool = False,
) -> SolverEntry:
    """Add a solver under `name`; refuses to silently replace an existing one."""
    if name in SOLVERS and not replace:
        raise ValueError(f"offloading solver '{name}' is already registered")
    entry = SolverEntry(name, target, description, exact=exact, max_n=max_n)
    SOLVERS[name] = entry
    return entry


def get_solver(name: str) -> SolverEntry:
    return lookup(SOLVERS, name, "offloading solver")


def solve(
    instance: Instance | dict[str, Any],
    objective: str | None = None,
    solver: str = "greedy",
    seed: int = 0,
    **options: Any,
) -> Decision:
    """Solve one instance with a named solver; `objective` overrides the instance's."""
    if isinstance(instance, dict):
        instance = instance_from_dict(instance, objective)
    instance = instance.with_objective(objective)
    entry = get_solver(solver)
    if entry.max_n is not None and instance.n > entry.max_n:
        raise UserInputError(
            f"solver '{solver}' handles at most {entry.max_n} UEs; this instance has {instance.n}"
        )
    return entry.load()(instance, instance.objective, seed=seed, **options)


_BUILTIN = "edgeai.tools.offloading"
register_solver("local", f"{_BUILTIN}.baselines:solve_local", "every task runs on its UE")
register_solver(
    "random",
    f"{_BUILTIN}.baselines:solve_random",
    "each UE picks a uniformly random target among those that still fit",
)
register_solver(
    "greedy",
    f"{_BUILTIN}.baselines:solve_greedy",
    "best single move (place/relocate one UE, optimal shares) until none improves",
)
register_solver(
    "rule",
    f"{_BUILTIN}.baselines:solve_rule",
    "each UE to its cheapest target that still fits (lowest energy / lowest marginal latency); "
    "the rule the AED is guarded against",
)
register_solver(
    "search",
    f"{_BUILTIN}.search:solve_search",
    "no network: the AED's move search from the rule's decision, then from random feasible "
    "starts, while its budget of moves lasts",
)
register_solver(
    "exact",
    f"{_BUILTIN}.exact:solve_exact",
    "exact optimum: per-server subset tables + dynamic programme over servers",
    exact=True,
    max_n=12,
)
register_solver(
    "de",
    f"{_BUILTIN}.de:solve_de",
    "differential evolution (scipy) over targets, decoded and repaired",
)
register_solver(
    "milp",
    f"{_BUILTIN}.milp:solve_milp",
    "HiGHS MILP: exact for min_energy; discretised shares for min_latency",
)
register_solver(
    "certified",
    f"{_BUILTIN}.certified:solve_certified",
    "HiGHS MILP, latency outer-approximated by tangent cuts and refined: decision, certified "
    "lower bound and gap (<= 0.1 %); the benchmark's yardstick beyond N = 12",
)
register_solver(
    "aed",
    f"{_BUILTIN}.aed:solve_aed",
    "learned policy decode + fast exact-verified move search (knapsack re-fills when capacity "
    "binds)",
)
register_solver(
    "droo",
    f"{_BUILTIN}.droo:solve_droo",
    "DROO (Huang et al. 2019): learned DNN relaxed action, order-preserving quantisation into "
    "K candidates, each repaired and valued with exact shares, best kept",
)
