"""EfficientNet-Lite0 (ImageNet, pretrained) as a SplitModel: the unsplit model equals the package's,
every split rejoins exactly, the shipped label-free codec codes real bytes, the socket runtime
serves it, photo sources are grouped, and the benchmark's quick run writes its files.

Only the photos bundled with scikit-learn and matplotlib are used (the Debian wallpaper packages
may be missing in CI); tests that need those are skipped when they are.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from edgeai.cli import main
from edgeai.tools.split_inference import photos as P
from edgeai.tools.split_inference.codec import CHECKPOINT_DIR, EFFNET_CODECS, load_codec
from edgeai.tools.split_inference.effnet import (
    MODEL_ID,
    STAGE_BLOCKS,
    imagenet_classes,
    load_effnet,
    package_model,
)
from edgeai.tools.split_inference.effnet_codec import EvalRow, cheapest, wilson
from edgeai.tools.split_inference.runtime import DeviceClient, EdgeServer

FAST = 20_000_000.0


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_effnet()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Bundled photos (grace_hopper, china, flower) as 224 x 224 centre views plus one odd size."""
    bundled = P.find_photos(["bundled"], roots=())
    assert {p.path.name for p in bundled} == {"grace_hopper.jpg", "china.jpg", "flower.jpg"}
    return [P.load_photo(p) for p in bundled]


def test_class_names_are_imagenet_1k() -> None:
    names = imagenet_classes()
    assert len(names) == 1000 and names[0] == "tench" and names[1] == "goldfish"
    assert names[999] == "toilet tissue"


def test_unsplit_model_equals_the_package_model(model, images) -> None:
    net = package_model()
    x = model.preprocess(np.stack([P.resized_crop(im, (0, 0, 224, 224)) for im in images]))
    with torch.no_grad():
        assert torch.equal(model.logits_from(x, 0), net(x))
    names = model.predict(images[0])  # grace_hopper, any size: resize 256 + centre crop 224
    assert names[0] in {"military uniform", "academic gown", "mortarboard"}
    assert model.model_id == MODEL_ID and model.n_stages == 1 + len(STAGE_BLOCKS) == 8


def test_every_split_rejoins_to_the_unsplit_model(model, images) -> None:
    x = model.preprocess(images[1])
    shapes = {}
    with torch.no_grad():
        ref = model.logits_from(x, 0)
        for k in range(model.n_stages + 1):
            h = model.run_stages(x, 0, k)
            shapes[k] = tuple(h.shape)
            assert torch.equal(model.logits_from(h, k), ref), k
    assert shapes[6] == (1, 196, 112) and shapes[7] == (1, 49, 192) and shapes[8] == (1, 49, 320)


@pytest.mark.parametrize("name", EFFNET_CODECS)
def test_shipped_codec_round_trip_through_bytes(model, images, name: str) -> None:
    codec = load_codec(CHECKPOINT_DIR / name)
    assert codec.meta.model_id == MODEL_ID and codec.meta.task == "imagenet"
    assert (CHECKPOINT_DIR / name).stat().st_size < 2_000_000
    k = int(codec.meta.split)
    for image in images:
        h = model.features(image, k)
        blob = codec.compress(h)
        assert len(blob) < 20_000  # ~1-12 kB (stored photos here are 100-400 kB)
        with torch.no_grad():
            decoded = codec.decompress(blob)
            forward, _ = codec(h)  # eval mode: the rounded path
        assert torch.allclose(decoded, forward, atol=1e-5)
        assert model.predict_from(decoded, k) == model.predict_from(forward, k)


def test_runtime_serves_efficientnet_over_a_real_socket(model, images) -> None:
    codec = load_codec(CHECKPOINT_DIR / EFFNET_CODECS[0])
    k = int(codec.meta.split)
    photo = images[0]
    with EdgeServer("127.0.0.1", 0, {"imagenet": model}, {"imagenet": [codec]}) as edge:
        device = DeviceClient({"imagenet": model}, {"imagenet": [codec]}, timeout_s=20)
        coinfer = device.infer(photo, "imagenet", "coinfer", FAST, server=edge.address)
        lossless = device.infer(photo, "imagenet", "edge-lossless", FAST, server=edge.address)
    expected = model.predict_from(codec.reconstruct(model.features(photo, k)), k)[0]
    assert coinfer.answer == expected and coinfer.split == k
    assert lossless.answer == model.predict(photo)[0]
    assert coinfer.answer in imagenet_classes()
    assert coinfer.payload_bytes < lossless.payload_bytes / 20


def test_infer_command_on_a_photo_path(model, tmp_path, capsys) -> None:
    """`edgeai split infer --task imagenet PHOTO` against a server on 127.0.0.1 names the class."""
    photo = P.find_photos(["bundled"], roots=())[0].path
    codec = load_codec(CHECKPOINT_DIR / EFFNET_CODECS[0])
    with EdgeServer("127.0.0.1", 0, {"imagenet": model}, {"imagenet": [codec]}) as edge:
        host, port = edge.address
        rc = main(
            [
                "split",
                "infer",
                str(photo),
                "--task",
                "imagenet",
                "--edge",
                f"{host}:{port}",
                "--rate",
                "10MB/s",
                "--json",
                "--home",
                str(tmp_path),
            ]
        )
    assert rc == 0
    record = json.loads(capsys.readouterr().out)
    assert record["answer"] in imagenet_classes() and record["scheme"] == "coinfer"


