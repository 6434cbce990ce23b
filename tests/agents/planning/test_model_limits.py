"""A limit stated in one model's section applies to that model only; a limit in the device's
general text applies to every model of the device (issue 31, point 3).

The shape that broke the planner on a pool written by others: a camera hosting a species
classifier, whose section says it does not count, locate or name colours, beside a visual
question answerer that does exactly that. Built from manuals of that shape (written here, in
three styles: a model's heading, a paragraph naming the model, a sentence naming it), planned
with the real embedded planner over a real store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from edgeai.agents.planning.units import retrieval_units
from edgeai.knowledge.manuals import manual_sections, parse_manual_text

FRONT = """---
device: feeder-camera
kind: bird feeder camera
tier: client
models:
  - name: bird-species-classifier
    task: bird species classification
    inputs: [feeder_image]
    outputs: [bird_species]
    description: Names the species of the bird at the feeder from a close-up photo.
  - name: feeder-vqa
    task: visual question answering about the feeder photo
    inputs: [feeder_image, question_text]
    outputs: [answer_text]
    description: Answers free questions about the latest feeder photo, such as how many birds
      there are, what colour they are and where they sit.
---
"""

SECTIONS = FRONT + """# Feeder camera

A weatherproof camera that photographs the feeder whenever a bird lands. The camera does not
record sound or video.

## bird-species-classifier

Recognises 240 garden species from a close-up photo.

### Limits
- It does not count birds, say where a bird is sitting, or name a colour.
- It does not identify individual birds.

## feeder-vqa

Answers questions in plain words about the newest photo: how many birds, which colours, where
they sit on the feeder.
"""

PARAGRAPHS = FRONT + """# Feeder camera

A weatherproof camera that photographs the feeder whenever a bird lands. The camera does not
record sound or video.

The **bird-species-classifier** recognises 240 garden species from a close-up photo. It does
not count birds, say where a bird is sitting, or name a colour.

The **feeder-vqa** model answers questions in plain words about the newest photo: how many
birds, which colours, where they sit on the feeder.
"""

HUB = """---
device: garden-hub
kind: garden hub
tier: edge
models:
  - name: feeder-visit-logger
    task: feeder visit logging
    inputs: [feeder_image]
    outputs: [visit_log]
    description: Keeps a log of feeder visits per hour from the camera's photos.
---
# Garden hub

Stores the feeder photos and logs visits. It does not control the feeder's seed dispenser.
"""


def owners(text: str) -> dict[str, str]:
    from edgeai.knowledge.manuals import parse_manual_text as parse

    return {t: m for m, kind, t in retrieval_units(parse(text, "feeder-camera.md"))
            if kind == "limit"}


@pytest.mark.parametrize("text", [SECTIONS, PARAGRAPHS], ids=["section", "paragraph"])
def test_a_limit_in_a_models_own_text_is_that_models(text: str) -> None:
    limits = owners(text)
    counting = next(t for t in limits if t.startswith("It does not count birds"))
    assert limits[counting] == "bird-species-classifier"
    assert limits["name a colour"] == "bird-species-classifier"
    # the device's general text stays the device's
    sound = next(t for t in limits if t.startswith("The camera does not record sound"))
    assert limits[sound] == ""


def test_a_sentence_naming_one_model_owns_its_limit() -> None:
    text = FRONT + "# Camera\n\nNote that bird-species-classifier does not count the birds.\n"
    limits = owners(text)
    assert set(limits.values()) == {"bird-species-classifier"}


def test_sections_carry_their_headings() -> None:
    sections = manual_sections("# A\n\nintro text here\n\n## B\n\n### C\n- one two three\n\n## D\n\nlast one here")
    assert [h for h, _, _ in sections] == [("A",), ("A", "B", "C"), ("A", "D")]


def _home(tmp_path: Path, text: str) -> Path:
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.store import add_to_home

    manuals = tmp_path / "manuals"
    manuals.mkdir()
    (manuals / "feeder-camera.md").write_text(text, encoding="utf-8")
    (manuals / "garden-hub.md").write_text(HUB, encoding="utf-8")
    parse_manual_text(text, "feeder-camera.md")  # the manual is valid
    home = tmp_path / "home"
    add_to_home(home, [manuals], build_units)
    return home


@pytest.fixture(scope="module", params=["section", "paragraph"])
def planner(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    from edgeai.agents.planning import EmbeddedPlanner
    from edgeai.knowledge.store import open_store

    text = SECTIONS if request.param == "section" else PARAGRAPHS
    return EmbeddedPlanner(open_store(_home(tmp_path_factory.mktemp(request.param), text)))


@pytest.mark.parametrize("request_text", [
    "count the birds on the feeder for me",
    "where is the bird sitting on the feeder, left or right?",
])
def test_a_neighbours_limit_does_not_veto_the_model_that_does_it(planner, request_text: str) -> None:
    # before: "the manual of 'feeder-camera' says: 'It does not count birds'" -> refused
    plan = planner.plan(request_text)
    assert [t.model for t in plan.subtasks] == ["feeder-vqa"], plan.unsupported


def test_a_models_own_limit_counts_against_it_alone(planner) -> None:
    index = planner.chooser.index
    scored = index.score("count the birds on the feeder for me", 60)
    # the classifier's section denies counting: against it, not against its neighbour
    assert scored.against["bird-species-classifier"] > scored.against["feeder-vqa"] + 0.2
    # and a model's own limit is never the whole pool's reason to refuse
    assert "count" not in scored.pool_limit
    owned = [m["model"] for m, dev in zip(index.limits["minilm"][0], index.device_limits)
             if not dev]
    assert set(owned) == {"bird-species-classifier"}


@pytest.mark.parametrize("request_text", [
    "can the camera record a video clip of the feeder?",  # the camera's general text
    "refill the seed dispenser of the feeder",  # the hub's
])
def test_the_devices_general_limit_still_refuses(planner, request_text: str) -> None:
    plan = planner.plan(request_text)
    assert plan.subtasks == []
    assert "does not" in plan.unsupported[0]
