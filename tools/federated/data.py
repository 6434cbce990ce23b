"""Federated learning's data: the image sets a run trains on, their client partitions and the
augmentations a tuner can pick.

`load_data(spec)` turns a spec string into a `FederatedData`: train / val / test arrays, already
float32 (N, C, H, W) and normalised per channel with the training split's statistics. The val
split is held by the server for tuning; the test split is only reported, never tuned on. Three
sources, none downloaded at run time: "generated" (the photo world's 10 shape kinds at 32x32,
rendered from seeds that no other tool uses, cached as .npz), "digits" (scikit-learn's bundled 8x8
digits) and "cifar10:PATH" (a CIFAR-10 python-format folder the user already has). `partition`
splits training indices across clients with flwr-datasets' partitioners (iid or Dirichlet label
skew), and `augment` is a handful of batched torch augmentations (no torchvision).
"""

from __future__ import annotations

import logging
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from edgeai.errors import UserInputError
from edgeai.tools.photoworld import FL_SEED0, KINDS, photos

logger = logging.getLogger(__name__)

SPECS: tuple[str, ...] = ("generated", "digits", "cifar10:PATH")
SCHEMES: tuple[str, ...] = ("iid", "dirichlet")
AUGMENTATIONS: tuple[str, ...] = ("none", "flip", "crop", "flip+crop", "colour")

# The generated set's seed layout inside federated learning's range [FL_SEED0, FL_SEED0 + 1e6):
# test and val are fixed (so scores compare across seeds), each training seed gets its own block.
GENERATED_TEST_SEED0 = FL_SEED0
GENERATED_VAL_SEED0 = FL_SEED0 + 50_000
GENERATED_TRAIN_SEED0 = FL_SEED0 + 100_000
GENERATED_SEED_END = FL_SEED0 + 1_000_000
GENERATED_SIZES = {"train": 5_000, "val": 1_000, "test": 1_000}
GENERATED_IMAGE_SIZE = 32


