"""Heart and breathing rates from the speaker's probe-tone echo: phase demodulation and spectral peaks.

Pipeline (what `heartbeat-acoustic` and `respiration-acoustic` run):
1. Remove the static-reflection vector by fitting a circle to the I/Q samples (the chest path traces
   an arc around the static offset) and take the unwrapped angle around the circle's centre.
2. Phase to chest displacement: d = phase * lambda / (4*pi).
3. Breathing: detrend, band-pass 0.08-0.7 Hz, zero-padded Hann FFT, the strongest peak in 0.1-0.6 Hz
   with a sub-harmonic check (a non-sinusoidal breath can put more power in its 2nd harmonic).
4. Heartbeat: breathing is ~30x larger than the cardiac motion and its harmonics land in the heart
   band, so the breathing waveform is removed first by harmonic regression on the breathing phase
   (Hilbert phase of the breathing band, harmonics 1-6). The residual is band-passed 0.7-5.5 Hz and
   every candidate f in 0.8-2.5 Hz is scored by harmonic sum P(f) + P(2f) of the f-tilted power spectrum; parabolic
   interpolation refines the winning bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from edgeai.tools.healthcare.sensors import AcousticRecording
from scipy import signal

BREATH_BAND_HZ = (0.1, 0.6)
HEART_BAND_HZ = (0.8, 2.5)
_NFFT = 1 << 15


@dataclass(frozen=True)
class RateEstimate:
    """A rate with the evidence behind it."""

    rate_bpm: float
    peak_hz: float
    peak_to_median: float  # peak power over the band's median power: a confidence signal


def chest_displacement(rec: AcousticRecording) -> np.ndarray:
    """Chest displacement in metres from the I/Q baseband (circle fit, angle, unwrap)."""
    iq = rec.iq.astype(np.complex128)
    x, y = iq.real, iq.imag
    # Algebraic (Kasa) circle fit: x^2 + y^2 = 2ax + 2by + c, least squares.
    design = np.column_stack([2 * x, 2 * y, np.ones_like(x)])
    a, b, _c = _least_squares(design, x * x + y * y)
    phase = np.unwrap(np.angle(iq - (a + 1j * b)))
    return phase * rec.wavelength_m / (4 * np.pi)


def _least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least squares by normal equations: tall, well-conditioned designs only (much faster than SVD)."""
    gram = design.T @ design
    return np.linalg.solve(gram + 1e-12 * np.trace(gram) * np.eye(gram.shape[0]), design.T @ target)


def _spectrum(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrum of a Hann-windowed, zero-padded signal: (freqs, power)."""
    win = np.hanning(x.shape[0])
    spec = np.fft.rfft((x - x.mean()) * win, _NFFT)
    return np.fft.rfftfreq(_NFFT, 1.0 / fs), np.abs(spec) ** 2


def _refine(freqs: np.ndarray, power: np.ndarray, i: int) -> float:
    """Parabolic interpolation of a spectral peak on log power."""
    if 0 < i < power.shape[0] - 1:
        lo, mid, hi = np.log(power[i - 1: i + 2] + 1e-300)
        denom = lo - 2 * mid + hi
        if denom < 0:
            shift = float(np.clip(0.5 * (lo - hi) / denom, -0.5, 0.5))
            return float(freqs[i] + shift * (freqs[1] - freqs[0]))
    return float(freqs[i])


def _bandpass(x: np.ndarray, fs: float, lo: float, hi: float, order: int = 4) -> np.ndarray:
    sos = signal.butter(order, [lo, hi], btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x)


def _breathing_signal(d: np.ndarray, fs: float) -> np.ndarray:
    return _bandpass(signal.detrend(d), fs, 0.08, 0.7, order=2)


def estimate_respiration(rec: AcousticRecording) -> RateEstimate:
    """Breaths per minute from the strongest breathing-band peak, with a sub-harmonic check."""
    fs = rec.fs_hz
    freqs, power = _spectrum(_breathing_signal(chest_displacement(rec), fs), fs)
    band = (freqs >= BREATH_BAND_HZ[0]) & (freqs <= BREATH_BAND_HZ[1])
    idx = np.flatnonzero(band)
    i = int(idx[np.argmax(power[idx])])
    # If half the peak frequency is itself a strong peak, the peak was the 2nd harmonic.
    half = freqs[i] / 2
    if half >= BREATH_BAND_HZ[0]:
        near = idx[np.abs(freqs[idx] - half) <= 0.02]
        if near.size:
            j = int(near[np.argmax(power[near])])
            if power[j] > 0.3 * power[i]:
                i = j
    f = _refine(freqs, power, i)
    return RateEstimate(rate_bpm=f * 60.0, peak_hz=f,
                        peak_to_median=float(power[i] / np.median(power[idx])))


def remove_breathing(d: np.ndarray, fs: float, harmonics: int = 6) -> np.ndarray:
    """Displacement minus its breathing waveform, fitted as harmonics of the breathing phase.

    The breathing phase comes from the analytic signal of the breathing band, so the harmonic comb
    follows the breath's rate wander instead of smearing into the heart band.
    """
    d = signal.detrend(d)
    theta = np.unwrap(np.angle(signal.hilbert(_breathing_signal(d, fs))))
    cols = [np.ones_like(theta)]
    for k in range(1, harmonics + 1):
        cols += [np.cos(k * theta), np.sin(k * theta)]
    design = np.column_stack(cols)
    coef = _least_squares(design, d)
    return d - design @ coef


def estimate_heart_rate(rec: AcousticRecording) -> RateEstimate:
    """Beats per minute: breathing removed, then the best harmonic-sum peak in the heart band."""
    fs = rec.fs_hz
    resid = remove_breathing(chest_displacement(rec), fs)
    cardiac = _bandpass(resid, fs, 0.7, min(5.5, 0.45 * fs))
    freqs, power = _spectrum(cardiac, fs)
    # A mild 1/f tilt against the residue of body motion that otherwise pulls the peak to the band's
    # low edge (a full f^2, i.e. velocity, over-weights the pulse's own harmonics: octave errors).
    power = power * freqs
    band = np.flatnonzero((freqs >= HEART_BAND_HZ[0]) & (freqs <= HEART_BAND_HZ[1]))
    df = freqs[1] - freqs[0]
    second = np.clip(np.round(2 * freqs[band] / df).astype(int), 0, power.shape[0] - 1)
    # Harmonic sum: the cardiac pulse puts power at f and 2f; a stray peak rarely has both, and
    # the true rate f beats its own 2nd harmonic because P(f) + P(2f) > P(2f) + P(4f).
    score = power[band] + power[second]
    i = int(band[np.argmax(score)])
    f = _refine(freqs, power, i)
    return RateEstimate(rate_bpm=f * 60.0, peak_hz=f,
                        peak_to_median=float(power[i] / np.median(power[band])))
