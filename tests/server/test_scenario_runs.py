"""`POST /scenarios/runs` on the real server: a scenario posted as text runs in the background in
a fresh home under the server's, its status is polled until done, its report (the checks of
`run_scenario`) is read back, also by a newly made run manager (as after a restart); the server's
own store is left as it was. Bad fields are 422 naming the field and line, paths in `pools:` are
refused, unknown runs are 404."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from edgeai.config import Settings
from edgeai.graphs.api.runs import NotFound
from edgeai.graphs.api.scenarios import ScenarioRuns

# one request that passes, one whose expectation is wrong: both kinds of check, two turns
SCENARIO = """\
name: api check
pools: [healthcare]
today: 2026-11-23
report: out/not-here
requests:
  - request: What's my heart rate right now?
    expect: [heartbeat-acoustic]
  - request: What's my blood pressure?
    expect: [heartbeat-acoustic]
"""


@pytest.fixture
def http(api_url: str, api_token: str):
    with httpx.Client(base_url=api_url, timeout=120,
                      headers={"Authorization": f"Bearer {api_token}"}) as c:
        yield c


def poll(http: httpx.Client, run_id: str, timeout_s: float = 900) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        r = http.get(f"/scenarios/runs/{run_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] not in ("pending", "running"):
            return r.json()
        assert time.monotonic() < deadline, "the scenario never finished"
        time.sleep(0.5)


def test_a_posted_scenario_runs_in_a_home_of_its_own_and_reports(
    http: httpx.Client, api_home: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the scenario's `report: out/not-here` must not appear here
    devices = http.get("/devices").json()
    r = http.post("/scenarios/runs", json={"scenario": SCENARIO})
    assert r.status_code == 202, r.text
    queued = r.json()
    run_id = queued["run_id"]
    assert queued["status"] in ("pending", "running") and queued["name"] == "api check"
    assert queued["checks"] == 2 and r.headers["content-location"] == f"/scenarios/runs/{run_id}"
    assert queued["notes"] and queued["notes"][0].startswith("report: ignored")

    done = poll(http, run_id)
    assert done["status"] == "success", done
    assert (done["passed"], done["checks"], done["failed"]) == (False, 2, 1)
    report = done["report"]
    heart, pressure = (t["check"] for t in report["turns"])
    assert heart == {"kind": "models", "passed": True, "expected": ["heartbeat-acoustic"],
                     "chosen": ["heartbeat-acoustic"], "detail": ""}
    assert not pressure["passed"] and pressure["chosen"] == []
    assert pressure["detail"].startswith("refused as unsupported")
    assert report["today"] == "2026-11-23" and report["home"] == done["home"]

    # files: the report and status under runs/scenarios/<id>, the run's own home under scenarios/
    folder = api_home / "runs" / "scenarios" / run_id
    assert sorted(p.name for p in folder.iterdir()) == ["report.json", "report.md", "status.json"]
    assert json.loads((folder / "report.json").read_text())["turns"][0]["check"] == heart
    assert "| 1 | What's my heart rate right now? |" in (folder / "report.md").read_text()
    assert done["home"] == f"scenarios/api-check-{run_id}"
    assert (api_home / done["home"] / "store").is_dir()
    assert not (tmp_path / "out").exists()
    assert str(api_home) not in json.dumps(done)  # no absolute path of the server goes out

    listed = http.get("/scenarios/runs").json()
    assert {k: listed[0][k] for k in ("run_id", "name", "status", "passed", "checks", "failed")} \
        == {"run_id": run_id, "name": "api check", "status": "success", "passed": False,
            "checks": 2, "failed": 1}
    joined = http.get(f"/scenarios/runs/{run_id}/join", params={"timeout": 1})
    assert joined.status_code == 200 and joined.json() == done
    # read from disk: a run manager made afresh (a restarted server's) answers the same
    assert ScenarioRuns(Settings(home=api_home)).get(run_id) == done
    # the server's own store is untouched: the scenario's manuals went to its own home
    assert http.get("/devices").json() == devices


@pytest.mark.parametrize(("scenario", "where", "field"), [
    (SCENARIO.replace("expect: [heartbeat-acoustic]\n  - request: What's my blood",
                      "expect: maybe\n  - request: What's my blood"),
     "scenario:7:", "requests[0].expect"),
    (SCENARIO.replace("[healthcare]", "[healthcare, ../../etc]"), "scenario:2:", "pools[1]"),
    ({"pools": ["healthcare"], "requests": [{"request": "What's my blood pressure?",
                                             "expect": "unsupported", "threads": "x"}]},
     "scenario:9:", "requests[0].threads"),  # an object: the line of its indented JSON
])
def test_a_bad_scenario_is_422_naming_the_field_and_line(
    http: httpx.Client, scenario, where: str, field: str
) -> None:
    before = http.get("/scenarios/runs").json()
    r = http.post("/scenarios/runs", json={"scenario": scenario})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith(f"{where} field '{field}': ") and "\n" not in detail
    assert http.get("/scenarios/runs").json() == before  # nothing queued, nothing written


def test_a_path_in_pools_is_refused_and_not_repeated(http: httpx.Client, samples: Path) -> None:
    """A folder that exists and holds manuals is still refused: over the network, names only."""
    text = SCENARIO.replace("[healthcare]", json.dumps([str(samples / "healthcare")]))
    r = http.post("/scenarios/runs", json={"scenario": text})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "field 'pools[0]': must name a shipped pool (" in detail and "path" in detail
    assert str(samples) not in detail


def test_unknown_scenario_runs_are_404(http: httpx.Client, api_home: Path) -> None:
    for run_id in ("0123456789ab", "0123456789AB", "not-a-run"):
        r = http.get(f"/scenarios/runs/{run_id}")
        assert r.status_code == 404 and "unknown scenario run" in r.json()["detail"]
    assert http.get("/scenarios/runs/0123456789ab/join").status_code == 404
    with pytest.raises(NotFound):
        ScenarioRuns(Settings(home=api_home)).get("0123456789ab")


def test_scenario_routes_need_the_token(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=60) as c:
        assert c.post("/scenarios/runs", json={"scenario": SCENARIO}).status_code == 401
        assert c.get("/scenarios/runs").status_code == 401


def test_wait_returns_202_at_its_timeout_and_join_the_report(http: httpx.Client) -> None:
    one = {"name": "wait", "pools": ["healthcare"], "today": "2026-11-23",
           "requests": [{"request": "What's my heart rate right now?",
                         "expect": ["heartbeat-acoustic"]}]}
    early = http.post("/scenarios/runs/wait", params={"timeout": 0.01}, json={"scenario": one})
    assert early.status_code == 202 and early.json()["status"] in ("pending", "running")
    run_id = early.json()["run_id"]
    done = http.get(f"/scenarios/runs/{run_id}/join", params={"timeout": 900})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "success" and done.json()["report"]["passed"]
    assert http.post("/scenarios/runs/wait", params={"timeout": 0},
                     json={"scenario": one}).status_code == 422  # a timeout must be > 0


def test_a_run_whose_server_stopped_reads_as_an_error(tmp_path: Path) -> None:
    """status.json says running, but the process that ran it is gone (killed server)."""
    import os
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    home = tmp_path / "home"
    folder = home / "runs" / "scenarios" / "00000000000a"
    folder.mkdir(parents=True)
    from edgeai.graphs.api.records import HOST

    status = {"run_id": "00000000000a", "name": "x", "status": "running", "created_at": "t",
              "updated_at": "t", "home": "scenarios/x-00000000000a", "checks": 1,
              "passed": None, "failed": None, "error": None, "notes": [],
              "pid": gone.pid, "host": HOST}
    (folder / "status.json").write_text(json.dumps(status), encoding="utf-8")
    view = ScenarioRuns(Settings(home=home)).get("00000000000a")
    assert view["status"] == "error" and "server stopped" in view["error"]
    assert "pid" not in view and "host" not in view
    status["pid"] = os.getpid()  # a live process: still running
    (folder / "status.json").write_text(json.dumps(status), encoding="utf-8")
    assert ScenarioRuns(Settings(home=home)).list()[0]["status"] == "running"
