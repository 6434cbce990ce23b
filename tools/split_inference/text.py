"""Word-level vocabularies of the photo world's captions, questions and answers (no files needed).

The world speaks a small closed grammar, so the vocabulary is built from the grammar's own word
lists: deterministic, identical on device and edge, and never out of date with world.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from edgeai.tools.split_inference import world

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
_GRAMMAR_WORDS = [
    "a", "an", "and", "on", "the", "photo", "of", "there", "is", "are", "lying", "with", "in",
    "at", "what", "color", "shape", "how", "many", "background", "large", "small", "left",
    "right", "top", "bottom", "middle", "centre", ",", "?",
]


def tokenize(text: str) -> list[str]:
    """Lower-case words and single punctuation marks: "Two red circles, ok?" ->
    ['two', 'red', 'circles', ',', 'ok', '?']."""
    return _TOKEN.findall(text.lower())


def detokenize(tokens: list[str]) -> str:
    """Join tokens back into text, with no space before punctuation."""
    out = ""
    for t in tokens:
        out += t if (not out or t in ",?.") else " " + t
    return out


@dataclass(frozen=True)
class Vocab:
    """Token <-> id mapping; ids of the specials are fixed (pad 0, bos 1, eos 2, unk 3)."""

    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self._index.get(token, self._index.get(UNK, 0))  # type: ignore[attr-defined]

    def encode(self, text: str, max_len: int, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids, truncated to max_len (EOS kept as the last id when asked), padded with 0."""
        ids = [self.id(t) for t in tokenize(text)]
        if bos:
            ids = [self.id(BOS), *ids]
        if eos:
            ids = [*ids[: max_len - 1], self.id(EOS)]
        ids = ids[:max_len]
        return ids + [self.id(PAD)] * (max_len - len(ids))

    def encode_batch(
        self, texts: list[str], max_len: int, bos: bool = False, eos: bool = False
    ) -> torch.Tensor:
        """(B, max_len) long tensor of encode() rows."""
        return torch.tensor([self.encode(t, max_len, bos, eos) for t in texts], dtype=torch.long)

    def decode(self, ids: list[int]) -> str:
        """Text up to the first EOS, skipping pad/bos."""
        words: list[str] = []
        for i in ids:
            t = self.tokens[i] if 0 <= i < len(self.tokens) else UNK
            if t == EOS:
                break
            if t in (PAD, BOS):
                continue
            words.append(t)
        return detokenize(words)


def _unique(words: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


def word_vocab() -> Vocab:
    """Vocabulary of captions and questions: specials, then grammar words, then world words."""
    words = [*_GRAMMAR_WORDS, *world.KINDS, *world.PLURALS.values(), *world.COLOUR_NAMES,
             *world.BACKGROUNDS, *world.NUMBER_WORDS, *world.SIZES, *world.ROWS, *world.COLUMNS]
    return Vocab(_unique([*SPECIALS, *words]))


def answer_vocab() -> Vocab:
    """Canonical single-word answers the VQA head chooses from (no specials but <unk>)."""
    answers = ["yes", "no", *[str(n) for n in range(5)], *world.COLOUR_NAMES, *world.KINDS,
               *world.BACKGROUNDS]
    return Vocab(_unique([UNK, *answers]))


WORDS = word_vocab()
ANSWERS = answer_vocab()
CLASSES: tuple[str, ...] = world.KINDS
