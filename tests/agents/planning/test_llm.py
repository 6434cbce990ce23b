"""The `openai` planner path end to end over HTTP: ChatOpenAI -> `edgeai llm serve` app on 127.0.0.1.

A real round trip with the real embedded model behind the server; the plan is validated against
the store, and output that does not parse falls back to the embedded planner with the reason logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgeai.agents.llm_backend import get_chat_model
from edgeai.agents.planning import EmbeddedPlanner
from edgeai.agents.planning.llm import LLMPlanner
from edgeai.agents.planning.planner import make_planner
from edgeai.config import Settings
from edgeai.knowledge.store import open_store
from edgeai.tools.llm.embedded import get_embedded_llm
from edgeai.tools.llm.server import create_app, serve_in_thread

REQUEST = "What's my heart rate right now?"


MAX_TOKENS = 48
"""The answer budget these tests give the LLM (`--llm-max-tokens`): what is under test is that
every id comes from the store and the plan is the LLM's own, which a short plan shows as well as a
long one; SmolLM2 fills any budget (400 tokens: ~45 s on one core, where 48 take ~5 s)."""


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    with serve_in_thread(create_app(get_embedded_llm())) as url:
        yield url + "/v1"


def settings_for(home: Path, url: str) -> Settings:
    return Settings(
        home=home,
        llm_backend="openai",
        llm_base_url=url,
        llm_model="smollm2-135m",
        llm_max_tokens=MAX_TOKENS,
    )


def test_structured_plan_over_http_names_only_registered_models(
    healthcare_home: Path, llm_url: str
) -> None:
    store = open_store(healthcare_home)
    planner = make_planner(settings_for(healthcare_home, llm_url), store)
    assert isinstance(planner, LLMPlanner)
    # one generation: guided decoding always parses and takes ids from the enum, so the plan is
    # the LLM's own (a fallback would name the embedded planner)
    plan = planner.plan(REQUEST)
    owners = store.owner_of()
    assert plan.planner == "openai" and plan.fallback_reason is None
    assert all(owners[s.model] == s.device for s in plan.subtasks)


def test_unparseable_output_falls_back_to_the_embedded_planner(
    healthcare_home: Path, llm_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(healthcare_home)
    embedded = EmbeddedPlanner(store)
    chat = get_chat_model(settings_for(healthcare_home, llm_url), max_tokens=40)
    # without structured output SmolLM2 answers in prose, which does not parse as a plan
    planner = LLMPlanner(store, chat, embedded, method="text")
    with caplog.at_level(logging.WARNING, logger="edgeai.agents.planning.llm"):
        plan = planner.plan(REQUEST)
    assert plan.planner == "embedded (fallback from openai)"
    assert plan.fallback_reason
    assert "falling back to the embedded planner" in caplog.text
    assert plan.model_ids() == embedded.plan(REQUEST).model_ids()


def test_unreachable_server_falls_back(healthcare_home: Path) -> None:
    from edgeai.tools.llm.server import free_port

    store = open_store(healthcare_home)
    url = f"http://127.0.0.1:{free_port('127.0.0.1')}/v1"
    planner = LLMPlanner(
        store,
        get_chat_model(settings_for(healthcare_home, url), timeout_s=5),
        EmbeddedPlanner(store),
    )
    plan = planner.plan(REQUEST)
    assert "LLM server error" in plan.fallback_reason


@pytest.mark.slow
def test_plan_cli_against_the_llm_serve_command(healthcare_home: Path) -> None:
    """Two real processes: `edgeai llm serve` on 127.0.0.1 and `edgeai plan --llm-backend openai`."""
    import json
    import subprocess
    import sys
    import time

    import httpx
    from edgeai.tools.llm.server import free_port

    exe = str(Path(sys.executable).with_name("edgeai"))
    port = free_port("127.0.0.1")
    server = subprocess.Popen(
        [exe, "llm", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "llm serve exited"
            assert time.monotonic() < deadline, "llm serve did not come up"
            time.sleep(1)
        argv = [
            exe,
            "plan",
            REQUEST,
            "--json",
            "--home",
            str(healthcare_home),
            "--llm-backend",
            "openai",
            "--llm-base-url",
            f"http://127.0.0.1:{port}/v1",
            "--llm-max-tokens",
            str(MAX_TOKENS),
        ]
        for method, fallback in (("json_schema", None), ("text", True)):
            proc = subprocess.run(
                [*argv, "--structured-method", method],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            plan = json.loads(proc.stdout)  # exactly one plan on stdout
            owners = open_store(healthcare_home).owner_of()
            assert all(owners[s["model"]] == s["device"] for s in plan["subtasks"])
            if fallback:
                assert (
                    plan["planner"] == "embedded (fallback from openai)" and plan["fallback_reason"]
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
