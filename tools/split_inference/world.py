"""Split inference's task layer over the photo world: labels, captions and VQA pairs.

The photos themselves (scene sampling, rendering, seed ranges) live in `edgeai.tools.photoworld`,
shared with federated learning; this module turns an image seed into an `Example` for each of the
photo pool's three tasks. Everything is deterministic from the seed: the same seed gives the same
scene, pixels, captions and question whichever task asks. Held-out test images use seeds
0..99_999, model training seeds >= 1_000_000, codec training seeds >= 2_000_000. The photo world's
names are re-exported here so existing `world.X` imports keep working.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from edgeai.errors import UserInputError
from edgeai.tools.photoworld import (
    BACKGROUNDS,
    CODEC_SEED0,
    COLOUR_NAMES,
    COLOURS,
    COLUMNS,
    IMAGE_SIZE,
    KINDS,
    ROWS,
    SIZES,
    TEST_SEEDS,
    TRAIN_SEED0,
    Scene,
    SceneObject,
    _rngs,
    label,
    render,
    sample_scene,
    scene_of,
)
from edgeai.tools.split_inference.base import TASKS, Example, Task

__all__ = [
    "BACKGROUNDS",
    "CODEC_SEED0",
    "COLOURS",
    "COLOUR_NAMES",
    "COLUMNS",
    "IMAGE_SIZE",
    "KINDS",
    "NUMBER_WORDS",
    "PLURALS",
    "ROWS",
    "SIZES",
    "SYNONYMS",
    "TEST_SEEDS",
    "TRAIN_SEED0",
    "Example",
    "Scene",
    "SceneObject",
    "captions",
    "example",
    "label",
    "make_examples",
    "questions",
    "render",
    "sample_scene",
    "scene_of",
    "stream",
]

PLURALS: dict[str, str] = {k: k + ("es" if k.endswith("s") else "s") for k in KINDS}
NUMBER_WORDS: tuple[str, ...] = ("no", "one", "two", "three", "four")
# Accepted answer synonyms: some annotators write these instead of the canonical answer.
SYNONYMS: dict[str, str] = {"gray": "grey", "centre": "center", "2": "two", "3": "three",
                            "1": "one", "0": "zero", "4": "four"}


# ----------------------------------------------------------------------------- captions, questions


def _a(word: str) -> str:
    """The indefinite article for word ("an orange", "a red")."""
    return "an" if word[0] in "aeiou" else "a"


def _noun(count: int, kind: str) -> str:
    return kind if count == 1 else PLURALS[kind]


def _phrase(group: tuple[int, str, str, str], with_size: bool) -> str:
    count, size, colour, kind = group
    words = [size] if with_size else []
    words += [colour, _noun(count, kind)]
    det = _a(words[0]) if count == 1 else NUMBER_WORDS[count]
    return " ".join([det, *words])


def _join(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _where(o: SceneObject) -> str:
    if o.row == "middle" and o.column == "centre":
        return "in the centre"
    if o.row == "middle":
        return f"on the {o.column}"
    if o.column == "centre":
        return f"at the {o.row}"
    return f"at the {o.row} {o.column}"


def captions(scene: Scene) -> list[str]:
    """Five reference captions with varied phrasing; the first is the canonical form."""
    groups = scene.groups()
    bg = scene.background
    sized = _join([_phrase(g, True) for g in groups])
    plain = _join([_phrase(g, False) for g in groups])
    main = scene.main
    rest = groups[1:]
    positioned = f"{_a(main.colour)} {main.colour} {main.kind} {_where(main)}"
    if rest:
        positioned += " with " + _join([_phrase(g, False) for g in rest])
    reverse = _join([_phrase(g, False) for g in reversed(groups)])
    return [
        f"{sized} on {bg}",
        f"a photo of {plain} on {bg}",
        f"{positioned} on {bg}",
        f"there {'is' if groups[-1][0] == 1 else 'are'} {reverse} on the {bg}",
        f"{plain} lying on {bg}",
    ]


def _annotate(answer: str, rng: np.random.Generator) -> list[str]:
    """Ten annotator answers: mostly the canonical answer, some synonyms, rarely a slip."""
    out = []
    for _ in range(10):
        u = rng.random()
        if answer in SYNONYMS and u < 0.2:
            out.append(SYNONYMS[answer])
        else:
            out.append(answer)
    return out


def questions(scene: Scene, rng: np.random.Generator) -> list[tuple[str, list[str]]]:
    """Every question this scene can answer unambiguously, with its ten annotator answers.

    Question types: colour of a kind (only if that kind has one colour in the scene), how many of
    a kind (present or not), is there a colour+kind, what shape is in a cell (occupied or the
    main object's cell), what is the background, what is the large shape.
    """
    qs: list[tuple[str, str]] = []
    kinds_present = sorted({o.kind for o in scene.objects}, key=KINDS.index)
    for kind in kinds_present:
        colours = {o.colour for o in scene.objects if o.kind == kind}
        if len(colours) == 1:
            qs.append((f"what color is the {kind}?", colours.pop()))
    for kind in kinds_present:
        qs.append((f"how many {PLURALS[kind]} are there?", str(scene.count(kind))))
    absent = [k for k in KINDS if k not in kinds_present]
    kind = absent[rng.integers(len(absent))]
    qs.append((f"how many {PLURALS[kind]} are there?", "0"))
    o = scene.objects[rng.integers(len(scene.objects))]
    qs.append((f"is there {_a(o.colour)} {o.colour} {o.kind}?", "yes"))
    # A "no" whose colour or kind is present, so the answer needs both.
    while True:
        colour = COLOUR_NAMES[rng.integers(len(COLOURS))]
        kind = (o.kind if rng.random() < 0.5 else KINDS[rng.integers(len(KINDS))])
        if scene.count(kind, colour) == 0:
            break
    qs.append((f"is there {_a(colour)} {colour} {kind}?", "no"))
    for o in scene.objects:
        qs.append((f"what shape is {_where(o)}?", o.kind))
    qs.append(("what is the background?", scene.background))
    qs.append(("what is the large shape?", scene.main.kind))
    return [(q, _annotate(a, rng)) for q, a in qs]


# ----------------------------------------------------------------------------- examples


def example(task: Task, seed: int) -> Example:
    """The example of image seed `seed` for `task` (one question per image for VQA)."""
    if task not in TASKS:
        raise UserInputError(f"unknown task '{task}' (choose from {', '.join(TASKS)})")
    if seed < 0:
        raise UserInputError(f"image seeds are >= 0, got {seed}")
    r_scene, r_pix, r_q = _rngs(seed)
    scene = sample_scene(r_scene)
    image = render(scene, r_pix)
    if task == "classify":
        return Example(image, None, [label(scene)])
    if task == "caption":
        return Example(image, None, captions(scene))
    pairs = questions(scene, r_q)
    q, answers = pairs[r_q.integers(len(pairs))]
    return Example(image, q, answers)


def make_examples(task: Task, n: int, seed: int = 0) -> list[Example]:
    """n examples with image seeds seed, seed+1, ..., seed+n-1 (item i reproducible alone)."""
    if n < 0:
        raise UserInputError(f"n must be >= 0, got {n}")
    return [example(task, seed + i) for i in range(n)]


def stream(task: Task, batch_size: int, seed: int = TRAIN_SEED0) -> Iterator[list[Example]]:
    """Endless fresh batches from consecutive image seeds starting at `seed` (training)."""
    s = seed
    while True:
        yield make_examples(task, batch_size, s)
        s += batch_size
