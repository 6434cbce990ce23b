"""Word-by-word English gloss of non-English requests (agents/gloss.py), on the real encoders."""

from __future__ import annotations

import pytest
from edgeai.agents.planning import EmbeddedPlanner
from edgeai.agents.planning.gloss import Glosser, tokens

MANUAL = (
    "The shelf camera counts the products on each shelf and reports empty shelves. "
    "The checkout camera measures the queue at the tills. The wristband estimates heart rate "
    "from the pulse."
)


@pytest.fixture(scope="module")
def glosser() -> Glosser:
    return Glosser([MANUAL])


def test_words_in_other_languages_map_to_the_manuals_english_words(glosser: Glosser) -> None:
    assert glosser.gloss("Wie hoch ist mein Puls?").split() == ["how", "high", "is", "my", "pulse"]
    assert "shelves" in glosser.gloss("Welche Regale muss ich nachfüllen?").split()
    assert "queue" in glosser.gloss("¿Cuánta gente espera en la cola?").split()
    assert "heart" in glosser.gloss("Quelle est ma fréquence cardiaque ?").split()


def test_scripts_without_spaces_are_cut_into_pieces(glosser: Glosser) -> None:
    pieces = tokens("货架上有哪些商品")
    assert len(pieces) > 1 and "".join(pieces) == "货架上有哪些商品"
    assert "products" in glosser.gloss("货架上有哪些商品").split()
    assert tokens("...") == [] and glosser.gloss("...") == ""


def test_a_request_in_german_reaches_the_right_model(healthcare_planner: EmbeddedPlanner) -> None:
    # before the gloss, USE-m3 alone also pulled in the respiration model
    planner = healthcare_planner
    plan = planner.plan("Wie hoch ist mein Puls gerade?")
    assert [t.model for t in plan.subtasks] == ["heartbeat-acoustic"]
    assert planner.index.glosser.gloss("mein Puls").split() == ["my", "pulse"]


def test_a_question_about_a_transformed_output_needs_the_transformation(
    photo_planner: EmbeddedPlanner,
) -> None:
    # "what is my translated text?" must not win a request that only asks for the text itself
    from edgeai.agents.planning.index import plain_question
    from edgeai.knowledge.store import PoolModel

    translator = PoolModel(
        name="t",
        device="d",
        tier="cloud",
        task="text translation",
        description="",
        inputs=("text",),
        outputs=("translated_text",),
        entry={},
    )
    meta = {"kind": "derived_query", "text": "what is my translated text?"}
    assert plain_question(meta, translator) == "what is my text?"
    assert plain_question({"kind": "query", "text": "what is my text?"}, translator) is None

    index = photo_planner.index
    rows, _ = index.plain_of["minilm"]
    assert len(rows) and all(index.units["minilm"][0][i]["kind"] == "derived_query" for i in rows)
    sims = index._model_sims(
        "minilm", index.embed("minilm", ["what is my text?", "what is my translated text?"])
    )
    plain, asked = sims["text-translator"]
    assert asked > 0.85 and plain < asked - 0.2