def test_photo_sources_are_grouped_and_missing_photos_fail_in_one_line(tmp_path) -> None:
    bundled = P.find_photos(["bundled"], roots=())
    assert {p.source for p in bundled} == {"bundled"}
    fake = tmp_path / "backgrounds"
    (fake / "gnome").mkdir(parents=True)
    big = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    from PIL import Image

    Image.fromarray(big).save(fake / "top.png")
    Image.fromarray(big).save(fake / "gnome" / "g.png")
    Image.fromarray(big[:100, :100]).save(fake / "gnome" / "tiny.png")  # too small: skipped
    (fake / "gnome" / "art.svg").write_text("<svg/>")
    found = P.find_photos(roots=(fake,), bundled=False)
    assert [(p.source, p.path.name) for p in found] == [("gnome", "g.png"), ("ubuntu", "top.png")]
    with pytest.raises(P.NoPhotosError) as err:
        P.find_photos(["plasma"], roots=(fake,), bundled=False)
    assert "\n" not in str(err.value) and "plasma" in str(err.value)
    with pytest.raises(P.NoPhotosError):
        P.find_photos(roots=(tmp_path / "nothing",), bundled=False)


def test_augmentations_are_numpy_pil_and_deterministic(images) -> None:
    rng = np.random.default_rng(0)
    view = P.augment(images[1], rng)
    assert view.shape == (224, 224, 3) and view.dtype == np.uint8
    again = P.augment(images[1], np.random.default_rng(0))
    assert np.array_equal(view, again)
    views = P.eval_views(P.find_photos(["bundled"], roots=()), per_photo=2)
    assert len(views) == 6 and all(v.image.shape == (224, 224, 3) for v in views)


def test_wilson_interval_and_cheapest_baseline() -> None:
    lo, hi = wilson(99, 100)
    assert 0.94 < lo < 0.96 and 0.99 < hi <= 1.0
    from edgeai.tools.split_inference.effnet_codec import EffnetReport

    rows = [
        EvalRow("codec", "k=8", 100, 99, 150.0, split=8),
        EvalRow("jpeg@224", "q=30", 100, 97, 3000.0, quality=30),
        EvalRow("jpeg@224", "q=60", 100, 99, 5000.0, quality=60),
        EvalRow("webp@224", "q=90", 100, 100, 9000.0, quality=90),
    ]
    best = cheapest(EffnetReport(rows, 100, 10, ["plasma"], ["ubuntu"], 1.0))
    at99 = next(b for b in best if b["target"] == "99%")
    assert at99["best_image"] == "jpeg@224 q=60" and at99["ratio"] == pytest.approx(5000 / 150)


def test_uniform_quantisation_reference_round_trips(model, images) -> None:
    from edgeai.tools.split_inference.effnet_codec import quant_compress, quant_decompress

    h = model.features(images[2], 7)  # (1, 49, 192)
    errors = {}
    for bits in (8, 4):
        blob = quant_compress(h, bits)
        back = quant_decompress(blob)
        assert back.shape == h.shape
        scale = h[0].abs().amax(0)
        # rounding error at most half a level (plus the float16 scale's rounding)
        step = scale / (2 ** (bits - 1) - 1)
        assert ((back - h).abs() <= 0.5 * step + 2e-3 * scale + 1e-6).all()
        errors[bits] = (back - h).pow(2).mean().item()
        assert len(blob) < h.numel()  # under one byte per value
    assert errors[8] < errors[4] / 50


def test_linear_codec_starts_at_the_principal_components() -> None:
    """A linear codec at PCA init and a fine step is near-lossless on correlated features, and
    its bytes decode to what its rounded forward pass gives."""
    from edgeai.tools.split_inference.codec import CodecMeta, FeatureCodec
    from edgeai.tools.split_inference.effnet_codec import pca_init

    torch.manual_seed(0)
    mix = torch.randn(16, 16)
    feats = (torch.randn(64, 49, 16) * torch.linspace(3, 0.1, 16)) @ mix + 2.0
    for gain, bound in ((32.0, 1e-3), (1.0, None)):
        codec = FeatureCodec(CodecMeta("m", "t", 7, 0.0, 16, 16, 16, gain, "linear"))
        pca_init(codec, feats)
        codec.update()
        codec.eval()
        with torch.no_grad():
            err = (codec.reconstruct(feats) - feats).pow(2).mean() / feats.var()
        if bound is not None:
            assert err < bound
        else:
            assert err > 1e-3  # a coarse step loses detail: the bound above means something
    blob = codec.compress(feats[:1])
    assert torch.allclose(codec.decompress(blob), codec.reconstruct(feats[:1]), atol=1e-5)


def test_train_config_parser_takes_the_linear_arch() -> None:
    from edgeai.cli.split.effnet import _configs
    from edgeai.errors import UserInputError

    (cfg,) = _configs("7:1e-8:100:64:400:192:192:9:linear:1e-3")
    assert (cfg.split, cfg.arch, cfg.gain, cfg.channels, cfg.lr) == (7, "linear", 9.0, 192, 1e-3)
    with pytest.raises(UserInputError):
        _configs("7:1e-8:100:64:400:192:192:9:conv")


def test_bench_quick_writes_its_csv(tmp_path: Path) -> None:
    assert main(["bench", "split-effnet", "--quick", "--home", str(tmp_path)]) == 0
    out = tmp_path / "bench" / "split"
    rows = list(csv.DictReader((out / "split_effnet_quick.csv").open()))
    schemes = {r["scheme"] for r in rows}
    assert {"codec", "png@224", "jpeg@224", "jpeg444@224", "webp@224", "avif@224"} <= schemes
    assert "quant+xz k=8" in schemes
    assert all(int(r["n"]) == 6 for r in rows)
    assert (out / "split_effnet_quick.png").is_file()
    summary = json.loads((out / "split_effnet_quick.json").read_text())
    assert summary["held_out_sources"] == ["bundled"]
