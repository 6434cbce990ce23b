"""Exact-word evidence (agents/lexical.py) beside the embeddings, on the real store."""

from __future__ import annotations

from pathlib import Path

from edgeai.agents.planning import EmbeddedPlanner, PlannerConfig
from edgeai.agents.planning.lexical import LexicalIndex, stem, terms
from edgeai.agents.planning.units import build_units
from edgeai.knowledge.pools import SAMPLES_DIR as SAMPLES
from edgeai.knowledge.store import add_to_home, open_store


def test_terms_drop_function_words_and_strip_suffixes() -> None:
    assert terms("Read the signs on the whiteboards") == ["read", "sign", "whiteboard"]
    assert stem("reading") == "read" and stem("is") == "is" and stem("gas") == "gas"
    assert stem("describe") == stem("describing") == stem("describes") and stem("class") == "class"
    # British and American spellings meet
    assert stem("colour") == stem("color") and stem("recognise") == stem("recognized")
    assert stem("emotional") == stem("emotions") and stem("national") == "national"
    # content words that scikit-learn's stop-word list holds are kept
    assert terms("describe the empty shelves") == ["describ", "empty", "shelv"]


def test_a_word_only_one_model_uses_decides() -> None:
    index = LexicalIndex(
        {
            "ocr": ["reads text on signs, receipts and whiteboards"],
            "caption": ["writes a caption describing the photo"],
            "classify": ["assigns the photo a class label"],
        }
    )
    scores = index.scores("what is written on the whiteboard?")
    assert scores["ocr"] == 1.0 and scores["caption"] == 0.0 and scores["classify"] == 0.0
    # a word every model uses weighs less than one only a single model uses
    shared = index.scores("caption the photo")
    assert shared["caption"] == 1.0 and 0.0 < shared["classify"] < 1.0
    assert set(index.scores("hello there").values()) == {0.0}
    assert LexicalIndex({}).scores("anything") == {}


def test_describe_this_photo_goes_to_the_captioner(photo_planner: EmbeddedPlanner) -> None:
    # "photo" alone is in every image model's manual; "describe" is the captioner's word
    plan = photo_planner.plan("Describe this photo.")
    assert plan.model_ids() == ["blip-image-captioner"]


def test_the_cabinet_request_goes_to_the_cabinet_model_only(tmp_path: Path) -> None:
    # with embeddings alone, the weld-seam thermal models match as well (they won outright once
    # the co-goal window was 0): the word "cabinet" is what picks the cabinet model
    add_to_home(tmp_path, [SAMPLES / "factory" / "manuals"], build_units)
    store = open_store(tmp_path)
    request = "Are there any hot spots in the electrical cabinet of weld cell 2?"
    plan = EmbeddedPlanner(store).plan(request)
    assert plan.model_ids() == ["cabinet-hotspot-finder"]
    without = EmbeddedPlanner(store, PlannerConfig(lexical_weight=0.0)).plan(request)
    assert set(without.model_ids()) != {"cabinet-hotspot-finder"}
    assert any("seam" in m for m in without.model_ids())
    assert EmbeddedPlanner(store).plan("Book me a table for two tonight.").subtasks == []


def test_the_copied_stop_words_are_scikit_learns() -> None:
    from edgeai.agents.planning.words import SKLEARN_STOP_WORDS
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    assert SKLEARN_STOP_WORDS == ENGLISH_STOP_WORDS
