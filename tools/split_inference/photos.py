"""Real photos found offline on this machine, grouped by where they come from, and their augmentations.

Sources (each a `PhotoSource`; `find_photos()` lists what is installed):

    ubuntu   /usr/share/backgrounds/*          the Ubuntu wallpaper packages' top level (ubuntu,
                                               ubuntukylin, lomiri defaults: photos and artwork)
    gnome    /usr/share/backgrounds/gnome/**   GNOME's backgrounds (mostly abstract artwork)
    mate     /usr/share/backgrounds/mate/**    MATE's backgrounds (nature photos, abstract, desktop)
    <dir>    /usr/share/backgrounds/<dir>/**   any other sub-folder is its own source (e.g. ukui)
    plasma   /usr/share/wallpapers/*/contents/images*/*   KDE Plasma wallpapers (one file per
                                               wallpaper and light/dark variant: its smallest)
    gcompris /usr/share/gcompris-qt/rcc/*.rcc      GCompris's photos (Debian package gcompris-qt-data),
                                               read from its Qt resource files (`rcc.py`): animals,
                                               monuments, objects cut out on a transparent
                                               background (composited on white), landscapes
    bundled  scikit-learn's sample images (china.jpg, flower.jpg) and matplotlib's grace_hopper.jpg

Codecs train on the wallpaper sources and are evaluated on gcompris + bundled, photos of
objects, animals and scenes where an ImageNet classifier's top-1 means something (the wallpapers
are mostly abstract art or smooth gradients, where it does not: measured, Gaussian pixel noise of
std 0.5 flips the top-1 on 24 % of Plasma crops and 8 % of MATE nature-photo crops).
(jigzo-data's puzzles hold their photo only as a 1024 x 1024 atlas of shuffled pieces plus a
232-px preview: not used.)

Kept: .jpg/.jpeg/.png/.webp files of at least MIN_BYTES whose shorter side is at least MIN_SIDE
(read from the header, cheap). Skipped: SVG, screenshots/thumbnails, tiny placeholders (e.g.
GNOME's 180-byte vnc-*.webp), and duplicate files reached through symlinks. Abstract artwork is
kept (telling it from photos is not cheap); the evaluation sources are chosen to be mostly photos.

Photos are decoded once per process and downscaled so their shorter side is at most
`MAX_SIDE` px (the "full-size" photo the device holds in the benchmark). Augmentations are
numpy/PIL only: random resized crops, horizontal flips, colour jitter and JPEG re-coding.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from edgeai.errors import UserInputError
from PIL import Image

SYSTEM_ROOTS = (
    Path("/usr/share/backgrounds"),
    Path("/usr/share/wallpapers"),
    Path("/usr/share/gcompris-qt/rcc"),
)
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
MIN_BYTES = 20_000
MIN_SIDE = 256
MAX_SIDE = 448  # shorter side of the decoded photo (2x the model input)
TRAIN_SOURCES: tuple[str, ...] = ("ubuntu", "gnome", "mate", "plasma")  # + other backgrounds
HELD_OUT_SOURCES: tuple[str, ...] = ("gcompris", "bundled")


class NoPhotosError(UserInputError):
    """No photo of the asked sources is installed on this machine."""


@dataclass(frozen=True)
class Photo:
    source: str
    path: Path
    member: str = ""  # the entry inside a Qt resource file (gcompris); "" for plain files

    @property
    def name(self) -> str:
        """source/file (Plasma: source/wallpaper/file, its files are named by resolution)."""
        if self.member:
            return f"{self.source}/{self.path.stem}/{self.member.rsplit('/', 1)[-1]}"
        parts = self.path.parts
        if "contents" in parts:
            return f"{self.source}/{parts[parts.index('contents') - 1]}/{self.path.name}"
        return f"{self.source}/{self.path.name}"


def _bundled() -> list[Path]:
    paths: list[Path] = []
    try:
        import sklearn.datasets

        folder = Path(sklearn.datasets.__file__).parent / "images"
        paths += [folder / n for n in ("china.jpg", "flower.jpg")]
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        pass
    try:
        import matplotlib

        paths.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    return [p for p in paths if p.is_file()]


def _usable(path: Path) -> bool:
    if path.suffix.lower() not in EXTENSIONS or not path.is_file():
        return False
    if "screenshot" in path.name.lower() or path.stat().st_size < MIN_BYTES:
        return False
    try:
        with Image.open(path) as im:
            return min(im.size) >= MIN_SIDE
    except (OSError, ValueError, Image.DecompressionBombError):
        return False


def _plasma(root: Path) -> list[Path]:
    """One file per Plasma wallpaper variant (images/, images_dark/): the smallest usable one."""
    out: list[Path] = []
    for variant in sorted(root.glob("*/contents/images*")):
        files = sorted((p for p in variant.iterdir() if _usable(p)), key=lambda p: p.stat().st_size)
        if files:
            out.append(files[0])
    return out


def _rcc_photos(root: Path) -> list[tuple[Path, str]]:
    """(resource file, entry) of every image in the folder's .rcc files passing the size filters."""
    from edgeai.tools.split_inference.rcc import RccError, open_rcc

    out = []
    for path in sorted(root.glob("*.rcc")):
        try:
            rcc = open_rcc(str(path))
            for entry in rcc.entries:
                if not entry.name.lower().endswith(EXTENSIONS) or "screenshot" in entry.name:
                    continue
                blob = rcc.read(entry)
                if len(blob) < MIN_BYTES:
                    continue
                with Image.open(io.BytesIO(blob)) as im:
                    if min(im.size) >= MIN_SIDE:
                        out.append((path, entry.name))
        except (RccError, OSError, ValueError, Image.DecompressionBombError):
            continue
    return out


