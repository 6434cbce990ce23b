"""Plan evaluation (agents/plan_eval.py) and `edgeai bench plan` end to end: the Table I figures,
the outcome class of every request and why a whole request was refused, as a table, CSV and PNG,
on a small pool built from the shipped healthcare manuals and the real store."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from edgeai.agents.planning.embedded import REFUSAL_CAUSES, refusal_cause
from edgeai.agents.planning.evaluate import OUTCOMES, REFUSED_COLUMNS, outcome
from edgeai.cli import main
from edgeai.knowledge.pools import SAMPLES_DIR as SAMPLES


def test_outcome_classes() -> None:
    hr, rr = "heartbeat-acoustic", "respiration-acoustic"
    assert outcome({hr}, {hr}) == "right"
    assert outcome(set(), set()) == "right"
    assert outcome(set(), {hr}) == "false refusal"
    assert outcome({hr}, set()) == "false accept"
    assert outcome({hr}, {hr, rr}) == "missing"
    assert outcome({hr, rr}, {hr}) == "extra"
    assert outcome({rr}, {hr}) == "wrong"
    assert outcome({rr, "mood-from-vitals"}, {hr, rr}) == "wrong"


def test_refusal_cause_of_other_wording() -> None:
    assert refusal_cause(["nearest model similarity 0.12 < 0.3"]) == "other"
    assert refusal_cause([]) == "other"
    assert REFUSAL_CAUSES[-1] == "other"


# request, labelled models, the outcome and refusal cause the embedded planner must give
CASES = [
    ("What is my heart rate?", ["heartbeat-acoustic"], "right", None),
    # labels chosen against the plan, so that every outcome class and cause shows up
    ("Unlock the front door.", ["visitor-detection"], "false refusal", "manual limit"),
    ("Play some jazz music.", ["heartbeat-acoustic"], "false refusal", "below gate"),
    ("What is my heart rate?", [], "false accept", None),
    ("What is my heart rate?", ["heartbeat-acoustic", "respiration-acoustic"], "missing", None),
    ("What are my heart rate and breathing rate?", ["heartbeat-acoustic"], "extra", None),
    ("What is my heart rate?", ["respiration-acoustic"], "wrong", None),
]


@pytest.fixture
def small_pool(tmp_path: Path) -> Path:
    pool = tmp_path / "small-pool"
    shutil.copytree(SAMPLES / "healthcare" / "manuals", pool / "manuals")
    lines = [
        json.dumps({"request": r, "models": m, "unsupported": not m, "kind": "single"})
        for r, m, _, _ in CASES
    ]
    (pool / "requests.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return pool


def test_bench_plan_writes_outcomes_and_refusal_causes(
    small_pool: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    home = tmp_path / "home"
    assert main(["bench", "plan", "--pool", str(small_pool), "--home", str(home)]) == 0
    out = home / "bench" / "plan"

    details = [
        json.loads(line)
        for line in (out / "small-pool-embedded-requests.jsonl").read_text().splitlines()
    ]
    assert [(d["request"], d["outcome"], d["refusal_cause"]) for d in details] == [
        (r, o, c) for r, _, o, c in CASES
    ]
    refused = details[1]
    assert refused["unsupported"] and "doorbell-camera" in refused["unsupported"][0]

    rows = {r["planner"]: r for r in csv.DictReader((out / "plan-failures.csv").open())}
    assert set(rows) == {"learned", "embedded", "tfidf-nearest"}
    for row in rows.values():  # every request in exactly one class; refusals split by cause
        assert sum(int(row[o]) for o in OUTCOMES) == int(row["n"]) == len(CASES)
        causes = sum(int(row[REFUSED_COLUMNS[c]]) for c in REFUSAL_CAUSES)
        assert causes == int(row["false refusal"])
    embedded = rows["embedded"]
    assert {o: int(embedded[o]) for o in OUTCOMES} == {
        "right": 1,
        "false refusal": 2,
        "false accept": 1,
        "missing": 1,
        "extra": 1,
        "wrong": 1,
    }
    assert int(embedded[REFUSED_COLUMNS["manual limit"]]) == 1
    assert int(embedded[REFUSED_COLUMNS["below gate"]]) == 1

    table = list(csv.DictReader((out / "plan.csv").open()))
    assert {r["planner"] for r in table} == {"learned", "embedded", "tfidf-nearest"}
    assert float(next(r for r in table if r["planner"] == "embedded")["exact_accuracy"]) == (
        pytest.approx(1 / len(CASES))
    )
    assert (out / "plan.png").stat().st_size > 10_000
    assert (out / "plan-failures.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "Where the plans go wrong" in printed and "manual limit 1, below gate 1" in printed
    # per kind of request, every planner side by side (all seven requests are 'single', English)
    kinds = list(csv.DictReader((out / "plan-kinds.csv").open()))
    emb = {r["kind"]: r for r in kinds if r["planner"] == "embedded"}
    assert set(emb) == {"single", "all"} and int(emb["single"]["n"]) == len(CASES)
    assert float(emb["all"]["exact_accuracy"]) == pytest.approx(1 / len(CASES), abs=1e-4)
    assert float(emb["all"]["low"]) < 1 / len(CASES) < float(emb["all"]["high"])
    assert {r["planner"] for r in kinds} == {"learned", "embedded", "tfidf-nearest"}


def test_bench_plan_over_a_folder_of_pools(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A folder holding pool folders (knowledge/heldout) expands to its pools, sorted, and the
    table ends with each planner's mean over them."""
    from edgeai.errors import UserInputError
    from edgeai.knowledge.pools import expand_pools

    folder = tmp_path / "pools"
    for name, requests in (
        ("b-pool", ["What is my heart rate?"]),
        ("a-pool", ["Unlock the door."]),
    ):
        (folder / name / "manuals").mkdir(parents=True)
        for manual in ("living-room-speaker.md", "doorbell-camera.md"):
            shutil.copy(SAMPLES / "healthcare" / "manuals" / manual, folder / name / "manuals")
        lines = [json.dumps({"request": r, "models": ["heartbeat-acoustic"]}) for r in requests]
        (folder / name / "requests.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "notes").mkdir()  # not a pool: skipped
    assert expand_pools([str(folder), "photo", str(folder / "a-pool")]) == [
        folder / "a-pool",
        folder / "b-pool",
        SAMPLES / "photo",
    ]
    with pytest.raises(UserInputError, match="notes"):
        expand_pools([str(folder / "notes")])

    home = tmp_path / "home"
    assert main(["bench", "plan", "--pool", str(folder), "--home", str(home)]) == 0
    table = list(csv.DictReader((home / "bench" / "plan" / "plan.csv").open()))
    assert [(r["pool"], r["planner"]) for r in table] == [
        (pool, planner)
        for pool in ("a-pool", "b-pool")
        for planner in ("learned", "embedded", "tfidf-nearest")
    ]
    embedded = [float(r["exact_accuracy"]) for r in table if r["planner"] == "embedded"]
    assert embedded == [0.0, 1.0]  # the door is not the heart-rate model; the heart rate is
    printed = capsys.readouterr().out
    mean_row = next(
        line for line in printed.splitlines() if "mean of 2" in line and "embedded" in line
    )
    assert "0.500" in mean_row
