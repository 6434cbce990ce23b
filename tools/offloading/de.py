"""Differential evolution (LAMBO's "DE" contender and ALEF expert) over offloading targets.

Each UE gets one real gene x_i in [0, M + 1); floor(x_i) = 0 means local, k means server
k - 1. A decoded population is repaired (`Evaluator.repair`: unusable pairs go local, an
overfull server keeps its smallest deadline shares) and scored with optimal shares, the whole
population per call (scipy's `vectorized=True`). scipy's defaults otherwise, except no
gradient polish (the cost is piecewise constant in x), a bounded number of generations, and
the all-local assignment placed in the first population.
"""

from __future__ import annotations

import numpy as np
from edgeai.tools.offloading.evaluate import Evaluator, Stopwatch, finish
from edgeai.tools.offloading.problem import Decision, Instance, Objective
from scipy.optimize import differential_evolution


def decode(genes: np.ndarray, m: int) -> np.ndarray:
    """Genes (..., N) in [0, M + 1) -> targets (..., N), -1 = local."""
    return np.clip(np.floor(genes).astype(int), 0, m) - 1


def solve_de(
    instance: Instance,
    objective: Objective,
    *,
    seed: int = 0,
    maxiter: int = 100,
    popsize: int = 15,
    tol: float = 0.01,
) -> Decision:
    """Best repaired assignment found by scipy's differential evolution (best1bin)."""
    watch = Stopwatch()
    evaluator = Evaluator(instance, objective)
    n, m = instance.n, instance.m
    if m == 0:
        return finish(evaluator, "de", evaluator.local_targets(), watch)

    def cost(x: np.ndarray) -> np.ndarray:  # x: (N, S) population, one column per member
        targets = evaluator.repair(decode(x.T, m))  # (S, N)
        return evaluator.total(targets)

    result = differential_evolution(
        cost,
        bounds=[(0.0, m + 1.0 - 1e-9)] * n,
        maxiter=maxiter,
        popsize=popsize,
        tol=tol,
        seed=seed,
        polish=False,
        x0=np.full(n, 0.5),  # all-local joins the first population: DE never ends worse than it
        vectorized=True,
        updating="deferred",
    )
    targets = evaluator.repair(decode(result.x[None, :], m))[0]
    return finish(evaluator, "de", targets, watch)
