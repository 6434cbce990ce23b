"""The Qt resource (.rcc) reader and the GCompris photo source built on it: a tiny resource file
made in the test (every rcc version, zlib and stored entries, nested folders), a damaged one, and
the installed GCompris files when the gcompris-qt-data package is present."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from edgeai.tools.split_inference import photos as P
from edgeai.tools.split_inference.rcc import COMPRESSED, RccError, RccFile, build_rcc
from PIL import Image

GCOMPRIS = Path("/usr/share/gcompris-qt/rcc")


def _png(h: int, w: int, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (h, w, len(mode)), dtype=np.uint8)
    if mode == "RGBA":
        pixels[..., 3] = 0  # fully transparent: must come out white
        pixels[: h // 2, :, 3] = 255
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("compress", [True, False])
def test_rcc_round_trip(version: int, compress: bool) -> None:
    files = {
        "a/b/photo.png": _png(8, 8),
        "a/notes.txt": b"hello" * 50,
        "top.bin": bytes(range(256)),
    }
    rcc = RccFile(build_rcc(files, version=version, compress=compress))
    assert rcc.version == version
    assert [e.name for e in rcc.entries] == sorted(files)
    assert all(bool(e.flags & COMPRESSED) == compress for e in rcc.entries)
    for name, blob in files.items():
        assert rcc.read(name) == blob
    with pytest.raises(RccError):
        rcc.read("a/missing.png")


def test_rcc_rejects_damaged_files() -> None:
    with pytest.raises(RccError, match="qres"):
        RccFile(b"PK\x03\x04" + bytes(40))
    good = build_rcc({"x.png": _png(8, 8)})
    with pytest.raises(RccError, match="version"):
        RccFile(good[:4] + struct.pack(">I", 9) + good[8:])
    with pytest.raises(RccError):
        RccFile(good[:30]).read("x.png")  # cut inside the tree / data


def test_gcompris_source_reads_photos_from_rcc(tmp_path: Path) -> None:
    folder = tmp_path / "rcc"
    folder.mkdir()
    files = {
        "gcompris/src/activities/x/resource/cut_out.png": _png(300, 320, "RGBA", 1),
        "gcompris/src/activities/x/resource/scene.png": _png(280, 400, "RGB", 2),
        "gcompris/src/activities/x/resource/icon.png": _png(40, 40, "RGB", 3),  # too small
        "gcompris/src/activities/x/resource/screenshot.png": _png(300, 300, "RGB", 4),
    }
    (folder / "x.rcc").write_bytes(build_rcc(files))
    (folder / "broken.rcc").write_bytes(b"not a resource file")  # skipped, not fatal
    found = P.find_photos(["gcompris"], roots=(folder,), bundled=False)
    assert [p.member.rsplit("/", 1)[-1] for p in found] == ["cut_out.png", "scene.png"]
    assert found[0].name == "gcompris/x/cut_out.png"
    cut = P.load_photo(found[0])
    assert cut.shape == (300, 320, 3)
    assert (cut[-10:] == 255).all()  # transparent half composited on white
    scene = P.load_photo(found[1])
    assert scene.shape == (280, 400, 3)
    assert np.array_equal(scene, np.asarray(Image.open(io.BytesIO(files[found[1].member]))))


@pytest.mark.skipif(not GCOMPRIS.is_dir(), reason="gcompris-qt-data is not installed")
def test_installed_gcompris_photos() -> None:
    found = P.find_photos(["gcompris"], roots=(GCOMPRIS,), bundled=False)
    assert len(found) > 100
    names = {p.member.rsplit("/", 1)[-1] for p in found}
    assert "bison.webp" in names  # explore_world_animals
    image = P.load_photo(found[0])
    assert image.ndim == 3 and min(image.shape[:2]) >= P.MIN_SIDE // 2
