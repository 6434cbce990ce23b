"""Optimal CPU shares on one server for a fixed assignment (spec: "Facts worth knowing").

min_latency on one server is the convex problem

    minimise  sum_i c_i / (s_i F)   s.t.  sum_i s_i <= 1,  s_i >= lb_i,

whose KKT conditions give s_i = max(lb_i, tau * sqrt(c_i)) with one water level tau chosen so
that the shares sum to 1 (with no binding deadline, s_i is proportional to sqrt(c_i)). It is
feasible iff sum_i lb_i <= 1. `waterfill` solves a whole batch of such problems at once (the
exact solver builds its subset tables with it, the greedy evaluates every move with it).

min_energy does not depend on the shares; any shares with s_i >= lb_i and sum <= 1 are
optimal. `optimal_shares` then gives the latency-optimal ones among them (same energy, the
spare CPU is not wasted); `minimal_shares` gives the bare deadline shares lb_i.
"""

from __future__ import annotations

import numpy as np
from edgeai.tools.offloading.cost import PairTables
from edgeai.tools.offloading.problem import Objective


def waterfill(
    cycles: np.ndarray, lower: np.ndarray, member: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latency-optimal shares for a batch of one-server problems.

    Parameters
    ----------
    cycles : (B, K) or (K,) positive cycles c_i of the candidate tasks.
    lower : same shape, minimal shares lb_i (0 when there is no deadline); inf = impossible.
    member : same shape, bool; False entries take no part (share 0). Default: all take part.

    Returns
    -------
    shares : (B, K) optimal shares (0 for non-members; NaN rows where infeasible).
    value : (B,) the optimal sum_i c_i / s_i (divide by F for seconds); 0 for an empty row,
        +inf where infeasible.
    feasible : (B,) bool, sum of lower bounds over members <= 1.
    """
    cycles = np.atleast_2d(np.asarray(cycles, dtype=float))
    lower = np.atleast_2d(np.asarray(lower, dtype=float))
    if member is None:
        member = np.ones(cycles.shape, dtype=bool)
    member = np.atleast_2d(np.asarray(member, dtype=bool))
    cycles, lower, member = np.broadcast_arrays(cycles, lower, member)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        sq = np.where(member, np.sqrt(cycles), 0.0)  # (B, K)
        lb = np.where(member, lower, 0.0)  # (B, K)
        lb_total = lb.sum(axis=1)  # (B,)
        feasible = lb_total <= 1.0  # false for inf / NaN too
        # Ratio lb/sqrt(c): the water level at which a task stops being held at its lower bound.
        ratio = np.where(member, lb / np.where(member, sq, 1.0), np.inf)  # (B, K)
        order = np.argsort(ratio, axis=1, kind="stable")
        r_sorted = np.take_along_axis(ratio, order, axis=1)
        sq_sorted = np.take_along_axis(sq, order, axis=1)
        lb_sorted = np.take_along_axis(lb, order, axis=1)
        free_sq = np.cumsum(sq_sorted, axis=1)  # S_k: sqrt(c) of the k lowest-ratio tasks
        held_lb = lb_total[:, None] - np.cumsum(lb_sorted, axis=1)  # L_k: lb of the others
        # The k-th task is free at the optimum iff the share sum at level r_(k) is <= 1.
        free = (r_sorted * free_sq + held_lb) <= 1.0  # monotone: True..True False..False
        k = free.sum(axis=1)  # (B,) number of free tasks, >= 1 for a non-empty feasible row
        rows = np.arange(cycles.shape[0])
        kk = np.maximum(k - 1, 0)
        tau = (1.0 - held_lb[rows, kk]) / free_sq[rows, kk]  # (B,)
        shares = np.where(member, np.maximum(lb, tau[:, None] * sq), 0.0)
        value = np.where(member, np.where(member, cycles, 1.0) / shares, 0.0).sum(axis=1)
    empty = ~member.any(axis=1)
    shares[empty] = 0.0
    value[empty] = 0.0
    bad = ~feasible
    shares[bad] = np.nan
    value[bad] = np.inf
    return shares, value, feasible


def server_shares(cycles: np.ndarray, lower: np.ndarray) -> np.ndarray | None:
    """Latency-optimal shares of the tasks on one server, or None when sum(lower) > 1."""
    shares, _, feasible = waterfill(cycles, lower)
    return shares[0] if feasible[0] else None


def minimal_shares(lower: np.ndarray) -> np.ndarray | None:
    """The bare deadline shares lb_i of one server's tasks, or None when they sum past 1."""
    lower = np.asarray(lower, dtype=float)
    return lower.copy() if lower.sum() <= 1.0 else None


def optimal_shares(
    tables: PairTables, cycles: np.ndarray, target: np.ndarray, objective: Objective
) -> tuple[np.ndarray, np.ndarray]:
    """Shares for a whole assignment (target (N,), -1 = local) under either objective.

    Returns (share (N,), NaN for local UEs; server_ok (M,) bool). On a server whose lower
    bounds sum past 1 no feasible shares exist; its UEs then get shares proportional to
    their lower bounds (the closest thing, still summing to 1) and server_ok is False, so a
    caller can report the decision as infeasible rather than invent capacity.
    """
    del objective  # both objectives use the latency-optimal feasible shares (module docstring)
    target = np.asarray(target, dtype=int)
    m = tables.lb.shape[1]
    share = np.full(target.shape, np.nan)
    server_ok = np.ones(m, dtype=bool)
    for j in range(m):
        idx = np.nonzero(target == j)[0]
        if idx.size == 0:
            continue
        lower = tables.lb[idx, j]
        s = server_shares(cycles[idx], lower)
        if s is None:
            server_ok[j] = False
            finite = np.where(np.isfinite(lower), lower, 1.0)
            s = finite / finite.sum()
        share[idx] = s
    return share, server_ok
