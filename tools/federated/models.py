"""Federated learning's models: three small image classifiers a tuner chooses between, sized so
a simulated client's local epoch runs in seconds on one CPU thread.

`build_model(arch, in_channels, num_classes, image_size, width)` gives a plain CNN ("cnn"), a
ResNet-style net of basic residual blocks ("resnet") or a MobileNetV2-style net of inverted
residuals with depthwise convolutions ("mobilenet"). All end in adaptive average pooling, so one
definition serves 32x32 RGB (generated photos, CIFAR-10) and 8x8 grey (digits); a stride-2 step
is taken only while the feature map stays at least 2 px wide, so 8x8 inputs downsample twice
(8 -> 4 -> 2) where 32x32 ones downsample three times (32 -> 16 -> 8 -> 4).

Normalisation is GroupNorm, not BatchNorm. FedAvg can average BatchNorm's running statistics, but
under label-skewed (Dirichlet) partitions each client's statistics describe a different
distribution and their average describes none of them, which costs accuracy (Hsieh et al. 2020,
"The Non-IID Data Quagmire"); GroupNorm keeps no running statistics, behaves the same in train
and eval mode, works at batch size 1, and leaves a state dict that is parameters only, so
`model_bytes` is exactly what a round transmits.

Measured on this machine (one CPU thread, width 1, 10 classes, batch 32, SGD, one epoch over 500
images, forward + backward + step; `python -m edgeai.tools.federated.models` re-measures):

    arch       params (32x32x3)   epoch, 32x32x3   epoch, 8x8x1
    cnn        94,538             0.76 s           0.11 s
    resnet     78,042             0.92 s           0.14 s
    mobilenet  46,570             1.79 s           0.47 s

(8x8x1 models have ~300-600 fewer parameters: the stem sees one channel.) The depthwise
convolutions make the smallest model the slowest on CPU, as they are on most CPUs.

Warm starts: `load_warm_start` fills every layer but the `head` from checkpoints/warmstart-<arch>.pt
(scripts/train_fl_warmstart.py: 120 s on 2,700 photo-world photos from seeds >= 4_000_000;
held-out accuracy cnn 0.28, resnet 0.79, mobilenet 0.36). Those photos share the generated set's
10 classes, so on "generated" a warm start is pre-training on the very task.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from edgeai.errors import UserInputError, WeightsError
from torch import nn

ARCHS: tuple[str, ...] = ("cnn", "resnet", "mobilenet")


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups of at least 4 channels (see the module docstring)."""
    groups = max(g for g in (1, 2, 4, 8) if g == 1 or (channels % g == 0 and channels // g >= 4))
    return nn.GroupNorm(groups, channels)


class _Size:
    """Tracks the feature map's side as layers downsample, refusing to go below 2 px."""

    def __init__(self, side: int) -> None:
        self.side = side

    def stride(self) -> int:
        """2 if halving keeps the map >= 2 px (and records it), else 1."""
        if self.side // 2 >= 2:
            self.side //= 2
            return 2
        return 1


# ----------------------------------------------------------------------------- cnn


class SmallCNN(nn.Module):
    """Three conv blocks (conv 3x3, ReLU, 2x2 max-pool when the map allows) and a linear head."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 1):
        super().__init__()
        size = _Size(image_size)
        chans = [in_channels, 32 * width, 64 * width, 128 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(chans):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True)]
            if size.stride() == 2:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(chans[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 128w, s, s)
        return self.head(self.pool(x).flatten(1))  # (B, num_classes)


# ----------------------------------------------------------------------------- resnet


class BasicBlock(nn.Module):
    """He et al. 2016's basic block: two 3x3 convs and an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = _norm(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          _norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """A ResNet-8: a 3x3 stem and three stages of one basic block (16, 32, 64 channels x width),
    the last two downsampling when the map allows."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 1):
        super().__init__()
        size = _Size(image_size)
        c = [16 * width, 32 * width, 64 * width]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c[0], 3, 1, 1, bias=False), _norm(c[0]),
                                  nn.ReLU(inplace=True))
        self.stages = nn.Sequential(BasicBlock(c[0], c[0], 1),
                                    BasicBlock(c[0], c[1], size.stride()),
                                    BasicBlock(c[1], c[2], size.stride()))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (B, 64w, s, s)
        return self.head(self.pool(x).flatten(1))  # (B, num_classes)


# ----------------------------------------------------------------------------- mobilenet


