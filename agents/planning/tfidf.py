"""TF-IDF nearest-model baseline: the zero-shot classification row of the paper's Table I.

Each model is one TF-IDF document (task, name, description, outputs and the manual passages that
mention it); a request goes to its single nearest model, or is unsupported below a similarity floor.
No chains, no fusion: the yardstick the embedded planner has to beat.
"""

from __future__ import annotations

import time

import numpy as np
from edgeai.agents.planning.embedded import goal_text, validate_request
from edgeai.knowledge.store import KnowledgeStore, humanize
from edgeai.schemas import Plan, Subtask
from sklearn.feature_extraction.text import TfidfVectorizer


class TfidfPlanner:
    name = "tfidf-nearest"

    def __init__(self, store: KnowledgeStore, floor: float = 0.1) -> None:
        self.models = {m.name: m for m in store.models()}
        metas, _ = store.units("minilm")
        docs: dict[str, list[str]] = {name: [] for name in self.models}
        for meta in metas:
            if meta["model"] in docs:
                docs[meta["model"]].append(meta["text"])
        self.names = list(docs)
        self.floor = floor
        self.vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
        texts = [" ".join(docs[n]) + " " + humanize(n) for n in self.names]
        self.matrix = self.vectorizer.fit_transform(texts) if texts else None

    def plan(self, request: str) -> Plan:
        started = time.perf_counter()
        request = validate_request(request)
        if self.matrix is None:
            return Plan(request=request, unsupported=["no models"], planner=self.name)
        sims = (self.vectorizer.transform([request]) @ self.matrix.T).toarray()[0]
        best = int(np.argmax(sims))
        if sims[best] < self.floor:
            return Plan(
                request=request,
                unsupported=[f"nearest model similarity {sims[best]:.2f} < {self.floor}"],
                planner=self.name,
                seconds=round(time.perf_counter() - started, 4),
            )
        model = self.models[self.names[best]]
        return Plan(
            request=request,
            subtasks=[Subtask(id=1, model=model.name, device=model.device, goal=goal_text(model))],
            planner=self.name,
            seconds=round(time.perf_counter() - started, 4),
        )
