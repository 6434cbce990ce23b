"""Signal models recover the simulated ground truth: rates, app usage, forecast, energy."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
from edgeai.tools.healthcare import appliances, traffic, vitals
from edgeai.tools.healthcare.sensors import household, simulate_acoustic, simulate_home
from edgeai.tools.healthcare.weights import load_checkpoint


def test_clean_recording_gives_exact_rates() -> None:
    rng = np.random.default_rng(1)
    rec = simulate_acoustic(rng, 72.0, 15.0, noise_std=0.05, motion_rate_per_min=0.0)
    assert vitals.estimate_heart_rate(rec).rate_bpm == pytest.approx(rec.heart_rate_bpm, abs=1.0)
    assert vitals.estimate_respiration(rec).rate_bpm == pytest.approx(rec.respiration_rate_bpm,
                                                                      abs=0.5)


def test_rates_recovered_across_the_physiological_range() -> None:
    rng = np.random.default_rng(2)
    hr_err, rr_err = [], []
    for hr, rr in zip(rng.uniform(50, 120, 40), rng.uniform(8, 28, 40)):
        rec = simulate_acoustic(rng, hr, rr)
        hr_err.append(abs(vitals.estimate_heart_rate(rec).rate_bpm - rec.heart_rate_bpm))
        rr_err.append(abs(vitals.estimate_respiration(rec).rate_bpm - rec.respiration_rate_bpm))
    hr_err, rr_err = np.array(hr_err), np.array(rr_err)
    assert np.median(hr_err) < 1.5
    assert np.mean(hr_err <= 3.0) >= 0.9
    assert np.max(rr_err) < 1.5


def test_breathing_removal_clears_the_heart_band() -> None:
    # No heartbeat at all, strongly non-sinusoidal breathing: whatever is left in the heart band after
    # removing the breathing waveform must be far weaker than the breathing harmonics were.
    hh = dataclasses.replace(household(1), heart_amplitude_mm=0.0, breath_amplitude_mm=4.0,
                             breath_harmonics=(1.0, 0.25, 0.08, 0.03))
    rec = simulate_acoustic(np.random.default_rng(3), 70.0, 20.0, hh=hh, noise_std=0.02,
                            motion_rate_per_min=0.0)
    d = vitals.chest_displacement(rec)

    def heart_band_peak(x: np.ndarray) -> float:
        freqs, power = vitals._spectrum(x, rec.fs_hz)
        band = (freqs >= 0.8) & (freqs <= 2.5)
        return float(power[band].max())

    before = heart_band_peak(d)
    after = heart_band_peak(vitals.remove_breathing(d, rec.fs_hz))
    assert after < 0.05 * before


def test_app_usage_recovers_the_dominant_app() -> None:
    model = load_checkpoint("traffic-app-usage")["model"]
    rng = np.random.default_rng(4)
    from edgeai.tools.healthcare.sensors import simulate_traffic

    for dominant in ("video_streaming", "gaming", "productivity"):
        minutes = {c: 10.0 for c in traffic.APP_CATEGORIES}
        minutes[dominant] = 90.0
        trace = simulate_traffic(rng, minutes)
        usage = traffic.app_usage_minutes(traffic.classify_windows(model, trace))
        assert max(usage, key=usage.get) == dominant
        assert abs(usage[dominant] - trace.true_minutes[dominant]) < 8.0


def test_forecast_beats_same_hour_yesterday_and_energy_is_close() -> None:
    fc_err, naive_err, kwh_rel = [], [], []
    for k in range(20):
        home = simulate_home(dt.date(2025, 1, 5) + dt.timedelta(days=9 * k), 900 + k)
        hist = home.temperature_history
        fc = appliances.forecast_temperature(hist)
        fc_err.append(np.mean(np.abs(fc.hourly_c - hist.future_c)))
        naive_err.append(np.mean(np.abs(hist.readings_c[-24:] - hist.future_c)))
        pr = home.power_readings
        est = appliances.integrate_energy(pr)
        kwh_rel.append(abs(est.energy_kwh - pr.true_energy_kwh) / max(pr.true_energy_kwh, 1e-6))
    assert np.mean(fc_err) < np.mean(naive_err)
    assert np.mean(fc_err) < 1.5
    assert np.median(kwh_rel) < 0.02


def test_energy_integration_by_hand() -> None:
    from edgeai.tools.healthcare.sensors import PowerReadings

    # 1 kW for the whole day, one reading every hour: exactly 24 kWh.
    t = np.arange(0, 86_400, 3600, dtype=float)
    pr = PowerReadings(time_s=t, watts=np.full(t.shape, 1000.0), appliance="kettle",
                       true_energy_kwh=24.0, true_active_kwh=24.0)
    assert appliances.integrate_energy(pr).energy_kwh == pytest.approx(24.0)
