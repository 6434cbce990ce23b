"""The photo world: procedurally generated 224x224 photos with labels, captions and VQA pairs.

The photo pool's three tasks need labelled images that nobody has to download. A scene is one
large *main* object (the classification label, unambiguous by construction) and up to three small
ones, each in its own cell of a 3x3 grid (left/centre/right x top/middle/bottom) on a textured
background (grass, sand, water, wood, sky, snow). Rendering adds lighting gradients, soft shadows
and sensor noise so a lossless PNG weighs what a real photo of that size does (~100-160 KB).

Everything is deterministic from an integer image seed: the same seed gives the same scene,
pixels, captions and question whichever task asks. Held-out test images use seeds 0..99_999,
model training seeds >= 1_000_000, codec training seeds >= 2_000_000.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from edgeai.errors import UserInputError
from edgeai.tools.split_inference.base import TASKS, Example, Task

IMAGE_SIZE = 224
KINDS: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "heart",
    "cross", "ring", "diamond", "hexagon", "crescent",
)
PLURALS: dict[str, str] = {k: k + ("es" if k.endswith("s") else "s") for k in KINDS}
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 35, 35),
    "green": (40, 170, 60),
    "blue": (40, 80, 215),
    "yellow": (235, 215, 40),
    "orange": (240, 130, 20),
    "purple": (135, 50, 175),
    "white": (240, 240, 240),
    "gray": (120, 120, 120),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
BACKGROUNDS: tuple[str, ...] = ("grass", "sand", "water", "wood", "sky", "snow")
COLUMNS: tuple[str, ...] = ("left", "centre", "right")
ROWS: tuple[str, ...] = ("top", "middle", "bottom")
SIZES: tuple[str, ...] = ("small", "large")
NUMBER_WORDS: tuple[str, ...] = ("no", "one", "two", "three", "four")
# Accepted answer synonyms: some annotators write these instead of the canonical answer.
SYNONYMS: dict[str, str] = {"gray": "grey", "centre": "center", "2": "two", "3": "three",
                            "1": "one", "0": "zero", "4": "four"}

TEST_SEEDS = range(100_000)
TRAIN_SEED0 = 1_000_000
CODEC_SEED0 = 2_000_000

_CELL = IMAGE_SIZE / 3.0
_RADIUS = {"small": (19.0, 23.0), "large": (31.0, 35.0)}


@dataclass(frozen=True)
class SceneObject:
    """One object: its shape, colour, size class and grid cell."""

    kind: str
    colour: str
    size: str  # "small" | "large"
    column: str  # "left" | "centre" | "right"
    row: str  # "top" | "middle" | "bottom"

    @property
    def cell(self) -> tuple[int, int]:
        """(row index, column index): reading order sorts by this."""
        return ROWS.index(self.row), COLUMNS.index(self.column)


@dataclass(frozen=True)
class Scene:
    """What a photo shows. objects[0] is the main (large) object; the rest are small.

    Counting semantics: "how many circles" counts objects of that kind whatever their colour or
    size; caption groups merge small objects of the same colour and kind ("two red circles").
    """

    background: str
    objects: tuple[SceneObject, ...] = field(default_factory=tuple)

    @property
    def main(self) -> SceneObject:
        return self.objects[0]

    def count(self, kind: str, colour: str | None = None) -> int:
        return sum(o.kind == kind and (colour is None or o.colour == colour) for o in self.objects)

    def groups(self) -> list[tuple[int, str, str, str]]:
        """Caption groups (count, size, colour, kind): main object first, then small groups in
        reading order of their first member."""
        out: list[tuple[int, str, str, str]] = [(1, "large", self.main.colour, self.main.kind)]
        small = sorted(self.objects[1:], key=lambda o: o.cell)
        seen: dict[tuple[str, str], int] = {}
        for o in small:
            key = (o.colour, o.kind)
            if key in seen:
                n, s, c, k = out[seen[key]]
                out[seen[key]] = (n + 1, s, c, k)
            else:
                seen[key] = len(out)
                out.append((1, "small", o.colour, o.kind))
        return out


# ----------------------------------------------------------------------------- scenes


def sample_scene(rng: np.random.Generator) -> Scene:
    """A random scene: a large main object plus 0-3 small ones in 1-2 colour/kind groups."""
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    cells = [(r, c) for r in range(3) for c in range(3)]
    order = rng.permutation(9)
    r, c = cells[order[0]]
    main = SceneObject(KINDS[rng.integers(len(KINDS))], COLOUR_NAMES[rng.integers(len(COLOURS))],
                       "large", COLUMNS[c], ROWS[r])
    objects = [main]
    n_small = int(rng.choice(4, p=[0.2, 0.3, 0.3, 0.2]))
    n_groups = 0 if n_small == 0 else (1 if n_small == 1 or rng.random() < 0.5 else 2)
    group_sizes = [n_small] if n_groups == 1 else ([1, n_small - 1] if n_groups == 2 else [])
    used_groups: set[tuple[str, str]] = set()
    slot = 1
    for size in group_sizes:
        while True:
            kind = KINDS[rng.integers(len(KINDS))]
            colour = COLOUR_NAMES[rng.integers(len(COLOURS))]
            if (colour, kind) not in used_groups:
                break
        used_groups.add((colour, kind))
        for _ in range(size):
            r, c = cells[order[slot]]
            slot += 1
            objects.append(SceneObject(kind, colour, "small", COLUMNS[c], ROWS[r]))
    return Scene(background, tuple(objects))


def label(scene: Scene) -> str:
    """Classification label: the kind of the one large object."""
    return scene.main.kind


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


# ----------------------------------------------------------------------------- rendering


@lru_cache(maxsize=64)
def _lerp(n: int, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Left grid index and (size, 1) weight of each of `size` pixels between n grid points."""
    pos = np.linspace(0, n - 1, size)
    lo = np.clip(np.floor(pos).astype(int), 0, n - 2)
    return lo, (pos - lo).astype(np.float32)


