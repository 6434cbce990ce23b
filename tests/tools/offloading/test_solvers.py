"""Solvers: exact against brute-force enumeration, MILP against exact, every solver feasible."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from edgeai.errors import UserInputError
from edgeai.tools.offloading import (
    SOLVERS,
    Decision,
    generate_instance,
    instance_from_dict,
    register_solver,
    score,
    solve,
)
from edgeai.tools.offloading.evaluate import Evaluator, Stopwatch, finish, to_decision
from edgeai.tools.offloading.registry import get_solver

OBJECTIVES = ("min_latency", "min_energy")
FAST_OPTIONS = {  # same code paths, smaller budgets
    "de": {"maxiter": 15, "popsize": 5},
    "milp": {"time_limit": 2.0},  # proving min_energy optimal at N = 50 (tight) takes ~6 s
}


def brute_force(instance, objective: str) -> float:
    """Best feasible objective over all (M+1)^N assignments, each scored by the scorer."""
    best = np.inf
    for targets in itertools.product(range(-1, instance.m), repeat=instance.n):
        s = score(instance, to_decision(instance, objective, "brute", np.array(targets), 0.0))
        if s.feasible:
            best = min(best, s.objective_value)
    return best


@pytest.mark.parametrize("scenario", ["lambo-50", "lambo-50-tight"])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_exact_equals_brute_force(scenario: str, objective: str) -> None:
    for seed in range(3):
        inst = generate_instance(n=5, m=2, seed=seed, scenario=scenario, objective=objective)
        s = score(inst, solve(inst, solver="exact"))
        assert s.feasible
        assert s.objective_value == pytest.approx(brute_force(inst, objective), rel=1e-10)


def test_exact_solves_n8_m4_feasibly_and_records_its_time() -> None:
    """How fast it is lives in `edgeai bench offload`, not in a test (no wall-clock bounds)."""
    for objective in OBJECTIVES:
        inst = generate_instance(n=8, m=4, seed=3, scenario="lambo-50-tight", objective=objective)
        decision = solve(inst, solver="exact")
        assert score(inst, decision).feasible
        assert decision.solve_seconds > 0


@pytest.mark.parametrize("seed", range(4))
def test_milp_min_energy_equals_exact(seed: int) -> None:
    inst = generate_instance(n=8, m=4, seed=seed, scenario="lambo-50-tight", objective="min_energy")
    exact = score(inst, solve(inst, solver="exact")).objective_value
    milp = score(inst, solve(inst, solver="milp"))
    assert milp.feasible and milp.objective_value == pytest.approx(exact, rel=1e-6)


def test_milp_min_latency_close_to_exact() -> None:
    for seed in range(2):
        inst = generate_instance(n=8, m=4, seed=seed, scenario="lambo-50-tight")
        exact = score(inst, solve(inst, solver="exact")).objective_value
        milp = score(inst, solve(inst, solver="milp")).objective_value
        assert exact * (1 - 1e-9) <= milp <= exact * 1.01


@pytest.mark.parametrize("scenario", ["lambo-50", "lambo-50-tight"])
def test_all_solvers_feasible_and_ranked_at_n8(scenario: str) -> None:
    for objective in OBJECTIVES:
        inst = generate_instance(n=8, m=4, seed=11, scenario=scenario, objective=objective)
        values = {}
        for name in SOLVERS:
            decision = solve(inst, solver=name, seed=1)
            s = score(inst, decision)
            assert s.feasible, (name, s.violations)
            assert decision.solver == name and decision.objective == objective
            assert decision.solve_seconds > 0 and "fallback" not in decision.model_extra
            values[name] = s.objective_value
        for name, value in values.items():
            assert value >= values["exact"] * (1 - 1e-9), name  # nobody beats the optimum
        assert values["greedy"] < values["local"]


@pytest.mark.parametrize("scenario", ["lambo-50", "lambo-50-tight"])
def test_all_solvers_feasible_at_n50(scenario: str) -> None:
    for objective in OBJECTIVES:
        inst = generate_instance(n=50, m=4, seed=4, scenario=scenario, objective=objective)
        local = score(inst, solve(inst, solver="local")).objective_value
        for name in SOLVERS:
            if SOLVERS[name].max_n is not None and inst.n > SOLVERS[name].max_n:
                continue
            decision = solve(inst, solver=name, **FAST_OPTIONS.get(name, {}))
            s = score(inst, decision)
            assert s.feasible, (name, s.violations)
            assert "fallback" not in decision.model_extra
            if name == "de":  # all-local is in its first population; a tiny budget may not beat it
                assert s.objective_value <= local
            elif name not in ("local", "random"):
                assert s.objective_value < local, name


def test_objective_override_and_dict_input() -> None:
    inst = generate_instance(n=6, m=2, seed=0, objective="min_latency")
    decision = solve(inst.to_dict(), objective="min_energy", solver="exact")
    assert decision.objective == "min_energy"
    assert score(inst, decision).objective_value == pytest.approx(
        score(inst.with_objective("min_energy"), solve(inst, "min_energy", "exact")).objective_value
    )


def test_registry_errors_and_plug_in() -> None:
    inst = generate_instance(n=50, m=4, seed=0)
    with pytest.raises(UserInputError, match="unknown offloading solver 'no-such-solver'"):
        solve(inst, solver="no-such-solver")
    with pytest.raises(UserInputError, match="at most 12 UEs"):
        solve(inst, solver="exact")
    assert get_solver("exact").exact and not get_solver("greedy").exact

    calls = []

    def everything_on_first_server(instance, objective, *, seed=0):
        calls.append(seed)
        watch = Stopwatch()
        return finish(Evaluator(instance, objective), "first", np.zeros(instance.n, int), watch)

    register_solver("first-server", everything_on_first_server, "test plug-in")
    try:
        small = generate_instance(n=3, m=2, seed=0)
        decision = solve(small, solver="first-server", seed=9)
        assert calls == [9]
        assert {a.target for a in decision.assignments} == {"mec0"}
        with pytest.raises(ValueError, match="already registered"):
            register_solver("first-server", everything_on_first_server, "again")
    finally:
        del SOLVERS["first-server"]


def test_infeasible_answer_falls_back_to_local() -> None:
    inst = generate_instance(n=8, m=1, seed=0, scenario="lambo-50-tight")
    evaluator = Evaluator(inst, "min_latency")
    everyone_on_one_server = np.zeros(8, dtype=int)  # 8 deadline shares cannot fit one 1.5 GHz CPU
    assert not evaluator.feasible(everyone_on_one_server)
    decision = finish(evaluator, "broken", everyone_on_one_server, Stopwatch())
    assert decision.model_extra["fallback"] == "all-local"
    assert all(a.is_local for a in decision.assignments) and score(inst, decision).feasible


def _one_slow_ue(deadline: float) -> dict:
    inst = generate_instance(n=6, m=2, seed=3).to_dict()
    inst["ues"][0]["deadline_s"] = deadline  # local needs c/f >= 0.5 s
    return inst


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_solvers_rescue_a_ue_that_misses_locally(objective: str) -> None:
    inst = instance_from_dict(_one_slow_ue(0.45), objective)
    assert not score(inst, solve(inst, solver="local")).feasible
    for name in set(SOLVERS) - {"local"}:
        decision = solve(inst, solver=name, seed=0, **FAST_OPTIONS.get(name, {}))
        s = score(inst, decision)
        assert s.feasible, (name, s.violations)
        assert not decision.assignments[0].is_local


def test_hopeless_instance_returns_best_effort() -> None:
    inst = instance_from_dict(_one_slow_ue(0.01))  # even the upload takes longer
    for name in SOLVERS:
        decision = solve(inst, solver=name, **FAST_OPTIONS.get(name, {}))
        assert isinstance(decision, Decision)
        s = score(inst, decision)
        assert not s.feasible
        assert [v for v in s.violations if not v.startswith("ue0:")] == [], (name, s.violations)
