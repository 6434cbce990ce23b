"""Simulated home sensors: deterministic per (day, seed), days differ, ground truth is consistent."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from edgeai.tools.healthcare.sensors import (
    APP_CATEGORIES,
    MOODS,
    simulate_home,
    simulate_traffic,
)

DAY = dt.date(2025, 3, 14)


def test_same_day_and_seed_give_identical_recordings() -> None:
    a, b = simulate_home(DAY, 7), simulate_home(DAY, 7)
    assert a.state == b.state
    np.testing.assert_array_equal(a.audio.iq, b.audio.iq)
    np.testing.assert_array_equal(a.network_traffic.time_s, b.network_traffic.time_s)
    np.testing.assert_array_equal(a.power_readings.watts, b.power_readings.watts)
    np.testing.assert_array_equal(a.temperature_history.readings_c, b.temperature_history.readings_c)


def test_today_and_yesterday_differ_but_share_history() -> None:
    today, yesterday = simulate_home(DAY, 7), simulate_home(DAY - dt.timedelta(days=1), 7)
    assert today.state.heart_rate_bpm != yesterday.state.heart_rate_bpm
    assert not np.array_equal(today.audio.iq, yesterday.audio.iq)
    # Yesterday's forecast target is the last day of today's history (weather keyed by date).
    np.testing.assert_allclose(yesterday.temperature_history.future_c,
                               today.temperature_history.readings_c[-24:], atol=0.5)


def test_modalities_do_not_disturb_each_other() -> None:
    first = simulate_home(DAY, 3)
    _ = first.network_traffic  # built before the audio
    second = simulate_home(DAY, 3)
    np.testing.assert_array_equal(first.audio.iq, second.audio.iq)


def test_latent_state_is_valid_and_moods_vary_across_days() -> None:
    moods = {simulate_home(DAY + dt.timedelta(days=k), 11).state.mood for k in range(40)}
    assert moods <= set(MOODS) and len(moods) >= 3
    rec = simulate_home(DAY, 11).audio
    assert rec.iq.dtype == np.complex64 and rec.duration_s == pytest.approx(60.0)
    assert 40 < rec.heart_rate_bpm < 150 and 6 < rec.respiration_rate_bpm < 36


def test_traffic_truth_matches_sessions_and_window_labels() -> None:
    rng = np.random.default_rng(0)
    trace = simulate_traffic(rng, {"gaming": 30.0, "music": 12.0})
    truth = trace.true_minutes
    assert set(truth) == set(APP_CATEGORIES)
    assert truth["gaming"] == pytest.approx(30.0, abs=0.01)
    assert truth["music"] == pytest.approx(12.0, abs=0.01)
    assert truth["video_streaming"] == 0.0
    labels = trace.window_labels()
    assert labels.shape == (1440,)
    assert abs(np.sum(labels == "gaming") - 30) <= 2
    assert np.all(np.diff(trace.time_s) >= 0)
    assert trace.size.min() >= 40 and trace.size.max() <= 1500
    # Gaming is UDP-heavy; the music minutes are TCP.
    gaming = trace.time_s[trace.proto == 17]
    assert gaming.size > 1000


def test_plug_truth_is_the_integral_of_true_power() -> None:
    rec = simulate_home(DAY, 5).power_readings
    assert 0 < rec.true_energy_kwh < 30
    assert rec.true_active_kwh <= rec.true_energy_kwh
    assert 0.9 < rec.time_s.shape[0] / 86_400 < 1.0  # some readings dropped


def test_day_must_be_a_date() -> None:
    with pytest.raises(TypeError):
        simulate_home("2025-03-14", 1)  # type: ignore[arg-type]
