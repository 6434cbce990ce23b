"""Exact-word evidence beside the embeddings: BM25 over each model's own units.

Sentence embeddings blur the one distinctive word that decides between neighbours: "hot spots
in the electrical cabinet" lies about as close to a weld-seam thermal model as to the cabinet
hot-spot finder whose manual names the cabinet. A word that only one model's units use
("cabinet", "whiteboard", "layer") is strong evidence for that model. BM25 (Robertson and
Zaragoza, 2009) over one document per model (its task, name, description, generated questions
and the manual passages and sentences attributed to it) scores that; the planner adds it,
scaled to the best model's score, to the embedding relevance when ranking models of an English
request (`PlannerConfig.lexical_weight`). Open-set rejection stays on the embedding score alone.
Requests in other languages get none: their word-by-word gloss (agents/gloss.py) is too rough for
exact words (measured on the sample pools: it costs more requests than it wins).
"""

from __future__ import annotations

import math
import re
from collections import Counter

from edgeai.agents.planning.words import (
    BRITISH_SPELLINGS,
    CONTENT_STOP_WORDS,
    SKLEARN_STOP_WORDS,
    STEM_SUFFIXES,
)

_WORD = re.compile(r"[a-z]+")
STOP_WORDS = SKLEARN_STOP_WORDS - CONTENT_STOP_WORDS
K1, B = 1.2, 0.75
"""the usual BM25 constants (term-frequency saturation, length normalisation)."""


def stem(word: str) -> str:
    """A light suffix strip, enough to meet "signs" with "sign", "reading" with "read" and
    "describe" with "describing"; British spellings meet American ones ("colour", "color";
    "recognise", "recognize"); "-tional" becomes "-tion" ("emotional", "emotions")."""
    if len(word) > 4:
        for pattern, repl in BRITISH_SPELLINGS:
            word = pattern.sub(repl, word)
    if word.endswith("tional") and len(word) > 8:  # Porter's step 2
        word = word[:-2]
    for suffix in STEM_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def terms(text: str) -> list[str]:
    """Content words of an English text, lower-cased and stemmed."""
    return [stem(w) for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in STOP_WORDS]


class LexicalIndex:
    """BM25 over one document per model."""

    def __init__(self, documents: dict[str, list[str]]) -> None:
        self.tf = {
            name: Counter(t for text in texts for t in terms(text))
            for name, texts in documents.items()
        }
        self.length = {name: sum(tf.values()) for name, tf in self.tf.items()}
        n = len(self.tf)
        df = Counter(t for tf in self.tf.values() for t in tf)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.avg_length = (sum(self.length.values()) / n) if n else 1.0

    def scores(self, text: str) -> dict[str, float]:
        """BM25 of `text` against each model, divided by the best (all 0 when no word is shared)."""
        query = set(terms(text))
        out: dict[str, float] = {}
        for name, tf in self.tf.items():
            norm = K1 * (1 - B + B * self.length[name] / max(self.avg_length, 1e-9))
            out[name] = sum(
                self.idf[t] * tf[t] * (K1 + 1) / (tf[t] + norm) for t in query if tf.get(t)
            )
        best = max(out.values(), default=0.0)
        return {name: (s / best if best > 0 else 0.0) for name, s in out.items()}
