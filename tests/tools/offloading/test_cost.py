"""The spec's costs on numbers checkable by hand, and the scorer's detection of each constraint."""

from __future__ import annotations

import numpy as np
import pytest
from edgeai.tools.offloading import decision_from_dict, instance_from_dict, pair_tables, score
from edgeai.tools.offloading.cost import ue_costs


def hand_instance() -> dict:
    # ue0 on mec0 with share 0.5: 2e6/1e7 + 1e9/(0.5 * 1e10) = 0.2 + 0.2 = 0.4 s;
    #   energy 0.25 W * 0.2 s = 0.05 J
    # ue1 local: 2e9 / 1e9 = 2 s, 1.5 W * 2 s = 3 J
    return {
        "objective": "min_latency",
        "servers": [{"id": "mec0", "capacity_hz": 1e10}, {"id": "mec1", "capacity_hz": 2e9}],
        "ues": [
            {
                "id": "ue0",
                "data_bits": 2e6,
                "cycles": 1e9,
                "local_hz": 1e9,
                "tx_power_w": 0.25,
                "local_power_w": 0.5,
                "deadline_s": 1.5,
            },
            {
                "id": "ue1",
                "data_bits": 1e6,
                "cycles": 2e9,
                "local_hz": 1e9,
                "tx_power_w": 1.0,
                "local_power_w": 1.5,
                "deadline_s": 3.0,
            },
        ],
        "rate_bps": [[1e7, 4e6], [2e6, 0.0]],
    }


def decision(assignments: list[dict], objective: str = "min_latency") -> object:
    return decision_from_dict(
        {"objective": objective, "solver": "hand", "solve_seconds": 0.0, "assignments": assignments}
    )


def test_costs_match_hand_computation() -> None:
    inst = instance_from_dict(hand_instance())
    d = decision([{"ue": "ue0", "target": "mec0", "share": 0.5}, {"ue": "ue1", "target": "local"}])
    s = score(inst, d)
    assert s.feasible, s.violations
    assert s.per_ue[0].latency_s == pytest.approx(0.4)
    assert s.per_ue[0].energy_j == pytest.approx(0.05)
    assert s.per_ue[1].latency_s == pytest.approx(2.0)
    assert s.per_ue[1].energy_j == pytest.approx(3.0)
    assert s.mean_latency_s == pytest.approx(1.2)
    assert s.total_energy_j == pytest.approx(3.05)
    assert s.objective_value == pytest.approx(1.2)
    assert score(inst, d, "min_energy").objective_value == pytest.approx(3.05)


def test_pair_tables_hand_values() -> None:
    t = pair_tables(instance_from_dict(hand_instance()))
    np.testing.assert_allclose(t.t_tx, [[0.2, 0.5], [0.5, np.inf]])
    np.testing.assert_allclose(t.e_off, [[0.05, 0.125], [0.5, np.inf]])
    # lb = c / (F (D - d/r)): ue0 on mec0 1e9/(1e10*1.3); on mec1 1e9/(2e9*1.0) = 0.5;
    # ue1 on mec0 2e9/(1e10*2.5) = 0.08; ue1 cannot reach mec1.
    np.testing.assert_allclose(t.lb, [[1 / 13, 0.5], [0.08, np.inf]])
    np.testing.assert_array_equal(t.pair_ok, [[True, True], [True, False]])
    np.testing.assert_array_equal(t.local_ok, [True, True])


def test_vectorised_costs_agree_with_scorer() -> None:
    inst = instance_from_dict(hand_instance())
    latency, energy = ue_costs(inst, np.array([1, 0]), np.array([0.75, 0.25]))
    s = score(
        inst,
        decision(
            [
                {"ue": "ue0", "target": "mec1", "share": 0.75},
                {"ue": "ue1", "target": "mec0", "share": 0.25},
            ]
        ),
    )
    np.testing.assert_allclose(latency, [u.latency_s for u in s.per_ue])
    np.testing.assert_allclose(energy, [u.energy_j for u in s.per_ue])
    # hand: ue0 0.5 + 1e9/(0.75*2e9) = 7/6 s; ue1 0.5 + 2e9/(0.25*1e10) = 1.3 s
    np.testing.assert_allclose(latency, [0.5 + 2 / 3, 1.3])


