"""Retrieval units of a manual: paragraph ownership, derived questions, whole and split limits."""


from edgeai.agents.planning.units import retrieval_units
from edgeai.knowledge.manuals import manual_paragraphs, parse_manual
from edgeai.knowledge.pools import SAMPLES_DIR as SAMPLES


def test_sentence_in_a_models_paragraph_belongs_to_that_model() -> None:
    units = retrieval_units(parse_manual(SAMPLES / "photo" / "manuals" / "edge-server-rtx4090.md"))
    owner = {text: model for model, kind, text in units if kind == "sentence"}
    # names no model, but sits in the paragraph that starts with **ocr-text-reader**
    handles = next(t for t in owner if t.startswith("It handles street signs"))
    assert owner[handles] == "ocr-text-reader"


def test_questions_about_a_form_of_an_input_are_derived() -> None:
    units = retrieval_units(parse_manual(SAMPLES / "photo" / "manuals" / "azure-cloud.md"))
    assert ("text-translator", "derived_query", "what is my translated text?") in units
    assert ("speech-transcriber", "query", "what is my text?") in units
    enhancer = retrieval_units(
        parse_manual(SAMPLES / "photo" / "manuals" / "edge-server-rtx4090.md")
    )
    # an image -> image model gets neither questions nor "estimates image"
    assert not [u for u in enhancer if u[0] == "photo-enhancer" and u[1] in ("query", "outputs")]


def test_negated_sentence_is_a_limit_whole_and_split() -> None:
    units = retrieval_units(parse_manual(SAMPLES / "photo" / "manuals" / "edge-server-rtx4090.md"))
    limits = {text for _, kind, text in units if kind == "limit"}
    assert "works on video" in limits
    assert any(t.startswith("None of these models translates text, identifies") for t in limits)


def test_paragraphs_keep_bullets_apart() -> None:
    body = "Intro line one.\nStill the intro.\n\n- first use case here\n- second use case here\n"
    assert manual_paragraphs(body) == [
        ("Intro line one. Still the intro.", ["Intro line one.", "Still the intro."]),
        (
            "first use case here second use case here",
            ["first use case here", "second use case here"],
        ),
    ]
