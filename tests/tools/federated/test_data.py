"""Federated learning's data: the photo world's small photos, the three loaders, client partitions
and augmentations, on small real data sets (a CIFAR-10 stand-in the tests write themselves)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from edgeai.errors import UserInputError
from edgeai.tools import photoworld
from edgeai.tools.federated.data import (
    AUGMENTATIONS,
    GENERATED_TEST_SEED0,
    GENERATED_TRAIN_SEED0,
    augment,
    load_data,
    partition,
)
from edgeai.tools.split_inference.world import CODEC_SEED0, TRAIN_SEED0, example, make_examples

# sha256 over the pixels of make_examples("classify", 20), computed from world.py before the
# photo world moved to tools/photoworld.py: shipped checkpoints were trained on these pixels.
CLASSIFY_20_SHA256 = "201e7bd4a1f80ec1552ce3e7319299feb5d6bb6b96bb2b72abe4b59f0172d9ff"


def test_photoworld_move_kept_split_inference_pixels_identical():
    h = hashlib.sha256()
    for ex in make_examples("classify", 20):
        h.update(ex.image.tobytes())
    assert h.hexdigest() == CLASSIFY_20_SHA256


def test_photos_are_area_averaged_renders_labelled_by_the_main_kind():
    seed = photoworld.FL_SEED0 + 7
    full, labels_full = photoworld.photos(2, seed, size=224)
    # At full size a photo is exactly the split-inference image of the same seed.
    assert np.array_equal(full[0], example("classify", seed).image)
    small, labels = photoworld.photos(2, seed, size=32)
    assert small.shape == (2, 32, 32, 3) and small.dtype == np.uint8
    assert labels.dtype == np.int64 and np.array_equal(labels, labels_full)
    for i in range(2):
        assert photoworld.KINDS[labels[i]] == photoworld.scene_of(seed + i).main.kind
    # Each small pixel is the rounded mean of its 7x7 block.
    block = full[1, 7:14, 21:28].astype(float).mean(axis=(0, 1))
    assert np.array_equal(small[1, 1, 3], np.floor(block + 0.5).astype(np.uint8))
    with pytest.raises(UserInputError, match="divide 224"):
        photoworld.photos(1, seed, size=30)


def test_fl_seeds_do_not_overlap_split_inference_seeds():
    assert photoworld.FL_SEED0 >= CODEC_SEED0 + 1_000_000 > TRAIN_SEED0 + 1_000_000
    assert min(GENERATED_TEST_SEED0, GENERATED_TRAIN_SEED0) >= photoworld.FL_SEED0


def test_generated_set_shapes_determinism_and_cache_round_trip(tmp_path: Path):
    first = load_data("generated", cache_dir=tmp_path, n_train=20)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    p = first.profile()
    assert (p["n_train"], p["n_val"], p["n_test"]) == (20, 100, 100)
    assert (p["channels"], p["height"], p["width"], p["num_classes"]) == (3, 32, 32, 10)
    assert first.x_train.dtype == np.float32 and first.y_train.dtype == np.int64
    assert first.classes == list(photoworld.KINDS)
    assert abs(float(first.x_train.mean())) < 1e-4  # normalised with the training statistics
    cached = load_data("generated", cache_dir=tmp_path, n_train=20)
    fresh = load_data("generated", n_train=20)
    for other in (cached, fresh):
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            assert np.array_equal(getattr(first, name), getattr(other, name)), name
    # Another seed renders other training photos but the same val and test photos.
    other_seed = load_data("generated", cache_dir=tmp_path, n_train=20, seed=1)
    assert not np.array_equal(other_seed.y_train, first.y_train) or \
        not np.allclose(other_seed.x_train, first.x_train)
    assert np.array_equal(other_seed.y_test, first.y_test)


def test_generated_cache_that_is_garbled_is_rebuilt(tmp_path: Path):
    load_data("generated", cache_dir=tmp_path, n_train=20)
    (cache,) = tmp_path.glob("*.npz")
    cache.write_bytes(b"not an npz")
    again = load_data("generated", cache_dir=tmp_path, n_train=20)
    assert again.x_train.shape == (20, 3, 32, 32)
    assert np.load(cache)["x_train"].shape == (20, 32, 32, 3)


def test_digits_split_sizes_and_stratification():
    d = load_data("digits")
    p = d.profile()
    assert (p["n_train"], p["n_val"], p["n_test"]) == (1077, 360, 360)
    assert (p["channels"], p["height"], p["width"], p["num_classes"]) == (1, 8, 8, 10)
    for y in (d.y_train, d.y_val, d.y_test):  # stratified: every class near 10%
        share = np.bincount(y, minlength=10) / len(y)
        assert share.min() > 0.08 and share.max() < 0.12
    assert np.allclose(d.x_train.mean(), 0, atol=1e-4) and np.allclose(d.x_train.std(), 1, 1e-3)
    small = load_data("digits", n_train=100, seed=0)
    assert len(small.y_train) == 100 and np.array_equal(small.y_test, d.y_test)
    with pytest.raises(UserInputError, match="exceeds"):
        load_data("digits", n_train=5_000)


def _write_cifar(root: Path, n_batches: int = 2, per_batch: int = 20) -> np.ndarray:
    """A CIFAR-10 python folder with n_batches training batches; returns the training images."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
             b"dog", b"frog", b"horse", b"ship", b"truck"]
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f)
    images = []
    for i in range(1, n_batches + 1):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        images.append(data)
        batch = {b"data": data, b"labels": [int(v) for v in np.arange(per_batch) % 10],
                 b"batch_label": f"training batch {i} of 5".encode()}
        with (folder / f"data_batch_{i}").open("wb") as f:
            pickle.dump(batch, f)
    with (folder / "test_batch").open("wb") as f:
        pickle.dump({b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8),
                     b"labels": list(range(10))}, f)
    return np.concatenate(images)


