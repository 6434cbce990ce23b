"""An OpenAI-compatible HTTP server for the embedded model (chat completions, streaming, JSON schema).

It owns the OpenAI wire format over the engine in :mod:`edgeai.tools.llm.embedded`: request and
response schemas, errors as OpenAI reports them, streaming as server-sent events (sse-starlette's
`EventSourceResponse`: `data: {chunk}` events, then `data: [DONE]`), and running the app in a thread.
It lets every OpenAI client (langchain-openai's ChatOpenAI, the openai SDK, curl) use SmolLM2 as it
would use vLLM or a llama.cpp server, and lets tests of the `openai` backend talk to a real server on
127.0.0.1. `response_format={"type": "json_schema", ...}` is answered by guided decoding
(edgeai.tools.llm.guided), so structured output always validates, as with vLLM's guided decoding.

    app = create_app(get_embedded_llm())
    with serve_in_thread(app) as base_url:           # e.g. "http://127.0.0.1:54321"
        ChatOpenAI(base_url=base_url + "/v1", api_key="x", model="smollm2-135m").invoke("hi")
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import uvicorn
from edgeai.errors import EdgeAIError, UserInputError
from edgeai.tools.llm.embedded import Completion, EmbeddedLLM
from edgeai.tools.llm.guided import ContextOverflowError, check_schema, json_object_schema
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 512
STARTUP_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- request schemas


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None


class ResponseFormatText(BaseModel):
    type: Literal["text"]


class ResponseFormatJsonObject(BaseModel):
    type: Literal["json_object"]


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | bool = Field(True, alias="schema")
    strict: bool | None = None


class ResponseFormatJsonSchema(BaseModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[
    ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema,
    Field(discriminator="type"),
]


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's chat-completions request this server honours; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int | None = Field(None, ge=1, le=1, description="only one choice per request")
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None

    def token_limit(self) -> int:
        """`max_completion_tokens` (newer clients) wins over `max_tokens` (older ones)."""
        return self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


# --------------------------------------------------------------------------- response schemas


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class _ChoiceFields(BaseModel):
    """What a choice carries whether whole or streamed (one choice per request, no logprobs)."""

    index: int = 0
    logprobs: None = None


class _CompletionFields(BaseModel):
    """What a completion carries whether whole or streamed."""

    id: str
    created: int
    model: str


class Choice(_ChoiceFields):
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletion(_CompletionFields):
    object: Literal["chat.completion"] = "chat.completion"
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(_ChoiceFields):
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(_CompletionFields):
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "edgeai"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorDetail(message=message, type=kind, param=param, code=str(status))
    )
    return JSONResponse(status_code=status, content=body.model_dump())


def _usage(result: Completion) -> Usage:
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


# --------------------------------------------------------------------------- the app


def create_app(llm: EmbeddedLLM) -> FastAPI:
    """A FastAPI app serving `llm` under /v1 the way OpenAI's API does."""
    app = FastAPI(title="edgeai embedded LLM", version="1", summary="OpenAI-compatible chat API")
    started = int(time.time())

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        first = exc.errors()[0].get("loc", ()) if exc.errors() else ()
        param = ".".join(str(p) for p in first if p != "body") or None
        return _error(
            422, "invalid request: " + "; ".join(problems), "invalid_request_error", param
        )

    @app.exception_handler(EdgeAIError)
    async def refused(request: Request, exc: EdgeAIError) -> JSONResponse:
        return _error(400, str(exc), "invalid_request_error")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": llm.model_id}

    @app.get("/v1/models")
    def list_models() -> ModelList:
        return ModelList(data=[ModelCard(id=llm.model_id, created=started)])

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(body: ChatCompletionRequest) -> ChatCompletion | EventSourceResponse:
        if body.tools:
            raise UserInputError(
                "tool calling is not supported by this server; use response_format"
            )
        messages = [m.model_dump(exclude_none=True) for m in body.messages]
        prompt_len = len(llm.prompt_ids(messages))
        if prompt_len >= llm.context_window:
            raise ContextOverflowError(
                f"the prompt is {prompt_len} tokens; the context window is {llm.context_window}"
            )
        params: dict[str, Any] = {
            "max_tokens": body.token_limit(),
            "temperature": 0.0 if body.temperature is None else body.temperature,
            "top_p": 1.0 if body.top_p is None else body.top_p,
            "seed": body.seed,
        }
        fmt = body.response_format
        schema: dict[str, Any] | bool | None = None
        if isinstance(fmt, ResponseFormatJsonSchema):
            schema = fmt.json_schema.schema_
        elif isinstance(fmt, ResponseFormatJsonObject):
            schema = json_object_schema()
        if schema is not None:
            check_schema(schema)  # refuse before any decoding (and before a stream starts)
            items = llm.iter_json(messages, schema, **params)
        else:
            items = llm.iter_completion(messages, stop=body.stops(), **params)

        rid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.stream:
            *_, result = items
            assert isinstance(result, Completion)
            return ChatCompletion(
                id=rid,
                created=created,
                model=llm.model_id,
                choices=[
                    Choice(
                        message=AssistantMessage(content=result.text),
                        finish_reason=result.finish_reason,
                    )
                ],
                usage=_usage(result),
            )
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        # sse-starlette writes the events (`data: ...` + blank line), adds keep-alive comments on long
        # generations and runs this sync generator in a worker thread; "\n" is OpenAI's line ending.
        return EventSourceResponse(
            _events(items, rid, created, llm.model_id, include_usage), sep="\n"
        )

    return app


def _events(
    items: Iterator[str | Completion], rid: str, created: int, model: str, include_usage: bool
) -> Iterator[dict[str, str]]:
    """The stream as OpenAI sends it: role first, content deltas, finish, usage if asked, [DONE]."""

    def event(choices: list[ChunkChoice], usage: Usage | None = None) -> dict[str, str]:
        chunk = ChatCompletionChunk(
            id=rid, created=created, model=model, choices=choices, usage=usage
        )
        return {"data": chunk.model_dump_json()}

    try:
        yield event([ChunkChoice(delta=Delta(role="assistant", content=""))])
        for item in items:
            if isinstance(item, Completion):
                yield event([ChunkChoice(delta=Delta(), finish_reason=item.finish_reason)])
                if include_usage:
                    yield event([], _usage(item))
            elif item:
                yield event([ChunkChoice(delta=Delta(content=item))])
    except EdgeAIError as exc:  # headers are gone: report in-band, as OpenAI does
        body = ErrorResponse(error=ErrorDetail(message=str(exc), type="invalid_request_error"))
        yield {"data": body.model_dump_json()}
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()  # stops guided decoding if the client went away
    yield {"data": "[DONE]"}


# --------------------------------------------------------------------------- running it


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (prefer `serve_in_thread(app, port=0)`, which has no race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> Iterator[str]:
    """Run `app` with uvicorn in a background thread; yields its base URL ("http://host:port").

    `port=0` binds a free port first and hands the socket to uvicorn, so parallel test runs never
    collide. The server stops (and the thread is joined) when the block exits.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level=log_level, lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{bound}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise EdgeAIError(f"the LLM server did not start on {host}:{bound}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
        sock.close()
