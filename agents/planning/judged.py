"""Judged chooser: the learned relevance judge (relevance.py) picks the models, the declared
inputs/outputs give the structure.

1. The request is read as the judge was trained to read it: an English one with its typos
   repaired, one in another language as its English gloss followed by the original.
2. The judge reads the request beside every model's card and gives p(the request asks for this
   model's result). Every model at or above the judge's threshold is asked for; none -> the
   request is unsupported, and the answer names the closest model and its p.
3. Structure as for every chooser (structure.py): each chosen model's declared inputs pull in
   their producers (a type with one producer that exists only as its output brings it;
   otherwise only producers the judge chose feed it, else the user does), and the edges become
   `deps`.
"""

from __future__ import annotations

from edgeai.agents.planning.index import PoolIndex
from edgeai.agents.planning.planner import Planner
from edgeai.agents.planning.read import Reading
from edgeai.agents.planning.relevance import Judge, load_judge, store_cards
from edgeai.agents.planning.structure import Choice
from edgeai.knowledge.store import KnowledgeStore


class JudgedChooser:
    """Every model whose judged p clears the threshold; see the module docstring."""

    name = "judged"

    def __init__(
        self, index: PoolIndex, judge: Judge | None = None, threshold: float | None = None
    ) -> None:
        self.index = index
        self.graph = index.graph
        self.judge = judge or load_judge()
        self.cards = store_cards(index.store)
        self.threshold = float(
            threshold if threshold is not None else self.judge.meta.get("threshold", 0.5)
        )

    def read(self, request: str) -> Reading:
        return self.index.reader.read(request)

    def probabilities(self, request: str) -> dict[str, float]:
        """The judge's p for every registered model (the request as the judge reads it)."""
        read = self.index.reader.for_judge(request)
        p = self.judge.probabilities(read, [c.text for c in self.cards])
        return {c.model: float(v) for c, v in zip(self.cards, p)}

    def choose(self, reading: Reading) -> Choice:
        p = self.probabilities(reading.request)
        chosen = sorted((m for m, v in p.items() if v >= self.threshold), key=lambda m: -p[m])
        if not chosen:
            best = max(p, key=p.get)
            reason = (
                "no registered model serves this request; closest is "
                f"'{best}' (p={p[best]:.2f} < {self.threshold:.2f})"
            )
            return Choice(goals=[], unsupported=reason)
        return Choice(goals=chosen, named=set(chosen), rank=p, relevance=p)


class JudgedPlanner(Planner):
    def __init__(
        self, store: KnowledgeStore, judge: Judge | None = None, threshold: float | None = None
    ) -> None:
        super().__init__(JudgedChooser(PoolIndex(store), judge, threshold))

    def probabilities(self, request: str) -> dict[str, float]:
        return self.chooser.probabilities(request)
