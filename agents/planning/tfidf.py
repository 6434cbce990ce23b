"""TF-IDF nearest-model baseline: the zero-shot classification row of the paper's Table I.

Each model is one TF-IDF document (task, name, description, outputs and the manual passages that
mention it); a request, read as typed, goes to its single nearest model, or is unsupported below
a similarity floor. No chains, no fusion (`Choice.chains` off): the yardstick the embedded
planner has to beat.
"""

from __future__ import annotations

import numpy as np
from edgeai.agents.planning.planner import Planner
from edgeai.agents.planning.read import Reading, split_clauses
from edgeai.agents.planning.structure import Choice, PoolGraph
from edgeai.knowledge.manuals import humanize
from edgeai.knowledge.store import KnowledgeStore
from sklearn.feature_extraction.text import TfidfVectorizer


class TfidfChooser:
    """The single nearest model by TF-IDF cosine, above `floor`."""

    name = "tfidf-nearest"

    def __init__(self, store: KnowledgeStore, floor: float = 0.1) -> None:
        self.graph = PoolGraph.of(store.models())
        metas, _ = store.units("minilm")
        docs: dict[str, list[str]] = {name: [] for name in self.graph.models}
        for meta in metas:
            if meta["model"] in docs:
                docs[meta["model"]].append(meta["text"])
        self.names = list(docs)
        self.floor = floor
        self.vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
        texts = [" ".join(docs[n]) + " " + humanize(n) for n in self.names]
        self.matrix = self.vectorizer.fit_transform(texts) if texts else None

    def read(self, request: str) -> Reading:
        """As typed: the baseline repairs nothing and splits nothing."""
        return Reading(
            request=request,
            text=request,
            negated=(),
            clauses=tuple(split_clauses(request)),
            other_language=False,
        )

    def choose(self, reading: Reading) -> Choice:
        sims = (self.vectorizer.transform([reading.text]) @ self.matrix.T).toarray()[0]
        best = int(np.argmax(sims))
        if sims[best] < self.floor:
            reason = f"nearest model similarity {sims[best]:.2f} < {self.floor}"
            return Choice(goals=[], unsupported=reason)
        return Choice(goals=[self.names[best]], relevance=None, chains=False)


class TfidfPlanner(Planner):
    def __init__(self, store: KnowledgeStore, floor: float = 0.1) -> None:
        super().__init__(TfidfChooser(store, floor))
