"""The Agent Server API refuses what it must: no or a wrong token (401, probes stay open),
malformed or oversize bodies (4xx with a message), unknown threads and runs (404), runs it cannot
serve (4xx, nothing recorded), and `edgeai serve` on a public address without a token (exit 2)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import AuthenticationError, BadRequestError, NotFoundError


def test_every_route_but_the_probes_needs_the_token(api_url: str, api_token: str) -> None:
    with httpx.Client(base_url=api_url, timeout=60) as c:
        for probe in ("/ok", "/healthz", "/health"):
            assert c.get(probe).status_code == 200
        for method, path in [("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/devices"),
                             ("POST", "/assistants/search"), ("POST", "/threads"),
                             ("GET", "/threads/x/runs")]:
            r = c.request(method, path, json={})
            assert r.status_code == 401 and "token" in r.json()["detail"], (path, r.text)
        wrong = c.get("/openapi.json", headers={"Authorization": "Bearer not-it"})
        assert wrong.status_code == 401
        ok = c.get("/openapi.json", headers={"Authorization": f"Bearer {api_token}"})
        assert ok.status_code == 200 and "/threads/{thread_id}/runs/stream" in ok.json()["paths"]
    bearer = get_sync_client(url=api_url, api_key=None,
                             headers={"Authorization": f"Bearer {api_token}"})
    assert bearer.assistants.search()[0]["assistant_id"] == "edgeai"
    with pytest.raises(AuthenticationError):
        get_sync_client(url=api_url, api_key="not-it").assistants.search()


def test_malformed_and_oversize_bodies_get_4xx_with_a_message(api_url: str, api_token: str):
    auth = {"x-api-key": api_token, "content-type": "application/json"}
    with httpx.Client(base_url=api_url, timeout=60, headers=auth) as c:
        bad = c.post("/threads", content=b'{"metadata": ')
        assert bad.status_code == 422 and bad.json()["detail"][0]["msg"]
        big = c.post("/threads/search", content=b"[" + b" " * (2 * 1024 * 1024) + b"]")
        assert big.status_code == 413 and "bytes" in big.json()["detail"]
        odd = c.post("/threads", json={"thread_id": "../../etc"})
        assert odd.status_code == 422


def test_unknown_threads_and_runs_are_404(client) -> None:
    with pytest.raises(NotFoundError):
        client.threads.get("no-such-thread")
    with pytest.raises(NotFoundError):
        client.runs.create("no-such-thread", "edgeai", input={"request": "hi"})
    with pytest.raises(NotFoundError):
        list(client.runs.stream("no-such-thread", "edgeai", input={"request": "hi"}))
    tid = client.threads.create()["thread_id"]
    with pytest.raises(NotFoundError):
        client.runs.get(tid, "no-such-run")
    with pytest.raises(NotFoundError):
        client.runs.create(tid, "someone-else", input={"request": "hi"})


def test_runs_it_cannot_serve_are_refused_before_anything_is_written(client) -> None:
    tid = client.threads.create()["thread_id"]
    with pytest.raises(BadRequestError, match="stream_mode"):
        client.runs.create(tid, "edgeai", input={"request": "hi"}, stream_mode="debug")
    with pytest.raises(BadRequestError, match="no request"):
        client.runs.create(tid, "edgeai", input={"messages": []})
    with pytest.raises(BadRequestError, match="interrupt_before"):
        client.runs.create(tid, "edgeai", input={"request": "hi"}, interrupt_before=["respond"])
    with pytest.raises(httpx.HTTPStatusError) as unknown_key:
        client.runs.create(tid, "edgeai", input={"request": "hi"}, context={"sudo": True})
    assert unknown_key.value.response.status_code == 422
    with pytest.raises(httpx.HTTPStatusError) as no_resume:
        client.runs.create(tid, "edgeai", command={"resume": "yes"})
    assert no_resume.value.response.status_code == 409
    with pytest.raises(httpx.HTTPStatusError) as nothing_to_continue:  # neither input nor command
        client.runs.create(tid, "edgeai")
    assert nothing_to_continue.value.response.status_code == 409
    assert client.runs.list(tid) == [] and "request" not in client.threads.get_state(tid)["values"]


def test_serve_refuses_a_public_address_without_a_token(
    healthcare_home: Path, monkeypatch, capsys
) -> None:
    from edgeai.cli import main

    monkeypatch.delenv("EDGEAI_API_TOKEN", raising=False)
    code = main(["serve", "--home", str(healthcare_home), "--host", "0.0.0.0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "without a token" in err
