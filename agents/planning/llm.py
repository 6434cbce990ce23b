"""LLM planner (`openai` backend): the LLM proposes the decomposition, constrained to registered ids.

The proposal schema lists the store's model ids as an enum and is requested as structured output
with an explicit `method=` (json_schema by default, which OpenAI, vLLM and `edgeai llm serve`
enforce by guided decoding). The proposal is then validated against the store; output that does
not parse, names an unknown id or has broken dependencies falls back to the embedded planner, with
the reason logged and kept in the plan (`fallback_reason`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import httpx
import openai
from edgeai.agents.model_selector import PlanValidationError, validate_plan
from edgeai.agents.planning.embedded import EmbeddedPlanner, validate_request
from edgeai.agents.planning.prompts import PLANNER_SYSTEM, PLANNER_USER
from edgeai.knowledge.store import KnowledgeStore
from edgeai.schemas import Plan, Subtask
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


class LLMPlanner:
    """Plans with an OpenAI-compatible chat model; the embedded planner is its safety net."""

    name = "openai"

    def __init__(
        self,
        store: KnowledgeStore,
        chat_model: BaseChatModel,
        fallback: EmbeddedPlanner,
        method: Literal["json_schema", "json_mode", "function_calling", "text"] = "json_schema",
        system_prompt: str = PLANNER_SYSTEM,
    ) -> None:
        self.store = store
        self.fallback = fallback
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

    def propose(self, request: str) -> Plan:
        """The LLM's plan, validated against the store; raises ProposalError/PlanValidationError."""
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
        subtasks = []
        for s in proposal.subtasks:
            if s.model not in self.owners:
                raise ProposalError(f"unknown model id '{s.model}'")
            subtasks.append(
                Subtask(
                    id=s.id, model=s.model, device=self.owners[s.model], goal=s.goal, deps=s.deps
                )
            )
        plan = Plan(
            request=request,
            subtasks=subtasks,
            combine=proposal.combine or None,
            unsupported=list(proposal.unsupported) if not subtasks else [],
            planner=self.name,
        )
        if not subtasks and not plan.unsupported:
            plan.unsupported = ["the LLM found no registered model for this request"]
        validate_plan(plan, self.store)
        return plan

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

    def plan(self, request: str) -> Plan:
        started = time.perf_counter()
        request = validate_request(request)
        try:
            plan = self.propose(request)
        except (ProposalError, PlanValidationError) as exc:
            log.warning("LLM plan rejected (%s); falling back to the embedded planner", exc)
            plan = self.fallback.plan(request)
            plan.planner = f"{self.fallback.name} (fallback from {self.name})"  # type: ignore[attr-defined]
            plan.fallback_reason = str(exc)  # type: ignore[attr-defined]
        plan.seconds = round(time.perf_counter() - started, 4)  # type: ignore[attr-defined]
        return plan


def make_planner(settings: Any, store: KnowledgeStore, method: str = "json_schema"):
    """The planner the settings select: embedded, or the LLM planner with the embedded fallback."""
    embedded = EmbeddedPlanner(store)
    if settings.llm_backend == "embedded":
        return embedded
    from edgeai.agents.llm_backend import get_chat_model

    return LLMPlanner(store, get_chat_model(settings, max_tokens=400), embedded, method=method)
