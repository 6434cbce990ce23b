"""Assignment vectors (a target per UE, -1 = local): batched objective, repair, to Decision.

Every solver searches over assignments and leaves the shares to `shares.optimal_shares`, so
the value of an assignment is a sum of per-UE local costs and per-server subset values
V_j(S) = sum_{i in S} base_ij + [min_latency] min_s sum_{i in S} c_i / (s_i F_j). The
`Evaluator` computes these for whole batches; solvers minimise its `total` (a sum: the
mean latency is total / N) and turn their best vector into a spec Decision with
`to_decision`.

UEs that miss their deadline even locally make an instance infeasible whatever the solver
does; they are charged a large finite `penalty` when kept local so that a search still ranks
the other choices and minimises the number of misses first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from edgeai.tools.offloading.cost import PairTables, pair_tables
from edgeai.tools.offloading.problem import LOCAL, Assignment, Decision, Instance, Objective
from edgeai.tools.offloading.shares import optimal_shares, waterfill

log = logging.getLogger(__name__)


@dataclass
class Evaluator:
    """Batched costs of assignments for one instance under one objective."""

    instance: Instance
    objective: Objective
    tables: PairTables = field(init=False)
    local_cost: np.ndarray = field(init=False)  # (N,) incl. penalty where local misses D
    pair_cost: np.ndarray = field(init=False)  # (N, M) upload latency or energy; inf if unusable
    penalty: float = field(init=False)

    def __post_init__(self) -> None:
        t = self.tables = pair_tables(self.instance)
        latency = self.objective == "min_latency"
        local = t.t_loc if latency else t.e_loc
        base = t.t_tx if latency else t.e_off
        pair_cost = np.where(t.pair_ok, base, np.inf)
        finite = np.concatenate([local[np.isfinite(local)], pair_cost[np.isfinite(pair_cost)]])
        self.penalty = 1e6 * (1.0 + float(finite.max(initial=0.0)))
        self.local_cost = np.where(t.local_ok, local, local + self.penalty)
        self.pair_cost = pair_cost

    @property
    def n(self) -> int:
        return self.instance.n

    @property
    def m(self) -> int:
        return self.instance.m

    def server_value(self, j: int, member: np.ndarray) -> np.ndarray:
        """V_j(S) for a batch of member sets (B, N) bool -> (B,); inf where infeasible."""
        member = np.atleast_2d(member)
        with np.errstate(invalid="ignore"):
            base = np.where(member, self.pair_cost[None, :, j], 0.0).sum(axis=1)
        if self.objective == "min_latency":
            _, value, _ = waterfill(
                self.instance.arrays.c[None, :], self.tables.lb[None, :, j], member
            )
            return base + value / self.instance.arrays.F[j]
        lb_sum = np.where(member, self.tables.lb[None, :, j], 0.0).sum(axis=1)
        return np.where(lb_sum <= 1.0, base, np.inf)

    def total(self, targets: np.ndarray) -> np.ndarray:
        """Sum of costs of a batch of assignments (B, N) -> (B,); inf where infeasible."""
        targets = np.atleast_2d(targets)
        out = np.where(targets < 0, self.local_cost[None, :], 0.0).sum(axis=1)
        for j in range(self.m):
            member = targets == j
            if member.any():
                out = out + self.server_value(j, member)
        return out

    def objective_of_total(self, total: float) -> float:
        return total / self.n if self.objective == "min_latency" else total

    def repair(self, targets: np.ndarray) -> np.ndarray:
        """Make a batch of assignments feasible on the servers: unusable pairs go local, and an
        overfull server keeps its tasks in increasing order of deadline share while they fit."""
        targets = np.array(np.atleast_2d(targets), dtype=int)
        rows = np.arange(targets.shape[0])[:, None]
        for j in range(self.m):
            member = targets == j
            member &= self.tables.pair_ok[None, :, j]
            targets[(targets == j) & ~member] = -1
            lbm = np.where(member, self.tables.lb[None, :, j], np.inf)
            order = np.argsort(lbm, axis=1, kind="stable")
            fits = np.cumsum(lbm[rows, order], axis=1) <= 1.0
            keep = np.zeros_like(member)
            keep[rows, order] = fits
            targets[member & ~keep] = -1
        return targets

    def feasible(self, targets: np.ndarray) -> bool:
        """Whether one assignment, with its optimal shares, meets every constraint."""
        targets = np.asarray(targets, dtype=int)
        if not self.tables.local_ok[targets < 0].all():
            return False
        for j in range(self.m):
            idx = targets == j
            if not self.tables.pair_ok[idx, j].all() or self.tables.lb[idx, j].sum() > 1.0:
                return False
        return True

    def local_targets(self) -> np.ndarray:
        return np.full(self.n, -1, dtype=int)


def to_decision(
    instance: Instance,
    objective: Objective,
    solver: str,
    targets: np.ndarray,
    seconds: float,
    **extra: object,
) -> Decision:
    """A spec Decision for an assignment vector, with the optimal shares for `objective`."""
    targets = np.asarray(targets, dtype=int)
    share, _ = optimal_shares(pair_tables(instance), instance.arrays.c, targets, objective)
    assignments = [
        Assignment(ue=ue.id, target=LOCAL)
        if targets[i] < 0
        else Assignment(ue=ue.id, target=instance.servers[targets[i]].id, share=float(share[i]))
        for i, ue in enumerate(instance.ues)
    ]
    return Decision(
        objective=objective,
        solver=solver,
        assignments=assignments,
        solve_seconds=max(0.0, seconds),
        **extra,
    )


class Stopwatch:
    """A solver's own time (spec: `solve_seconds`, without process start or model load)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def finish(
    evaluator: Evaluator, solver: str, targets: np.ndarray, watch: Stopwatch, **extra: object
) -> Decision:
    """The solver's answer as a Decision (with `extra` fields); an infeasible answer falls back
    to all-local when that is feasible (logged, and marked with `fallback` in the decision)."""
    targets = np.asarray(targets, dtype=int)
    fallback = None
    if not evaluator.feasible(targets):
        local = evaluator.local_targets()
        if evaluator.feasible(local):
            log.warning(
                "solver %s returned an infeasible assignment; falling back to all-local", solver
            )
            targets, fallback = local, "all-local"
        else:
            log.info(
                "no deadline-feasible decision known for this instance (some UE misses it locally)"
            )
    if fallback:
        extra["fallback"] = fallback
    return to_decision(
        evaluator.instance, evaluator.objective, solver, targets, watch.seconds(), **extra
    )
