"""The one wireless channel module (tools/channel.py), shared by offloading, split inference and FL."""

from __future__ import annotations

import math

import numpy as np
import pytest
from edgeai.errors import UserInputError
from edgeai.tools import channel
from edgeai.tools.channel import Cell, path_loss_db, shannon_rate_bps
from edgeai.tools.offloading import scenario
from edgeai.tools.split_inference.link import LinkSpec


def test_every_engine_imports_the_same_functions() -> None:
    assert scenario.uplink_rate_bps is channel.uplink_rate_bps
    assert scenario.path_loss_db is channel.path_loss_db


def test_path_loss_and_shannon_by_hand() -> None:
    assert path_loss_db(1000.0) == pytest.approx(128.1)
    assert path_loss_db(0.1) == pytest.approx(128.1 + 37.6 * math.log10(1e-3))  # clamped at 1 m
    assert shannon_rate_bps(1e6, 1.0, 3.0, 1.0) == pytest.approx(2e6)  # log2(1 + 3) = 2


def test_cell_rate_by_hand_and_monotone() -> None:
    cell = Cell()
    d = 50.0
    snr = 10 ** ((23 - 30) / 10) * 10 ** (-path_loss_db(d) / 10) / 10 ** ((-80 - 30) / 10)
    assert cell.rate_bps(d) == pytest.approx(20e6 * math.log2(1 + snr))
    rates = cell.rate_bps(np.array([5.0, 20.0, 60.0, 100.0]))
    assert np.all(np.diff(rates) < 0)
    # a quarter of the band: a quarter of the noise, the same power (SNR x 4) at a quarter of B
    assert cell.rate_bps(d, sharing=4) == pytest.approx(5e6 * math.log2(1 + 4 * snr))
    seconds, joules = cell.upload(1_000_000, d)
    assert seconds == pytest.approx(8e6 / cell.rate_bps(d))
    assert joules == pytest.approx(cell.tx_power_w * seconds)


def test_users_inside_the_disc() -> None:
    d = Cell(radius_m=100.0).place_users(2000, np.random.default_rng(0))
    assert d.min() >= 1.0 and d.max() <= 100.0
    assert np.mean(d < 50.0) == pytest.approx(0.25, abs=0.05)  # uniform in area


def test_split_link_from_distance() -> None:
    link = LinkSpec.at_distance(40.0)
    assert link.rate_bps == pytest.approx(float(Cell().rate_bps(40.0)) / 8)
    with pytest.raises(UserInputError, match="distance"):
        LinkSpec.at_distance(-1.0)
