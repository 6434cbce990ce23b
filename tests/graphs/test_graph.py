"""The whole graph on real parts: chromadb store on disk, SQLite checkpointer, real model runs.

Where only the graph's wiring is under test, the LLM planner runs over LangChain's fake chat
model handed in through the app's assembly (graphs/app.py); the real LLM keeps its own tests
(tests/test_llm_*.py).
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import shutil
import sqlite3
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from edgeai.agents.model_selector import PlanValidationError, select_models
from edgeai.agents.offloading import build_instance, place_work
from edgeai.agents.planning import EmbeddedPlanner
from edgeai.config import Settings
from edgeai.graphs.app import App
from edgeai.graphs.graph import build_graph, route_after_plan, sqlite_checkpointer
from edgeai.graphs.state import CheckpointShapeError, EdgeState
from edgeai.knowledge.store import open_store
from edgeai.schemas import Plan, Subtask
from edgeai.tools.offloading import score
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph

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
def module_home(healthcare_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("graph-home")
    shutil.copytree(healthcare_home, home, dirs_exist_ok=True)
    return home


@pytest.fixture(scope="module")
def session(module_home: Path) -> App:
    return App.open(Settings(home=module_home))


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
        route_after_plan(EdgeState())


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
    assert "No model" in state["answer"] and "trains only what its templates cover" in state["answer"]


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


# ----------------------------------------------------------------- the LLM planner, faked chat


def proposal(*models: str) -> AIMessage:
    """What an LLM answers in the `text` method: a plan proposal as JSON in its content."""
    steps = [{"id": i + 1, "model": m, "goal": m, "deps": []} for i, m in enumerate(models)]
    return AIMessage(content=json.dumps({"subtasks": steps, "combine": "", "unsupported": []}))


def test_llm_planner_wiring_with_a_fake_chat_model(fresh_home: Path) -> None:
    chat = GenericFakeChatModel(
        messages=iter([proposal("heartbeat-acoustic"), AIMessage(content="Sorry, I cannot.")])
    )
    app = App.open(Settings(home=fresh_home, llm_backend="openai"), chat_model=chat, method="text")
    first = app.ask("What's my heart rate right now?", None, today=TODAY)
    assert first["plan"]["planner"] == "openai"
    assert [r["model"] for r in first["results"]] == ["heartbeat-acoustic"]
    assert first["results"][0]["status"] == "ok"
    # an answer that is no plan: the embedded planner steps in, and the plan says why
    second = app.ask("Which apps have I been using this evening?", None, today=TODAY)
    assert second["plan"]["planner"] == "embedded (fallback from openai)"
    assert "did not parse" in second["plan"]["fallback_reason"]
    assert second["results"] and all(r["status"] == "ok" for r in second["results"])
    assert [s["node"] for s in second["trace"]][-1] == "respond"


# ----------------------------------------------------------------- threads of older versions


class OldState(TypedDict, total=False):
    """The graph state as versions before the typed state declared it (dicts throughout)."""

    request: str
    effective_request: str
    day: str
    plan: dict[str, Any]
    selection: list[dict[str, Any]]
    placements: list[dict[str, Any]]
    offloading: dict[str, Any] | None
    results: list[dict[str, Any]]
    answer: str
    history: Annotated[list[dict[str, Any]], operator.add]
    trace: Annotated[list[dict[str, Any]], operator.add]


OLD_TURN = {
    "request": "What's my heart rate right now?",
    "effective_request": "What's my heart rate right now?",
    "day": "2026-11-23",
    "plan": {
        "request": "What's my heart rate right now?",
        "subtasks": [
            {
                "id": 1,
                "model": "heartbeat-acoustic",
                "device": "living-room-speaker",
                "goal": "heartbeat monitoring",
                "deps": [],
                "relevance": 3.1,
            }
        ],
        "combine": None,
        "unsupported": [],
        "planner": "embedded",
        "seconds": 0.2,
    },
    "selection": [
        {
            "subtask": 1,
            "model": "heartbeat-acoustic",
            "device": "living-room-speaker",
            "tier": "client",
            "goal": "heartbeat monitoring",
            "deps": [],
            "inputs": ["audio"],
            "outputs": ["heart_rate_bpm"],
            "compute_hz": 1.2e9,
            "uplink_bps": 2.0e6,
            "input_bits": None,
            "cycles": None,
        }
    ],
    "placements": [
        {
            "subtask": 1,
            "model": "heartbeat-acoustic",
            "runs_on": "living-room-speaker",
            "mode": "local",
            "share": None,
            "latency_s": 0.8,
            "local_latency_s": 0.8,
            "energy_j": 0.1,
            "reason": "kept on the device",
            "split": None,
        }
    ],
    "offloading": None,
    "results": [
        {
            "subtask": 1,
            "model": "heartbeat-acoustic",
            "status": "ok",
            "outputs": {"heart_rate_bpm": 71.0},
            "summary": "71 bpm",
            "details": {},
            "seconds": 0.01,
        },
        {"subtask": 2, "model": "x", "status": "not_run", "error": "not installed yet"},
    ],
    "answer": "For 2026-11-23: 71 bpm",
}


def write_old_thread(db: Path, thread: str, turn: dict[str, Any]) -> None:
    """A checkpoint as older versions wrote it: one finished turn in the old dict shapes."""

    def old_turn(state: OldState) -> dict[str, Any]:
        keys = ("request", "effective_request", "day", "answer")
        return turn | {"history": [{k: turn[k] for k in keys if k in turn}], "trace": []}

    builder = StateGraph(OldState)
    builder.add_node(old_turn)
    builder.add_edge(START, "old_turn")
    builder.add_edge("old_turn", END)
    graph = builder.compile(checkpointer=sqlite_checkpointer(db))
    graph.invoke({"request": turn["request"]}, {"configurable": {"thread_id": thread}})


def test_a_thread_written_in_the_old_shape_loads_and_follows_up(fresh_home: Path) -> None:
    settings = Settings(home=fresh_home)
    write_old_thread(settings.checkpoint_db, "old", OLD_TURN)
    app = App.open(settings)
    stored = EdgeState.model_validate(
        app.graph.get_state({"configurable": {"thread_id": "old"}}).values
    )
    assert stored.plan.planner == "embedded" and stored.plan.subtasks[0].relevance == 3.1
    assert stored.results[1].error == "not installed yet" and stored.history[0].day == "2026-11-23"
    follow = app.ask("and what about yesterday?", "old", today=TODAY)
    assert follow["effective_request"] == "What's my heart rate right now?"
    assert follow["day"] == "2026-11-22"
    assert [r["model"] for r in follow["results"]] == ["heartbeat-acoustic"]
    history = app.graph.get_state({"configurable": {"thread_id": "old"}}).values["history"]
    assert [h["day"] for h in history] == ["2026-11-23", "2026-11-22"]
    json.dumps(app.graph.get_state({"configurable": {"thread_id": "old"}}).values)  # still JSON


def test_a_thread_in_an_unreadable_shape_is_refused_in_one_line(
    fresh_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(home=fresh_home)
    broken = OLD_TURN | {"plan": {"subtasks": "all of them"}}
    write_old_thread(settings.checkpoint_db, "broken", broken)
    with pytest.raises(CheckpointShapeError, match="thread 'broken' was saved in a shape"):
        App.open(settings).ask("and yesterday?", "broken", today=TODAY)
    from edgeai.cli import main

    code = main(["ask", "and yesterday?", "--thread", "broken", "--home", str(fresh_home)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "plan.request" in err, err
