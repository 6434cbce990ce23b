"""Feature codec: exact round trip through real bytes, size near the estimate, bad bytes fail loudly."""

from __future__ import annotations

import pytest
import torch
from edgeai.errors import EdgeAIError
from edgeai.tools.split_inference.codec import (
    HEADER_BYTES,
    CodecMeta,
    FeatureCodec,
    load_codec,
    save_codec,
)
from edgeai.tools.split_inference.entropy import CodecError

torch.set_num_threads(1)
T, D = 16, 32


def _activations(n: int, seed: int) -> torch.Tensor:
    """Structured activations: a low-rank token signal with per-dimension scales, plus noise."""
    basis = torch.randn(4, D, generator=torch.Generator().manual_seed(99)) * torch.linspace(
        0.5, 3, D
    )
    g = torch.Generator().manual_seed(seed)
    coeff = torch.randn(n, T, 4, generator=g)
    return coeff @ basis + 0.05 * torch.randn(n, T, D, generator=g)


def _codec(seed: int, lam: float = 0.01, steps: int = 200) -> FeatureCodec:
    torch.manual_seed(seed)
    codec = FeatureCodec(CodecMeta("toy", "classify", 1, lam, channels=8, d_model=D, hidden=32))
    opt = torch.optim.Adam(codec.parameters(), lr=1e-2)
    data = _activations(256, seed)
    for step in range(steps):
        h = data[(step * 32) % 256 :][:32]
        h_hat, bits = codec(h)
        loss = (h_hat - h).pow(2).mean() + lam * bits.mean() / T + codec.aux_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    codec.update()
    return codec.eval()


@pytest.fixture(scope="module")
def codec() -> FeatureCodec:
    return _codec(0)


def test_decompress_is_exactly_the_rounded_path(codec: FeatureCodec) -> None:
    for h in _activations(4, 123).split(1):
        data = codec.compress(h)
        h_hat = codec.decompress(data)
        assert h_hat.shape == h.shape
        assert torch.equal(h_hat, codec.reconstruct(h))
        assert torch.equal(h_hat, codec(h)[0].detach())  # eval forward = rounding path
    # it actually reconstructs (trained for MSE): far better than predicting zero
    h = _activations(8, 5)
    assert (codec.reconstruct(h) - h).pow(2).mean() < 0.25 * h.pow(2).mean()


def test_actual_bytes_track_the_estimated_bits(codec: FeatureCodec) -> None:
    for h in _activations(6, 7).split(1):
        estimate = codec(h)[1].item() / 8
        actual = len(codec.compress(h))
        assert estimate <= actual <= 1.10 * estimate + HEADER_BYTES + 4


def test_lambda_trades_rate(codec: FeatureCodec) -> None:
    cheap = _codec(0, lam=0.3)
    h = _activations(8, 9)
    rate = sum(len(codec.compress(x)) for x in h.split(1))
    rate_cheap = sum(len(cheap.compress(x)) for x in h.split(1))
    assert rate_cheap < 0.7 * rate


def test_corrupt_truncated_or_foreign_bytes_raise_codec_error(codec: FeatureCodec) -> None:
    h = _activations(1, 11)
    data = codec.compress(h)
    flipped = bytearray(data)
    flipped[-3] ^= 0x10
    other = _codec(1, steps=20)
    bad = {
        "empty": b"",
        "header only, short": data[:5],
        "truncated payload": data[:-4],
        "odd length": data[:-1],
        "bit flip": bytes(flipped),
        "wrong magic": b"\x00" + data[1:],
        "other codec": other.compress(h),
    }
    for name, blob in bad.items():
        with pytest.raises(CodecError):
            codec.decompress(blob)
            pytest.fail(name)
    with pytest.raises(CodecError, match="bytes"):
        codec.decompress("not bytes")  # type: ignore[arg-type]


def test_bad_activations_raise(codec: FeatureCodec) -> None:
    with pytest.raises(EdgeAIError, match="takes"):
        codec.compress(torch.zeros(1, T, D + 1))
    with pytest.raises(EdgeAIError, match="one item"):
        codec.compress(torch.zeros(2, T, D))
    with pytest.raises(EdgeAIError, match="NaN"):
        codec.compress(torch.full((1, T, D), float("nan")))


def test_save_load_round_trip(codec: FeatureCodec, tmp_path) -> None:
    path = tmp_path / "codec.pt"
    save_codec(codec, path, extra={"seed": 0})
    loaded = load_codec(path)
    assert loaded.meta == codec.meta
    h = _activations(2, 13)[:1]
    data = codec.compress(h)
    assert loaded.compress(h) == data
    assert torch.equal(loaded.decompress(data), codec.decompress(data))
    with pytest.raises(EdgeAIError, match="not found"):
        load_codec(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EdgeAIError, match="does not load"):
        load_codec(tmp_path / "junk.pt")
