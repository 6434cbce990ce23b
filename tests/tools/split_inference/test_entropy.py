"""Factorised entropy model: a proper density, training lowers the rate, range coding is lossless and near the estimate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from edgeai.tools.split_inference.entropy import (
    LIKELIHOOD_BOUND,
    MAX_SYMBOL,
    CodecError,
    EntropyBottleneck,
)

torch.set_num_threads(1)


def _fit(eb: EntropyBottleneck, y: torch.Tensor, steps: int = 250) -> list[float]:
    opt = torch.optim.Adam(eb.parameters(), lr=2e-2)
    rates = []
    for _ in range(steps):
        rate = eb.bits(eb.noisy(y)).mean()
        opt.zero_grad()
        (rate + eb.aux_loss()).backward()
        opt.step()
        rates.append(rate.item())
    eb.update()
    return rates


@pytest.fixture(scope="module")
def fitted() -> tuple[EntropyBottleneck, torch.Tensor]:
    torch.manual_seed(0)
    scales = torch.tensor([0.2, 1.0, 3.0, 10.0])
    shifts = torch.tensor([0.0, 2.3, -4.0, 7.5])
    dist = torch.distributions.Laplace(shifts, scales)
    eb = EntropyBottleneck(4)
    rates = _fit(eb, dist.sample((3000,)))
    assert np.mean(rates[-20:]) < np.mean(rates[:20]) - 1.0  # training lowers the rate
    return eb, dist.sample((500,))


def test_quantised_likelihoods_form_a_distribution(fitted) -> None:
    eb, _ = fitted
    grid = torch.arange(-200, 201, dtype=torch.float32)
    values = grid[:, None] + eb.medians.detach()[None, :]  # (401, C), integers around medians
    p = eb.likelihoods(values)
    assert torch.all(p >= LIKELIHOOD_BOUND)
    assert torch.allclose(p.sum(0), torch.ones(4), atol=1e-3)


def test_rate_matches_the_data_entropy(fitted) -> None:
    eb, y = fitted
    # A Laplace(b) rounded to integers has entropy ~ log2(2 e b) bits for b >> 1.
    bits = eb.bits(eb.dequantize(eb.symbols(y))).mean(0)
    expected = torch.log2(2 * torch.e * torch.tensor([3.0, 10.0]))
    assert torch.all((bits[2:] - expected).abs() < 0.25), bits
    assert bits[0] < bits[1] < bits[2] < bits[3]
    # medians move to the true centres (Adam moves them ~lr per step, so the far one lags;
    # only their fractional part matters for coding, the tables are built around them)
    medians = eb.medians.detach()
    assert torch.allclose(medians[:3], torch.tensor([0.0, 2.3, -4.0]), atol=0.6)
    assert medians[3] > 4.0


def test_range_coding_is_lossless_and_close_to_the_estimate(fitted) -> None:
    eb, y = fitted
    s = eb.symbols(y)
    words = eb.encode(s)
    assert torch.equal(eb.decode(words, len(s)), s)
    estimate = float(eb.bits(eb.dequantize(s)).sum())
    actual = 32 * len(words)
    assert estimate * 0.98 <= actual <= estimate * 1.10 + 64


def test_values_outside_the_support_escape_losslessly(fitted) -> None:
    eb, y = fitted
    s = eb.symbols(y)
    s[0, 0], s[7, 3], s[9, 1] = 900, -MAX_SYMBOL, MAX_SYMBOL
    assert torch.equal(eb.decode(eb.encode(s), len(s)), s)
    # the quantiser clamps to the codable range, so every symbol it makes is codable
    big = eb.symbols(torch.full((2, 4), 1e9))
    assert int(big.max()) == MAX_SYMBOL
    assert torch.equal(eb.decode(eb.encode(big), 2), big)


def test_tables_travel_in_the_state_dict(fitted) -> None:
    eb, y = fitted
    s = eb.symbols(y)
    other = EntropyBottleneck(4)
    other.load_state_dict(eb.state_dict())
    assert np.array_equal(other.encode(s), eb.encode(s))
    assert torch.equal(other.decode(eb.encode(s), len(s)), s)


def test_coding_before_update_is_an_error() -> None:
    with pytest.raises(Exception, match="update"):
        EntropyBottleneck(2).encode(torch.zeros(3, 2, dtype=torch.int64))


def test_garbage_words_raise_or_decode_in_range(fitted) -> None:
    eb, _ = fitted
    rng = np.random.default_rng(1)
    for _ in range(5):
        words = rng.integers(0, 2**32, size=6, dtype=np.uint64).astype(np.uint32)
        try:
            s = eb.decode(words, 50)
        except CodecError:
            continue
        assert int(s.abs().max()) <= MAX_SYMBOL
