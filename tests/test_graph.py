"""The whole graph on real parts: chromadb store on disk, SQLite checkpointer, real model runs."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from edgeai.agents.model_selector import PlanValidationError, select_models
from edgeai.agents.offloading import build_instance, place_work
from edgeai.agents.planning import EmbeddedPlanner
from edgeai.config import Settings
from edgeai.graphs.graph import build_graph, route_after_plan
from edgeai.knowledge.store import open_store
from edgeai.schemas import Plan, Subtask
from edgeai.tools.offloading import score

TODAY = dt.date(2026, 11, 23)
VITALS_PLAN = Plan(
    request="mood from my vitals",
    subtasks=[
        Subtask(id=1, model="heartbeat-acoustic", device="living-room-speaker", goal="heart rate"),
        Subtask(id=2, model="respiration-acoustic", device="living-room-speaker", goal="breathing"),
        Subtask(id=3, model="mood-from-vitals", device="edge-server", goal="mood", deps=[1, 2]),
    ],
)


@pytest.fixture(scope="module")
def session(healthcare_home: Path, tmp_path_factory: pytest.TempPathFactory):
    from edgeai.cli.ask import Session

    home = tmp_path_factory.mktemp("graph-home")
    import shutil

    shutil.copytree(healthcare_home, home, dirs_exist_ok=True)
    return Session(Settings(home=home))


def test_selector_and_offloading_without_langgraph(healthcare_home: Path) -> None:
    store = open_store(healthcare_home)
    selection = select_models(VITALS_PLAN, store)
    assert [s.model for s in selection] == [
        "heartbeat-acoustic",
        "respiration-acoustic",
        "mood-from-vitals",
    ]
    assert selection[0].compute_hz == pytest.approx(1.2e9) and selection[2].tier == "edge"
    instance = build_instance(selection, store, "min_latency")
    assert [u.model for u in instance.ues] == ["heartbeat-acoustic", "respiration-acoustic"]
    assert [s.id for s in instance.servers] == ["edge-server"]
    placements, record = place_work(selection, store, "min_latency", "exact")
    assert record["score"]["feasible"] is True
    assert placements[2].mode == "hosted" and placements[2].runs_on == "edge-server"
    for p in placements[:2]:  # the solver's choice is never worse than keeping the work local
        assert p.latency_s <= p.local_latency_s + 1e-9
    from edgeai.tools.offloading import decision_from_dict

    assert score(instance, decision_from_dict(record["decision"])).feasible


def test_selector_refuses_unknown_ids(healthcare_home: Path) -> None:
    store = open_store(healthcare_home)
    bad = Plan(
        request="x", subtasks=[Subtask(id=1, model="made-up", device="edge-server", goal="g")]
    )
    with pytest.raises(PlanValidationError, match="made-up"):
        select_models(bad, store)
    wrong_device = Plan(
        request="x",
        subtasks=[Subtask(id=1, model="mood-from-apps", device="living-room-speaker", goal="g")],
    )
    with pytest.raises(PlanValidationError, match="hosted by 'edge-server'"):
        select_models(wrong_device, store)


def test_router_raises_on_unexpected_state() -> None:
    with pytest.raises(ValueError):
        route_after_plan({})


class FixedPlanner:
    """A planner that returns a given plan: isolates the graph from the planner's accuracy."""

    name = "fixed"

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def plan(self, request: str) -> Plan:
        return self._plan.model_copy(update={"request": request})


def test_graph_runs_a_chain_and_checkpoints_it(healthcare_home: Path, tmp_path: Path) -> None:
    from edgeai.graphs.graph import sqlite_checkpointer
    from edgeai.graphs.state import EdgeContext

    db = tmp_path / "checkpoints.sqlite"
    graph = build_graph(sqlite_checkpointer(db))
    ctx = EdgeContext(
        store=open_store(healthcare_home), planner=FixedPlanner(VITALS_PLAN), today=TODAY
    )
    config = {"configurable": {"thread_id": "t1"}}
    state = graph.invoke({"request": "how do I feel judging by my body?"}, config, context=ctx)
    results = {r["model"]: r for r in state["results"]}
    assert all(r["status"] == "ok" for r in results.values())
    hr = results["heartbeat-acoustic"]["outputs"]["heart_rate_bpm"]
    assert 30 < hr < 220
    assert results["mood-from-vitals"]["outputs"]["mood"] in {
        "positive",
        "neutral",
        "negative",
        "anxious",
    }
    assert "mood-from-vitals" in state["answer"] and "edge-server" in state["answer"]
    assert [s["node"] for s in state["trace"]] == [
        "plan_request",
        "choose_models",
        "place_work",
        "run_models",
        "respond",
    ]
    # the checkpoint is in the SQLite file, readable by a fresh connection
    rows = (
        sqlite3.connect(db)
        .execute("select count(*) from checkpoints where thread_id='t1'")
        .fetchone()[0]
    )
    assert rows >= 5


def test_unsupported_plan_branches_to_report_missing(healthcare_home: Path, tmp_path: Path) -> None:
    from edgeai.graphs.graph import sqlite_checkpointer
    from edgeai.graphs.state import EdgeContext

    graph = build_graph(sqlite_checkpointer(tmp_path / "c.sqlite"))
    empty = Plan(request="", unsupported=["no registered model serves this request"])
    ctx = EdgeContext(store=open_store(healthcare_home), planner=FixedPlanner(empty), today=TODAY)
    state = graph.invoke(
        {"request": "turn on the lights"}, {"configurable": {"thread_id": "u"}}, context=ctx
    )
    assert [s["node"] for s in state["trace"]] == ["plan_request", "report_missing"]
    assert "No model" in state["answer"] and "not built yet" in state["answer"]


def test_ask_and_follow_up_on_the_same_thread(session) -> None:
    first = session.ask("What's my heart rate right now?", None, today=TODAY)
    assert [r["model"] for r in first["results"]] == ["heartbeat-acoustic"]
    assert first["day"] == "2026-11-23"
    follow = session.ask("and what about yesterday?", first["thread"], today=TODAY)
    assert follow["effective_request"] == "What's my heart rate right now?"
    assert follow["day"] == "2026-11-22"
    assert [r["model"] for r in follow["results"]] == ["heartbeat-acoustic"]
    # a different day is a different simulated recording, so a different measurement
    assert follow["results"][0]["details"] != first["results"][0]["details"]
    assert (
        session.graph.get_state({"configurable": {"thread_id": first["thread"]}}).values["history"][
            0
        ]["day"]
        == "2026-11-23"
    )


def test_embedded_planner_plan_is_grounded_in_the_store(healthcare_home: Path) -> None:
    store = open_store(healthcare_home)
    plan = EmbeddedPlanner(store).plan("Which apps have I been using this evening?")
    owners = store.owner_of()
    assert plan.subtasks, plan
    assert all(owners[s.model] == s.device for s in plan.subtasks)