def _backgrounds(root: Path) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        source = "ubuntu" if len(rel.parts) == 1 else rel.parts[0]
        if _usable(path):
            groups.setdefault(source, []).append(path)
    return groups


@lru_cache(maxsize=8)
def _find(roots: tuple[Path, ...], bundled: bool) -> tuple[Photo, ...]:
    photos: list[Photo] = []
    seen: set[str] = set()

    def add(source: str, paths: Iterable[Path]) -> None:
        for p in paths:
            real = os.path.realpath(p)
            if real not in seen:
                seen.add(real)
                photos.append(Photo(source, p))

    for root in roots:
        if not root.is_dir():
            continue
        if root.name == "wallpapers":
            add("plasma", _plasma(root))
        elif root.name == "rcc":
            photos.extend(Photo("gcompris", p, m) for p, m in _rcc_photos(root))
        else:
            for source, paths in _backgrounds(root).items():
                add(source, paths)
    if bundled:
        add("bundled", _bundled())
    return tuple(photos)


def find_photos(
    sources: Iterable[str] | None = None,
    roots: Iterable[Path] = SYSTEM_ROOTS,
    bundled: bool = True,
) -> list[Photo]:
    """The installed photos of `sources` (None: all), sorted by source then path.

    NoPhotosError (one line) when none is found."""
    found = _find(tuple(Path(r) for r in roots), bundled)
    wanted = None if sources is None else set(sources)
    photos = [p for p in found if wanted is None or p.source in wanted]
    if not photos:
        what = "any source" if wanted is None else "source(s) " + ", ".join(sorted(wanted))
        have = sorted({p.source for p in found}) or ["none"]
        raise NoPhotosError(
            f"no photos found for {what} (installed sources: {', '.join(have)}; looked in "
            f"{', '.join(map(str, roots))} and the scikit-learn/matplotlib samples)"
        )
    return sorted(photos, key=lambda p: (p.source, str(p.path), p.member))


def by_source(photos: Iterable[Photo]) -> dict[str, list[Photo]]:
    out: dict[str, list[Photo]] = {}
    for p in photos:
        out.setdefault(p.source, []).append(p)
    return out


def train_sources(photos: Iterable[Photo]) -> list[str]:
    """Every installed source that is not held out."""
    return sorted({p.source for p in photos} - set(HELD_OUT_SOURCES))


