"""Scripted runs at the command line: `edgeai run SCENARIO.yaml` (the shipped scenarios pass and
agree with `edgeai ask`; a wrong expectation fails with exit 1; a bad file is one line naming
file, line and field, exit 2, nothing written) and `edgeai plan --requests FILE.jsonl`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import edgeai
import pytest
from edgeai.cli import main

EXAMPLES = Path(edgeai.__file__).resolve().parent / "examples" / "scenarios"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def ask_models(capsys, home: Path, request: str, *thread: str) -> tuple[list[str], str]:
    """What `edgeai ask --json` chose for `request` (on `thread`, if given) and its thread."""
    code, out, _ = run(capsys, "ask", request, "--json", "--today", "2026-11-23", "--home",
                       str(home), *(("--thread", thread[0]) if thread else ()))
    assert code == 0
    answer = json.loads(out)
    return [s["model"] for s in answer["plan"]["subtasks"]], answer["thread"]


@pytest.mark.parametrize(("scenario", "pool_home"), [("healthcare-home.yaml", "healthcare_home"),
                                                     ("photo-pool.yaml", "photo_home")])
def test_shipped_scenario_passes_and_agrees_with_ask(
    capsys, request: pytest.FixtureRequest, tmp_path: Path, scenario: str, pool_home: str
) -> None:
    home = tmp_path / "home"
    shutil.copytree(request.getfixturevalue(pool_home), home)
    code, out, err = run(capsys, "run", str(EXAMPLES / scenario), "--home", str(home),
                         "--report", str(tmp_path / "report"))
    assert code == 0, out + err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert report["passed"] and report["failed"] == 0 and report["checks"] >= 7
    assert all(t["check"]["passed"] and t["trace"] and t["answer"] for t in report["turns"])
    assert out.count("PASS") == report["checks"] and "FAIL" not in out + markdown
    assert "unsupported" in [t["check"]["expected"] for t in report["turns"]]
    # the follow-up continued its thread: same thread id, re-planned for the day before
    first, followup = report["turns"][0], report["turns"][1]
    assert followup["followup"] and followup["thread"] == first["thread"]
    assert (followup["effective_request"], followup["day"]) == (first["request"], "2026-11-22")
    # `edgeai ask` on the same home chooses what the run chose, follow-up included
    chosen, thread = ask_models(capsys, home, first["request"])
    assert chosen == first["check"]["chosen"]
    chosen, _ = ask_models(capsys, home, followup["request"], thread)
    assert chosen == followup["check"]["chosen"]


WRONG = """\
pools: [healthcare]
today: 2026-11-23
requests:
  - request: What's my heart rate right now?
    expect: [heartbeat-acoustic]
  - request: What's my heart rate right now?
    expect: [respiration-acoustic]
  - request: Turn on the living room lights.
    expect: [heartbeat-acoustic]
  - request: Check my breathing rate.
    expect: unsupported