@lru_cache(maxsize=64)
def _nearest_index(n: int, size: int = IMAGE_SIZE) -> np.ndarray:
    return np.minimum((np.arange(size) * n) // size, n - 1)


def _upsample(grid: np.ndarray) -> np.ndarray:
    """Upsample a small (gh, gw) grid to (224, 224): bilinear for coarse grids, nearest for fine
    ones (where blockiness is below the sensor noise anyway). Element-wise on purpose: BLAS
    matrix products this small spend more time waking threads than multiplying."""
    gh, gw = grid.shape
    grid = grid.astype(np.float32)
    if max(gh, gw) > 24:
        return grid[_nearest_index(gh)][:, _nearest_index(gw)]
    lo, f = _lerp(gh)
    rows = grid[lo] * (1 - f)[:, None] + grid[lo + 1] * f[:, None]  # (224, gw)
    lo, f = _lerp(gw)
    return rows[:, lo] * (1 - f) + rows[:, lo + 1] * f  # (224, 224)


def _fbm(rng: np.random.Generator, octaves: tuple[int, ...], aspect: float = 1.0) -> np.ndarray:
    """Sum of value-noise octaves in [-1, 1]-ish; aspect > 1 stretches features vertically."""
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    amp, total = 1.0, 0.0
    for g in octaves:
        gh = max(2, int(g / aspect))
        out += amp * _upsample(rng.uniform(-1, 1, (gh, g)))
        total += amp
        amp *= 0.55
    return out / total


_YY, _XX = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) / IMAGE_SIZE


