"""`edgeai offload generate|solve|score` and the `solve_offloading` LangChain tool, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from edgeai.cli import main
from edgeai.tools.offloading import InstanceError, load_decision, load_instance, score
from edgeai.tools.offloading.tool import solve_offloading

EDGEAI = Path(sys.executable).parent / "edgeai"


def test_generate_solve_score_round_trip(tmp_path, capsys) -> None:
    out = tmp_path / "inst"
    assert (
        main(
            [
                "offload",
                "generate",
                "--n",
                "8",
                "--m",
                "4",
                "--seed",
                "2",
                "--steps",
                "3",
                "--scenario",
                "lambo-50-tight",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    files = sorted(out.glob("*.json"))
    assert [f.name for f in files] == [
        "instance_0000.json",
        "instance_0001.json",
        "instance_0002.json",
    ]
    assert capsys.readouterr().out.split() == [str(f) for f in files]
    inst = load_instance(files[1])
    assert (inst.n, inst.m, inst.step, inst.scenario) == (8, 4, 1, "lambo-50-tight")

    decision_path = tmp_path / "d.json"
    assert (
        main(
            [
                "offload",
                "solve",
                str(files[1]),
                "--solver",
                "exact",
                "--objective",
                "min_energy",
                "--out",
                str(decision_path),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("exact: feasible; min_energy = ")
    decision = load_decision(decision_path)
    assert decision.solver == "exact" and decision.objective == "min_energy"

    assert main(["offload", "score", str(files[1]), str(decision_path)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("feasible; min_energy = ")
    assert f"{score(inst, decision).objective_value:.6g} J" in line


def test_solve_prints_decision_json_without_out(tmp_path, capsys) -> None:
    main(["offload", "generate", "--n", "5", "--m", "2", "--out", str(tmp_path)])
    capsys.readouterr()
    assert (
        main(["offload", "solve", str(tmp_path / "instance_0000.json"), "--solver", "greedy"]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["solver"] == "greedy" and len(printed["assignments"]) == 5


def test_score_reports_infeasible_decision_with_exit_1(tmp_path, capsys) -> None:
    main(["offload", "generate", "--n", "3", "--m", "1", "--out", str(tmp_path)])
    bad = {
        "objective": "min_latency",
        "solver": "hand",
        "solve_seconds": 0.0,
        "assignments": [
            {"ue": "ue0", "target": "mec0", "share": 0.7},
            {"ue": "ue1", "target": "mec0", "share": 0.7},
            {"ue": "ue2", "target": "local"},
        ],
    }
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    capsys.readouterr()
    assert (
        main(
            [
                "offload",
                "score",
                str(tmp_path / "instance_0000.json"),
                str(tmp_path / "bad.json"),
                "--json",
            ]
        )
        == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert not report["feasible"] and "server mec0: shares sum to 1.4 > 1" in report["violations"]


def _malformed(tmp_path: Path) -> Path:
    main(["offload", "generate", "--n", "5", "--m", "4", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "instance_0000.json").read_text())
    data["rate_bps"][3] = data["rate_bps"][3][:2]
    path = tmp_path / "malformed.json"
    path.write_text(json.dumps(data))
    return path


def test_malformed_instance_is_one_line_exit_2(tmp_path, capsys) -> None:
    path = _malformed(tmp_path)
    capsys.readouterr()
    assert main(["offload", "solve", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("edgeai: error: ")
    assert "field 'rate_bps': row 3 has 2 entries, expected 4 (one per server)" in err
    assert (
        main(
            [
                "offload",
                "solve",
                str(tmp_path / "instance_0000.json"),
                "--solver",
                "exact",
                "--objective",
                "min_energy",
            ]
        )
        == 0
    )  # 5 UEs: fine
    capsys.readouterr()


def test_console_script_malformed_instance(tmp_path) -> None:
    path = _malformed(tmp_path)
    proc = subprocess.run(
        [str(EDGEAI), "offload", "solve", str(path), "--solver", "greedy"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"edgeai: error: {path}: field 'rate_bps': row 3 has 2 entries, expected 4 (one per server)"
    ]


def test_too_large_for_exact_is_a_user_error(tmp_path, capsys) -> None:
    main(["offload", "generate", "--n", "20", "--m", "2", "--out", str(tmp_path)])
    capsys.readouterr()
    assert (
        main(["offload", "solve", str(tmp_path / "instance_0000.json"), "--solver", "exact"]) == 2
    )
    assert "solver 'exact' handles at most 12 UEs; this instance has 20" in capsys.readouterr().err


def test_langchain_tool_solves_and_scores(tmp_path) -> None:
    main(["offload", "generate", "--n", "6", "--m", "2", "--seed", "4", "--out", str(tmp_path)])
    instance = json.loads((tmp_path / "instance_0000.json").read_text())
    out = solve_offloading.invoke(
        {"instance": instance, "objective": "min_energy", "solver": "exact"}
    )
    assert out["decision"]["solver"] == "exact" and out["decision"]["objective"] == "min_energy"
    assert out["score"]["feasible"]
    local = solve_offloading.invoke(
        {"instance": instance, "objective": "min_energy", "solver": "local"}
    )
    assert out["score"]["objective_value"] < local["score"]["objective_value"]
    assert solve_offloading.name == "solve_offloading"
    assert set(solve_offloading.args) == {"instance", "objective", "solver", "seed"}
    del instance["ues"][0]["cycles"]
    with pytest.raises(InstanceError, match=r"field 'ues\[0\]\.cycles': missing required key"):
        solve_offloading.invoke({"instance": instance, "solver": "greedy"})


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["ues"][0].pop("cycles"), "ues[0].cycles"),
        (lambda d: d["rate_bps"][1].pop(), "rate_bps"),
        (lambda d: d["servers"][0].__setitem__("capacity_hz", -1.0), "servers[0].capacity_hz"),
        (lambda d: d["ues"][2].__setitem__("data_bits", float("nan")), "ues[2].data_bits"),
        (lambda d: d.__setitem__("objective", "min_cost"), "objective"),
    ],
    ids=["missing-key", "matrix-shape", "negative-capacity", "nan", "unknown-objective"],
)
def test_each_malformation_is_one_line_naming_the_field(tmp_path, capsys, mutate, field) -> None:
    main(["offload", "generate", "--n", "4", "--m", "2", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "instance_0000.json").read_text())
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))  # NaN is written as the bare token NaN, as many tools do
    capsys.readouterr()
    assert main(["offload", "solve", str(path), "--solver", "greedy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"field '{field}'" in err, err