@pytest.mark.parametrize(
    ("assignments", "expected"),
    [
        # constraint 1: every UE exactly once, known target
        ([{"ue": "ue0", "target": "local"}], "ue1: missing from the decision"),
        (
            [
                {"ue": "ue0", "target": "local"},
                {"ue": "ue1", "target": "local"},
                {"ue": "ue1", "target": "local"},
            ],
            "ue1: assigned more than once",
        ),
        (
            [{"ue": "ue0", "target": "mec7", "share": 0.5}, {"ue": "ue1", "target": "local"}],
            "ue0: unknown target 'mec7'",
        ),
        (
            [
                {"ue": "ue0", "target": "local"},
                {"ue": "ue1", "target": "local"},
                {"ue": "ue9", "target": "local"},
            ],
            "unknown ue 'ue9'",
        ),
        # constraint 2: shares on one server sum to at most 1
        (
            [
                {"ue": "ue0", "target": "mec0", "share": 0.6},
                {"ue": "ue1", "target": "mec0", "share": 0.5},
            ],
            "server mec0: shares sum to 1.1 > 1",
        ),
        # constraint 3: 0 < share <= 1, and a share is required
        (
            [{"ue": "ue0", "target": "mec0", "share": 0.0}, {"ue": "ue1", "target": "local"}],
            "ue0: share 0 on mec0 is not in (0, 1]",
        ),
        (
            [{"ue": "ue0", "target": "mec0", "share": -0.2}, {"ue": "ue1", "target": "local"}],
            "ue0: share -0.2 on mec0 is not in (0, 1]",
        ),
        (
            [{"ue": "ue0", "target": "mec0", "share": 1.2}, {"ue": "ue1", "target": "local"}],
            "ue0: share 1.2 on mec0 is not in (0, 1]",
        ),
        (
            [{"ue": "ue0", "target": "mec0"}, {"ue": "ue1", "target": "local"}],
            "ue0: offloaded to mec0 without a share",
        ),
        # constraint 4: deadlines (1e9/(0.05*1e10) = 2 s, + 0.2 s upload > 1.5 s)
        (
            [{"ue": "ue0", "target": "mec0", "share": 0.05}, {"ue": "ue1", "target": "local"}],
            "ue0: latency 2.2 s misses the deadline 1.5 s",
        ),
        (
            [{"ue": "ue0", "target": "local"}, {"ue": "ue1", "target": "mec1", "share": 1.0}],
            "ue1: cannot reach mec1 (rate 0)",
        ),
    ],
)
def test_scorer_reports_each_violation(assignments: list[dict], expected: str) -> None:
    s = score(instance_from_dict(hand_instance()), decision(assignments))
    assert not s.feasible
    assert any(expected in v for v in s.violations), s.violations


def test_infeasible_decisions_still_get_values() -> None:
    inst = instance_from_dict(hand_instance())
    over = decision(
        [{"ue": "ue0", "target": "mec0", "share": 0.05}, {"ue": "ue1", "target": "local"}]
    )
    s = score(inst, over)
    assert not s.feasible
    assert s.mean_latency_s == pytest.approx((2.2 + 2.0) / 2)
    assert s.total_energy_j == pytest.approx(3.05)
    missing = score(inst, decision([{"ue": "ue0", "target": "local"}]))
    assert missing.objective_value is None and missing.mean_latency_s is None
    assert missing.per_ue[0].latency_s == pytest.approx(1.0)
    unreachable = score(
        inst,
        decision([{"ue": "ue0", "target": "local"}, {"ue": "ue1", "target": "mec1", "share": 1.0}]),
    )
    assert unreachable.total_energy_j is None and unreachable.per_ue[0].energy_j == pytest.approx(
        0.5
    )


def test_local_deadline_miss_and_tolerance() -> None:
    data = hand_instance()
    data["ues"][1]["deadline_s"] = 1.9  # local takes 2 s
    s = score(
        instance_from_dict(data),
        decision([{"ue": "ue0", "target": "local"}, {"ue": "ue1", "target": "local"}]),
    )
    assert s.violations == ["ue1: latency 2 s misses the deadline 1.9 s"]
    data["ues"][1]["deadline_s"] = 2.0 * (1 - 1e-12)  # within the spec's 1e-9 relative tolerance
    assert score(
        instance_from_dict(data),
        decision([{"ue": "ue0", "target": "local"}, {"ue": "ue1", "target": "local"}]),
    ).feasible


def test_zero_data_is_reachable_at_rate_zero() -> None:
    data = hand_instance()
    data["ues"][1]["data_bits"] = 0
    inst = instance_from_dict(data)
    s = score(
        inst,
        decision([{"ue": "ue0", "target": "local"}, {"ue": "ue1", "target": "mec1", "share": 1.0}]),
    )
    assert s.feasible, s.violations
    assert s.per_ue[1].latency_s == pytest.approx(1.0) and s.per_ue[1].energy_j == 0.0
    assert pair_tables(inst).pair_ok[1, 1]
