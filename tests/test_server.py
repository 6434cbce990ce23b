"""The agent API served for real on 127.0.0.1 (uvicorn in a thread), driven over HTTP."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
from edgeai.config import Settings
from edgeai.server import create_app
from edgeai.tools.llm.server import serve_in_thread


def test_api_plans_asks_and_refuses_bad_input(healthcare_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(healthcare_home, home)
    with (
        serve_in_thread(create_app(Settings(home=home))) as url,
        httpx.Client(base_url=url, timeout=120) as c,
    ):
        assert c.get("/health").json()["status"] == "ok"
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
