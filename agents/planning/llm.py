"""LLM chooser (`openai` backend): the LLM proposes which models serve a request, constrained to
registered ids; the structure step closes them over the declared inputs/outputs.

The proposal schema lists the store's model ids as an enum and is requested as structured output
with an explicit `method=` (json_schema by default, which OpenAI, vLLM and `edgeai llm serve`
enforce by guided decoding). The proposal is checked against the store; output that does not
parse or names an unknown id falls back to the embedded chooser, with the reason logged and kept
in the plan (`fallback_reason`). The LLM's own dependency ids are not trusted: the chains come
from the manuals' declared types, as for every chooser (structure.py).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx
import openai
from edgeai.agents.planning.embedded import EmbeddedChooser
from edgeai.agents.planning.index import PoolIndex
from edgeai.agents.planning.planner import Planner
from edgeai.agents.planning.prompts import PLANNER_SYSTEM, PLANNER_USER
from edgeai.agents.planning.read import Reading
from edgeai.agents.planning.structure import Choice
from edgeai.knowledge.store import KnowledgeStore
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field, ValidationError, create_model

log = logging.getLogger(__name__)


class ProposalError(Exception):
    """The LLM's output could not be turned into a plan."""


def proposal_schema(model_ids: list[str]) -> type[BaseModel]:
    """Pydantic schema of a proposal whose `model` fields may only take registered ids."""
    ids = tuple(sorted(model_ids)) or ("none",)
    step = create_model(
        "ProposedSubtask",
        id=(int, Field(ge=1, description="sub-task number, starting at 1")),
        model=(Literal[ids], Field(description="a registered model id")),  # type: ignore[valid-type]
        goal=(str, Field(description="what this sub-task does")),
        deps=(list[int], Field(default_factory=list, description="ids of sub-tasks it consumes")),
    )
    return create_model(
        "PlanProposal",
        subtasks=(list[step], Field(default_factory=list)),  # type: ignore[valid-type]
        combine=(str, Field("", description="how to merge several results, or empty")),
        unsupported=(
            list[str],
            Field(default_factory=list, description="why not, if nothing fits"),
        ),
    )


def pool_table(store: KnowledgeStore) -> str:
    return "\n".join(
        f"{m.name} | {m.device} | {m.task} | {', '.join(m.inputs)} -> {', '.join(m.outputs)} | {m.description}"
        for m in store.models()
    )


class LLMChooser:
    """Asks an OpenAI-compatible chat model; the embedded chooser is its safety net."""

    name = "openai"

    def __init__(
        self,
        store: KnowledgeStore,
        chat_model: BaseChatModel,
        fallback: EmbeddedChooser,
        method: Literal["json_schema", "json_mode", "function_calling", "text"] = "json_schema",
        system_prompt: str = PLANNER_SYSTEM,
    ) -> None:
        self.store = store
        self.fallback = fallback
        self.graph = fallback.graph
        self.method = method
        self.system_prompt = system_prompt
        self.owners = store.owner_of()
        self.schema = proposal_schema(list(self.owners))
        self.chat_model = chat_model
        # "text": for servers without structured output, parse the JSON out of the free answer
        self.structured = (
            None
            if method == "text"
            else chat_model.with_structured_output(self.schema, method=method, include_raw=True)
        )

    def read(self, request: str) -> Reading:
        return self.fallback.read(request)

    def choose(self, reading: Reading) -> Choice:
        try:
            return self.propose(reading.request)
        except ProposalError as exc:
            log.warning("LLM plan rejected (%s); falling back to the embedded planner", exc)
            choice = self.fallback.choose(reading)
            choice.provenance = {
                "planner": f"{self.fallback.name} (fallback from {self.name})",
                "fallback_reason": str(exc),
            }
            return choice

    def propose(self, request: str) -> Choice:
        """The LLM's choice of models, checked against the store; raises ProposalError."""
        messages = [
            ("system", self.system_prompt.format(pool=pool_table(self.store))),
            ("user", PLANNER_USER.format(request=request)),
        ]
        try:
            if self.structured is None:
                out = self._parse_text(self.chat_model.invoke(messages))
            else:
                out: dict[str, Any] = self.structured.invoke(messages)
        except (openai.APIError, httpx.HTTPError) as exc:
            raise ProposalError(f"LLM server error: {exc}") from exc
        if out.get("parsing_error") is not None or out.get("parsed") is None:
            raw = out.get("raw")
            text = getattr(raw, "content", "") if raw is not None else ""
            raise ProposalError(
                f"output did not parse as a plan: {out.get('parsing_error')!s:.200} {text!r:.120}"
            )
        proposal = out["parsed"]
        if isinstance(proposal, dict):  # json_mode may hand back a dict
            try:
                proposal = self.schema.model_validate(proposal)
            except ValidationError as exc:
                raise ProposalError(
                    f"output does not match the plan schema: {exc.errors()[0]['msg']}"
                ) from exc
        goals: list[str] = []
        for s in proposal.subtasks:
            if s.model not in self.owners:
                raise ProposalError(f"unknown model id '{s.model}'")
            if s.model not in goals:
                goals.append(s.model)
        reasons = list(proposal.unsupported) or [
            "the LLM found no registered model for this request"
        ]
        return Choice(goals=goals, named=set(goals), unsupported="; ".join(reasons))

    def _parse_text(self, message: Any) -> dict[str, Any]:
        """The same shape as include_raw structured output, from a free-text answer."""
        text = str(getattr(message, "content", message))
        start, end = text.find("{"), text.rfind("}")
        try:
            if start < 0 or end <= start:
                raise ValueError("no JSON object in the answer")
            parsed = self.schema.model_validate_json(text[start : end + 1])
        except (ValueError, ValidationError) as exc:
            return {"raw": message, "parsed": None, "parsing_error": exc}
        return {"raw": message, "parsed": parsed, "parsing_error": None}


class LLMPlanner(Planner):
    """The LLM chooser behind the planner's read -> choose -> structure."""

    def __init__(
        self,
        store: KnowledgeStore,
        chat_model: BaseChatModel,
        fallback: Planner | None = None,
        **kwargs: Any,
    ) -> None:
        chooser = fallback.chooser if fallback is not None else EmbeddedChooser(PoolIndex(store))
        super().__init__(LLMChooser(store, chat_model, chooser, **kwargs))
