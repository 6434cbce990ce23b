"""Which chat model the agents talk to: the embedded SmolLM2, or any OpenAI-compatible server.

This is the only LLM code agents keep. `get_chat_model(settings)` returns a LangChain chat model,
so an agent's code is the same whichever backend runs (``model.invoke``, ``model.stream``,
``model.with_structured_output(Plan, method="json_schema")``): the embedded backend is
:class:`edgeai.tools.llm.chat_model.EmbeddedChatModel` (guided decoding answers structured requests,
so even a 135M-parameter model returns JSON that validates), the `openai` backend is
langchain-openai's `ChatOpenAI` on `llm_base_url` (OpenAI, vLLM, llama.cpp, `edgeai llm serve`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from edgeai.errors import UserInputError

if TYPE_CHECKING:
    from edgeai.config import Settings
    from langchain_core.language_models import BaseChatModel


def get_chat_model(
    settings: Settings,
    *,
    max_tokens: int | None = None,
    temperature: float = 0.0,
    timeout_s: float = 600.0,
) -> BaseChatModel:
    """The chat model the settings select: embedded SmolLM2, or ChatOpenAI on `llm_base_url`."""
    if settings.llm_backend == "embedded":
        from edgeai.tools.llm.chat_model import EmbeddedChatModel

        return EmbeddedChatModel(max_tokens=max_tokens or 512, temperature=temperature)
    if not settings.llm_base_url:
        raise UserInputError(
            "the 'openai' LLM backend needs a server: pass --llm-base-url "
            "(or set EDGEAI_LLM_BASE_URL), e.g. http://127.0.0.1:8000/v1"
        )
    from langchain_openai import ChatOpenAI

    api_key = settings.llm_api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=api_key,
        temperature=temperature,
        max_tokens=max_tokens,
        timeout=timeout_s,
        max_retries=0,
    )
