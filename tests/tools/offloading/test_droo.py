"""DROO baseline: order-preserving quantisation, feasibility on both scenarios, training loop."""

from __future__ import annotations

import numpy as np
import pytest
from edgeai.tools.offloading import SOLVERS, generate_instance, score, solve
from edgeai.tools.offloading.droo import (
    DROOArgs,
    best_candidate,
    droo_features,
    load_droo,
    quantise,
    relaxed_action,
    save_droo,
    solve_droo,
    train_droo,
)
from edgeai.tools.offloading.evaluate import Evaluator
from edgeai.tools.offloading.problem import OBJECTIVES


def test_registry_lists_droo() -> None:
    assert "droo" in SOLVERS
    assert SOLVERS["droo"].load() is solve_droo


def test_quantise_hand_checked() -> None:
    # Prepare: 3 UEs, targets (local, server 0); margins 0.8, 0.1, 0.4 -> order UE1, UE2, UE0.
    probs = np.array([[0.9, 0.1], [0.45, 0.55], [0.3, 0.7]])
    # Execute
    candidates = quantise(probs, 10)
    # Assert: argmax, then the 1, 2, 3 closest flipped together, then the 2nd, 3rd alone.
    expected = np.array(
        [
            [-1, 0, 0],
            [-1, -1, 0],
            [-1, -1, -1],
            [0, -1, -1],
            [-1, 0, -1],
            [0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(candidates, expected)
    np.testing.assert_array_equal(quantise(probs, 3), expected[:3])


def test_quantise_multiclass_distinct_and_order_preserving() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(5), size=12)
    probs[4] = [1.0, 0.0, 0.0, 0.0, 0.0]  # a single usable target: never flipped
    candidates = quantise(probs, 100)
    assert len(candidates) == 2 * 11
    assert len({tuple(c) for c in candidates}) == len(candidates)
    greedy = probs.argmax(axis=1) - 1
    np.testing.assert_array_equal(candidates[0], greedy)
    sorted_p = np.sort(probs, axis=1)
    margin = np.where(sorted_p[:, -2] > 0, sorted_p[:, -1] - sorted_p[:, -2], np.inf)
    runner_up = np.argsort(-probs, axis=1, kind="stable")[:, 1] - 1
    for cand in candidates[1:]:
        flipped = cand != greedy
        assert flipped.any() and not flipped[4]
        np.testing.assert_array_equal(cand[flipped], runner_up[flipped])
    for cand in candidates[1:12]:  # nested part: flipped set = the UEs closest to the boundary
        flipped = cand != greedy
        assert margin[flipped].max() < margin[~flipped].min()


@pytest.mark.parametrize("scenario", ["lambo-50", "lambo-50-tight"])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_shipped_droo_feasible_and_beats_local(scenario: str, objective: str) -> None:
    for seed in range(3):
        for n in (8, 50):
            inst = generate_instance(n, 4, 900 + seed, scenario, objective)
            decision = solve(inst, solver="droo")
            result = score(inst, decision)
            assert result.feasible, result.violations
            assert decision.solver == "droo" and decision.solve_seconds > 0
            local = score(inst, solve(inst, solver="local"))
            assert result.objective_value <= local.objective_value * (1 + 1e-9)


def test_best_candidate_is_min_over_candidates() -> None:
    inst = generate_instance(20, 4, 5, "lambo-50-tight", "min_energy")
    ev = Evaluator(inst, "min_energy")
    probs = relaxed_action(load_droo().model, droo_features(ev))
    best, total, _ = best_candidate(ev, probs, 40)
    totals = ev.total(ev.repair(quantise(probs, 40)))
    assert total == pytest.approx(float(totals.min()))
    assert float(ev.total(best)[0]) == pytest.approx(total)


def test_training_loop_tiny_budget(tmp_path) -> None:
    args = DROOArgs(steps=24, n=10, m=3, batch=8, memory=16, train_interval=2, hidden=16)
    model, meta = train_droo(args, tmp_path / "droo.pt", command="test")
    assert meta["final_loss"] is not None and np.isfinite(meta["final_loss"])
    loaded = load_droo(tmp_path / "droo.pt")
    assert loaded.meta["command"] == "test" and loaded.meta["args"]["steps"] == 24
    inst = generate_instance(10, 3, 1, "lambo-50-tight", "min_latency")
    decision = solve_droo(inst, "min_latency", checkpoint=tmp_path / "droo.pt")
    assert score(inst, decision).feasible
    # a saved model round-trips exactly
    save_droo(model, tmp_path / "again.pt", {})
    ev = Evaluator(inst, "min_latency")
    np.testing.assert_allclose(
        relaxed_action(model, droo_features(ev)),
        relaxed_action(load_droo(tmp_path / "again.pt").model, droo_features(ev)),
    )


def test_broken_checkpoints_are_one_weights_error_naming_the_file(tmp_path) -> None:
    import torch
    from edgeai.errors import WeightsError
    from edgeai.tools.offloading.aed import load_model

    with pytest.raises(WeightsError, match="train-droo"):
        load_droo(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not torch\n")
    for load in (load_droo, load_model):
        with pytest.raises(WeightsError, match="junk.pt' does not load") as info:
            load(tmp_path / "junk.pt")
        assert "\n" not in str(info.value)
    torch.save({"config": {"hidden": 8}, "state_dict": {}}, tmp_path / "empty.pt")
    with pytest.raises(WeightsError, match="empty.pt' does not fit this code"):
        load_droo(tmp_path / "empty.pt")