def _background(kind: str, rng: np.random.Generator) -> np.ndarray:
    """(224, 224, 3) float32 texture in 0..255."""
    j = rng.uniform(-12, 12, 3).astype(np.float32)
    light = 1.0 + 0.18 * ((_XX - 0.5) * rng.uniform(-1, 1) + (_YY - 0.5) * rng.uniform(-1, 1))
    if kind == "grass":
        blades = _fbm(rng, (56, 112), aspect=8.0)
        patch = _fbm(rng, (4, 8))
        base = np.array([70, 135, 45], np.float32) + j
        img = base * (1 + 0.35 * blades[..., None] + 0.15 * patch[..., None])
    elif kind == "sand":
        grain = rng.uniform(-1, 1, (IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
        ripple = np.sin(2 * np.pi * (_YY * rng.uniform(6, 10) + 0.6 * _fbm(rng, (4, 8))))
        base = np.array([214, 190, 140], np.float32) + j
        img = base * (1 + 0.06 * grain[..., None] + 0.07 * ripple[..., None])
    elif kind == "water":
        warp = _fbm(rng, (4, 8))
        wave = np.sin(2 * np.pi * (_YY * rng.uniform(10, 16) + 1.2 * warp + 0.3 * _XX))
        glint = np.clip(wave, 0.85, 1.0) - 0.85
        base = np.array([35, 95, 150], np.float32) + j
        img = base * (1 + 0.18 * wave[..., None]) + 600 * glint[..., None]
    elif kind == "wood":
        grain = np.sin(2 * np.pi * (_XX * rng.uniform(14, 22) + 1.5 * _fbm(rng, (3, 6), 4.0)))
        fine = _fbm(rng, (64, 112), aspect=6.0)
        plank = (np.floor(_XX * 4 + rng.uniform()) % 2).astype(np.float32)
        base = np.array([150, 100, 55], np.float32) + j
        img = base * (1 + 0.15 * grain[..., None] + 0.12 * fine[..., None]
                      - 0.08 * plank[..., None])
    elif kind == "sky":
        top = np.array([70, 130, 215], np.float32) + j
        bottom = np.array([175, 205, 240], np.float32)
        img = top + (bottom - top) * _YY[..., None]
        cloud = np.clip(_fbm(rng, (3, 6, 12, 24)) * 1.6 + rng.uniform(-0.3, 0.2), 0, 1)
        img = img + (250 - img) * cloud[..., None]
    elif kind == "snow":
        base = np.array([228, 232, 240], np.float32) + j / 2
        drift = _fbm(rng, (3, 6, 24))
        sparkle = (rng.random((IMAGE_SIZE, IMAGE_SIZE)) < 0.01).astype(np.float32)
        img = base * (1 + 0.08 * drift[..., None]) - 25 * (drift[..., None] < -0.2) + \
            30 * sparkle[..., None]
        img = img * np.array([0.95, 0.97, 1.0], np.float32)
    else:
        raise UserInputError(f"unknown background '{kind}' (choose from {', '.join(BACKGROUNDS)})")
    return img * light[..., None]


def _convex(px: np.ndarray, py: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Approximate signed distance to a convex counter-clockwise polygon (max of edge planes)."""
    d = np.full(px.shape, -np.inf, np.float32)
    for i in range(len(verts)):
        a, b = verts[i], verts[(i + 1) % len(verts)]
        e = b - a
        n = np.array([e[1], -e[0]], np.float32) / np.hypot(*e)
        d = np.maximum(d, (px - a[0]) * n[0] + (py - a[1]) * n[1])
    return d


def _regular(n: int, r: float, phase: float) -> np.ndarray:
    t = phase + np.arange(n) * 2 * np.pi / n
    return np.stack([r * np.cos(t), r * np.sin(t)], 1).astype(np.float32)


def _ccw(verts: np.ndarray) -> np.ndarray:
    x, y = verts[:, 0], verts[:, 1]
    area = np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return verts if area > 0 else verts[::-1]


def _sdf(kind: str, px: np.ndarray, py: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) of shape `kind` of radius r centred at 0.

    Image y grows downwards, so "up" is -y.
    """
    if kind == "circle":
        return np.hypot(px, py) - r
    if kind == "ring":
        return np.abs(np.hypot(px, py) - 0.72 * r) - 0.28 * r
    if kind == "square":
        return np.maximum(np.abs(px), np.abs(py)) - 0.8 * r
    if kind == "diamond":
        return (np.abs(px) * 1.0 + np.abs(py) * 0.68) - 0.78 * r
    if kind == "triangle":
        v = _regular(3, 1.1 * r, -np.pi / 2)
        v[:, 1] += 0.2 * r
        return _convex(px, py, _ccw(v))
    if kind == "hexagon":
        return _convex(px, py, _ccw(_regular(6, r, 0.0)))
    if kind == "cross":
        a, b = 0.95 * r, 0.32 * r
        h = np.maximum(np.abs(px) - a, np.abs(py) - b)
        v = np.maximum(np.abs(px) - b, np.abs(py) - a)
        return np.minimum(h, v)
    if kind == "star":
        outer = _regular(5, 1.05 * r, -np.pi / 2)
        inner = _regular(5, 0.42 * r, -np.pi / 2 + np.pi / 5)
        d = np.full(px.shape, np.inf, np.float32)
        for i in range(5):
            kite = np.stack([np.zeros(2, np.float32), inner[i - 1], outer[i], inner[i]])
            d = np.minimum(d, _convex(px, py, _ccw(kite)))
        return d
    if kind == "heart":
        s = 0.5 * r
        c1 = np.hypot(px + s, py + 0.3 * r) - s
        c2 = np.hypot(px - s, py + 0.3 * r) - s
        tri = np.array([[-0.97 * r, -0.12 * r], [0.97 * r, -0.12 * r], [0, 0.95 * r]], np.float32)
        return np.minimum(np.minimum(c1, c2), _convex(px, py, _ccw(tri)))
    if kind == "crescent":
        outer = np.hypot(px, py) - r
        bite = np.hypot(px - 0.45 * r, py + 0.15 * r) - 0.8 * r
        return np.maximum(outer, -bite)
    raise UserInputError(f"unknown object kind '{kind}' (choose from {', '.join(KINDS)})")


def _draw(img: np.ndarray, o: SceneObject, rng: np.random.Generator) -> None:
    """Paint one object (with a soft shadow and shading) into img in place."""
    lo, hi = _RADIUS[o.size]
    r = float(rng.uniform(lo, hi))
    row, col = o.cell
    slack = max(0.0, _CELL / 2 - r * 1.05 - 1)
    cx = (col + 0.5) * _CELL + rng.uniform(-slack, slack)
    cy = (row + 0.5) * _CELL + rng.uniform(-slack, slack)
    angle = rng.uniform(-0.25, 0.25)
    pad = int(r * 1.25) + 6
    x0, x1 = max(0, int(cx) - pad), min(IMAGE_SIZE, int(cx) + pad)
    y0, y1 = max(0, int(cy) - pad), min(IMAGE_SIZE, int(cy) + pad)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ca, sa = np.cos(angle), np.sin(angle)

    def cover(dx: float, dy: float, soft: float) -> np.ndarray:
        qx, qy = xs - cx - dx, ys - cy - dy
        px, py = ca * qx + sa * qy, -sa * qx + ca * qy
        return np.clip(0.5 - _sdf(o.kind, px, py, r) / soft, 0.0, 1.0)

    shadow = cover(3.0, 4.0, 4.0)[..., None]
    region = img[y0:y1, x0:x1]
    region *= 1 - 0.35 * shadow
    alpha = cover(0.0, 0.0, 1.0)[..., None]
    base = np.array(COLOURS[o.colour], np.float32) + rng.uniform(-14, 14, 3).astype(np.float32)
    shade = 1.0 + 0.22 * ((cx - xs) + (cy - ys))[..., None] / (2 * r)
    paint = np.clip(base * shade, 0, 255)
    region[:] = region * (1 - alpha) + paint * alpha


def render(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """The photo of a scene: (224, 224, 3) uint8 with texture, lighting, shadows and noise."""
    img = _background(scene.background, rng)
    for o in scene.objects:
        _draw(img, o, rng)
    sigma = rng.uniform(7.0, 9.5)
    img += rng.standard_normal(img.shape, dtype=np.float32) * sigma
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- examples


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent streams for scene, pixels and questions of one image seed."""
    ss = np.random.SeedSequence([int(seed), 0x5EED])
    a, b, c = ss.spawn(3)
    return np.random.default_rng(a), np.random.default_rng(b), np.random.default_rng(c)


def scene_of(seed: int) -> Scene:
    """The scene of image seed `seed` (the same for every task)."""
    return sample_scene(_rngs(seed)[0])


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
