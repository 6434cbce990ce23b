"""The agent API served for real on 127.0.0.1 (uvicorn in a thread), driven over HTTP."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
from edgeai.config import Settings
from edgeai.server import create_app
from edgeai.tools.llm.server import serve_in_thread


def wait_ready(c: httpx.Client, timeout_s: float = 600) -> httpx.Response:
    """/ok once the warm-up is over (ready or failed): 503 "warming up" until then."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = c.get("/ok")
        if r.json().get("status") != "warming up" or time.monotonic() > deadline:
            return r
        assert r.status_code == 503
        time.sleep(0.2)


def test_api_plans_asks_and_refuses_bad_input(healthcare_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(healthcare_home, home)
    with (
        serve_in_thread(create_app(Settings(home=home))) as url,
        httpx.Client(base_url=url, timeout=120) as c,
    ):
        assert c.get("/health").json()["status"] == "ok"  # alive at once, ready after warm-up
        ready = wait_ready(c)
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
        plan = c.post("/plan", json={"request": "What's my heart rate right now?"})
        assert plan.status_code == 200 and plan.json()["subtasks"], plan.text
        assert "living-room-speaker" in {d["device"] for d in c.get("/devices").json()}
        r = c.post("/ask", json={"request": "What's my heart rate right now?"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["thread"] and body["answer"]
        owners = {
            m["name"]: d["device"] for d in c.get("/devices").json() for m in d.get("models", [])
        }
        assert all(owners[s["model"]] == s["device"] for s in body["plan"]["subtasks"])
        follow = c.post(
            "/ask", json={"request": "and what about yesterday?", "thread": body["thread"]}
        )
        assert follow.status_code == 200
        assert c.post("/ask", json={"request": ""}).status_code == 422
        assert c.post("/plan", json={}).status_code == 422
        missing = c.post("/ask", json={"request": "hi", "thread": "nope"})
        assert missing.status_code == 404 and "unknown thread" in missing.json()["detail"]


def test_api_over_a_missing_home_is_alive_but_never_ready(tmp_path: Path) -> None:
    home = tmp_path / "missing"
    with (
        serve_in_thread(create_app(Settings(home=home))) as url,
        httpx.Client(base_url=url, timeout=120) as c,
    ):
        assert c.get("/health").status_code == 200
        ok = wait_ready(c)
        assert ok.status_code == 503 and ok.json()["status"] == "failed"
        assert "does not exist" in ok.json()["detail"]
        devices = c.get("/devices")
        assert devices.status_code == 503 and "does not exist" in devices.json()["detail"]
    assert not home.exists()
    assert str(tmp_path) not in ok.text + devices.text  # no path of this machine goes out


def test_hostile_clients_get_4xx_without_echoes_paths_or_other_threads(
    healthcare_home: Path, tmp_path: Path, monkeypatch
) -> None:
    import concurrent.futures
    import json

    home = tmp_path / "home"
    shutil.copytree(healthcare_home, home)
    monkeypatch.setenv("EDGEAI_MAX_BODY_BYTES", "65536")
    # a cold server (warm-up not started) hit by 20 first requests at once: one session, 0 errors
    with (
        serve_in_thread(create_app(Settings(home=home), warm=False)) as url,
        httpx.Client(base_url=url, timeout=300) as c,
    ):
        def first(i: int) -> int:
            return c.post("/plan", json={"request": f"what is my heart rate? ({i})"}).status_code

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            assert list(pool.map(first, range(20))) == [200] * 20
        mine = c.post("/ask", json={"request": "What's my heart rate right now?"}).json()["thread"]
        replies = [
            c.post("/plan", content=b"x" * 70_000, headers={"content-type": "application/json"}),
            c.post("/plan", json={"request": "secret " * 20_000}),
            c.post("/plan", json={"request": 12345}),
            c.post("/ask", json={"request": "hi", "thread": "nope"}),
            c.post("/plan", content=b'{"request": "lone \\ud800 surrogate"}',
                   headers={"content-type": "application/json"}),
            c.post("/plan", content=b'{"request": "bad \xff byte"}',
                   headers={"content-type": "application/json"}),
            c.post("/plan", content=b"[" * 5000 + b"]" * 5000,
                   headers={"content-type": "application/json"}),
            c.get("/health"),
            c.get("/ok"),
            c.get("/devices"),
        ]
        assert replies[0].status_code == 413
        big = c.post("/plan", content=b"x" * (50 * 1024 * 1024),
                     headers={"content-type": "application/json"})
        assert big.status_code == 413 and len(big.content) < 1000
        for r in replies[1:7]:
            assert 400 <= r.status_code < 500, r.text
            assert "secret secret" not in r.text and "12345" not in r.text
        for r in replies:
            assert mine not in r.text and str(tmp_path) not in r.text and "/root" not in r.text
            json.loads(r.text)  # a JSON answer, not a traceback page


def test_answers_name_the_manuals_they_relied_on(healthcare_home: Path, tmp_path: Path) -> None:
    from edgeai.graphs.app import App

    home = tmp_path / "home"
    shutil.copytree(healthcare_home, home)
    out = App.open(Settings(home=home)).ask("What's my heart rate right now?", None)
    devices = {s["device"] for s in out["plan"]["subtasks"]}
    assert {s["device"] for s in out["sources"]} == devices
    for source in out["sources"]:
        assert source["manual"].endswith(".md") and "/" not in source["manual"]
        assert len(source["sha256"]) == 64 and source["added_at"]
