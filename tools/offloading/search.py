"""The search alone ("search"): the AED's move search with no network, multi-start.

Starts: the simple rule's decision (`baselines.rule_targets`), then random feasible
assignments (each UE, in random order, to a uniformly drawn target that still fits), each
improved by `aed.MoveSearch` until it reaches a local optimum or the budget is spent; the best
is kept, with its exact shares. The budget is a count of moves (neighbourhood scans, as in the
AED), so a decision does not depend on the machine's load; `cpu_seconds` instead spends a
CPU-time budget (time.process_time of this process), which only the benchmark uses to give the
search exactly the CPU time the AED took on the same instance.
"""

from __future__ import annotations

import time

import numpy as np
from edgeai.tools.offloading.aed import MoveSearch, check_moves, default_moves
from edgeai.tools.offloading.baselines import rule_targets
from edgeai.tools.offloading.evaluate import Evaluator, Stopwatch, finish
from edgeai.tools.offloading.problem import Decision, Instance, Objective


def random_feasible(evaluator: Evaluator, rng: np.random.Generator) -> np.ndarray:
    """Each UE in random order to a uniformly drawn target among local (when it meets the
    deadline) and the servers where its deadline share still fits."""
    t = evaluator.tables
    used = np.zeros(evaluator.m)
    targets = evaluator.local_targets()
    for i in rng.permutation(evaluator.n):
        servers = np.nonzero(t.pair_ok[i] & (used + np.where(t.pair_ok[i], t.lb[i], 0.0) <= 1.0))[0]
        options = list(servers) + ([-1] if t.local_ok[i] else [])
        if not options:
            continue
        choice = int(options[rng.integers(len(options))])
        targets[i] = choice
        if choice >= 0:
            used[choice] += t.lb[i, choice]
    return targets


def search_targets(
    evaluator: Evaluator,
    *,
    seed: int = 0,
    moves: int | None = None,
    cpu_seconds: float | None = None,
    start_cpu: float | None = None,
) -> tuple[np.ndarray, int, int]:
    """(best assignment, moves spent, starts) of the multi-start search. With `cpu_seconds` the
    budget is CPU time counted from `start_cpu` (default: now), else `moves` (default
    `default_moves(N)`)."""
    rng = np.random.default_rng(seed)
    best = rule_targets(evaluator)
    best_total = float(evaluator.total(best)[0])
    if evaluator.m == 0:
        return best, 0, 0
    searcher = MoveSearch(evaluator)
    budget = default_moves(evaluator.n) if moves is None else check_moves(moves)
    cpu0 = time.process_time() if start_cpu is None else start_cpu

    def out_of_time() -> bool:
        return cpu_seconds is not None and time.process_time() - cpu0 >= cpu_seconds

    def left() -> bool:
        return not out_of_time() if cpu_seconds is not None else spent < budget

    spent = starts = 0
    start = best
    while left():  # each start improved until a local optimum or the budget
        steps = 10**9 if cpu_seconds is not None else budget - spent
        current, used = searcher.run(start, steps, out_of_time if cpu_seconds else None)
        spent += used
        starts += 1
        value = float(evaluator.total(current)[0])
        if value < best_total:
            best, best_total = current, value
        start = random_feasible(evaluator, rng)
    return best, spent, starts


def solve_search(
    instance: Instance,
    objective: Objective,
    *,
    seed: int = 0,
    moves: int | None = None,
    cpu_seconds: float | None = None,
) -> Decision:
    """The search alone (module docstring); deterministic in `moves` for a given seed."""
    watch = Stopwatch()
    cpu0 = time.process_time()
    evaluator = Evaluator(instance, objective)
    targets, spent, starts = search_targets(
        evaluator, seed=seed, moves=moves, cpu_seconds=cpu_seconds, start_cpu=cpu0
    )
    return finish(evaluator, "search", targets, watch, moves_spent=spent, starts=starts)
