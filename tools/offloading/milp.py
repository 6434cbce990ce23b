"""Mixed-integer programmes solved by HiGHS (scipy.optimize.milp): the "MIP solver" expert.

min_energy is a generalised assignment problem and is solved exactly: x_ik = 1 when UE i
runs on target k (k = 0 local), energy costs, one target per UE, and per server
sum_i lb_ij x_ij <= 1 (the deadline shares must fit; spec "Facts worth knowing").

min_latency has the non-linear c_i / (s_i F_j); the shares are discretised: y_ijl = 1 when
UE i runs on server j with share level s_l, levels k/K (k = 1..K) at or above lb_ij plus
lb_ij itself, cost d_i/r_ij + c_i/(s_l F_j), per server sum s_l y_ijl <= 1. The chosen
assignment then gets its exact optimal shares, so the answer is never worse than the
programme's and is within the discretisation gap of the optimum.

UEs that miss their deadline locally may stay local at a large penalty, so the programme is
always feasible and such an instance still gets the best decision found.
"""

from __future__ import annotations

import logging

import numpy as np
from edgeai.tools.offloading.evaluate import Evaluator, Stopwatch, finish
from edgeai.tools.offloading.problem import Decision, Instance, Objective
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

log = logging.getLogger(__name__)


def _columns(
    evaluator: Evaluator, objective: Objective, levels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One binary column per usable choice: (ue, server or -1, share weight, cost)."""
    t = evaluator.tables
    n, m = evaluator.n, evaluator.m
    ue, server, weight, cost = (
        [np.arange(n)],
        [np.full(n, -1)],
        [np.zeros(n)],
        [evaluator.local_cost],
    )
    i_ok, j_ok = np.nonzero(t.pair_ok)
    if objective == "min_energy":
        ue.append(i_ok)
        server.append(j_ok)
        weight.append(t.lb[i_ok, j_ok])
        cost.append(evaluator.pair_cost[i_ok, j_ok])
    else:
        c, f_cap = evaluator.instance.arrays.c, evaluator.instance.arrays.F
        grid = np.arange(1, levels + 1) / levels  # (L,)
        for i, j in zip(i_ok, j_ok, strict=True):
            lb = t.lb[i, j]
            shares = np.concatenate([[lb], grid[grid > lb]])
            ue.append(np.full(shares.size, i))
            server.append(np.full(shares.size, j))
            weight.append(shares)
            cost.append(t.t_tx[i, j] + c[i] / (shares * f_cap[j]))
    del m
    return tuple(np.concatenate(x) for x in (ue, server, weight, cost))  # type: ignore[return-value]


def solve_milp(
    instance: Instance,
    objective: Objective,
    *,
    seed: int = 0,
    levels: int = 20,
    time_limit: float = 20.0,
    mip_rel_gap: float = 1e-7,
) -> Decision:
    """Optimal (min_energy) or discretised-share (min_latency) decision from HiGHS."""
    del seed  # deterministic
    watch = Stopwatch()
    evaluator = Evaluator(instance, objective)
    n, m = instance.n, instance.m
    ue, server, weight, cost = _columns(evaluator, objective, levels)
    cols = np.arange(ue.size)
    one_target = coo_array((np.ones(ue.size), (ue, cols)), shape=(n, ue.size))
    on_server = server >= 0
    capacity = coo_array(
        (weight[on_server], (server[on_server], cols[on_server])), shape=(m, ue.size)
    )
    constraints = [LinearConstraint(one_target.tocsr(), 1.0, 1.0)]
    if m:
        constraints.append(LinearConstraint(capacity.tocsr(), -np.inf, 1.0))
    result = milp(
        cost,
        integrality=np.ones(ue.size),
        bounds=Bounds(0.0, 1.0),
        constraints=constraints,
        options={"time_limit": time_limit, "mip_rel_gap": mip_rel_gap, "disp": False},
    )
    if result.x is None:
        log.warning("HiGHS found no solution (%s); answering all-local", result.message)
        targets = evaluator.local_targets()
    else:
        if result.status != 0:
            log.info("HiGHS stopped early (%s); using its best solution", result.message)
        chosen = result.x > 0.5
        targets = np.full(n, -1, dtype=int)
        targets[ue[chosen]] = server[chosen]
    return finish(evaluator, "milp", targets, watch)
