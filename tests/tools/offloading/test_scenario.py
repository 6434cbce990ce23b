"""Scenario generators: the spec's distributions, channel model, variants and mobility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from edgeai.errors import UserInputError
from edgeai.tools.offloading import generate_instance, generate_trajectory, uplink_rate_bps
from edgeai.tools.offloading.cost import pair_tables
from edgeai.tools.offloading.scenario import path_loss_db, reflect


def test_default_scenario_distributions() -> None:
    inst = generate_instance(n=2000, m=4, seed=0)
    a = inst.arrays
    np.testing.assert_array_equal(a.F, [1.5e10, 1.5e10, 3e10, 5e10])
    assert 1e6 <= a.d.min() and a.d.max() <= 3e6 and a.d.mean() == pytest.approx(2e6, rel=0.03)
    assert 0.5e9 <= a.c.min() and a.c.max() <= 1.5e9 and a.c.mean() == pytest.approx(1e9, rel=0.03)
    assert (a.f == 1e9).all() and (a.p == 1).all() and (a.q == 1).all() and (a.D == 1.5).all()
    assert pair_tables(inst).local_ok.all()  # spec: running locally is always feasible
    xy = np.array([[u.x_m, u.y_m] for u in inst.ues])
    assert xy.min() >= 0 and xy.max() <= 50 and xy.mean() == pytest.approx(25, abs=1.5)
    assert inst.scenario == "lambo-50" and inst.seed == 0 and inst.step == 0
    assert (a.R > 0).all() and np.median(a.R) > 1e7  # tens of Mbit/s inside a 50 m square


def test_other_sizes_and_variants() -> None:
    caps = generate_instance(n=5, m=30, seed=1).arrays.F
    assert set(caps) <= {1.5e10, 3e10, 5e10} and len(set(caps)) == 3
    tight = generate_instance(n=5, m=4, seed=1, scenario="lambo-50-tight")
    np.testing.assert_allclose(tight.arrays.F, [1.5e9, 1.5e9, 3e9, 5e9])
    shifted = generate_instance(n=1000, m=4, seed=1, scenario="shifted")
    np.testing.assert_allclose(shifted.arrays.F, [0.75e10, 0.75e10, 1.5e10, 2.5e10])
    assert 3e6 <= shifted.arrays.d.min() and shifted.arrays.d.max() <= 6e6
    assert generate_instance(n=3, m=0, seed=0).arrays.R.shape == (3, 0)
    with pytest.raises(UserInputError, match="unknown offloading scenario"):
        generate_instance(n=3, scenario="mars")
    with pytest.raises(UserInputError, match="at least one UE"):
        generate_instance(n=0)


def test_seeded_and_reproducible() -> None:
    assert generate_instance(8, 4, seed=5) == generate_instance(8, 4, seed=5)
    assert generate_instance(8, 4, seed=5) != generate_instance(8, 4, seed=6)


def test_channel_model_statistics() -> None:
    # SNR(dB) = 10log10(p) - PL(d) + X + 10log10|h|^2 - (N0 + 10log10 B): at p = 1 W, d = 100 m
    # PL = 90.5 dB, noise = -144 dBW, so mean SNR = 53.5 dB + E[10log10 Exp(1)] (= -2.507 dB),
    # std = sqrt(8^2 + 5.57^2) dB.
    assert path_loss_db(100.0) == pytest.approx(90.5)
    assert path_loss_db(0.2) == path_loss_db(1.0)  # distances below 1 m count as 1 m
    rng = np.random.default_rng(0)
    rate = uplink_rate_bps(np.full(40000, 100.0), 1.0, rng)
    snr_db = 10 * np.log10(2 ** (rate / 1e6) - 1)
    assert snr_db.mean() == pytest.approx(53.5 - 2.507, abs=0.2)
    assert snr_db.std() == pytest.approx(np.hypot(8.0, 5.57), abs=0.2)
    # Bandwidth scales the noise and the pre-log factor; power broadcasts.
    r2 = uplink_rate_bps(
        np.array([10.0, 10.0]), np.array([1.0, 0.0]), np.random.default_rng(1), 2e6
    )
    assert r2.shape == (2,) and r2[1] == 0.0 and r2[0] > 2e6


def test_trajectory_mobility() -> None:
    steps = generate_trajectory(n=300, m=3, steps=6, seed=2)
    assert [s.step for s in steps] == list(range(6))
    servers = steps[0].servers
    for prev, cur in itertools.pairwise(steps):
        assert cur.servers == servers  # positions and capacities fixed along the trajectory
        a = np.array([[u.x_m, u.y_m] for u in prev.ues])
        b = np.array([[u.x_m, u.y_m] for u in cur.ues])
        moved = np.linalg.norm(b - a, axis=1)
        assert moved.max() <= 1.2 + 1e-9 and moved.mean() > 0.3
        assert b.min() >= 0 and b.max() <= 50
        assert not np.array_equal(prev.arrays.d, cur.arrays.d)  # tasks redrawn every step
        assert not np.array_equal(prev.arrays.R, cur.arrays.R)  # and the channel


def test_reflection_at_borders() -> None:
    np.testing.assert_allclose(
        reflect(np.array([-0.5, 50.7, 10.0, 0.0, 50.0])), [0.5, 49.3, 10.0, 0.0, 50.0]
    )
