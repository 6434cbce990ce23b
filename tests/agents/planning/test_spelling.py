"""Typo repair and implicit translation sub-tasks of the embedded planner."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgeai.agents.planning import EmbeddedPlanner
from edgeai.agents.planning.spelling import SpellFixer, osa_distance
from edgeai.knowledge.store import open_store


@pytest.fixture
def photo(photo_planner: EmbeddedPlanner) -> EmbeddedPlanner:
    return photo_planner


def test_osa_distance_counts_a_swap_as_one_edit() -> None:
    assert osa_distance("descirbe", "describe") == 1
    assert osa_distance("clasify", "classify") == 1
    assert osa_distance("mood", "mood") == 0
    assert osa_distance("kitten", "sitting") == 3


def test_one_edit_typos_are_repaired_known_words_kept() -> None:
    fixer = SpellFixer(["The model estimates the mood of a person and classifies photos."])
    assert fixer.fix("descirbe the pic") == "describe the pic"
    assert fixer.fix("moood check pls") == "mood check pls"
    assert fixer.fix("clasify this photo") == "classify this photo"
    # known words, short words, numbers and non-ASCII words are left alone
    text = "Check the pic of cell M3 and the Förderband motor"
    assert fixer.fix(text) == text


def test_the_manuals_words_win_over_other_english_words() -> None:
    # 'clasify' is one edit from 'clarify' and from 'classify'; a pool that classifies wins
    assert SpellFixer(["It can classify images."]).correct_word("clasify") == "classify"


def test_another_form_of_a_word_is_not_a_typo() -> None:
    # 'transcribe' is in neither vocabulary, but 'transcribes' is in the manual: leave it
    fixer = SpellFixer(["The speech model transcribes voice notes."])
    assert fixer.correct_word("transcribe") == "transcribe"


def test_typo_request_routes_like_the_clean_one(photo: EmbeddedPlanner) -> None:
    assert photo.plan("descirbe the pic").model_ids() == photo.plan("describe the pic").model_ids()
    assert photo.plan("descirbe the pic").request == "descirbe the pic"  # the user's words kept


@pytest.mark.parametrize(
    "request_text", ["Caption this photo in French.", "Décris cette photo en français."]
)
def test_naming_another_language_chains_a_translator(
    photo: EmbeddedPlanner, request_text: str
) -> None:
    plan = photo.plan(request_text)
    assert set(plan.model_ids()) == {"blip-image-captioner", "text-translator"}
    assert plan.edges() == {("blip-image-captioner", "text-translator")}


def test_english_output_needs_no_translator(photo: EmbeddedPlanner) -> None:
    assert "text-translator" not in photo.plan("Caption this photo in English.").model_ids()


def test_a_language_named_where_no_model_translates_adds_nothing(healthcare_home: Path) -> None:
    planner = EmbeddedPlanner(open_store(healthcare_home))
    plan = planner.plan("What's my heart rate right now? Answer in French.")
    assert set(plan.model_ids()) == {"heartbeat-acoustic"}


def test_a_short_foreign_stem_does_not_hide_an_english_typo() -> None:
    # "stres" is a word in other languages; "stresed" is still a slip of "stressed"
    fixer = SpellFixer(["The model estimates crop water stress."], {"stres"})
    assert fixer.fix("is the maize water stresed?") == "is the maize water stressed?"
