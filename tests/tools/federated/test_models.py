"""Federated learning's models: every arch trains on 32x32 RGB and 8x8 grey inputs, the sizes
the communication model reads are the state dict's, and the shipped warm starts load."""

from __future__ import annotations

import pytest
import torch
from edgeai.errors import UserInputError, WeightsError
from edgeai.tools.federated.models import (
    ARCHS,
    build_model,
    load_warm_start,
    model_bytes,
    param_count,
    warm_start_path,
)
from torch import nn


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("channels", "size"), [(3, 32), (1, 8)])
def test_forward_backward_shapes(arch: str, channels: int, size: int):
    torch.manual_seed(0)
    model = build_model(arch, channels, 10, size)
    x = torch.randn(4, channels, size, size)
    out = model(x)
    assert out.shape == (4, 10)
    nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # Batch size 1 works in train mode (GroupNorm, no batch statistics).
    assert model(x[:1]).shape == (1, 10)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_few_steps_fit_a_small_batch(arch: str):
    torch.manual_seed(0)
    model = build_model(arch, 1, 3, 8)
    x, y = torch.randn(12, 1, 8, 8), torch.arange(12) % 3
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first


def test_sizes_and_width():
    model = build_model("cnn", 3, 10, 32)
    n = param_count(model)
    assert n == sum(p.numel() for p in model.parameters())
    assert model_bytes(model) == 4 * n  # GroupNorm/no norm: no buffers beyond the parameters
    wide = build_model("resnet", 3, 10, 32, width=2)
    assert param_count(wide) > 3 * param_count(build_model("resnet", 3, 10, 32))
    assert wide(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    for arch in ARCHS:  # the classifier is always `head`, which warm starts replace
        assert isinstance(build_model(arch, 3, 7, 32).head, nn.Linear)


def test_bad_arguments_are_refused():
    with pytest.raises(UserInputError, match="cnn, resnet, mobilenet"):
        build_model("vgg", 3, 10, 32)
    with pytest.raises(UserInputError, match="num_classes must be >= 2"):
        build_model("cnn", 3, 1, 32)


@pytest.mark.parametrize("arch", ARCHS)
def test_warm_start_loads_everything_but_the_head(arch: str):
    path = warm_start_path(arch)
    assert path is not None and path.stat().st_size < 2_000_000
    saved = torch.load(path, weights_only=True)["state_dict"]
    torch.manual_seed(0)
    model = load_warm_start(build_model(arch, 3, 7, 32), arch)  # 7 classes: a new head
    for key, value in model.state_dict().items():
        if key.startswith("head."):
            assert value.shape[0] == 7
        else:
            assert torch.equal(value, saved[key]), key
    # A grey 8x8 model takes the RGB stem summed over colour.
    grey = load_warm_start(build_model(arch, 1, 10, 8), arch)
    stem = next(k for k in saved if saved[k].ndim == 4)
    assert torch.allclose(grey.state_dict()[stem], saved[stem].sum(1, keepdim=True))
    assert grey(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_warm_start_that_does_not_fit_names_the_file(tmp_path):
    wide = build_model("cnn", 3, 10, 32, width=2)
    with pytest.raises(WeightsError, match="warmstart-cnn.pt"):
        load_warm_start(wide, "cnn")
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="w.pt"):
        load_warm_start(build_model("cnn", 3, 10, 32), "cnn", bad)
