"""The certified MILP: its price cuts bound every server's exact value and touch it at the
assignment's own price; its lower bound never exceeds its cost or the exact optimum; its gap
meets the tolerance; and the benchmark scores solvers against it (or against exact)."""

from __future__ import annotations

import numpy as np
import pytest
from edgeai.errors import UserInputError
from edgeai.tools.offloading import generate_instance, score, solve
from edgeai.tools.offloading.bench import compare, reference_name
from edgeai.tools.offloading.certified import (
    TOLERANCE,
    _pairs,
    certify,
    own_prices,
    price_grid,
)
from edgeai.tools.offloading.evaluate import Evaluator
from edgeai.tools.offloading.exact import optimal_targets

SCENARIOS = ("lambo-50", "lambo-50-tight")
OBJECTIVES = ("min_latency", "min_energy")


def _cut_value(ev: Evaluator, j: int, members: np.ndarray, price: float) -> float:
    """sum_i g_ij(lambda) - lambda over the UEs on server j (the cut's right-hand side)."""
    a = ev.instance.arrays.c[members] / ev.instance.arrays.F[j]
    lb = ev.tables.lb[members, j]
    sigma = np.clip(np.sqrt(a / price), lb, 1.0)
    return float(np.sum(a / sigma + price * sigma) - price)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_price_cuts_bound_each_server_and_are_exact_at_its_own_price(scenario: str) -> None:
    ev = Evaluator(generate_instance(40, 4, 3, scenario, "min_latency"), "min_latency")
    rng = np.random.default_rng(0)
    pairs = _pairs(ev)
    grid_server, grid_price = price_grid(pairs, ev.m)
    checked = 0
    for _ in range(10):
        targets = ev.repair(rng.integers(-1, ev.m, size=ev.n))[0]
        servers, prices = own_prices(ev, targets)
        for j, own in zip(servers, prices, strict=True):
            members = np.nonzero(targets == j)[0]
            exact = float(ev.server_value(j, targets == j)[0] - ev.pair_cost[members, j].sum())
            assert _cut_value(ev, j, members, own) == pytest.approx(exact, rel=1e-9)
            for price in grid_price[grid_server == j]:
                assert _cut_value(ev, j, members, price) <= exact * (1 + 1e-12)
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_certified_matches_the_exact_optimum_at_n8(scenario: str, objective: str) -> None:
    for seed in range(3):
        ev = Evaluator(generate_instance(8, 4, 40 + seed, scenario, objective), objective)  # type: ignore[arg-type]
        optimum = ev.objective_of_total(optimal_targets(ev)[1])
        cert = certify(ev)
        assert cert.certified and 0.0 <= cert.gap <= TOLERANCE
        assert cert.lower_bound <= optimum * (1 + 1e-9)  # a bound, never above the optimum
        assert optimum * (1 - 1e-9) <= cert.cost <= optimum * (1 + TOLERANCE)
        assert cert.cost == pytest.approx(ev.objective_of_total(ev.total(cert.targets)[0]))


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_certified_solver_reports_bound_and_gap_at_n30(objective: str) -> None:
    inst = generate_instance(30, 4, 12, "lambo-50-tight", objective)
    decision = solve(inst, solver="certified")
    s = score(inst, decision)
    assert s.feasible and decision.solver == "certified"
    extra = decision.model_extra
    assert extra["certified"] is True
    assert extra["lower_bound"] <= s.objective_value
    assert extra["gap"] <= TOLERANCE
    assert s.objective_value / extra["lower_bound"] - 1 == pytest.approx(
        extra["gap"] / (1 - extra["gap"]), rel=1e-6, abs=1e-12
    )
    greedy = score(inst, solve(inst, solver="greedy")).objective_value
    assert extra["lower_bound"] <= greedy  # nobody beats the bound


def test_a_tight_tolerance_is_met_and_bad_options_are_user_errors() -> None:
    ev = Evaluator(generate_instance(12, 3, 2, "lambo-50", "min_latency"), "min_latency")
    cert = certify(ev, tol=1e-4)
    assert cert.certified and cert.gap <= 1e-4 and cert.lower_bound <= cert.cost
    for bad in ({"tol": 0.0}, {"tol": 1.5}, {"tol": "small"}, {"time_limit": 0}):
        with pytest.raises(UserInputError, match="must be"):
            certify(ev, **bad)  # type: ignore[arg-type]


def test_no_server_is_certified_all_local() -> None:
    ev = Evaluator(generate_instance(6, 0, 1, "lambo-50", "min_latency"), "min_latency")
    cert = certify(ev)
    assert (cert.targets == -1).all() and cert.gap == 0.0 and cert.certified


def test_bench_scores_against_exact_up_to_n12_and_the_certified_bound_beyond() -> None:
    small = [generate_instance(6, 3, k, "lambo-50-tight", "min_latency") for k in range(2)]
    assert {reference_name(i) for i in small} == {"exact"}
    rows = {r["solver"]: r for r in compare(small, ["exact", "greedy", "local"], True, "t")}
    assert rows["exact"]["mean_gap_pct"] == pytest.approx(0.0, abs=1e-9)
    assert rows["exact"]["reference"] == "exact" and rows["exact"]["ref_max_gap_pct"] == 0.0
    assert rows["local"]["mean_gap_pct"] > rows["greedy"]["mean_gap_pct"] >= -1e-9

    large = [generate_instance(16, 4, k, "lambo-50-tight", "min_energy") for k in range(2)]
    assert {reference_name(i) for i in large} == {"certified"}
    rows = {r["solver"]: r for r in compare(large, ["certified", "greedy", "local"], True, "t")}
    assert rows["greedy"]["reference"] == "certified"
    assert 0.0 <= rows["certified"]["mean_gap_pct"] <= 100 * TOLERANCE
    assert rows["certified"]["ref_max_gap_pct"] <= 100 * TOLERANCE
    for row in rows.values():
        assert row["mean_gap_pct"] >= -1e-9  # the bound is never beaten
    assert rows["local"]["mean_gap_pct"] > rows["greedy"]["mean_gap_pct"]


def test_bench_parts_flag_refuses_unknown_tables_in_one_line(capsys) -> None:
    from edgeai.cli import main

    for bad in ("xz", "abi", ""):
        with pytest.raises(SystemExit) as exit_:
            main(["bench", "offload", "--parts", bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--parts" in err