class InvertedResidual(nn.Module):
    """Sandler et al. 2018's block: 1x1 expand, 3x3 depthwise, 1x1 linear projection; a residual
    connection when the shape is unchanged."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), _norm(hidden), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                   _norm(hidden), nn.ReLU6(inplace=True),
                   nn.Conv2d(hidden, c_out, 1, bias=False), _norm(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class SmallMobileNet(nn.Module):
    """A MobileNetV2 cut down for 32 px: stem 3x3 conv, inverted residual stages (expansion t,
    channels c x width, repeats n, first stride s) as in the paper's Table 2, a 1x1 conv to 128
    channels, pooling and a linear head."""

    # (t, c, n, s): the paper's table, shortened; s=2 is taken only when the map allows.
    STAGES = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2), (4, 48, 1, 2))

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 1):
        super().__init__()
        size = _Size(image_size)
        c_in = 16 * width
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_in, 3, 1, 1, bias=False),
                                  _norm(c_in), nn.ReLU6(inplace=True))
        blocks: list[nn.Module] = []
        for t, c, n, s in self.STAGES:
            c_out = c * width
            for i in range(n):
                stride = size.stride() if (i == 0 and s == 2) else 1
                blocks.append(InvertedResidual(c_in, c_out, stride, t))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        c_last = 128 * width
        self.last = nn.Sequential(nn.Conv2d(c_in, c_last, 1, bias=False), _norm(c_last),
                                  nn.ReLU6(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.last(self.blocks(self.stem(x)))  # (B, 128w, s, s)
        return self.head(self.pool(x).flatten(1))  # (B, num_classes)


# ----------------------------------------------------------------------------- public


_BUILDERS: dict[str, type[nn.Module]] = {
    "cnn": SmallCNN, "resnet": SmallResNet, "mobilenet": SmallMobileNet}


def build_model(arch: str, in_channels: int, num_classes: int, image_size: int,
                width: int = 1) -> nn.Module:
    """A freshly initialised `arch` for (in_channels, image_size, image_size) inputs; its final
    linear layer is always called `head` (warm starts replace it for a new class count)."""
    if arch not in _BUILDERS:
        raise UserInputError(f"unknown model arch '{arch}' (choose from {', '.join(ARCHS)})")
    for name, value, least in (("in_channels", in_channels, 1), ("num_classes", num_classes, 2),
                               ("image_size", image_size, 1), ("width", width, 1)):
        if value < least:
            raise UserInputError(f"build_model: {name} must be >= {least}, got {value}")
    return _BUILDERS[arch](in_channels, num_classes, image_size, width)


def param_count(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_bytes(model: nn.Module) -> int:
    """Bytes of one model update at float32: every floating tensor of the state dict, which is
    what a Flower client sends each round (with GroupNorm, the parameters alone)."""
    return 4 * sum(t.numel() for t in model.state_dict().values() if t.is_floating_point())


# ----------------------------------------------------------------------------- warm start


CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"


def warm_start_path(arch: str) -> Path | None:
    """The shipped pre-trained weights of `arch` (scripts/train_fl_warmstart.py), or None."""
    if arch not in _BUILDERS:
        raise UserInputError(f"unknown model arch '{arch}' (choose from {', '.join(ARCHS)})")
    path = CHECKPOINT_DIR / f"warmstart-{arch}.pt"
    return path if path.is_file() else None


def load_warm_start(model: nn.Module, arch: str, path: Path | None = None) -> nn.Module:
    """Load `arch`'s pre-trained weights into `model` (in place, returned), all but the `head`.

    The weights were trained on 32x32 RGB photo-world photos (seeds >= 4_000_000, never an FL
    seed) at width 1. A grey model's stem gets the RGB filters summed over colour, which is
    the RGB net's response to a grey image copied to three channels; any other mismatch (width,
    arch) is a WeightsError naming the file. The head keeps its fresh initialisation.
    """
    from edgeai.tools.checkpoints import load

    path = path or warm_start_path(arch)
    if path is None:
        raise WeightsError(f"no warm-start weights shipped for '{arch}' in {CHECKPOINT_DIR}")

    def fit(payload: dict) -> nn.Module:
        own = model.state_dict()
        state = {}
        for key, value in payload["state_dict"].items():
            if key.startswith("head.") or key not in own:
                continue
            if value.ndim == 4 and own[key].ndim == 4 and value.shape[1] != own[key].shape[1] \
                    and own[key].shape[1] == 1:
                value = value.sum(dim=1, keepdim=True)  # RGB stem -> grey stem
            state[key] = value
        missing = [k for k in own if k not in state and not k.startswith("head.")]
        if missing:
            raise WeightsError(f"warm start '{path}' lacks {', '.join(missing[:3])}")
        model.load_state_dict(state, strict=False)
        return model

    return load(path, "warm start", fit, expect={"arch": arch})


def _measure() -> None:  # pragma: no cover - the numbers in the module docstring
    import time

    torch.set_num_threads(1)
    for arch in ARCHS:
        row = []
        for c, s in ((3, 32), (1, 8)):
            torch.manual_seed(0)
            model = build_model(arch, c, 10, s)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            x, y = torch.randn(500, c, s, s), torch.randint(0, 10, (500,))
            t0 = time.perf_counter()
            for i in range(0, 500, 32):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
                opt.step()
            row.append(f"{s}x{s}x{c}: {param_count(model)} params, {time.perf_counter() - t0:.2f} s")
        print(f"{arch:10s} " + "  ".join(row))


if __name__ == "__main__":  # pragma: no cover
    _measure()