def _rgb(im: Image.Image) -> Image.Image:
    """RGB; transparent pixels (cut-out objects) composited on white, not on their hidden colour."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB")


@lru_cache(maxsize=512)
def _load(path: str, max_side: int, member: str = "") -> np.ndarray:
    if member:
        from edgeai.tools.split_inference.rcc import open_rcc

        source: str | io.BytesIO = io.BytesIO(open_rcc(path).read(member))
    else:
        source = path
    with Image.open(source) as im:
        im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale (cheap)
        im = _rgb(im)
        scale = max_side / min(im.size)
        if scale < 1:
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            im = im.resize(size, Image.LANCZOS)
        return np.asarray(im)


def load_photo(photo: Photo | Path | str, max_side: int = MAX_SIDE) -> np.ndarray:
    """RGB uint8 [H, W, 3], shorter side at most `max_side`; UserInputError if unreadable."""
    path = photo.path if isinstance(photo, Photo) else Path(photo)
    member = photo.member if isinstance(photo, Photo) else ""
    try:
        return _load(str(path), max_side, member)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: cannot read the photo ({exc})") from None


# -- augmentations (numpy / PIL only) -----------------------------------------------------------


def crop_box(
    shape: tuple[int, ...], rng: np.random.Generator, scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """A random-resized-crop box (left, top, right, bottom) covering `scale` of the area."""
    h, w = shape[:2]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw, ch = round(np.sqrt(target * aspect)), round(np.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return left, top, left + cw, top + ch
    side = min(h, w)  # fall back to the centre square
    left, top = (w - side) // 2, (h - side) // 2
    return left, top, left + side, top + side


def resized_crop(image: np.ndarray, box: tuple[int, int, int, int], size: int = 224) -> np.ndarray:
    return np.asarray(Image.fromarray(image).crop(box).resize((size, size), Image.BILINEAR))


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.3) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor in [1-s, 1+s]."""
    x = image.astype(np.float32)
    x = x * rng.uniform(1 - strength, 1 + strength)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - strength, 1 + strength) + mean
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * rng.uniform(1 - strength, 1 + strength) + grey
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def jpeg_recode(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def augment(image: np.ndarray, rng: np.random.Generator, size: int = 224) -> np.ndarray:
    """One training view: random resized crop, flip (p=.5), colour jitter, JPEG re-code (p=.5)."""
    out = resized_crop(image, crop_box(image.shape, rng), size)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = color_jitter(out, rng)
    if rng.random() < 0.5:
        out = jpeg_recode(out, int(rng.integers(30, 96)))
    return np.ascontiguousarray(out)


@dataclass
class View:
    """One evaluation item: a crop of a photo as the device holds it and as the model sees it."""

    photo: str  # source/name
    region: np.ndarray  # the crop at the decoded photo's resolution (the "full-size" image)
    image: np.ndarray  # the same crop resized to 224 x 224 (the model input)


def eval_views(photos: list[Photo], per_photo: int, seed: int = 0, size: int = 224) -> list[View]:
    """`per_photo` deterministic crops (scale 0.3..1, flipped half the time) of each photo."""
    views: list[View] = []
    for i, photo in enumerate(photos):
        image = load_photo(photo)
        rng = np.random.default_rng([seed, i])
        for _ in range(per_photo):
            box = crop_box(image.shape, rng, scale=(0.3, 1.0))
            region = np.asarray(Image.fromarray(image).crop(box))
            if rng.random() < 0.5:
                region = region[:, ::-1]
            region = np.ascontiguousarray(region)
            small = np.asarray(Image.fromarray(region).resize((size, size), Image.BILINEAR))
            views.append(View(photo.name, region, small))
    return views


def train_views(photos: list[Photo], n: int, seed: int = 0, size: int = 224) -> np.ndarray:
    """n augmented training crops [n, size, size, 3] drawn round-robin over `photos`."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    order = rng.permutation(len(photos))
    for j in range(n):
        out[j] = augment(load_photo(photos[order[j % len(photos)]]), rng, size)
    return out
