"""Image codecs of the edge-only baselines: lossless PNG, lossy JPEG/WebP/AVIF, a byte-budget search.

Edge-only inference sends the photo itself (paper Table II): losslessly (PNG) to keep the task
quality, or lossily (JPEG/WebP) to save bytes at some cost in quality. `encode_to_budget` finds
the highest quality whose file fits a byte budget, which is how the benchmark compares lossy
edge-only against co-inference "at equal bytes".
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
from edgeai.errors import UserInputError
from PIL import Image, UnidentifiedImageError

LossyFormat = Literal["jpeg", "webp", "avif"]
LOSSY_FORMATS: tuple[LossyFormat, ...] = ("jpeg", "webp", "avif")
_PIL_NAME = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF", "png": "PNG"}


@dataclass(frozen=True)
class LossySetting:
    """How edge-only sends a photo lossily: resized to `side` (square), coded with `fmt` at
    `quality` (bench split picks, per task, the cheapest such setting of equal quality)."""

    fmt: str = "webp"
    side: int = 64
    quality: int = 75

    def __str__(self) -> str:
        return f"{self.fmt.upper() if self.fmt != 'webp' else 'WebP'} {self.side} px q={self.quality}"

    def encode(self, image: np.ndarray) -> bytes:
        return encode_lossy(resize_square(image, self.side), self.fmt, self.quality)


class ImageDecodeError(UserInputError):
    """Bytes (or a file) that are not a PNG/JPEG/WebP image we can read."""


@dataclass(frozen=True)
class Encoded:
    """An encoded image: its bytes, the format, and the quality used (None for PNG)."""

    data: bytes
    fmt: str
    quality: int | None

    @property
    def n_bytes(self) -> int:
        return len(self.data)


def _as_pil(image: np.ndarray) -> Image.Image:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise UserInputError(f"expected an H x W x 3 image array, got {shape}")
    if image.dtype != np.uint8:
        raise UserInputError(f"expected a uint8 image, got dtype {image.dtype}")
    return Image.fromarray(np.ascontiguousarray(image), mode="RGB")


def resize_square(image: np.ndarray, side: int) -> np.ndarray:
    """The photo resized to side x side as the photo-world models resize it themselves (bilinear,
    antialiased, torch's `interpolate`), rounded to uint8: what a device sends when it sends the
    model's input size rather than the photo as taken."""
    import torch
    import torch.nn.functional as F

    if side < 1:
        raise UserInputError(f"image side must be >= 1 pixel, got {side}")
    if image.shape[0] == side and image.shape[1] == side:
        return image
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    y = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def encode_png(image: np.ndarray, compress_level: int = 9) -> bytes:
    """Lossless PNG (zlib level 9 by default: the smallest lossless file PIL makes)."""
    buf = io.BytesIO()
    _as_pil(image).save(buf, format="PNG", compress_level=compress_level, optimize=False)
    return buf.getvalue()


def _check_fmt(fmt: str) -> LossyFormat:
    key = fmt.lower()
    if key == "jpg":
        key = "jpeg"
    if key not in LOSSY_FORMATS:
        raise UserInputError(
            f"unknown lossy format '{fmt}' (choose from {', '.join(LOSSY_FORMATS)})"
        )
    return key  # type: ignore[return-value]


def encode_lossy(image: np.ndarray, fmt: str, quality: int) -> bytes:
    """JPEG, WebP or AVIF at `quality` (1..100; 4:2:0 chroma for JPEG, as cameras do; AVIF at
    Pillow's default encoder speed)."""
    key = _check_fmt(fmt)
    if not 1 <= int(quality) <= 100:
        raise UserInputError(f"quality must be in 1..100, got {quality}")
    buf = io.BytesIO()
    options: dict[str, object] = {"quality": int(quality)}
    if key == "jpeg":
        options["subsampling"] = 2  # 4:2:0
    elif key == "webp":
        options["method"] = 4
    _as_pil(image).save(buf, format=_PIL_NAME[key], **options)
    return buf.getvalue()


def encode_to_budget(image: np.ndarray, max_bytes: int, fmt: str = "jpeg") -> Encoded:
    """The highest-quality JPEG/WebP whose size is <= max_bytes (bisection on quality 1..100).

    File size grows with quality almost monotonically; bisection keeps the best quality seen
    that fits. When even quality 1 is too big, that smallest file is returned (the caller sees
    n_bytes > max_bytes) rather than failing: a budget is a target, not a guarantee.
    """
    key = _check_fmt(fmt)
    if max_bytes <= 0:
        raise UserInputError(f"byte budget must be > 0, got {max_bytes}")
    lo, hi = 1, 100
    best: Encoded | None = None
    smallest: Encoded | None = None
    while lo <= hi:
        q = (lo + hi) // 2
        data = encode_lossy(image, key, q)
        enc = Encoded(data, key, q)
        if smallest is None or len(data) < smallest.n_bytes:
            smallest = enc
        if len(data) <= max_bytes:
            if best is None or q > (best.quality or 0):
                best = enc
            lo = q + 1
        else:
            hi = q - 1
    result = best or smallest
    assert result is not None  # the loop ran at least once
    return result


def decode_image(data: bytes, source: str = "image") -> np.ndarray:
    """PNG/JPEG/WebP bytes -> H x W x 3 uint8 RGB; a clear ImageDecodeError for anything else."""
    if not data:
        raise ImageDecodeError(f"{source}: empty, not an image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = img.convert("RGB")
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
        SyntaxError,
    ) as exc:
        detail = "" if isinstance(exc, UnidentifiedImageError) else f" ({exc})"
        raise ImageDecodeError(f"{source}: not a readable PNG/JPEG/WebP/AVIF image{detail}") from exc
    array = np.array(rgb, dtype=np.uint8)  # a writable copy (torch.from_numpy wants one)
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageDecodeError(f"{source}: image has no pixels")
    return array


def _file_bytes(path: str, where: str = "") -> bytes:
    """A file's bytes; one-line errors (prefixed with `where`) for a missing file, a folder, no
    permission."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise UserInputError(f"{where}image file '{path}' does not exist") from exc
    except IsADirectoryError as exc:
        raise UserInputError(f"{where}'{path}' is a directory, not an image file") from exc
    except PermissionError as exc:
        raise UserInputError(f"{where}cannot read image file '{path}' (permission denied)") from exc


def read_image(path: str) -> np.ndarray:
    """Read an image file (PNG/JPEG/WebP) into H x W x 3 uint8; clear errors for missing/non-images."""
    data = _file_bytes(path)
    return decode_image(data, source=str(path))


MAX_PHOTO_PIXELS = 150_000_000
"""a person's photo above this many pixels is refused (a 50-megapixel camera photo is fine)"""
PHOTO_SIDE = 1024
"""a person's photo is scaled down (aspect kept) so its longer side is at most this; every model
here looks at 224 px or fewer, and the copy kept in the data home stays small"""


def photo_from_bytes(data: bytes, source: str = "image", max_side: int = PHOTO_SIDE) -> np.ndarray:
    """A person's photo (PNG/JPEG/WebP/AVIF bytes, any size up to MAX_PHOTO_PIXELS) as an
    H x W x 3 uint8 array whose longer side is at most `max_side` (scaled down, aspect kept)."""
    import warnings

    if not data:
        raise ImageDecodeError(f"{source}: empty, not an image")
    try:
        with warnings.catch_warnings():  # our own limit below; PIL's bomb warning is noise here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        with img:
            w, h = img.size
            if w * h > MAX_PHOTO_PIXELS:
                raise ImageDecodeError(
                    f"{source}: {w} x {h} is {w * h / 1e6:.0f} megapixels, over the "
                    f"{MAX_PHOTO_PIXELS / 1e6:.0f}-megapixel limit"
                )
            img.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale
            rgb = img.convert("RGB")
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            f"{source}: over the {MAX_PHOTO_PIXELS / 1e6:.0f}-megapixel limit ({exc})"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        detail = "" if isinstance(exc, UnidentifiedImageError) else f" ({exc})"
        raise ImageDecodeError(
            f"{source}: not a readable PNG/JPEG/WebP/AVIF image{detail}"
        ) from exc
    return np.array(rgb, dtype=np.uint8)


def read_photo(path: str, max_side: int = PHOTO_SIDE) -> np.ndarray:
    """`photo_from_bytes` of a file, with one-line errors for a missing file, a folder, no
    permission."""
    data = _file_bytes(path, "--image: ")
    return photo_from_bytes(data, source=f"--image '{path}'", max_side=max_side)
