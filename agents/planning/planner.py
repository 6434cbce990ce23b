"""The planner: read -> choose -> structure, the same three stages for every chooser.

`Planner.plan(request)` checks and reads the request (read.py), lets its chooser decide which
models the request asks for (`Chooser.choose` -> `Choice`: the embedded chooser in embedded.py,
the learned judge in judged.py, the TF-IDF baseline in tfidf.py, an LLM in llm.py), and closes
that choice over the manuals' declared inputs/outputs into a plan (structure.py). The plan
records which planner made it and how long it took (`planner`, `seconds`).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from edgeai.agents.planning.embedded import EmbeddedChooser, PlannerConfig
from edgeai.agents.planning.index import PoolIndex
from edgeai.agents.planning.read import Reading, validate_request
from edgeai.agents.planning.structure import Choice, PoolGraph, structure
from edgeai.knowledge.store import KnowledgeStore
from edgeai.schemas import Plan

EMPTY_STORE = "the knowledge store holds no models: add device manuals first"


class Chooser(Protocol):
    """Decides which models a request asks for; the structure step does the rest."""

    name: str
    graph: PoolGraph

    def read(self, request: str) -> Reading:
        """The request as this chooser reads it (typos, negations, clauses, language)."""
        ...

    def choose(self, reading: Reading) -> Choice:
        """The goals (models whose results are asked for) and what structure needs to know."""
        ...


class Planner:
    """A request -> a plan, through one chooser (see the module docstring)."""

    def __init__(self, chooser: Chooser) -> None:
        self.chooser = chooser
        self.name = chooser.name

    def plan(self, request: str) -> Plan:
        started = time.perf_counter()
        request = validate_request(request)
        if not self.chooser.graph.models:
            return Plan(request=request, unsupported=[EMPTY_STORE], planner=self.name)
        choice = self.chooser.choose(self.chooser.read(request))
        plan = structure(request, choice, self.chooser.graph, self.name)
        plan.seconds = round(time.perf_counter() - started, 4)
        return plan


class EmbeddedPlanner(Planner):
    """The default planner: the embedded chooser over a store (no LLM needed)."""

    def __init__(self, store: KnowledgeStore, config: PlannerConfig | None = None) -> None:
        chooser = EmbeddedChooser(PoolIndex(store), config)
        super().__init__(chooser)
        self.index, self.config = chooser.index, chooser.config


def make_planner(
    settings: Any,
    store: KnowledgeStore,
    method: str = "json_schema",
    chat_model: Any | None = None,
) -> Planner:
    """The planner the settings select: embedded, or the LLM planner with the embedded fallback
    (the LLM's libraries load only then); a given `chat_model` (a LangChain chat model) selects
    the LLM planner over it whatever the settings say."""
    if chat_model is None and settings.llm_backend == "embedded":
        if getattr(settings, "planner", "embedded") == "learned":
            from edgeai.agents.planning.learned import LearnedPlanner

            return LearnedPlanner(store)
        return EmbeddedPlanner(store)
    from edgeai.agents.planning.llm import LLMPlanner

    if chat_model is None:
        from edgeai.agents.llm_backend import get_chat_model

        chat_model = get_chat_model(settings, max_tokens=settings.llm_max_tokens)
    return LLMPlanner(store, chat_model, method=method)