"""


def test_a_wrong_expectation_fails_its_check(capsys, fresh_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(WRONG)
    code, out, _ = run(capsys, "run", str(path), "--home", str(fresh_home),
                       "--report", str(tmp_path / "report"))
    assert code == 1
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [t["check"]["passed"] for t in report["turns"]] == [True, False, False, False]
    assert not report["passed"] and report["failed"] == 3
    details = [t["check"]["detail"] for t in report["turns"]]
    assert "missing respiration-acoustic" in details[1] and "extra heartbeat-acoustic" in details[1]
    assert details[2].startswith("refused as unsupported")
    assert details[3] == "answered with respiration-acoustic"
    assert out.count("FAIL") == 3 and "1/4 checks passed" in out
    assert "3 of 4 checks failed" in (tmp_path / "report" / "report.md").read_text()


GOOD_STEP = "  - request: What's my heart rate?\n    expect: [heartbeat-acoustic]\n"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("pools: [healthcare]\nrequests:\n" + GOOD_STEP + "    colour: blue\n",
         (":5:", "requests[0].colour", "Extra inputs")),
        ("pools: [healthcare]\nseed: many\nrequests:\n" + GOOD_STEP, (":2:", "'seed'", "integer")),
        ("pools: [healthcare]\ntoday: 2026-11-23\n", (":1:", "'requests'", "missing")),
        ("pools: [healthcare]\nrequests: []\n", (":2:", "'requests'", "at least 1")),
        ("pools: [healthcare]\nrequests:\n  - request: [unclosed\n", (":4:", "not valid YAML")),
        ("pools: [healthcare]\nrequests:\n  - request: hi\n    expect: 3\n",
         (":4:", "requests[0].expect", "list of model ids")),
        ("pools: [healthcare]\nrequests:\n" + GOOD_STEP + "  - request: hi\n"
         "    expect: [heartbeat-acustic]\n", (":6:", "requests[1].expect", "heartbeat-acustic")),
        ("pools: [healthcare, nowhere]\nrequests:\n" + GOOD_STEP, (":1:", "pools[1]", "nowhere")),
        ("pools: [healthcare]\nrequests:\n" + GOOD_STEP + "requests: []\n",
         (":5:", "'requests'", "appears twice")),
        ("- just\n- a list\n", (":1:", "mapping")),
    ],
    ids=["unknown-field", "wrong-type", "missing-requests", "no-requests", "invalid-yaml",
         "bad-expect", "unknown-model", "unknown-pool", "duplicate-key", "not-a-mapping"],
)
def test_a_bad_scenario_is_one_line_naming_file_line_and_field(
    capsys, tmp_path: Path, text: str, needles: tuple[str, ...]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    home, report = tmp_path / "home", tmp_path / "report"
    code, out, err = run(capsys, "run", str(path), "--home", str(home), "--report", str(report))
    one_line_error(code, err, "bad.yaml", *needles)
    assert out == "" and not home.exists() and not report.exists()


def test_a_missing_scenario_file_is_refused(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "run", str(tmp_path / "none.yaml"), "--home", str(tmp_path / "h"))
    one_line_error(code, err, "none.yaml", "no such file")


def test_plan_requests_prints_one_json_plan_per_line(
    capsys, healthcare_home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "requests.jsonl"
    lines = [
        json.dumps({"request": "What's my heart rate right now?"}),
        "",
        json.dumps("Turn on the living room lights."),
        json.dumps({"request": "Check my pulse and respiration.", "kind": "multi"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    code, out, _ = run(capsys, "plan", "--requests", str(path), "--home", str(healthcare_home))
    assert code == 0
    plans = [json.loads(line) for line in out.splitlines()]
    assert [p["request"] for p in plans] == [
        "What's my heart rate right now?",
        "Turn on the living room lights.",
        "Check my pulse and respiration.",
    ]
    assert [sorted(s["model"] for s in p["subtasks"]) for p in plans] == [
        ["heartbeat-acoustic"], [], ["heartbeat-acoustic", "respiration-acoustic"]]
    # the same plan as `edgeai plan --json` for one request
    code, single, _ = run(capsys, "plan", plans[2]["request"], "--json", "--home",
                          str(healthcare_home))
    assert [s["model"] for s in json.loads(single)["subtasks"]] == [
        s["model"] for s in plans[2]["subtasks"]]


@pytest.mark.parametrize(
    ("bad", "needle"),
    [("not json", "not valid JSON"), ('{"req": "x"}', 'expected {"request"'),
     ("42", 'expected {"request"'), ('{"request": "  "}', "request is empty")],
)
def test_plan_requests_refuses_a_bad_line(
    capsys, healthcare_home: Path, tmp_path: Path, bad: str, needle: str
) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(json.dumps("What's my heart rate?") + "\n" + bad + "\n")
    code, out, err = run(capsys, "plan", "--requests", str(path), "--home", str(healthcare_home))
    one_line_error(code, err, f"{path}:2:", needle)
    assert out == ""


def test_plan_takes_a_request_or_a_file_not_both(
    capsys, healthcare_home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text('"hi"\n')
    code, _, err = run(capsys, "plan", "hi", "--requests", str(path), "--home",
                       str(healthcare_home))
    one_line_error(code, err, "not both")
