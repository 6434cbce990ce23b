"""Knowledge routes beside the Agent Server API (issue 30, item 2): list, upload (validated before
it touches the store) and remove, on a real server over a private copy of the healthcare home;
the planner is rebuilt so the next plan sees the change."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from edgeai.config import Settings
from edgeai.server import create_app
from edgeai.tools.llm.server import serve_in_thread

TOKEN = "knowledge-token-0123456789"
KETTLE = """---
device: smart-kettle
kind: smart kettle
tier: client
models:
  - name: limescale-estimator
    task: limescale estimation
    inputs: [heating_curve]
    outputs: [limescale_level]
    description: Estimates how much limescale has built up inside the kettle from how long each
      litre takes to boil.
---
# Smart kettle

Tells you when the kettle needs descaling, from how long each litre takes to boil.
"""


@pytest.fixture(scope="module")
def api(healthcare_home: Path, tmp_path_factory: pytest.TempPathFactory, ready):
    home = tmp_path_factory.mktemp("knowledge-api") / "home"
    shutil.copytree(healthcare_home, home)
    with serve_in_thread(create_app(Settings(home=home), token=TOKEN)) as url:
        ready(url)
        with httpx.Client(base_url=url, timeout=300,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            yield client


def _plan_models(api: httpx.Client, request: str) -> list[str]:
    r = api.post("/plan", json={"request": request})
    assert r.status_code == 200, r.text
    return [t["model"] for t in r.json()["subtasks"]]


def test_upload_then_remove_a_manual_changes_what_plans_see(api: httpx.Client) -> None:
    before = {d["device"] for d in api.get("/knowledge").json()}
    assert "smart-kettle" not in before
    r = api.post("/knowledge/manuals", json={"filename": "smart-kettle.md", "text": KETTLE})
    assert r.status_code == 200, r.text and r.json()["added"] == ["smart-kettle"]
    assert {d["device"] for d in api.get("/knowledge").json()} == before | {"smart-kettle"}
    assert _plan_models(api, "does my kettle need descaling?") == ["limescale-estimator"]

    r = api.delete("/knowledge/devices/smart-kettle")
    assert r.status_code == 200 and r.json()["models"] == ["limescale-estimator"]
    assert {d["device"] for d in api.get("/knowledge").json()} == before
    assert "limescale-estimator" not in _plan_models(api, "does my kettle need descaling?")


def test_a_bad_manual_is_refused_naming_the_field_and_the_store_is_unchanged(
    api: httpx.Client,
) -> None:
    before = api.get("/knowledge").json()
    broken = KETTLE.replace("tier: client", "tier: attic")
    r = api.post("/knowledge/manuals", json={"filename": "smart-kettle.md", "text": broken})
    assert r.status_code == 422 and "smart-kettle.md" in r.text and "tier" in r.text
    # a model id another device already owns: refused by the store, nothing written
    stolen = KETTLE.replace("limescale-estimator", "heartbeat-acoustic")
    r = api.post("/knowledge/manuals", json={"filename": "smart-kettle.md", "text": stolen})
    assert r.status_code == 400 and "heartbeat-acoustic" in r.text
    r = api.post("/knowledge/manuals", json={"filename": "../evil.md", "text": KETTLE})
    assert r.status_code == 422  # a file name, never a path
    assert api.get("/knowledge").json() == before


def test_unknown_device_is_404_and_the_routes_need_the_token(api: httpx.Client) -> None:
    assert api.delete("/knowledge/devices/no-such-device").status_code == 404
    bare = httpx.Client(base_url=str(api.base_url), timeout=30)
    assert bare.get("/knowledge").status_code == 401
    assert bare.post("/knowledge/manuals", json={"filename": "a.md", "text": KETTLE}).status_code == 401
    assert bare.delete("/knowledge/devices/smart-kettle").status_code == 401
