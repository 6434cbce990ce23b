"""Judged planner: the learned relevance judge (agents/relevance.py) picks the models, the
declared inputs/outputs give the structure.

1. The request is read as the judge was trained to read it: an English one with its typos
   repaired, one in another language as its English gloss followed by the original.
2. The judge reads the request beside every model's card and gives p(the request asks for this
   model's result). Every model at or above the judge's threshold is asked for; none -> the
   request is unsupported, and the answer names the closest model and its p.
3. Structure as in the embedded planner (agents/planner.py, step 6): each chosen model's
   declared inputs pull in their producers (a type with one producer that exists only as its
   output brings it; otherwise only producers the judge chose feed it, else the user does), and
   the edges become `deps`.
"""

from __future__ import annotations

import time

from edgeai.agents.planning.embedded import (
    EmbeddedPlanner,
    PlannerConfig,
    Scored,
    validate_request,
)
from edgeai.agents.planning.relevance import Judge, load_judge, read_request, store_cards
from edgeai.knowledge.store import KnowledgeStore
from edgeai.schemas import Plan


class JudgedPlanner(EmbeddedPlanner):
    """Learned model choice + declared I/O structure; see the module docstring."""

    name = "judged"

    def __init__(
        self,
        store: KnowledgeStore,
        config: PlannerConfig | None = None,
        judge: Judge | None = None,
        threshold: float | None = None,
    ) -> None:
        super().__init__(store, config)
        self.judge = judge or load_judge()
        self.cards = store_cards(store)
        self.threshold = float(
            threshold if threshold is not None else self.judge.meta.get("threshold", 0.5)
        )

    def probabilities(self, request: str) -> dict[str, float]:
        """The judge's p for every registered model (the request as the judge reads it)."""
        read = read_request(request, self.speller, self.index.glosser)
        p = self.judge.probabilities(read, [c.text for c in self.cards])
        return {c.model: float(v) for c, v in zip(self.cards, p)}

    def plan(self, request: str) -> Plan:
        started = time.perf_counter()
        request = validate_request(request)
        if not self.index.models:
            return Plan(
                request=request,
                unsupported=["the knowledge store holds no models: add device manuals first"],
                planner=self.name,
            )
        p = self.probabilities(request)
        chosen = sorted((m for m, v in p.items() if v >= self.threshold), key=lambda m: -p[m])
        if not chosen:
            best = max(p, key=p.get)
            reason = (
                "no registered model serves this request; closest is "
                f"'{best}' (p={p[best]:.2f} < {self.threshold:.2f})"
            )
            return Plan(
                request=request,
                unsupported=[reason],
                planner=self.name,
                seconds=round(time.perf_counter() - started, 4),
            )
        whole = Scored(request, z=p, raw=p)  # the structure step reads only the scores
        plan = self._build(request, chosen, whole, set(chosen))
        plan.seconds = round(time.perf_counter() - started, 4)  # type: ignore[attr-defined]
        return plan
