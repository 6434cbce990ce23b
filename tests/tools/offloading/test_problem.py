"""Instance/decision files: validation names the field, round trips keep extras, numpy view."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from edgeai.errors import EdgeAIError
from edgeai.tools.offloading import (
    Decision,
    InstanceError,
    decision_from_dict,
    instance_from_dict,
    load_decision,
    load_instance,
    write_decision,
    write_instance,
)


def spec_instance(n: int = 4, m: int = 4) -> dict:
    """A valid instance dict shaped as in specs/offloading.md."""
    return {
        "objective": "min_latency",
        "servers": [{"id": f"mec{j}", "capacity_hz": 1.5e10} for j in range(m)],
        "ues": [
            {
                "id": f"ue{i}",
                "data_bits": 2.0e6,
                "cycles": 1.0e9,
                "local_hz": 1.0e9,
                "tx_power_w": 1.0,
                "local_power_w": 1.0,
                "deadline_s": 1.5,
            }
            for i in range(n)
        ],
        "rate_bps": [[1.7e7] * m for _ in range(n)],
    }


def test_spec_example_parses_and_arrays_match() -> None:
    data = spec_instance(n=2, m=3)
    data["rate_bps"][1][2] = 5e6
    inst = instance_from_dict(data)
    a = inst.arrays
    assert (inst.n, inst.m) == (2, 3) and (a.n, a.m) == (2, 3)
    np.testing.assert_array_equal(a.d, [2e6, 2e6])
    np.testing.assert_array_equal(a.F, [1.5e10] * 3)
    assert a.R.shape == (2, 3) and a.R[1, 2] == 5e6
    with pytest.raises(ValueError):
        a.R[0, 0] = 1.0  # read-only view: fast code cannot corrupt the instance


def test_extra_keys_are_kept_through_a_round_trip(tmp_path) -> None:
    data = spec_instance(n=2, m=1)
    data["seed"] = 7
    data["servers"][0]["x_m"] = 3.5
    data["ues"][1]["note"] = "camera"
    path = write_instance(instance_from_dict(data), tmp_path / "sub" / "i.json")
    again = json.loads(path.read_text())
    assert again == data
    assert load_instance(path) == instance_from_dict(data)


def test_objective_override_and_missing_objective() -> None:
    data = spec_instance()
    assert instance_from_dict(data, "min_energy").objective == "min_energy"
    del data["objective"]
    with pytest.raises(InstanceError, match="field 'objective': missing required key"):
        instance_from_dict(data)
    assert instance_from_dict(data, "min_energy").objective == "min_energy"
    with pytest.raises(InstanceError, match="unknown objective 'fastest'"):
        instance_from_dict(data, "fastest")


def _mutated(path: list, value) -> dict:
    data = copy.deepcopy(spec_instance())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["ues", 2, "cycles"], KeyError, "field 'ues[2].cycles': missing required key"),
        (
            ["servers", 1, "capacity_hz"],
            0,
            "field 'servers[1].capacity_hz': Input should be greater than 0",
        ),
        (["servers", 0, "capacity_hz"], -1e9, "field 'servers[0].capacity_hz'"),
        (
            ["ues", 0, "deadline_s"],
            float("nan"),
            "field 'ues[0].deadline_s': Input should be a finite number",
        ),
        (
            ["rate_bps", 1, 0],
            float("inf"),
            "field 'rate_bps[1][0]': Input should be a finite number",
        ),
        (["rate_bps", 1, 0], -5.0, "field 'rate_bps[1][0]'"),
        (
            ["rate_bps", 3],
            [1e7, 1e7],
            "field 'rate_bps': row 3 has 2 entries, expected 4 (one per server)",
        ),
        (["rate_bps"], [[1e7] * 4] * 3, "field 'rate_bps': has 3 rows, expected 4"),
        (["objective"], "fastest", "field 'objective': unknown objective 'fastest'"),
        (["servers", 2, "id"], "local", "field 'servers[2].id': 'local' is reserved"),
        (["servers", 2, "id"], "mec0", "field 'servers[2].id': duplicate id 'mec0'"),
        (["ues", 3, "id"], "ue1", "field 'ues[3].id': duplicate id 'ue1'"),
        (
            ["ues", 0, "data_bits"],
            "2e6",
            "field 'ues[0].data_bits': Input should be a valid number",
        ),
        (["ues", 0, "cycles"], True, "field 'ues[0].cycles'"),
        (["ues"], [], "field 'ues'"),
    ],
)
def test_malformed_instance_names_the_field(path: list, value, expected: str) -> None:
    with pytest.raises(InstanceError) as info:
        instance_from_dict(_mutated(path, value))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert isinstance(info.value, EdgeAIError)


def test_file_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(InstanceError, match="no such file"):
        load_instance(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(InstanceError, match=r"bad\.json: not valid JSON"):
        load_instance(bad)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(InstanceError, match="must be a JSON object"):
        load_instance(listed)
    # NaN is accepted by Python's json module but is no number for us.
    nan = tmp_path / "nan.json"
    data = spec_instance()
    data["servers"][0]["capacity_hz"] = float("nan")
    nan.write_text(json.dumps(data))  # writes the bare token NaN
    assert "NaN" in nan.read_text()
    with pytest.raises(InstanceError, match=r"nan\.json: field 'servers\[0\]\.capacity_hz'"):
        load_instance(nan)


def test_decision_round_trip_drops_local_shares(tmp_path) -> None:
    data = {
        "objective": "min_latency",
        "solver": "aed",
        "assignments": [
            {"ue": "ue0", "target": "mec0", "share": 0.42},
            {"ue": "ue1", "target": "local"},
        ],
        "solve_seconds": 0.0031,
        "model": "aed-small",
    }
    decision = decision_from_dict(data)
    assert decision.assignments[1].is_local and decision.assignments[1].share is None
    path = write_decision(decision, tmp_path / "d.json")
    assert json.loads(path.read_text()) == data
    assert load_decision(path) == decision


def test_malformed_decision_names_the_field() -> None:
    base = {
        "objective": "min_energy",
        "solver": "x",
        "solve_seconds": 0.1,
        "assignments": [{"ue": "ue0", "target": "mec0", "share": 0.5}],
    }
    with pytest.raises(InstanceError, match=r"field 'assignments\[0\]\.target': missing"):
        decision_from_dict({**base, "assignments": [{"ue": "ue0"}]})
    with pytest.raises(InstanceError, match="field 'solve_seconds'"):
        decision_from_dict({**base, "solve_seconds": -1})
    with pytest.raises(
        InstanceError, match=r"field 'assignments\[0\]\.share': Input should be a finite"
    ):
        decision_from_dict(
            {**base, "assignments": [{"ue": "ue0", "target": "mec0", "share": float("nan")}]}
        )
    # Out-of-range shares parse: constraint 3 is the scorer's to report.
    assert isinstance(
        decision_from_dict(
            {**base, "assignments": [{"ue": "ue0", "target": "mec0", "share": 1.7}]}
        ),
        Decision,
    )