def test_cifar10_stand_in_from_folder_or_parent(tmp_path: Path):
    train = _write_cifar(tmp_path)
    d = load_data(f"cifar10:{tmp_path}")
    p = d.profile()
    assert (p["n_train"], p["n_val"], p["n_test"]) == (36, 4, 10)  # val: the last 10% of 40
    assert (p["channels"], p["height"], p["width"]) == (3, 32, 32)
    assert d.classes[0] == "airplane" and d.classes[9] == "truck"
    # Val is the tail of the training batches, normalised with the training split's statistics.
    raw = train[-4:].reshape(4, 3, 32, 32) / 255.0
    mean, std = np.array(d.mean)[:, None, None], np.array(d.std)[:, None, None]
    assert np.allclose(d.x_val, (raw - mean) / std, atol=1e-5)
    same = load_data(f"cifar10:{tmp_path / 'cifar-10-batches-py'}", n_train=10)
    assert len(same.y_train) == 10 and np.array_equal(same.x_val, d.x_val)


def test_cifar10_missing_or_garbled_files_name_the_file(tmp_path: Path):
    _write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_2").write_bytes(b"\x80\x04garbage")
    with pytest.raises(UserInputError, match="data_batch_2"):
        load_data(f"cifar10:{tmp_path}")
    with (folder / "data_batch_2").open("wb") as f:
        pickle.dump({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}, f)
    with pytest.raises(UserInputError, match=r"data_batch_2.*uint8 \(N, 3072\)"):
        load_data(f"cifar10:{tmp_path}")
    (folder / "data_batch_2").unlink()
    (folder / "test_batch").unlink()
    with pytest.raises(UserInputError, match="missing file .*test_batch"):
        load_data(f"cifar10:{tmp_path}")
    # A pickle that would run code is refused, not executed.
    (folder / "batches.meta").write_bytes(pickle.dumps(Path("/tmp")))
    with pytest.raises(UserInputError, match="batches.meta"):
        load_data(f"cifar10:{tmp_path}")


def test_unknown_spec_lists_the_choices():
    with pytest.raises(UserInputError, match="generated, digits, cifar10:PATH"):
        load_data("mnist")


def test_iid_partition_covers_every_index_once():
    labels = np.repeat(np.arange(10), 30)  # 300 samples, sorted by class
    parts = partition(labels, 7, "iid", seed=0)
    assert len(parts) == 7 and {len(p) for p in parts} <= {42, 43}
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(300))
    # The shuffle comes before the shards: each client sees most classes.
    assert all(len(np.unique(labels[p])) >= 8 for p in parts)
    assert all(np.array_equal(a, b) for a, b in zip(parts, partition(labels, 7, "iid", seed=0),
                                                      strict=True))


def _label_spread(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between each client's label mix and the global one."""
    glob = np.bincount(labels, minlength=10) / len(labels)
    return float(np.mean([0.5 * np.abs(np.bincount(labels[p], minlength=10) / len(p) - glob).sum()
                          for p in parts]))


def test_dirichlet_partition_is_disjoint_and_skewed():
    labels = np.repeat(np.arange(10), 50)
    parts = partition(labels, 5, "dirichlet", alpha=0.3, seed=1)
    union = np.concatenate(parts)
    assert len(union) == len(np.unique(union)) == 500  # disjoint, and a cover
    assert min(len(p) for p in parts) >= 10
    iid = partition(labels, 5, "iid", seed=1)
    assert _label_spread(labels, parts) > 2 * _label_spread(labels, iid)


def test_partition_refuses_bad_requests():
    labels = np.zeros(5, np.int64)
    with pytest.raises(UserInputError, match="scheme 'shards'"):
        partition(labels, 2, "shards")
    with pytest.raises(UserInputError, match="num_clients must be >= 1"):
        partition(labels, 0)
    with pytest.raises(UserInputError, match="exceeds the 5 samples"):
        partition(labels, 6)


@pytest.mark.parametrize("shape", [(6, 3, 32, 32), (6, 1, 8, 8)])
def test_augment_keeps_shapes_and_changes_pixels(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    assert augment(x, "none", g) is x
    for kind in AUGMENTATIONS[1:]:
        y = augment(x, kind, g)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert not torch.equal(y, x), kind
    with pytest.raises(UserInputError, match="unknown augmentation 'blur'"):
        augment(x, "blur", g)


def test_crop_moves_content_by_at_most_the_padding():
    x = torch.zeros(4, 1, 8, 8)
    x[:, :, 4, 4] = 1.0  # one bright pixel
    y = augment(x, "crop", torch.Generator().manual_seed(0))
    for img in y[:, 0]:
        (r, c), = torch.nonzero(img).tolist()
        assert abs(r - 4) <= 1 and abs(c - 4) <= 1
