"""The learned solvers decide the same on an idle and on a loaded machine: their budgets are
counts (AED search moves, DROO candidates), not seconds, and torch runs on one thread inside
the solver whatever the caller set (and the caller gets its setting back)."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import pytest
import torch
from edgeai.errors import UserInputError
from edgeai.tools.offloading import generate_instance, score, solve
from edgeai.tools.offloading.aed import one_torch_thread, solve_aed

# Instances where the AED's search runs long (N = 200 min_energy: ~100+ moves; N = 20: the
# multi-start over 32 rollouts) and a plain one; a wall-clock budget cut these short under load.
CASES = [
    (200, "lambo-50", "min_energy"),
    (50, "lambo-50-tight", "min_energy"),
    (50, "lambo-50", "min_latency"),
    (20, "lambo-50-tight", "min_energy"),
]


def _spin(stop: Any) -> None:
    """Keep one CPU busy until told to stop."""
    x = 0
    while not stop.is_set():
        x += 1


def _decisions() -> list[dict[str, Any]]:
    out = []
    for n, scenario, objective in CASES:
        inst = generate_instance(n, 4, 61, scenario, objective)
        for solver in ("aed", "droo"):
            decision = solve(inst, solver=solver, seed=5).to_dict()
            decision.pop("solve_seconds")
            out.append(decision)
    return out


def test_same_decisions_on_an_idle_and_a_loaded_machine() -> None:
    idle = _decisions()
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    busy = [
        ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 2)
    ]
    for p in busy:
        p.start()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's own setting: the solvers must not use or lose it
    try:
        loaded = _decisions()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
        stop.set()
        for p in busy:
            p.join(timeout=10)
    assert all(not p.is_alive() for p in busy)
    assert loaded == idle


def test_one_torch_thread_restores_the_callers_setting_even_on_error() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="inside"), one_torch_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("moves", [-1, 2.5, "10", True])
def test_bad_move_budget_is_a_user_error(moves: object) -> None:
    inst = generate_instance(6, 2, 0, "lambo-50", "min_latency")
    with pytest.raises(UserInputError, match="moves must be a whole number >= 0"):
        solve_aed(inst, "min_latency", moves=moves)  # type: ignore[arg-type]


def test_zero_moves_is_the_decoded_policy_and_more_moves_never_hurt() -> None:
    inst = generate_instance(50, 4, 8, "lambo-50-tight", "min_energy")
    policy = solve_aed(inst, "min_energy", search=False).assignments
    assert solve_aed(inst, "min_energy", moves=0).assignments == policy
    values = [
        score(inst, solve_aed(inst, "min_energy", moves=moves)).objective_value
        for moves in (0, 4, 16, 64)
    ]
    assert values == sorted(values, reverse=True)  # one search, cut later: never worse
    assert values[-1] < values[0]
