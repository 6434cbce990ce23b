"""AED's move search: its per-server state equals the Evaluator's exact values, it never
ends worse or infeasible, and it stops only where no single move improves (checked against
the plain best-improvement search of the baselines)."""

from __future__ import annotations

import numpy as np
import pytest
from edgeai.tools.offloading.aed import MoveSearch
from edgeai.tools.offloading.baselines import improve
from edgeai.tools.offloading.evaluate import Evaluator
from edgeai.tools.offloading.scenario import generate_instance

CASES = [
    (scenario, objective)
    for scenario in ("lambo-50", "lambo-50-tight", "shifted")
    for objective in ("min_latency", "min_energy")
]


@pytest.mark.parametrize(("scenario", "objective"), CASES)
def test_server_state_equals_evaluator(scenario: str, objective: str) -> None:
    ev = Evaluator(generate_instance(30, 4, 11, scenario, objective), objective)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    search = MoveSearch(ev)
    for _ in range(20):
        targets = ev.repair(rng.integers(-1, ev.m, size=ev.n))[0]
        search._load(targets)
        for j in range(ev.m):
            expected = ev.server_value(j, targets == j)[0]
            assert search.value[j] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert search.total() == pytest.approx(ev.total(targets)[0], rel=1e-9)


@pytest.mark.parametrize(("scenario", "objective"), CASES)
def test_search_ends_in_a_single_move_optimum(scenario: str, objective: str) -> None:
    for seed in (3, 4):
        ev = Evaluator(generate_instance(40, 4, seed, scenario, objective), objective)  # type: ignore[arg-type]
        rng = np.random.default_rng(seed)
        start = ev.repair(rng.integers(-1, ev.m, size=ev.n))[0]
        found, moves = MoveSearch(ev).run(start, max_steps=10_000)
        assert ev.feasible(found)
        assert ev.total(found)[0] <= ev.total(start)[0] + 1e-12
        assert moves > 0
        # no single move (exact shares) improves on it
        np.testing.assert_array_equal(improve(ev, found, max_moves=1), found)
        # and it is at least as good as the plain greedy from all-local
        greedy = improve(ev, ev.local_targets())
        assert ev.total(found)[0] <= ev.total(greedy)[0] * 1.02


def test_search_spends_exactly_its_budget_of_moves() -> None:
    ev = Evaluator(generate_instance(60, 4, 5, "lambo-50", "min_latency"), "min_latency")
    start = ev.local_targets()
    three, moves = MoveSearch(ev).run(start, max_steps=3)
    assert moves == 3  # from all-local every scan finds an improving move
    assert ev.total(three)[0] < ev.total(start)[0]
    more, _ = MoveSearch(ev).run(start, max_steps=6)
    assert ev.total(more)[0] < ev.total(three)[0]
    untouched, moves = MoveSearch(ev).run(start, max_steps=0)
    assert moves == 0
    np.testing.assert_array_equal(untouched, start)
    # a converged search stops on its own, well inside a large budget, and says what it used
    _, used = MoveSearch(ev).run(start, max_steps=10_000)
    assert 6 < used < 10_000
