"""A run paused for approval of generated training code, resumed with approval through the
unmodified `langgraph_sdk` (issue 30, acceptance 1: an interrupt resumed with `command`): the
code runs in the sandbox, the model is registered and the same run answers with it. Its own
server over a private copy of the healthcare home (the session server's home must keep no image
model); a small configuration (2 clients, 1 round, 300 digits)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from edgeai.config import Settings
from edgeai.server import create_app
from edgeai.tools.llm.server import serve_in_thread

TOKEN = "approval-token-0123456789"
TRAIN_REQUEST = "recognise the handwritten digit in my image"
DIGITS = {"data": "digits", "clients": 2, "rounds": 1, "trials": 1, "n_train": 300}


@pytest.mark.slow
def test_an_approved_run_trains_registers_and_answers(
    healthcare_home: Path, tmp_path: Path, ready
) -> None:
    from langgraph_sdk import get_sync_client

    home = tmp_path / "home"
    shutil.copytree(healthcare_home, home)
    with serve_in_thread(create_app(Settings(home=home), token=TOKEN)) as url:
        ready(url)
        client = get_sync_client(url=url, api_key=TOKEN, timeout=900)
        tid = client.threads.create()["thread_id"]
        paused = client.runs.wait(tid, "edgeai", input={"request": TRAIN_REQUEST},
                                  config={"configurable": {"fl": DIGITS}})
        (question,) = paused["__interrupt__"]
        assert question["value"]["kind"] == "approve_code"
        done = client.runs.wait(tid, "edgeai", command={"resume": "yes"})
        assert "__interrupt__" not in done
        model = done["training"]["model"]
        assert model and model.startswith("fl-digits")
        assert len(done["training"]["trials"]) == 1
        assert model in {t["model"] for t in done["plan"]["subtasks"]}  # the re-plan chose it
        assert list((home / "runs" / "fl").glob("*/trial-1/curve.csv"))
        (run, first) = client.runs.list(tid)  # newest first
        assert run["status"] == "success" and first["status"] == "interrupted"
        assert client.threads.get(tid)["status"] == "idle"
