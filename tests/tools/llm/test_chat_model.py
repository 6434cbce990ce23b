"""The LangChain face of the LLM: EmbeddedChatModel, get_chat_model, and `edgeai llm chat|serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
import torch
from edgeai.agents.llm_backend import get_chat_model
from edgeai.cli import main
from edgeai.config import Settings
from edgeai.errors import UserInputError
from edgeai.tools.llm.chat_model import EmbeddedChatModel
from edgeai.tools.llm.embedded import get_embedded_llm
from edgeai.tools.llm.server import free_port
from langchain_core.messages import AIMessage
from pydantic import BaseModel, Field

QUESTION = "What is the capital of France? Answer in one short sentence."


class Capital(BaseModel):
    city: Literal["Berlin", "Madrid", "Paris", "Rome"]
    reason: str = Field(max_length=40)


@pytest.fixture(scope="module")
def model() -> Iterator[EmbeddedChatModel]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # contention between two threads on a shared 2-core box is costly
    get_embedded_llm()
    yield EmbeddedChatModel(max_tokens=24)
    torch.set_num_threads(threads)


def test_get_chat_model_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(get_chat_model(Settings(home=tmp_path)), EmbeddedChatModel)
    with pytest.raises(UserInputError, match="--llm-base-url"):
        get_chat_model(Settings(home=tmp_path, llm_backend="openai"))
    from langchain_openai import ChatOpenAI

    remote = get_chat_model(
        Settings(home=tmp_path, llm_backend="openai", llm_base_url="http://127.0.0.1:9/v1"),
        max_tokens=5,
    )
    assert isinstance(remote, ChatOpenAI)
    assert remote.model_name == "smollm2-135m" and remote.max_retries == 0


def test_invoke_and_stream(model: EmbeddedChatModel) -> None:
    message = model.invoke(QUESTION)
    assert isinstance(message, AIMessage) and "Paris" in message.content
    assert message.usage_metadata["output_tokens"] > 0
    assert message.response_metadata["finish_reason"] in ("stop", "length")
    chunks = list(model.stream(QUESTION))
    assert sum(1 for c in chunks if c.content) > 1
    assert "".join(c.content for c in chunks) == message.content


def test_structured_output_pydantic_and_raw(model: EmbeddedChatModel) -> None:
    answer = model.with_structured_output(Capital).invoke("What is the capital of Italy?")
    assert isinstance(answer, Capital) and answer.city == "Rome"
    raw = model.with_structured_output(Capital, include_raw=True).invoke(QUESTION)
    assert raw["parsing_error"] is None and raw["parsed"].city == "Paris"
    assert json.loads(raw["raw"].content)["city"] == "Paris"


def test_structured_output_dict_schema_gives_dicts(model: EmbeddedChatModel) -> None:
    schema = {
        "title": "Answer",
        "type": "object",
        "properties": {"yes": {"type": "boolean"}, "count": {"type": "integer", "maximum": 9}},
        "required": ["yes", "count"],
    }
    answer = model.with_structured_output(schema).invoke("How many legs does a cat have?")
    assert isinstance(answer, dict) and set(answer) == {"yes", "count"}
    assert isinstance(answer["yes"], bool) and answer["count"] <= 9


def test_cli_chat_embedded_and_schema(
    model: EmbeddedChatModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["llm", "chat", QUESTION, "--max-tokens", "16", "--home", str(tmp_path)]) == 0
    assert "Paris" in capsys.readouterr().out
    schema_file = tmp_path / "capital.json"
    schema_file.write_text(json.dumps(Capital.model_json_schema()))
    argv = ["llm", "chat", "What is the capital of Italy?", "--schema", str(schema_file)]
    assert main([*argv, "--home", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["city"] == "Rome"


def test_cli_chat_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(tmp_path), "--llm-backend", "openai"]
    assert main(["llm", "chat", "hi", *home]) == 2
    err = capsys.readouterr().err.strip()
    assert "--llm-base-url" in err and len(err.splitlines()) == 1
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    assert main(["llm", "chat", "hi", *home, "--llm-base-url", url]) == 2
    err = capsys.readouterr().err.strip()
    assert url in err and len(err.splitlines()) == 1


def test_cli_serve_answers_openai_requests(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "EDGEAI_HOME": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "edgeai.cli",
        "llm",
        "serve",
        "--port",
        str(port),
        "--threads",
        "1",
    ]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.3)
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
        assert models["data"][0]["id"] == "smollm2-135m"
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 12},
            timeout=60,
        )
        assert "Paris" in r.json()["choices"][0]["message"]["content"]
    finally:
        server.terminate()
        server.wait(timeout=30)
