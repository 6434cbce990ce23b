"""The photo world: procedurally generated 224x224 photos of labelled scenes, shared by every tool
that needs images nobody has to download (split inference's tasks, federated learning's 10-class
set). It owns scene sampling and rendering only; captions and questions live with split
inference's task layer (`tools/split_inference/world.py`).

A scene is one large *main* object (the classification label, unambiguous by construction) and up
to three small ones, each in its own cell of a 3x3 grid (left/centre/right x top/middle/bottom) on
a textured background (grass, sand, water, wood, sky, snow). Rendering adds lighting gradients,
soft shadows and sensor noise so a lossless PNG weighs what a real photo of that size does
(~100-160 KB). Everything is deterministic from an integer image seed, and the pixels of a seed
must never change (shipped checkpoints were trained on them). Seed ranges keep users apart:
split inference's held-out test images use 0..99_999, its model training >= 1_000_000, its codec
training >= 2_000_000, federated learning >= 3_000_000 (`FL_SEED0`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from edgeai.errors import UserInputError

IMAGE_SIZE = 224
KINDS: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "heart",
    "cross", "ring", "diamond", "hexagon", "crescent",
)
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

TEST_SEEDS = range(100_000)
TRAIN_SEED0 = 1_000_000
CODEC_SEED0 = 2_000_000
FL_SEED0 = 3_000_000

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


# ----------------------------------------------------------------------------- seeds


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent streams for scene, pixels and questions of one image seed."""
    ss = np.random.SeedSequence([int(seed), 0x5EED])
    a, b, c = ss.spawn(3)
    return np.random.default_rng(a), np.random.default_rng(b), np.random.default_rng(c)


def scene_of(seed: int) -> Scene:
    """The scene of image seed `seed` (the same for every task)."""
    return sample_scene(_rngs(seed)[0])



def photos(n: int, seed: int, size: int = 32, *,
           progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """n photos of image seeds seed..seed+n-1 as a small-image classification set.

    Returns (images, labels): uint8 (n, size, size, 3) rendered at 224x224 and area-averaged
    down by 224/size (so size must divide 224: 32, 56, 112, 224, ...), and int64 labels indexing
    KINDS (the main object's kind). Each seed's photo is the same pixels split inference sees,
    averaged; `progress` shows a tqdm bar (rendering costs ~7 ms a photo).
    """
    if n < 0:
        raise UserInputError(f"photos: n must be >= 0, got {n}")
    if seed < 0:
        raise UserInputError(f"photos: image seeds are >= 0, got {seed}")
    if size < 1 or IMAGE_SIZE % size:
        raise UserInputError(f"photos: size must divide {IMAGE_SIZE} (e.g. 32, 56, 112), "
                             f"got {size}")
    f = IMAGE_SIZE // size
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    seeds = range(seed, seed + n)
    if progress:
        from tqdm import tqdm

        seeds = tqdm(seeds, desc="rendering photos", unit="photo", leave=False)
    for i, s in enumerate(seeds):
        r_scene, r_pix, _ = _rngs(s)
        scene = sample_scene(r_scene)
        full = render(scene, r_pix).astype(np.float32)  # (224, 224, 3)
        small = full.reshape(size, f, size, f, 3).mean(axis=(1, 3))  # (size, size, 3)
        images[i] = np.clip(small + 0.5, 0, 255).astype(np.uint8)
        labels[i] = KINDS.index(label(scene))
    return images, labels
