"""The thermostat's temperature forecast and the smart plug's energy meter.

`temperature-forecast`: a seasonal-plus-AR(1) model fitted to the week of hourly readings. The
daily profile is the recency-weighted mean of each hour of the day; what the profile does not explain
(weather, a heating change) decays geometrically with the AR coefficient fitted on the week.

`appliance-energy`: trapezoidal integration of the reported power over time, which bridges dropped
readings by linear interpolation instead of silently treating them as zero, and a split into standby
and active energy at a threshold above the standby floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from edgeai.tools.healthcare.sensors import PowerReadings, TemperatureHistory

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class Forecast:
    hourly_c: np.ndarray  # (24,) forecast for the next 24 hours
    ar_coefficient: float
    profile_c: np.ndarray  # (24,) the fitted daily profile


def forecast_temperature(history: TemperatureHistory, horizon: int = HOURS_PER_DAY,
                         half_life_days: float = 2.0) -> Forecast:
    """Forecast `horizon` hours after the last reading (history starts at midnight, hourly)."""
    x = np.asarray(history.readings_c, dtype=np.float64)
    n_days = x.shape[0] // HOURS_PER_DAY
    if n_days < 1:
        raise ValueError("temperature history must hold at least one full day of hourly readings")
    x = x[-n_days * HOURS_PER_DAY:]
    days = x.reshape(n_days, HOURS_PER_DAY)
    age = np.arange(n_days)[::-1]  # 0 = most recent day
    weights = 0.5 ** (age / half_life_days)
    profile = weights @ days / weights.sum()
    resid = x - np.tile(profile, n_days)
    prev, cur = resid[:-1], resid[1:]
    phi = float(np.clip(prev @ cur / max(prev @ prev, 1e-9), 0.0, 0.99))
    steps = np.arange(1, horizon + 1)
    hours = (x.shape[0] + steps - 1) % HOURS_PER_DAY
    hourly = profile[hours] + resid[-1] * phi**steps
    return Forecast(hourly_c=hourly, ar_coefficient=phi, profile_c=profile)


@dataclass(frozen=True)
class EnergyEstimate:
    energy_kwh: float
    active_kwh: float
    standby_kwh: float
    standby_w: float
    active_minutes: float
    coverage: float  # share of the day with a reading


def integrate_energy(readings: PowerReadings, day_seconds: float = 86_400.0) -> EnergyEstimate:
    """kWh over the day by the trapezoid rule; the first/last readings are held to the day's edges."""
    t = np.asarray(readings.time_s, dtype=np.float64)
    w = np.asarray(readings.watts, dtype=np.float64)
    if t.shape[0] == 0:
        return EnergyEstimate(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    t_full = np.concatenate([[0.0], t, [day_seconds]])
    w_full = np.concatenate([[w[0]], w, [w[-1]]])
    seg_dt = np.diff(t_full)
    seg_j = 0.5 * (w_full[1:] + w_full[:-1]) * seg_dt  # joules per segment
    standby = float(np.percentile(w, 10))
    threshold = standby + max(5.0, 0.1 * standby)
    seg_active = 0.5 * (w_full[1:] + w_full[:-1]) > threshold
    active_j = float(seg_j[seg_active].sum())
    total_j = float(seg_j.sum())
    return EnergyEstimate(
        energy_kwh=total_j / 3.6e6,
        active_kwh=active_j / 3.6e6,
        standby_kwh=(total_j - active_j) / 3.6e6,
        standby_w=standby,
        active_minutes=float(seg_dt[seg_active].sum() / 60.0),
        coverage=float(t.shape[0] / day_seconds),
    )
