"""Issue 32 point 2's guard: the AED (policy alone or with its search) is never worse than the
simple feasible rule on any instance, under the instance's own objective; the rule and the
search-alone solver are feasible, and the search alone is deterministic in its moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edgeai.tools.offloading.aed import AEDConfig, build_model, save_checkpoint, solve_aed
from edgeai.tools.offloading.baselines import rule_targets
from edgeai.tools.offloading.cost import score
from edgeai.tools.offloading.evaluate import Evaluator
from edgeai.tools.offloading.registry import solve
from edgeai.tools.offloading.scenario import generate_instance

OBJECTIVES = ("min_latency", "min_energy")
SIZES = (6, 25, 80, 160)
SCENARIOS = ("lambo-50", "lambo-50-tight", "shifted")


def _value(inst, decision) -> float:  # type: ignore[no-untyped-def]
    s = score(inst, decision)
    assert s.objective_value is not None
    return float(s.objective_value)


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of random weights: its raw decode is poor, so the guard must act."""
    return save_checkpoint(
        build_model(AEDConfig(), seed=5), tmp_path_factory.mktemp("aed") / "random.pt", {}
    )


@pytest.mark.parametrize("which", ["shipped", "untrained"])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_guarded_aed_never_worse_than_the_rule(objective: str, which: str, untrained) -> None:  # type: ignore[no-untyped-def]
    checkpoint = None if which == "shipped" else untrained
    raw_worse = 0
    rng = np.random.default_rng(32)
    for n in SIZES:
        for scenario in SCENARIOS:
            for _ in range(2):
                seed = int(rng.integers(100_000, 1_000_000))
                m = int(rng.integers(2, 7))
                inst = generate_instance(n, m, seed, scenario, objective)  # type: ignore[arg-type]
                rule = _value(inst, solve(inst, solver="rule"))
                opts = {"checkpoint": checkpoint}
                policy = solve_aed(inst, inst.objective, samples=1, search=False, **opts)
                full = solve_aed(inst, inst.objective, **opts)
                raw = solve_aed(inst, inst.objective, samples=1, search=False, guard=False, **opts)
                tol = 1e-9 * max(1.0, abs(rule))
                assert _value(inst, policy) <= rule + tol, (n, m, scenario, seed)
                assert _value(inst, full) <= rule + tol, (n, m, scenario, seed)
                assert score(inst, policy).feasible and score(inst, full).feasible
                raw_worse += _value(inst, raw) > rule + tol
    if which == "untrained":  # the guard is not vacuous: there the raw decode loses to the rule
        assert raw_worse > 0


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_rule_is_feasible_and_beats_all_local(scenario: str, objective: str) -> None:
    for seed in range(3):
        inst = generate_instance(60, 4, 900 + seed, scenario, objective)  # type: ignore[arg-type]
        ev = Evaluator(inst, objective)  # type: ignore[arg-type]
        targets = rule_targets(ev)
        assert ev.feasible(targets)
        assert ev.total(targets)[0] <= ev.total(ev.local_targets())[0]
        assert (targets >= 0).any()


def test_rule_without_servers_is_all_local() -> None:
    inst = generate_instance(5, 0, 1, "lambo-50", "min_energy")
    ev = Evaluator(inst, "min_energy")
    np.testing.assert_array_equal(rule_targets(ev), ev.local_targets())


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_search_alone_improves_on_the_rule_and_is_deterministic(objective: str) -> None:
    inst = generate_instance(60, 4, 77, "lambo-50-tight", objective)  # type: ignore[arg-type]
    rule = _value(inst, solve(inst, solver="rule"))
    a = solve(inst, solver="search", moves=40)
    b = solve(inst, solver="search", moves=40)
    assert [x.target for x in a.assignments] == [x.target for x in b.assignments]
    assert score(inst, a).feasible
    assert _value(inst, a) <= rule + 1e-12
    assert a.model_extra["moves_spent"] <= 40
