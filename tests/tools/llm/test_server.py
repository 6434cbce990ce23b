"""End-to-end: the real embedded SmolLM2 behind the real OpenAI-compatible server on 127.0.0.1.

Clients are the real ones agents use (httpx, langchain-openai's ChatOpenAI); nothing is mocked. The
model loads once per test process (~5 s from the converted cache, ~20 s the first time ever).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Literal

import httpx
import jsonschema
import pytest
import torch
from edgeai.tools.llm.embedded import EmbeddedLLM, get_embedded_llm
from edgeai.tools.llm.server import create_app, serve_in_thread
from pydantic import BaseModel, Field

MODEL_IDS = ["heartbeat-acoustic", "mood-from-vitals", "traffic-app-usage"]
SYSTEM = (
    "You plan work for edge devices. Available models: heartbeat-acoustic (monitors heartbeat from "
    "audio), mood-from-vitals (mood from heart rate), traffic-app-usage (app usage from network "
    "traffic). Answer in JSON."
)
REQUEST = "Monitor my heartbeat and tell me my mood from it."


class Subtask(BaseModel):
    id: int
    model: Literal["heartbeat-acoustic", "mood-from-vitals", "traffic-app-usage"]
    deps: list[int] = Field(max_length=3)


class PlanOut(BaseModel):
    subtasks: list[Subtask] = Field(min_length=1, max_length=3)
    combine: str = Field(max_length=80)


@pytest.fixture(scope="module")
def llm() -> Iterator[EmbeddedLLM]:
    # One torch thread: on a shared 2-core machine, two threads that contend are several times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield get_embedded_llm()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base_url(llm: EmbeddedLLM) -> Iterator[str]:
    with serve_in_thread(create_app(llm)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=120) as c:
        yield c


def chat(content: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": content}], **extra}


def test_models_lists_the_embedded_model(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["smollm2-135m"]


def test_chat_completion_answers_and_counts_tokens(client: httpx.Client) -> None:
    r = client.post(
        "/v1/chat/completions",
        json=chat("What is the capital of France? Answer in one short sentence.", max_tokens=24),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    text = body["choices"][0]["message"]["content"]
    assert "Paris" in text
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_max_completion_tokens_and_stop_are_honoured(client: httpx.Client) -> None:
    r = client.post(
        "/v1/chat/completions",
        json=chat(
            "Count from one to twenty in words, separated by commas.", max_completion_tokens=6
        ),
    )
    assert r.json()["choices"][0]["finish_reason"] == "length"
    assert r.json()["usage"]["completion_tokens"] == 6
    r = client.post(
        "/v1/chat/completions",
        json=chat("What is the capital of France? Answer in one short sentence.", stop=["Paris"]),
    )
    body = r.json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "Paris" not in body["choices"][0]["message"]["content"]


def test_streaming_sends_sse_deltas_then_done(client: httpx.Client) -> None:
    request = chat(
        "What is the capital of France?",
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    events = []
    with client.stream("POST", "/v1/chat/completions", json=request) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line and not line.startswith(":"):  # ':' lines are SSE keep-alive comments
                assert line.startswith("data: ")
                events.append(line[len("data: ") :])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Paris" in text
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_invalid_requests_get_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json={"messages": []})
    assert r.status_code == 422
    assert "messages" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json=chat("hi", max_completion_tokens=0))
    assert r.status_code == 422 and "max_completion_tokens" in r.json()["error"]["message"]
    r = client.post(
        "/v1/chat/completions",
        json=chat("hi", response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
    )
    assert r.status_code == 422 and "json_schema.name" in r.json()["error"]["message"]
    r = client.post(
        "/v1/chat/completions",
        json=chat("hi", response_format={"type": "xml"}),
    )
    assert r.status_code == 422 and "response_format" in r.json()["error"]["message"]


def test_unenforceable_schema_is_refused_with_400(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"card": {"type": "string", "format": "credit-card"}}}
    r = client.post(
        "/v1/chat/completions",
        json=chat(
            "hi",
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        ),
    )
    assert r.status_code == 400
    assert "format: credit-card" in r.json()["error"]["message"]


CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"enum": ["Berlin", "Madrid", "Paris", "Rome"]},
        "in_europe": {"type": "boolean"},
        "population_millions": {"type": "integer", "minimum": 0, "maximum": 50},
        "note": {"anyOf": [{"type": "string", "maxLength": 30}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
    },
    "required": ["city", "in_europe", "population_millions", "note", "tags"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(("country", "capital"), [("France", "Paris"), ("Italy", "Rome")])
def test_json_schema_over_raw_http_validates(
    client: httpx.Client, country: str, capital: str
) -> None:
    request = chat(
        f"What is the capital of {country}?",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": CITY_SCHEMA, "strict": True},
        },
    )
    r = client.post("/v1/chat/completions", json=request)
    assert r.status_code == 200, r.text
    value = json.loads(r.json()["choices"][0]["message"]["content"])
    jsonschema.validate(value, CITY_SCHEMA)
    # The enum option the model finds likeliest: it knows its capitals (Berlin and Madrid lose).
    assert value["city"] == capital


def test_json_object_mode_returns_a_json_object(client: httpx.Client) -> None:
    r = client.post(
        "/v1/chat/completions",
        json=chat(
            "Describe a cat as JSON with a name and an age.",
            max_tokens=40,
            response_format={"type": "json_object"},
        ),
    )
    assert r.status_code == 200, r.text
    assert isinstance(json.loads(r.json()["choices"][0]["message"]["content"]), dict)


def test_langchain_chat_openai_invoke_and_stream(base_url: str) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        base_url=base_url + "/v1", model="smollm2-135m", api_key="not-needed", max_tokens=16
    )
    message = model.invoke("What is the capital of France?")
    assert "Paris" in message.content
    assert message.usage_metadata["output_tokens"] > 0
    pieces = [chunk.content for chunk in model.stream("What is the capital of France?")]
    assert len([p for p in pieces if p]) > 1  # really streamed, not one blob
    assert "Paris" in "".join(pieces)


def test_langchain_structured_output_plan_over_http(base_url: str) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(base_url=base_url + "/v1", model="smollm2-135m", api_key="x", max_tokens=120)
    planner = model.with_structured_output(PlanOut, method="json_schema")
    plan = planner.invoke([("system", SYSTEM), ("user", REQUEST)])
    assert isinstance(plan, PlanOut)
    assert 1 <= len(plan.subtasks) <= 3
    assert all(s.model in MODEL_IDS for s in plan.subtasks)
    assert plan.subtasks[0].model == "heartbeat-acoustic"


def test_openai_backend_through_get_chat_model(base_url: str) -> None:
    from edgeai.agents.llm_backend import get_chat_model
    from edgeai.config import Settings

    settings = Settings(llm_backend="openai", llm_base_url=base_url + "/v1")
    model = get_chat_model(settings, max_tokens=8)
    assert "Paris" in model.invoke("What is the capital of France?").content