@dataclass
class FederatedData:
    """One image-classification set, split three ways and normalised.

    x_* are float32 numpy arrays (N, C, H, W), normalised with `mean`/`std` (per channel, from the
    training split); y_* are int64 class indices into `classes`. numpy rather than torch so the
    arrays pickle and memory-map cheaply across Flower's simulated clients; `torch.from_numpy`
    shares their memory.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    mean: tuple[float, ...] = field(default_factory=tuple)
    std: tuple[float, ...] = field(default_factory=tuple)

    def profile(self) -> dict[str, Any]:
        """What an agent needs to pick models and settings: sizes, image shape, class balance."""
        _, c, h, w = self.x_train.shape
        counts = np.bincount(self.y_train, minlength=len(self.classes))
        return {
            "name": self.name,
            "n_train": len(self.y_train),
            "n_val": len(self.y_val),
            "n_test": len(self.y_test),
            "channels": int(c),
            "height": int(h),
            "width": int(w),
            "num_classes": len(self.classes),
            "class_counts": {k: int(n) for k, n in zip(self.classes, counts, strict=True)},
            "imbalance": float(counts.max() / max(1, counts.min())),
        }


# ----------------------------------------------------------------------------- loading


def check_spec(spec: str) -> str:
    """`spec` when it names a data set that is there (cheap: no file is read); one line if not."""
    if spec in ("generated", "digits"):
        return spec
    if spec.startswith("cifar10:") and spec[len("cifar10:"):]:
        path = Path(spec[len("cifar10:"):]).expanduser()
        root = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
        for name in ("batches.meta", "data_batch_1", "test_batch"):
            if not (root / name).is_file():
                raise UserInputError(f"cifar10: {root / name} does not exist (give the "
                                     f"cifar-10-batches-py folder or its parent)")
        return spec
    raise UserInputError(f"unknown data set '{spec}' (choose from {', '.join(SPECS)})")


def load_data(spec: str, cache_dir: Path | None = None, n_train: int | None = None,
              seed: int = 0) -> FederatedData:
    """The data set `spec` names ("generated", "digits" or "cifar10:PATH").

    n_train subsamples the training split (seeded; for small CI configs). seed picks the
    generated set's training images, the digits split and every subsample. cache_dir keeps
    rendered generated sets (the only slow source: ~7 ms a photo).
    """
    if n_train is not None and n_train < 1:
        raise UserInputError(f"n_train must be >= 1, got {n_train}")
    if seed < 0:
        raise UserInputError(f"seed must be >= 0, got {seed}")
    if spec == "generated":
        return _generated(cache_dir, n_train, seed)
    if spec == "digits":
        return _digits(n_train, seed)
    if spec.startswith("cifar10:") and spec[len("cifar10:"):]:
        return _cifar10(Path(spec[len("cifar10:"):]).expanduser(), n_train, seed)
    raise UserInputError(f"unknown data set '{spec}' (choose from {', '.join(SPECS)})")


def _finish(name: str, classes: list[str], train: tuple[np.ndarray, np.ndarray],
            val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
            n_train: int | None = None, seed: int = 0) -> FederatedData:
    """Scale [0, 1] float (N, C, H, W) splits to zero mean, unit variance per channel, then
    subsample the training split to n_train. The statistics come from the whole training split,
    so a small CI subsample sees the same normalisation as a full run."""
    mean = train[0].mean(axis=(0, 2, 3), dtype=np.float64)
    std = train[0].std(axis=(0, 2, 3), dtype=np.float64) + 1e-6
    train = _subsample(*train, n_train, seed, name)

    def norm(x: np.ndarray) -> np.ndarray:
        return ((x - mean[:, None, None]) / std[:, None, None]).astype(np.float32)

    return FederatedData(
        name, norm(train[0]), train[1].astype(np.int64), norm(val[0]), val[1].astype(np.int64),
        norm(test[0]), test[1].astype(np.int64), classes,
        tuple(float(m) for m in mean), tuple(float(s) for s in std))


def _subsample(x: np.ndarray, y: np.ndarray, n: int | None, seed: int, what: str,
               ) -> tuple[np.ndarray, np.ndarray]:
    if n is None or n == len(y):
        return x, y
    if n > len(y):
        raise UserInputError(f"n_train={n} exceeds the {len(y)} training images of {what}")
    keep = np.sort(np.random.default_rng(seed).choice(len(y), n, replace=False))
    return x[keep], y[keep]


def _chw(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1]."""
    return images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def _generated(cache_dir: Path | None, n_train: int | None, seed: int) -> FederatedData:
    """The photo world at 32x32. Below 5,000 training images val and test shrink to n_train // 5
    (at least 100) so small configs render proportionally; a smaller set is a prefix of the
    bigger one with the same seed."""
    n_tr = GENERATED_SIZES["train"] if n_train is None else n_train
    n_ev = min(GENERATED_SIZES["val"], max(100, n_tr // 5))
    train_seed0 = GENERATED_TRAIN_SEED0 + seed * n_tr
    if train_seed0 + n_tr > GENERATED_SEED_END:
        raise UserInputError(f"generated: seed={seed} with n_train={n_tr} runs past federated "
                             f"learning's image seeds (seed * n_train must stay below "
                             f"{GENERATED_SEED_END - GENERATED_TRAIN_SEED0 - n_tr + 1})")
    path = None if cache_dir is None else \
        Path(cache_dir) / f"generated-{GENERATED_IMAGE_SIZE}px-n{n_tr}-e{n_ev}-s{seed}.npz"
    arrays = _read_cache(path) if path is not None else None
    if arrays is None:
        progress = sys.stderr.isatty()
        arrays = {}
        for split, n, seed0 in (("train", n_tr, train_seed0), ("val", n_ev, GENERATED_VAL_SEED0),
                                ("test", n_ev, GENERATED_TEST_SEED0)):
            arrays[f"x_{split}"], arrays[f"y_{split}"] = photos(
                n, seed0, GENERATED_IMAGE_SIZE, progress=progress)
        if path is not None:
            _write_cache(path, arrays)
    return _finish("generated", list(KINDS),
                   *[(_chw(arrays[f"x_{s}"]), arrays[f"y_{s}"]) for s in ("train", "val", "test")])


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None (re-render) when the file is absent or unreadable: the cache
    is ours, so a truncated file is rebuilt rather than reported."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        logger.warning("rebuilding unreadable cache %s (%s)", path, e)
        return None
    want = {f"{p}_{s}" for p in "xy" for s in ("train", "val", "test")}
    if set(arrays) != want:
        logger.warning("rebuilding cache %s: it holds %s", path, sorted(arrays))
        return None
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one


def _digits(n_train: int | None, seed: int) -> FederatedData:
    """scikit-learn's 1,797 8x8 grey digits, split 60/20/20 stratified by `seed`."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = d.target.astype(np.int64)
    x_rest, x_te, y_rest, y_te = train_test_split(x, y, test_size=0.2, stratify=y,
                                                  random_state=seed)
    x_tr, x_va, y_tr, y_va = train_test_split(x_rest, y_rest, test_size=0.25, stratify=y_rest,
                                              random_state=seed)
    return _finish("digits", [str(i) for i in range(10)], (x_tr, y_tr), (x_va, y_va),
                   (x_te, y_te), n_train, seed)


# ----------------------------------------------------------------------------- CIFAR-10


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's dicts of bytes, lists and numpy arrays, and nothing that runs code."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise UserInputError(f"cifar10: missing file {path}")
    try:
        with path.open("rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError) as e:
        raise UserInputError(f"cifar10: {path} is not a CIFAR-10 python pickle ({e})") from None
    if not isinstance(obj, dict):
        raise UserInputError(f"cifar10: {path} holds a {type(obj).__name__}, not a dict")
    return obj


def _batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as uint8 (N, 3, 32, 32) images and int64 labels."""
    d = _unpickle(path)
    data, labels = d.get(b"data"), d.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        raise UserInputError(f"cifar10: {path}: b'data' must be a uint8 (N, 3072) array")
    if labels is None or len(labels) != len(data):
        raise UserInputError(f"cifar10: {path}: b'labels' must list one label per image "
                             f"({len(data)})")
    y = np.asarray(labels, dtype=np.int64)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise UserInputError(f"cifar10: {path}: labels must lie in 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), y


def _cifar10(path: Path, n_train: int | None, seed: int) -> FederatedData:
    """A CIFAR-10 python-format folder (or its parent). Val = the last 5,000 training images
    (10% when the training batches are smaller than the standard 50,000)."""
    root = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    if not root.is_dir():
        raise UserInputError(f"cifar10: no folder {path}")
    meta = _unpickle(root / "batches.meta")
    names = meta.get(b"label_names")
    if not isinstance(names, list) or not names:
        raise UserInputError(f"cifar10: {root / 'batches.meta'}: b'label_names' must be a list")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    batches = []
    for i in range(1, 6):
        f = root / f"data_batch_{i}"
        if not f.exists():
            later = [root / f"data_batch_{j}" for j in range(i + 1, 6)]
            if i == 1 or any(p.exists() for p in later):
                raise UserInputError(f"cifar10: missing file {f}")
            break
        batches.append(_batch(f, len(classes)))
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    x_te, y_te = _batch(root / "test_batch", len(classes))
    n_val = 5_000 if len(y) >= 50_000 else max(1, len(y) // 10)
    if len(y) - n_val < 1:
        raise UserInputError(f"cifar10: {root} holds too few training images ({len(y)})")

    def scale(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32) / 255.0

    return _finish("cifar10", classes, (scale(x[:-n_val]), y[:-n_val]),
                   (scale(x[-n_val:]), y[-n_val:]), (scale(x_te), y_te), n_train, seed)


# ----------------------------------------------------------------------------- partitions


def partition(labels: np.ndarray, num_clients: int, scheme: str = "iid", alpha: float = 0.5,
              seed: int = 0) -> list[np.ndarray]:
    """Training indices for each of num_clients clients, via flwr-datasets' partitioners.

    "iid": a seeded shuffle cut into equal shards (IidPartitioner shards contiguously, so the
    shuffle comes first); every index appears exactly once. "dirichlet": per class, client
    shares drawn from Dir(alpha) (smaller alpha, more label skew), each client holding at least
    min(10, n // (2 * num_clients)) images; also a disjoint cover of all indices.
    """
    from datasets import Dataset
    from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner

    labels = np.asarray(labels)
    if scheme not in SCHEMES:
        raise UserInputError(f"unknown partition scheme '{scheme}' (choose from "
                             f"{', '.join(SCHEMES)})")
    if num_clients < 1:
        raise UserInputError(f"num_clients must be >= 1, got {num_clients}")
    if num_clients > len(labels):
        raise UserInputError(f"num_clients={num_clients} exceeds the {len(labels)} samples")
    if scheme == "dirichlet" and not alpha > 0:
        raise UserInputError(f"dirichlet alpha must be > 0, got {alpha}")
    ds = Dataset.from_dict({"label": labels.tolist(), "index": np.arange(len(labels)).tolist()})
    if scheme == "iid":
        part = IidPartitioner(num_partitions=num_clients)
        part.dataset = ds.shuffle(seed=seed)
    else:
        min_size = min(10, len(labels) // (2 * num_clients))
        part = DirichletPartitioner(num_partitions=num_clients, partition_by="label",
                                    alpha=alpha, seed=seed, min_partition_size=min_size)
        part.dataset = ds
    try:
        return [np.asarray(part.load_partition(i)["index"], dtype=np.int64)
                for i in range(num_clients)]
    except ValueError as e:  # Dirichlet draws that never meet min_partition_size
        raise UserInputError(f"dirichlet partition of {len(labels)} samples into "
                             f"{num_clients} clients with alpha={alpha} failed: {e}") from None


# ----------------------------------------------------------------------------- augmentation


def augment(x: torch.Tensor, kind: str, generator: torch.Generator | None = None,
            ) -> torch.Tensor:
    """A randomly augmented copy of the batch x (B, C, H, W); "none" returns x itself.

    "flip": horizontal flip with probability 1/2. "crop": pad by 4 px (1 px below 16 px images)
    with zeros, the normalised mean, and crop back at a random offset. "colour": brightness
    shift in [-0.2, 0.2] and contrast scale in [0.8, 1.2] per image, in normalised units.
    """
    if kind not in AUGMENTATIONS:
        raise UserInputError(f"unknown augmentation '{kind}' (choose from "
                             f"{', '.join(AUGMENTATIONS)})")
    if kind == "none":
        return x
    if "flip" in kind:
        x = _flip(x, generator)
    if "crop" in kind:
        x = _crop(x, generator)
    if kind == "colour":
        x = _colour(x, generator)
    return x


def _flip(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=g) < 0.5  # (B,)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _crop(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    b, c, h, w = x.shape
    pad = 4 if min(h, w) >= 16 else 1
    padded = F.pad(x, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    rows = (oy[:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = (ox[:, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
    return padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows, cols]  # (B, C, H, W)


def _colour(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    b = x.shape[0]
    shift = (torch.rand(b, 1, 1, 1, generator=g) - 0.5) * 0.4
    scale = 0.8 + torch.rand(b, 1, 1, 1, generator=g) * 0.4
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * scale + mean + shift
