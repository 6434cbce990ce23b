"""The photo world: deterministic from seeds, photo-sized PNGs, labels/captions/answers that match the scene."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from edgeai.errors import UserInputError
from edgeai.tools.split_inference import world
from edgeai.tools.split_inference.text import ANSWERS, WORDS, detokenize, tokenize
from PIL import Image


def test_same_seed_same_example_and_items_reproducible_alone():
    batch = world.make_examples("vqa", 4, seed=10)
    again = world.example("vqa", 12)
    assert np.array_equal(batch[2].image, again.image)
    assert (batch[2].question, batch[2].targets) == (again.question, again.targets)
    # The same image seed shows the same photo whichever task asks for it.
    assert np.array_equal(world.example("classify", 12).image, again.image)
    assert not np.array_equal(batch[0].image, batch[1].image)


def test_photo_shape_and_png_size_like_a_real_photo():
    for ex in world.make_examples("classify", 4, seed=0):
        assert ex.image.shape == (224, 224, 3) and ex.image.dtype == np.uint8
        buf = io.BytesIO()
        Image.fromarray(ex.image).save(buf, "PNG")
        assert 95_000 <= len(buf.getvalue()) <= 160_000


def test_scene_structure_one_large_object_in_distinct_cells():
    for seed in range(200):
        scene = world.scene_of(seed)
        assert 1 <= len(scene.objects) <= 4
        assert [o.size for o in scene.objects].count("large") == 1
        assert scene.main.size == "large"
        cells = [o.cell for o in scene.objects]
        assert len(set(cells)) == len(cells)
        assert world.label(scene) == scene.main.kind


def test_label_is_the_large_objects_kind_and_pixels_show_it():
    # Prepare: a scene with one large red square in the centre on snow.
    obj = world.SceneObject("square", "red", "large", "centre", "middle")
    scene = world.Scene("snow", (obj,))
    # Execute
    img = world.render(scene, np.random.default_rng(0)).astype(float)
    # Assert: the centre is red, a corner is snow-white.
    centre = img[100:124, 100:124].mean((0, 1))
    corner = img[5:25, 5:25].mean((0, 1))
    assert centre[0] > 150 and centre[1] < 90 and centre[2] < 90
    assert corner.min() > 170


_NUM = {"a": 1, "an": 1, "two": 2, "three": 3}


def test_captions_name_every_object_with_the_right_counts():
    for seed in range(100):
        scene = world.scene_of(seed)
        caps = world.captions(scene)
        assert len(caps) == 5 and len(set(caps)) == 5
        for cap in caps:
            assert scene.background in cap
            assert scene.main.kind in cap and scene.main.colour in cap
        # The canonical caption's counts add up to the number of objects.
        phrase = r"\b(a|an|two|three)\b (?:large |small )?\w+ \w+"
        counted = sum(_NUM[m] for m in re.findall(phrase, caps[0]))
        assert counted == len(scene.objects), caps[0]
        for n, size, colour, kind in scene.groups():
            same = [o for o in scene.objects if (o.size, o.colour, o.kind) == (size, colour, kind)]
            assert len(same) == n
        for cap in caps:  # every word is in the vocabulary, and tokenising round-trips
            assert all(WORDS.id(t) != WORDS.id("<unk>") for t in tokenize(cap))
            assert detokenize(tokenize(cap)) == cap


def test_questions_answer_from_the_scene():
    rng = np.random.default_rng(0)
    for seed in range(100):
        scene = world.scene_of(seed)
        for q, answers in world.questions(scene, rng):
            assert len(answers) == 10
            canonical = {x for x in answers if ANSWERS.tokens[ANSWERS.id(x)] == x}
            assert len(canonical) == 1  # one answer the VQA head can give; the rest synonyms
            a = canonical.pop()
            assert all(x == a or world.SYNONYMS.get(a) == x for x in answers)
            if m := re.fullmatch(r"what color is the (\w+)\?", q):
                assert {o.colour for o in scene.objects if o.kind == m[1]} == {a}
            elif m := re.fullmatch(r"how many (\w+) are there\?", q):
                kind = next(k for k, p in world.PLURALS.items() if p == m[1])
                assert int(a) == scene.count(kind)
            elif m := re.fullmatch(r"is there an? (\w+) (\w+)\?", q):
                assert a == ("yes" if scene.count(m[2], m[1]) else "no")
            elif m := re.fullmatch(r"what shape is (.+)\?", q):
                assert [o.kind for o in scene.objects if world._where(o) == m[1]] == [a]
            elif q == "what is the background?":
                assert a == scene.background
            elif q == "what is the large shape?":
                assert a == scene.main.kind
            else:
                raise AssertionError(f"unexpected question {q!r}")


def test_synonyms_appear_among_annotators():
    answers = world._annotate("gray", np.random.default_rng(1))
    assert set(answers) <= {"gray", "grey"} and answers.count("gray") >= 5


def test_bad_requests_raise_typed_errors():
    with pytest.raises(UserInputError):
        world.example("detect", 0)  # type: ignore[arg-type]
    with pytest.raises(UserInputError):
        world.make_examples("classify", -1)
    with pytest.raises(UserInputError):
        world.example("classify", -5)
