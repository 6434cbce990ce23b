"""The LangGraph Agent Server API driven by the unmodified `langgraph_sdk` client: assistants,
threads, runs (background, wait, stream in every served mode, join, cancel) and the approval
interrupt of automatic federated learning, on the real graph, store and SQLite checkpointer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

HEART = "What's my heart rate right now?"
TRAIN_REQUEST = "recognise the handwritten digit in my image"  # no image model in this home
DIGITS = {"data": "digits", "clients": 2, "rounds": 1, "trials": 1, "n_train": 300}


def test_one_assistant_with_its_graph_and_schemas(client) -> None:
    (assistant,) = client.assistants.search()
    assert assistant["assistant_id"] == "edgeai" and assistant["graph_id"] == "edgeai"
    assert client.assistants.get("edgeai")["graph_id"] == "edgeai"
    graph = client.assistants.get_graph("edgeai")
    nodes = {n["id"] for n in graph["nodes"]}
    assert {"plan_request", "choose_models", "place_work", "approve_code"} <= nodes
    schemas = client.assistants.get_schemas("edgeai")
    assert "messages" in schemas["input_schema"]["properties"]
    assert "fl" in schemas["context_schema"]["properties"]
    with pytest.raises(NotFoundError):
        client.assistants.get("someone-else")


def test_a_streamed_run_shows_each_step_and_answers_as_chat_messages(client) -> None:
    thread = client.threads.create(metadata={"owner": "stream-test"})
    tid = thread["thread_id"]
    assert thread["status"] == "idle" and thread["metadata"] == {"owner": "stream-test"}
    parts = list(client.runs.stream(
        tid, "edgeai", input={"messages": [{"role": "user", "content": HEART}]},
        stream_mode=["values", "updates", "custom", "messages-tuple"]))
    events = [p.event for p in parts]
    assert events[0] == "metadata" and {"values", "updates", "custom", "messages"} <= set(events)
    steps = [p.data["step"] for p in parts if p.event == "custom"]
    assert [s["node"] for s in steps] == [
        "plan_request", "choose_models", "place_work", "run_models", "respond"]
    assert steps[0]["plan"]["subtasks"] and steps[1]["selection"]
    assert steps[2]["offloading"] and steps[3]["results"][0]["status"] == "ok"
    updates = {node for p in parts if p.event == "updates" for node in p.data}
    assert {"plan_request", "respond"} <= updates
    (message, meta), = [p.data for p in parts if p.event == "messages"]
    assert message["type"] == "ai" and "heart" in message["content"].lower()
    assert meta["langgraph_node"] == "respond"
    final = [p.data for p in parts if p.event == "values"][-1]
    assert [m["type"] for m in final["messages"]] == ["human", "ai"]
    assert final["messages"][0]["content"] == HEART
    assert final["messages"][1]["content"] == final["answer"] == message["content"]

    state = client.threads.get_state(tid)
    assert state["next"] == [] and state["values"]["answer"] == final["answer"]
    assert state["checkpoint"]["thread_id"] == tid
    history = client.threads.get_history(tid, limit=100)
    assert len(history) >= 6 and history[0]["checkpoint"] == state["checkpoint"]
    (run,) = client.runs.list(tid)
    assert client.runs.get(tid, run["run_id"])["status"] == "success"
    assert client.threads.get(tid)["status"] == "idle"
    found = client.threads.search(metadata={"owner": "stream-test"})
    assert [t["thread_id"] for t in found] == [tid]


def test_background_runs_join_and_follow_up_on_the_thread(client) -> None:
    tid = client.threads.create()["thread_id"]
    run = client.runs.create(tid, "edgeai", input={"request": HEART})
    assert run["status"] in ("pending", "running", "success")
    values = client.runs.join(tid, run["run_id"])
    assert values["answer"] and client.runs.get(tid, run["run_id"])["status"] == "success"
    follow = client.runs.wait(tid, "edgeai", input={"request": "and what about yesterday?"})
    assert [m["type"] for m in follow["messages"]] == ["human", "ai", "human", "ai"]
    assert len(client.runs.list(tid)) == 2
    with pytest.raises(ConflictError):  # it is over: nothing to cancel
        client.runs.cancel(tid, run["run_id"])


def test_state_can_be_edited_and_a_thread_deleted(client) -> None:
    tid = client.threads.create()["thread_id"]
    client.runs.wait(tid, "edgeai", input={"request": HEART})
    written = client.threads.update_state(tid, {"answer": "edited by a person"})
    assert written["checkpoint"]["checkpoint_id"]
    assert client.threads.get_state(tid)["values"]["answer"] == "edited by a person"
    client.threads.delete(tid)
    with pytest.raises(NotFoundError):
        client.threads.get(tid)
    with pytest.raises(NotFoundError):
        client.threads.get_state(tid)


def test_generated_code_waits_for_approval_and_a_refusal_trains_nothing(
    client, api_home: Path
) -> None:
    tid = client.threads.create()["thread_id"]
    paused = client.runs.wait(tid, "edgeai", input={"request": TRAIN_REQUEST},
                              config={"configurable": {"fl": DIGITS}})
    (question,) = paused["__interrupt__"]
    assert question["value"]["kind"] == "approve_code" and "edgeai:region" in question["value"]["code"]
    thread = client.threads.get(tid)
    assert thread["status"] == "interrupted" and thread["interrupts"]
    assert client.threads.get_state(tid)["next"] == ["approve_code"]
    (run,) = client.runs.list(tid)
    assert run["status"] == "interrupted"

    refused = client.runs.wait(tid, "edgeai", command={"resume": "no"})
    assert "not approved" in refused["answer"] and "__interrupt__" not in refused
    assert refused["training"]["trials"] == [] and refused["training"]["model"] is None
    assert str(api_home) not in str(refused)  # run folders are named without this machine's path
    assert not list((api_home / "runs" / "fl").glob("*/trial-*"))
    assert client.threads.get(tid)["status"] == "idle"
    with pytest.raises(httpx.HTTPStatusError) as nothing:  # nothing waits any more
        client.runs.wait(tid, "edgeai", command={"resume": "yes"})
    assert nothing.value.response.status_code == 409


def test_a_run_cancelled_while_it_waits_never_runs_and_the_thread_goes_on(
    client, api_home: Path
) -> None:
    from edgeai.graphs.app import thread_lock_path
    from edgeai.knowledge.lock import file_lock

    tid = client.threads.create()["thread_id"]
    path = thread_lock_path(api_home, tid)
    path.parent.mkdir(exist_ok=True)
    with file_lock(path, "the test holds the thread"):  # as another turn (a CLI ask) would
        run = client.runs.create(tid, "edgeai", input={"request": HEART})
        assert client.runs.get(tid, run["run_id"])["status"] in ("pending", "running")
        client.runs.cancel(tid, run["run_id"])
    client.runs.join(tid, run["run_id"])
    assert client.runs.get(tid, run["run_id"])["status"] == "interrupted"
    assert not client.threads.get_state(tid)["values"].get("answer")  # no node ran
    after = client.runs.wait(tid, "edgeai", input={"request": HEART})  # the thread goes on
    assert after["answer"] and [m["type"] for m in after["messages"]] == ["human", "ai"]
