"""Guided JSON decoding on the real embedded model: every output parses and validates, limits hold."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Literal

import jsonschema
import pytest
import torch
from edgeai.errors import UserInputError
from edgeai.tools.llm.embedded import Completion, EmbeddedLLM, get_embedded_llm
from edgeai.tools.llm.guided import UnsupportedSchemaError, check_schema
from pydantic import BaseModel, Field


@pytest.fixture(scope="module")
def llm() -> Iterator[EmbeddedLLM]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # contention between two threads on a shared 2-core box is costly
    yield get_embedded_llm()
    torch.set_num_threads(threads)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"not": {"type": "string"}}, "not"),
        (
            {"type": "object", "properties": {"when": {"type": "string", "format": "credit-card"}}},
            "format: credit-card",
        ),
        ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems"),
        ({"type": "array", "contains": {"type": "integer"}}, "contains"),
        ({"$ref": "#/$defs/Missing"}, "Missing"),
        ({"enum": []}, "empty"),
        ({"type": "array", "minItems": 3, "maxItems": 1}, "minItems"),
        ({"type": "tuple"}, "type: tuple"),
        (False, "false"),
    ],
)
def test_unenforceable_schemas_are_refused_up_front(schema: object, keyword: str) -> None:
    with pytest.raises(UnsupportedSchemaError, match=keyword) as info:
        check_schema(schema)  # type: ignore[arg-type]
    assert isinstance(info.value, UserInputError)  # the CLI and API turn it into a clean error


def test_pattern_format_and_multiple_of_are_enforced(llm: EmbeddedLLM) -> None:
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-C]{3}$"},
            "day": {"type": "string", "format": "date"},
            "step": {"type": "integer", "multipleOf": 5, "minimum": 0, "maximum": 100},
        },
        "required": ["code", "day", "step"],
    }
    check_schema(schema)
    result = llm.complete_json(ask("Give a code, a day and a step."), schema, max_tokens=40)
    value = json.loads(result.text)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    assert len(value["code"]) == 3 and value["step"] % 5 == 0


def test_pydantic_schema_with_refs_optionals_and_bounds(llm: EmbeddedLLM) -> None:
    class Reading(BaseModel):
        sensor: Literal["thermometer", "hygrometer"]
        value: float = Field(ge=-40, le=60)
        ok: bool

    class Report(BaseModel):
        room: str = Field(min_length=1, max_length=20)
        floor: int = Field(ge=0, lt=5)
        readings: list[Reading] = Field(min_length=1, max_length=2)
        alarm: Reading | None
        labels: list[str] = Field(max_length=2)

    schema = Report.model_json_schema()
    assert "$defs" in schema  # the shape pydantic gives: $ref into $defs, anyOf for Optional
    result = llm.complete_json(
        ask("The kitchen on floor 1 is 21.5 degrees, humidity normal."), schema, max_tokens=160
    )
    report = Report.model_validate_json(result.text)
    assert 1 <= len(report.readings) <= 2 and 0 <= report.floor < 5
    assert result.finish_reason == "stop" and result.completion_tokens > 0


def test_budget_closes_values_as_soon_as_the_schema_allows(llm: EmbeddedLLM) -> None:
    schema = {
        "type": "object",
        "properties": {
            "names": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "more": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["names", "more"],
    }
    result = llm.complete_json(ask("List many fruit names."), schema, max_tokens=4)
    value = json.loads(result.text)
    jsonschema.validate(value, schema)
    assert len(value["names"]) == 2 and value["more"] == []  # minimum forced, nothing optional
    assert result.completion_tokens < 30


def test_json_object_mode_writes_a_free_object(llm: EmbeddedLLM) -> None:
    result = llm.complete_json(ask("Give a JSON object describing a dog."), None, max_tokens=40)
    value = json.loads(result.text)
    assert isinstance(value, dict)


def test_streamed_json_pieces_add_up_to_the_result(llm: EmbeddedLLM) -> None:
    schema = {
        "type": "object",
        "properties": {
            "answer": {"enum": ["yes", "no"]},
            "why": {"type": "string", "maxLength": 40},
        },
        "required": ["answer", "why"],
    }
    items = list(llm.iter_json(ask("Is the sky blue on a clear day?"), schema, max_tokens=30))
    *pieces, result = items
    assert isinstance(result, Completion)
    assert all(isinstance(p, str) for p in pieces) and len(pieces) > 5
    assert "".join(pieces) == result.text  # type: ignore[arg-type]
    jsonschema.validate(json.loads(result.text), schema)


def test_closing_a_json_stream_cancels_decoding(llm: EmbeddedLLM) -> None:
    schema = {"type": "object", "properties": {"story": {"type": "string", "maxLength": 400}}}
    stream = llm.iter_json(ask("Tell a long story about a robot."), schema, max_tokens=400)
    first = next(stream)
    assert first.startswith("{")
    stream.close()  # the worker stops at its next token and releases the model
    workers = [t for t in threading.enumerate() if t.name == "guided-json"]
    for worker in workers:
        worker.join(timeout=10)
    assert not any(w.is_alive() for w in workers)
    assert llm.complete(ask("Say yes."), max_tokens=3).completion_tokens <= 3  # lock released


def test_free_text_stream_matches_complete_and_honours_stop(llm: EmbeddedLLM) -> None:
    messages = ask("What is the capital of France? Answer in one short sentence.")
    whole = llm.complete(messages, max_tokens=20)
    pieces = list(llm.stream(messages, max_tokens=20))
    assert "".join(pieces) == whole.text and "Paris" in whole.text
    cut = llm.complete(messages, max_tokens=20, stop=[" Paris"])
    assert cut.finish_reason == "stop" and cut.text == whole.text[: whole.text.index(" Paris")]
    streamed_cut = "".join(llm.stream(messages, max_tokens=20, stop=[" Paris"]))
    assert streamed_cut == cut.text  # text that might begin a stop string is held back, not leaked


def test_recursive_and_root_ref_schemas_terminate(llm: EmbeddedLLM) -> None:
    class Node(BaseModel):
        name: str = Field(max_length=12)
        children: list[Node] = Field(max_length=2)

    schema = Node.model_json_schema()
    result = llm.complete_json(ask("Describe a small family tree."), schema, max_tokens=40)
    Node.model_validate_json(result.text)
    extra = {"type": "object", "required": ["n"], "additionalProperties": {"type": "integer"}}
    value = json.loads(llm.complete_json(ask("Give n = 7."), extra, max_tokens=10).text)
    assert isinstance(value["n"], int)
    with pytest.raises(UnsupportedSchemaError, match="nesting"):
        forced = {"type": "object", "properties": {"x": {"$ref": "#"}}, "required": ["x"]}
        llm.complete_json(ask("x"), forced, max_tokens=10)
