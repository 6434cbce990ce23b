"""Baseline offloading solvers of the LAMBO case study: all-local, random (feasible), greedy."""

from __future__ import annotations

import numpy as np
from edgeai.tools.offloading.evaluate import Evaluator, Stopwatch, finish
from edgeai.tools.offloading.problem import Decision, Instance, Objective


def solve_local(instance: Instance, objective: Objective, *, seed: int = 0) -> Decision:
    """Every task runs on its own UE (LAMBO's "Local")."""
    del seed
    watch = Stopwatch()
    evaluator = Evaluator(instance, objective)
    return finish(evaluator, "local", evaluator.local_targets(), watch)


def solve_random(instance: Instance, objective: Objective, *, seed: int = 0) -> Decision:
    """LAMBO's "Random", kept feasible: in random order, each UE picks uniformly among local
    (when local meets its deadline) and the servers where its deadline share still fits."""
    watch = Stopwatch()
    evaluator = Evaluator(instance, objective)
    t = evaluator.tables
    rng = np.random.default_rng(seed)
    used = np.zeros(instance.m)
    targets = evaluator.local_targets()
    for i in rng.permutation(instance.n):
        servers = np.nonzero(t.pair_ok[i] & (used + t.lb[i] <= 1.0))[0]
        options = list(servers) + ([-1] if t.local_ok[i] else [])
        if not options:
            continue  # nothing meets the deadline: stays local, the scorer reports it
        choice = int(options[rng.integers(len(options))])
        targets[i] = choice
        if choice >= 0:
            used[choice] += t.lb[i, choice]
    return finish(evaluator, "random", targets, watch)


def improve(evaluator: Evaluator, targets: np.ndarray, max_moves: int | None = None) -> np.ndarray:
    """Best-improvement local search: repeatedly apply the single move (one UE to another
    target, shares re-optimised on both servers) that lowers the total cost most."""
    n, m = evaluator.n, evaluator.m
    targets = np.array(targets, dtype=int)
    max_moves = max_moves if max_moves is not None else 20 * n + 10
    eye = np.eye(n, dtype=bool)
    idx = np.arange(n)
    scale = max(1.0, abs(float(evaluator.total(targets)[0])))
    for _ in range(max_moves):
        # delta[i, k]: cost change of moving UE i to target k (k = 0 local, k = j + 1 server j).
        leave = np.where(targets < 0, -evaluator.local_cost, 0.0)  # (N,)
        join = np.full((n, m + 1), np.inf)
        join[:, 0] = evaluator.local_cost
        for j in range(m):
            member = targets == j
            current = evaluator.server_value(j, member)[0]
            with_i = member[None, :] | eye  # (N, N): row i = S_j + {i}
            without_i = member[None, :] & ~eye  # row i = S_j - {i}
            join_j = evaluator.server_value(j, with_i) - current
            leave_j = evaluator.server_value(j, without_i) - current
            join[:, j + 1] = np.where(member, np.inf, join_j)
            leave = np.where(member, leave_j, leave)
        delta = leave[:, None] + join
        delta[idx, targets + 1] = np.inf  # staying put is not a move
        delta[np.isnan(delta)] = np.inf  # inf - inf: a move between infeasible states
        i, k = np.unravel_index(np.argmin(delta), delta.shape)
        if not delta[i, k] < -1e-12 * scale:
            break
        targets[i] = k - 1
    return targets


def solve_greedy(instance: Instance, objective: Objective, *, seed: int = 0) -> Decision:
    """Start all-local and apply the best improving move until none is left."""
    del seed
    watch = Stopwatch()
    evaluator = Evaluator(instance, objective)
    targets = improve(evaluator, evaluator.local_targets())
    return finish(evaluator, "greedy", targets, watch)


def rule_targets(evaluator: Evaluator) -> np.ndarray:
    """The simple feasible rule that guards the AED (issue 32 point 2): UEs one by one, each to
    its cheapest target that still fits under the instance's own objective, O(N M).

    min_energy: the lowest-energy feasible target (upload energy on a server whose deadline
    shares still fit, else local energy), UEs in decreasing order of the energy they save per
    unit of deadline share (the greedy of the knapsack the capacities make). min_latency: the
    target with the lowest marginal latency (upload time plus the growth of the server's
    water-filling latency (sum sqrt c)^2 / F), largest task first. A server is allowed only
    while the UE's deadline share fits, local only when it meets the deadline (or when nothing
    else fits), so the answer is feasible whenever all-local is."""
    t = evaluator.tables
    m = evaluator.m
    targets = evaluator.local_targets()
    if m == 0:
        return targets
    latency = evaluator.objective == "min_latency"
    local, pair = evaluator.local_cost, evaluator.pair_cost
    lb = np.where(t.pair_ok, t.lb, np.inf)
    c = evaluator.instance.arrays.c
    F = evaluator.instance.arrays.F
    if latency:
        order = np.argsort(-c, kind="stable")
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(t.pair_ok, (local[:, None] - pair) / np.maximum(lb, 1e-12), -np.inf)
        order = np.argsort(-ratio.max(axis=1), kind="stable")
    # plain Python floats over M-long lists: M is small, and numpy's per-call cost on 4-element
    # arrays would be most of the rule's time
    used, load = [0.0] * m, [0.0] * m  # deadline shares and sum of sqrt(c) per server
    ok_rows, lb_rows, pair_rows = t.pair_ok.tolist(), lb.tolist(), pair.tolist()
    local_l, local_ok = local.tolist(), t.local_ok.tolist()
    sqrt_c, inv_f = np.sqrt(c).tolist(), (1.0 / F).tolist()
    for i in order.tolist():
        ok, lb_i, pair_i, s = ok_rows[i], lb_rows[i], pair_rows[i], sqrt_c[i]
        best, best_j = np.inf, -1
        for j in range(m):
            if not ok[j] or used[j] + lb_i[j] > 1.0:
                continue
            cost = pair_i[j] + (2.0 * load[j] + s) * s * inv_f[j] if latency else pair_i[j]
            if cost < best:
                best, best_j = cost, j
        if best_j < 0 or (local_ok[i] and local_l[i] <= best):
            continue  # stays local
        targets[i] = best_j
        used[best_j] += lb_i[best_j]
        load[best_j] += s
    return targets


def solve_rule(instance: Instance, objective: Objective, *, seed: int = 0) -> Decision:
    """The simple feasible rule alone (`rule_targets`): what the AED is guarded against."""
    del seed
    watch = Stopwatch()
    evaluator = Evaluator(instance, objective)
    return finish(evaluator, "rule", rule_targets(evaluator), watch)
