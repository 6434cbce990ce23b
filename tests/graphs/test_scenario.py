"""The scenario engine without the command line, as the API server calls it: a scenario parsed
from text (JSON is YAML, so a request body works too) and run on an open App returns the report
object; field errors carry the line of the field even in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edgeai.config import Settings
from edgeai.graphs.app import App
from edgeai.graphs.scenario import (
    ScenarioError,
    ScenarioReport,
    parse_scenario,
    prepare_home,
    render_markdown,
    run_scenario,
    write_report,
)

SCENARIO = {
    "name": "from json",
    "pools": ["healthcare"],
    "today": "2026-11-23",
    "requests": [
        {"request": "What's my heart rate right now?", "thread": "t",
         "expect": ["heartbeat-acoustic"]},
        {"request": "and what about yesterday?", "thread": "t", "expect": ["heartbeat-acoustic"]},
        {"request": "What's my blood pressure?", "expect": "unsupported"},
    ],
}


def test_run_scenario_on_an_app_returns_the_report(fresh_home: Path, tmp_path: Path) -> None:
    scenario = parse_scenario(json.dumps(SCENARIO, indent=2), "body.json")
    prepare_home(scenario, fresh_home)
    report = run_scenario(scenario, App.open(Settings(home=fresh_home)))
    assert isinstance(report, ScenarioReport)
    assert report.passed and report.checks == 3 and report.name == "from json"
    first, followup, refused = report.turns
    assert followup.followup and followup.thread == first.thread and followup.day == "2026-11-22"
    assert refused.check.kind == "unsupported" and refused.check.chosen == []
    assert refused.unsupported  # the planner's reason is kept
    written = write_report(report, tmp_path / "out")
    assert [p.name for p in written] == ["report.json", "report.md"]
    assert ScenarioReport.model_validate_json(written[0].read_text()) == report
    assert "| 3 | What's my blood pressure? | - | unsupported | unsupported | pass |" in (
        render_markdown(report))


def test_a_field_error_in_json_names_its_line() -> None:
    bad = json.loads(json.dumps(SCENARIO))
    bad["requests"][1]["thread"] = 7
    with pytest.raises(ScenarioError) as info:
        parse_scenario(json.dumps(bad, indent=2), "body.json")
    text = json.dumps(bad, indent=2).splitlines()
    line = next(i for i, ln in enumerate(text, start=1) if '"thread": 7' in ln)
    assert (info.value.line, info.value.field) == (line, "requests[1].thread")
    assert str(info.value).startswith(f"body.json:{line}: field 'requests[1].thread': ")
