"""Word-by-word English gloss of a request in another language, for the English encoder.

The manuals are English; a request in German or Chinese reaches them only through the
multilingual encoder (USE-m3), which is the weaker of the two on this task. USE-m3 was trained
to put translations of a sentence close together, and that carries down to single words:
"Regale" lies nearest "shelves", "Puls" nearest "pulse", "fragole" nearest "berries". So each
word of a non-English request is replaced by its nearest English word (the pool's manual words
plus the most frequent English words) in USE-m3's space, and the English encoder reads that
gloss ("welche Regale sind leer" -> "which shelves are empty"). No dictionary, no translation
model: nothing but the two shipped encoders. Scripts written without spaces (Chinese, Japanese)
are cut into USE-m3's own sentence pieces first. The gloss is rough (word order and grammar
stay those of the source); it is a second opinion beside USE-m3 on the original text, not a
replacement for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np
from edgeai.agents.planning.spelling import vocabulary
from edgeai.knowledge.embeddings import encode_multilingual, multilingual_pieces

GENERAL_WORDS = 3000
"""how many of the most frequent English words join the manuals' words as gloss targets
(2,000-5,000 score alike on the sample pools; 10,000 adds rare words that steal matches)."""
_WORD = re.compile(r"\w+")
_NO_SPACES = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
# BERT's uncased vocabulary: ids below this are reserved slots and single characters; whole
# words follow, roughly from the most frequent down.
_FIRST_WORD_RANK = 1996


@lru_cache(maxsize=1)
def general_words() -> tuple[str, ...]:
    """The most frequent English whole words of the shipped MiniLM vocabulary."""
    ranked = sorted(vocabulary().items(), key=lambda kv: kv[1])
    return tuple(w for w, rank in ranked if rank >= _FIRST_WORD_RANK)[:GENERAL_WORDS]


def _encode(encoder: str, texts: list[str]) -> np.ndarray:
    """USE-m3 outside a data home (judge training): the same lists, encoded once per process."""
    return _encode_once(tuple(texts))


@lru_cache(maxsize=16)
def _encode_once(texts: tuple[str, ...]) -> np.ndarray:
    return encode_multilingual(list(texts))


def tokens(text: str) -> list[str]:
    """Words of `text`; a run of Chinese/Japanese/Korean script is cut into USE-m3's pieces."""
    out: list[str] = []
    for word in _WORD.findall(text):
        if _NO_SPACES.search(word):
            out.extend(p for p in multilingual_pieces(word) if p)
        else:
            out.append(word)
    return out


class Glosser:
    """Maps each word of a text to its nearest English word (manual words + frequent words)."""

    def __init__(
        self,
        domain_texts: Iterable[str],
        embed: Callable[[str, list[str]], np.ndarray] = _encode,
    ) -> None:
        """`embed(encoder, texts)`: the knowledge store's cached encoder where there is one."""
        known = {w.lower() for t in domain_texts for w in _ENGLISH_WORD.findall(t)}
        domain = sorted(known)
        general = [i for i, w in enumerate(general_words()) if w not in known]
        self.embed = embed
        self.words = domain + [general_words()[i] for i in general]
        general_emb = embed("multilingual", list(general_words()))
        self.emb = np.concatenate([embed("multilingual", domain), general_emb[general]]).astype(
            np.float32
        )
        self._cache: dict[str, str] = {}

    def gloss(self, text: str) -> str:
        """`text` word by word in English (empty if it has no words)."""
        if text in self._cache:
            return self._cache[text]
        words = tokens(text)
        out = ""
        if words and len(self.words):
            nearest = (self.embed("multilingual", words) @ self.emb.T).argmax(axis=1)
            out = " ".join(self.words[j] for j in nearest)
        if len(self._cache) < 4096:
            self._cache[text] = out
        return out
