"""Read: the first stage of planning, what a request says before any model is scored.

A request is checked (non-empty, at most 2000 characters), its typos are repaired when it is
English (spelling.py: "descirbe the pic" -> "describe the pic"), its contrastive negations are
cut out ("..., not from my phone": the phrase is kept apart, the chooser leaves out what it
names), it is split into clauses ("and then", "und", "然后", ...), and whether it is English and
whether it names another language ("caption it in Spanish") is noted. A request in another
language is read by the English encoder as its word-by-word English gloss (gloss.py). Every word
list used here lives in words.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from edgeai.agents.planning.gloss import Glosser
from edgeai.agents.planning.spelling import SpellFixer
from edgeai.agents.planning.words import (
    CLAUSE_SPLIT,
    ENGLISH_FUNCTION_WORDS,
    NEGATED_PHRASE,
    OTHER_LANGUAGE,
)
from edgeai.errors import UserInputError
from edgeai.inputs import check_text

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def validate_request(request: str | None) -> str:
    """The request with its whitespace collapsed; a clear error when empty or too long."""
    if request is None or not str(request).strip():
        raise UserInputError(
            'the request is empty: say what you want, e.g. "how is my mood today?"'
        )
    request = " ".join(check_text(str(request), "the request").split())
    if len(request) > 2000:
        raise UserInputError(f"the request is {len(request)} characters long; the limit is 2000")
    return request


def is_english(text: str) -> bool:
    """Enough English function words and few non-ASCII letters."""
    words = re.findall(r"[a-zA-Z']+", text.lower())
    non_ascii = sum(1 for ch in text if ord(ch) > 127 and ch.isalpha())
    if non_ascii > max(2, 0.15 * len(text)):
        return False
    return bool(words) and sum(w in ENGLISH_FUNCTION_WORDS for w in words) / len(words) >= 0.15


def split_clauses(text: str) -> list[str]:
    """Parts of a multi-part request; a part must be two words or four characters long, a
    Chinese, Japanese or Korean character counting as two ("心率", heart rate, is a clause)."""
    parts = [p.strip() for p in CLAUSE_SPLIT.split(text) if p and p.strip()]
    return [p for p in parts if len(p.split()) >= 2 or len(p) + len(_CJK.findall(p)) >= 4]


def negated_phrases(text: str) -> tuple[str, list[str]]:
    """The request without its contrastive negations, and the phrases they negate:
    "Infer my mood from my body signals, not from my phone." -> ("Infer my mood from my body
    signals.", ["not from my phone"])."""
    phrases = [m.group(0).strip() for m in NEGATED_PHRASE.finditer(text) if m.group(0).strip()]
    if not phrases:
        return text, []
    rest = NEGATED_PHRASE.sub("", text)
    rest = re.sub(r"\s*[,;:\u2014\u2013-]\s*(?=[.!?]|$)", "", rest)  # what the phrase hung on
    rest = re.sub(r"([.!?])[.!?]+", r"\1", rest)
    rest = " ".join(rest.split())
    return (rest if len(rest.split()) >= 2 else text), phrases


@dataclass(frozen=True)
class Reading:
    """A request as read: what the choosers score."""

    request: str
    """as typed (whitespace collapsed)."""
    text: str
    """what is scored: typos repaired (an English request), contrastive negations cut out."""
    negated: tuple[str, ...]
    """the negated phrases ("not from my phone")."""
    clauses: tuple[str, ...]
    """the parts of `text` (one part: not a multi-part request)."""
    other_language: bool
    """`text` names a language other than English (the manuals' language)."""


class Reader:
    """Reads requests with a pool's vocabulary (its manuals' words repair typos and gloss)."""

    def __init__(
        self,
        gloss_texts: Iterable[str],
        spell_texts: Iterable[str],
        extra_words: Iterable[str],
        embed: Callable[[str, list[str]], np.ndarray] | None = None,
    ) -> None:
        """`gloss_texts`: every stored unit (the gloss's domain words); `spell_texts`: the
        models' own units (the words a typo is repaired to); `extra_words`: words known too;
        `embed`: the knowledge store's cached encoder (None: encode without a cache)."""
        self.glosser = Glosser(gloss_texts, embed) if embed else Glosser(gloss_texts)
        self.speller = SpellFixer(spell_texts, extra_words)

    def read(self, request: str) -> Reading:
        request = validate_request(request)
        fixed = self.speller.fix(request) if is_english(request) else request
        text, negated = negated_phrases(fixed)
        return Reading(
            request=request,
            text=text,
            negated=tuple(negated),
            clauses=tuple(split_clauses(text)),
            other_language=bool(OTHER_LANGUAGE.search(text)),
        )

    def for_judge(self, request: str) -> str:
        """What the learned judge reads: an English request with its typos repaired, one in
        another language as its English gloss followed by the original."""
        if is_english(request):
            return self.speller.fix(request)
        return f"{self.glosser.gloss(request)} ({request})"
