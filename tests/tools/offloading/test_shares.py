"""Optimal shares: water-filling against scipy and brute force, batched against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest
from edgeai.tools.offloading.shares import minimal_shares, server_shares, waterfill
from scipy.optimize import minimize


def scipy_optimum(c: np.ndarray, lb: np.ndarray) -> float:
    """min sum c/s s.t. sum s <= 1, s >= lb by SLSQP from two starts (the reference)."""
    best = np.inf
    k = len(c)
    for x0 in (np.maximum(lb, 1.0 / k), lb + (1.0 - lb.sum()) / k):
        res = minimize(
            lambda s: np.sum(c / s),
            x0,
            method="SLSQP",
            bounds=[(max(lo, 1e-9), 1.0) for lo in lb],
            constraints=[{"type": "ineq", "fun": lambda s: 1.0 - s.sum()}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        s = res.x
        if s.sum() <= 1 + 1e-7 and (s >= lb - 1e-9).all():
            # SLSQP may end a hair outside the feasible set (sum up to 1 + 1e-7), which is worth
            # more than 1e-8 of the objective when shares are small: project it back first
            s = np.maximum(s, lb)
            if s.sum() > 1.0:
                s = lb + (s - lb) * (1.0 - lb.sum()) / (s - lb).sum()
            best = min(best, float(np.sum(c / s)))
    return best


def test_no_binding_bound_gives_sqrt_proportional_shares() -> None:
    c = np.array([1.0, 4.0, 9.0])
    s = server_shares(c, np.zeros(3))
    np.testing.assert_allclose(s, [1 / 6, 2 / 6, 3 / 6])


def test_binding_bound_hand_case() -> None:
    # Unbounded optimum would be (0.5, 0.5); ue0 needs 0.8, so it gets 0.8 and ue1 the rest.
    np.testing.assert_allclose(
        server_shares(np.array([1.0, 1.0]), np.array([0.8, 0.0])), [0.8, 0.2]
    )


def test_infeasible_when_lower_bounds_exceed_one() -> None:
    assert server_shares(np.array([1.0, 2.0]), np.array([0.6, 0.5])) is None
    assert server_shares(np.array([1.0]), np.array([np.inf])) is None
    assert minimal_shares(np.array([0.6, 0.5])) is None
    np.testing.assert_allclose(minimal_shares(np.array([0.2, 0.3])), [0.2, 0.3])
    _, value, feasible = waterfill(np.ones((2, 2)), np.array([[0.6, 0.5], [0.5, 0.5]]))
    assert list(feasible) == [False, True] and value[0] == np.inf and value[1] == pytest.approx(4.0)


def test_matches_scipy_on_random_cases() -> None:
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(120):
        k = int(rng.integers(1, 6))
        c = rng.uniform(0.2, 2.0, k)
        lb = rng.uniform(0, 1, k) * rng.uniform(0, 1.2) / k * rng.integers(0, 3, k)
        s = server_shares(c, lb)
        if lb.sum() > 1:
            assert s is None
            continue
        assert s is not None
        assert s.sum() == pytest.approx(1.0, abs=1e-12)
        assert (s >= lb - 1e-15).all()
        ours, ref = float(np.sum(c / s)), scipy_optimum(c, lb)
        assert ours <= ref * (1 + 1e-8), (c, lb)  # never worse than the general-purpose solver
        assert ours >= ref * (1 - 1e-5)  # and SLSQP gets close to ours: same optimum
        checked += 1
    assert checked > 60


def test_matches_brute_force_grid_on_two_tasks() -> None:
    rng = np.random.default_rng(1)
    grid = np.linspace(1e-4, 1 - 1e-4, 200001)
    for _ in range(20):
        c = rng.uniform(0.1, 3.0, 2)
        lb = rng.uniform(0, 0.6, 2) * rng.integers(0, 2, 2)
        ok = (grid >= lb[0]) & (1 - grid >= lb[1])
        if not ok.any():
            continue
        brute = np.min(c[0] / grid[ok] + c[1] / (1 - grid[ok]))
        s = server_shares(c, lb)
        ours = float(np.sum(c / s))
        assert ours <= brute * (1 + 1e-12)  # the grid cannot beat the exact optimum
        assert ours >= brute * (1 - 1e-4)  # and comes within its step of it


def test_batched_equals_plain_loop() -> None:
    rng = np.random.default_rng(2)
    b, k = 300, 7
    c = rng.uniform(0.5, 1.5, (b, k))
    lb = rng.uniform(0, 0.3, (b, k)) * rng.integers(0, 2, (b, k))
    member = rng.random((b, k)) < 0.6
    shares, value, feasible = waterfill(c, lb, member)
    for row in range(b):
        idx = member[row]
        one = server_shares(c[row, idx], lb[row, idx]) if idx.any() else np.zeros(0)
        if one is None:
            assert not feasible[row] and value[row] == np.inf
            continue
        assert feasible[row]
        np.testing.assert_allclose(shares[row, idx], one, rtol=1e-12)
        assert (shares[row, ~idx] == 0).all()
        assert value[row] == pytest.approx(np.sum(c[row, idx] / one) if idx.any() else 0.0)
