"""The exact solver: the yardstick every other solver is judged against on small instances.

With the shares chosen optimally per server, an assignment's cost separates into the local
costs plus one value V_j(S_j) per server. So (spec: "a subset table per server"):

1. for every server j and every subset S of UEs, V_j(S) is tabulated in one batched
   water-filling call (2^N rows; +inf where S does not fit);
2. f_0(A) = local cost of the UEs in A, and f_j(A) = min_{S subset of A} V_j(S) + f_{j-1}(A - S)
   over all (A, S) pairs at once (3^N pairs per server);
3. f_M(all UEs) is the optimum of the (M + 1)^N assignments; backtracking gives the sets.

This is the enumeration of all assignments done by dynamic programming, exact and
O(M 3^N) instead of O((M + 1)^N): N = 10, M = 4 takes milliseconds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from edgeai.tools.offloading.evaluate import Evaluator, Stopwatch, finish
from edgeai.tools.offloading.problem import Decision, Instance, Objective

MAX_N = 12  # 3^12 = 531441 (A, S) pairs per server; beyond that use milp or a heuristic


@lru_cache(maxsize=4)
def subset_bits(n: int) -> np.ndarray:
    """(2^N, N) bool: row `mask` holds the UEs in subset `mask`."""
    masks = np.arange(1 << n)
    return ((masks[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)


@lru_cache(maxsize=4)
def submask_pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (A, S) with S a subset of A, sorted by A, and where each A's group starts.

    Each pair is a ternary word: digit i is 0 (UE i not in A), 1 (in A, not in S), 2 (in S).
    """
    words = np.arange(3**n, dtype=np.int64)
    a = np.zeros_like(words)
    s = np.zeros_like(words)
    for i in range(n):
        digit = (words // 3**i) % 3
        a |= (digit > 0).astype(np.int64) << i
        s |= (digit == 2).astype(np.int64) << i
    order = np.argsort(a, kind="stable")
    a, s = a[order], s[order]
    starts = np.searchsorted(a, np.arange(1 << n))
    return a, s, starts


def optimal_targets(evaluator: Evaluator) -> tuple[np.ndarray, float]:
    """The optimal assignment vector and its total cost (sum; see Evaluator)."""
    n, m = evaluator.n, evaluator.m
    if n > MAX_N:
        raise ValueError(f"exact enumeration is limited to {MAX_N} UEs, got {n}")
    bits = subset_bits(n)
    full = (1 << n) - 1
    tables = [evaluator.server_value(j, bits) for j in range(m)]  # V_j(S): (2^N,) each
    f = [np.where(bits, evaluator.local_cost[None, :], 0.0).sum(axis=1)]  # f_0(A)
    a, s, starts = submask_pairs(n)
    for j in range(m):
        vals = tables[j][s] + f[-1][a ^ s]
        f.append(np.minimum.reduceat(vals, starts))
    # Backtrack from the full set: which subset did each server take?
    targets = np.full(n, -1, dtype=int)
    remaining = full
    for j in range(m - 1, -1, -1):
        lo = starts[remaining]
        hi = starts[remaining + 1] if remaining < full else len(a)
        cand = s[lo:hi]
        best = cand[np.argmin(tables[j][cand] + f[j][remaining ^ cand])]
        targets[bits[best]] = j
        remaining ^= int(best)
    return targets, float(f[m][full])


def solve_exact(instance: Instance, objective: Objective, *, seed: int = 0) -> Decision:
    """The optimal decision (assignment by dynamic programming, shares by water-filling)."""
    del seed
    watch = Stopwatch()
    evaluator = Evaluator(instance, objective)
    targets, _ = optimal_targets(evaluator)
    return finish(evaluator, "exact", targets, watch)
