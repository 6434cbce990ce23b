"""Simulated home sensors with known ground truth: speaker echo, Wi-Fi traffic, thermostat, smart plug.

One household is one integer `seed`; one day is a `datetime.date`. A latent per-day home state (the
person's mood and how active the day was) drives both the vital signs the speaker can sense and the
apps the router sees, so mood is learnable from either side but never read off directly. Every
modality draws from its own random stream spawned from (seed, day), so `simulate_home(day, seed)` is
deterministic, and building one modality never changes another. Streams that must agree across days
(weather, thermostat schedule) are keyed by their own date, so yesterday's history seen today equals
what yesterday saw.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

MOODS: tuple[str, ...] = ("positive", "neutral", "negative", "anxious")
"""Mood classes of the edge server's two classifiers (edge-server manual)."""

APP_CATEGORIES: tuple[str, ...] = (
    "video_streaming",
    "short_video",
    "social_network",
    "messaging",
    "gaming",
    "music",
    "productivity",
    "browsing",
)
"""App categories the router's traffic analytics reports (home-wifi-router manual)."""

SPEED_OF_SOUND_M_S = 343.0
PROBE_CARRIER_HZ = 20_000.0
"""The speaker's near-inaudible probe tone; its wavelength sets the phase per metre of chest motion."""
AUDIO_BASEBAND_FS_HZ = 50.0
"""Rate of the probe tone's I/Q baseband after the speaker's mixer and decimator."""
AUDIO_DURATION_S = 60.0

# Stream ids for numpy SeedSequence spawn keys: one per modality so they never interfere.
_STREAM_STATE, _STREAM_AUDIO, _STREAM_TRAFFIC, _STREAM_PLUG = 1, 2, 3, 4
_STREAM_WEATHER, _STREAM_SCHEDULE = 5, 6
_STREAM_HOUSEHOLD = 7

# How the latent mood shifts resting heart and breathing rates (bpm / breaths per minute): arousal
# raises both (anxious most, positive a little), low mood lowers them.
MOOD_HEART_SHIFT = {"positive": 6.0, "neutral": 0.0, "negative": -4.0, "anxious": 14.0}
MOOD_BREATH_SHIFT = {"positive": 1.5, "neutral": 0.0, "negative": -2.0, "anxious": 5.0}

# How the latent mood scales the minutes spent per app category (multiplicative): one row per mood,
# one column per category in APP_CATEGORIES order (video, short video, social, messaging, gaming,
# music, productivity, browsing).
MOOD_APP_FACTOR: dict[str, dict[str, float]] = {
    mood: dict(zip(APP_CATEGORIES, row, strict=True))
    for mood, row in (
        ("positive", (0.9, 0.7, 1.0, 1.3, 1.6, 1.9, 1.2, 0.9)),
        ("neutral", (1.0, 1.0, 0.9, 1.0, 1.0, 1.0, 1.4, 1.1)),
        ("negative", (2.0, 1.9, 1.1, 0.5, 0.8, 0.6, 0.5, 0.9)),
        ("anxious", (0.7, 1.3, 2.0, 2.3, 0.7, 0.6, 0.8, 1.8)),
    )
}
# Typical minutes per day per category for an average household before mood and habits.
BASE_APP_MINUTES = {
    "video_streaming": 55.0, "short_video": 30.0, "social_network": 30.0, "messaging": 20.0,
    "gaming": 20.0, "music": 25.0, "productivity": 50.0, "browsing": 25.0,
}
APPLIANCES: tuple[str, ...] = ("kettle", "washing_machine", "television", "fridge", "space_heater")


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent stream for (seed, key...); all keys are non-negative ints."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *key]))


def _smooth_noise(rng: np.random.Generator, n: int, fs: float, cutoff_hz: float) -> np.ndarray:
    """Zero-mean, unit-std noise band-limited to `cutoff_hz` (FFT-domain low-pass of white noise)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    spec[freqs > cutoff_hz] = 0.0
    spec[0] = 0.0
    out = np.fft.irfft(spec, n)
    std = out.std()
    return out / std if std > 0 else out


# --------------------------------------------------------------------------------------------------
# Household traits (seed only) and the latent daily state (seed, day)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Household:
    """Traits of one home that stay the same every day: the person's baselines and habits."""

    seed: int
    resting_heart_bpm: float
    resting_breath_bpm: float
    mood_prior: tuple[float, ...]
    app_habit: dict[str, float]
    screen_scale: float
    breath_amplitude_mm: float
    heart_amplitude_mm: float
    heart_harmonics: tuple[float, ...]
    breath_harmonics: tuple[float, ...]
    comfort_setpoint_c: float
    night_setpoint_c: float
    thermal_time_constant_h: float
    appliance: str


def household(seed: int) -> Household:
    """The traits of household `seed` (deterministic)."""
    rng = _rng(seed, _STREAM_HOUSEHOLD)
    prior = rng.dirichlet(np.full(len(MOODS), 4.0))
    return Household(
        seed=seed,
        resting_heart_bpm=float(np.clip(rng.normal(68.0, 4.0), 56.0, 82.0)),
        resting_breath_bpm=float(np.clip(rng.normal(14.0, 1.3), 10.5, 17.5)),
        mood_prior=tuple(float(p) for p in prior),
        app_habit={c: float(rng.lognormal(0.0, 0.35)) for c in APP_CATEGORIES},
        screen_scale=float(rng.lognormal(0.0, 0.2)),
        breath_amplitude_mm=float(rng.uniform(1.5, 4.0)),
        heart_amplitude_mm=float(rng.uniform(0.08, 0.25)),
        heart_harmonics=(1.0, float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.1, 0.35)),
                         float(rng.uniform(0.0, 0.15))),
        breath_harmonics=(1.0, float(rng.uniform(0.05, 0.25)), float(rng.uniform(0.0, 0.08)),
                          float(rng.uniform(0.0, 0.03))),
        comfort_setpoint_c=float(rng.uniform(19.5, 22.5)),
        night_setpoint_c=float(rng.uniform(15.5, 18.5)),
        thermal_time_constant_h=float(rng.uniform(8.0, 30.0)),
        appliance=APPLIANCES[int(rng.integers(len(APPLIANCES)))],
    )


@dataclass(frozen=True)
class HomeState:
    """The latent state of one day: ground truth that the sensors reflect but never state."""

    mood: str
    activity: float  # 0 = sat all day, 1 = very active; raises evening heart rate, lowers screen time
    heart_rate_bpm: float  # the person's mean pulse during the evening recording
    respiration_rate_bpm: float
    planned_app_minutes: dict[str, float]


def home_state(day: dt.date, seed: int, hh: Household | None = None) -> HomeState:
    """Latent mood, activity, vitals and intended app use for (day, seed)."""
    hh = hh or household(seed)
    rng = _rng(seed, _STREAM_STATE, day.toordinal())
    mood = MOODS[int(rng.choice(len(MOODS), p=np.asarray(hh.mood_prior)))]
    activity = float(rng.beta(2.0, 2.0))
    heart = hh.resting_heart_bpm + MOOD_HEART_SHIFT[mood] + 8.0 * (activity - 0.5)
    heart += rng.normal(0.0, 3.0)
    breath = hh.resting_breath_bpm + MOOD_BREATH_SHIFT[mood] + 1.5 * (activity - 0.5)
    breath += rng.normal(0.0, 1.0)
    weekend = day.weekday() >= 5
    minutes = {}
    for cat in APP_CATEGORIES:
        base = BASE_APP_MINUTES[cat] * hh.app_habit[cat] * MOOD_APP_FACTOR[mood][cat]
        if cat == "productivity" and weekend:
            base *= 0.4
        base *= hh.screen_scale * (1.25 - 0.5 * activity)
        minutes[cat] = float(base * rng.lognormal(0.0, 0.35))
    return HomeState(
        mood=mood,
        activity=activity,
        heart_rate_bpm=float(np.clip(heart, 50.0, 140.0)),
        respiration_rate_bpm=float(np.clip(breath, 7.0, 34.0)),
        planned_app_minutes=minutes,
    )


# --------------------------------------------------------------------------------------------------
# Speaker: I/Q baseband of the probe tone reflected by the chest
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcousticRecording:
    """Complex baseband of the speaker's 20 kHz probe tone as echoed by the room and a chest.

    `iq` is what the speaker's front end hands over after mixing the microphone signal with the probe
    carrier and decimating: static reflections add a constant vector, chest displacement d(t) turns
    the chest path's phase by 4*pi*d/lambda.
    """

    iq: np.ndarray  # (N,) complex64
    fs_hz: float
    carrier_hz: float
    heart_rate_bpm: float  # ground truth: mean instantaneous pulse over the recording
    respiration_rate_bpm: float  # ground truth: mean instantaneous breathing rate
    motion_events: int

    @property
    def wavelength_m(self) -> float:
        return SPEED_OF_SOUND_M_S / self.carrier_hz

    @property
    def duration_s(self) -> float:
        return len(self.iq) / self.fs_hz


def _periodic_wave(phase: np.ndarray, harmonics: tuple[float, ...], phases: np.ndarray) -> np.ndarray:
    """Sum of harmonics k*phase with relative amplitudes `harmonics`, normalised to unit peak."""
    wave = sum(a * np.cos((k + 1) * phase + p) for k, (a, p) in enumerate(zip(harmonics, phases)))
    return wave / np.max(np.abs(wave))


def simulate_acoustic(
    rng: np.random.Generator,
    heart_rate_bpm: float,
    respiration_rate_bpm: float,
    *,
    hh: Household | None = None,
    duration_s: float = AUDIO_DURATION_S,
    fs_hz: float = AUDIO_BASEBAND_FS_HZ,
    noise_std: float | None = None,
    motion_rate_per_min: float = 0.8,
) -> AcousticRecording:
    """One recording of a seated person; rates wander around the requested means.

    Breathing: a few mm of chest excursion, non-sinusoidal (harmonics) with 5% rate wander. Heartbeat:
    a tenth of a mm, pulse-shaped (harmonics), with respiratory sinus arrhythmia. Body motion: smooth
    shifts of a few mm that sometimes return (fidgets). Static multipath and complex white noise.
    """
    n = round(duration_s * fs_hz)
    t = np.arange(n) / fs_hz
    lam = SPEED_OF_SOUND_M_S / PROBE_CARRIER_HZ
    breath_amp = (hh.breath_amplitude_mm if hh else rng.uniform(1.5, 4.0)) * 1e-3
    heart_amp = (hh.heart_amplitude_mm if hh else rng.uniform(0.08, 0.25)) * 1e-3
    breath_h = hh.breath_harmonics if hh else (1.0, rng.uniform(0.05, 0.25), rng.uniform(0, 0.08))
    heart_h = hh.heart_harmonics if hh else (1.0, rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.35))

    # Instantaneous rates (Hz), then phases by integration; truth = mean instantaneous rate.
    f_breath = respiration_rate_bpm / 60.0 * (1.0 + 0.05 * _smooth_noise(rng, n, fs_hz, 0.03))
    phase_breath = 2 * np.pi * np.cumsum(f_breath) / fs_hz + rng.uniform(0, 2 * np.pi)
    rsa = 0.03 * np.sin(phase_breath)  # pulse speeds up on inhalation
    f_heart = heart_rate_bpm / 60.0 * (1.0 + rsa + 0.02 * _smooth_noise(rng, n, fs_hz, 0.05))
    phase_heart = 2 * np.pi * np.cumsum(f_heart) / fs_hz + rng.uniform(0, 2 * np.pi)
    breath_phases = rng.uniform(0, 2 * np.pi, len(breath_h))
    heart_phases = rng.uniform(0, 2 * np.pi, len(heart_h))
    breath_depth = 1.0 + 0.1 * _smooth_noise(rng, n, fs_hz, 0.05)
    d = breath_amp * breath_depth * _periodic_wave(phase_breath, breath_h, breath_phases)
    d += heart_amp * _periodic_wave(phase_heart, heart_h, heart_phases)

    # Body motion: raised-cosine shifts of a few mm; some fidgets return to where they started.
    events = int(rng.poisson(motion_rate_per_min * duration_s / 60.0))
    for _ in range(events):
        start, length = rng.uniform(0, duration_s), rng.uniform(0.5, 2.0)
        step = rng.normal(0.0, 3e-3)
        ramp = np.clip((t - start) / length, 0.0, 1.0)
        shape = 0.5 - 0.5 * np.cos(np.pi * ramp)
        if rng.random() < 0.5:  # fidget: back after a few seconds
            back = start + length + rng.uniform(1.0, 5.0)
            shape -= 0.5 - 0.5 * np.cos(np.pi * np.clip((t - back) / length, 0.0, 1.0))
        d += step * shape
    d += 0.5e-3 * _smooth_noise(rng, n, fs_hz, 0.02)  # slow postural drift

    chest_gain = 1.0 + 0.05 * _smooth_noise(rng, n, fs_hz, 0.1)
    static = rng.uniform(1.0, 5.0) * np.exp(1j * rng.uniform(0, 2 * np.pi))
    sigma = rng.uniform(0.05, 0.25) if noise_std is None else noise_std
    noise = sigma / np.sqrt(2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    iq = static + chest_gain * np.exp(1j * (4 * np.pi * d / lam + rng.uniform(0, 2 * np.pi))) + noise
    return AcousticRecording(
        iq=iq.astype(np.complex64),
        fs_hz=fs_hz,
        carrier_hz=PROBE_CARRIER_HZ,
        heart_rate_bpm=float(f_heart.mean() * 60.0),
        respiration_rate_bpm=float(f_breath.mean() * 60.0),
        motion_events=events,
    )


# --------------------------------------------------------------------------------------------------
# Router: packet metadata of one device's app sessions over a day
# --------------------------------------------------------------------------------------------------

TCP, UDP = 6, 17
UP, DOWN = 0, 1


@dataclass(frozen=True)
class AppSession:
    category: str
    start_s: float  # seconds since local midnight
    end_s: float

    @property
    def minutes(self) -> float:
        return (self.end_s - self.start_s) / 60.0


@dataclass(frozen=True)
class NetworkTrace:
    """Packet metadata the router keeps for one device over one day (no payloads).

    Packet rates are those of real apps scaled down about tenfold (fewer, equally shaped bursts) so
    that a day simulates in tens of milliseconds; sizes, directions, timing patterns and flow churn
    keep their real shape.
    """

    time_s: np.ndarray  # (P,) float64 seconds since midnight, sorted
    size: np.ndarray  # (P,) int32 bytes on the wire
    direction: np.ndarray  # (P,) int8: 0 = up (device -> internet), 1 = down
    flow: np.ndarray  # (P,) int32 flow (5-tuple) id
    proto: np.ndarray  # (P,) int8: 6 = TCP, 17 = UDP (QUIC, games)
    sessions: tuple[AppSession, ...]

    @property
    def true_minutes(self) -> dict[str, float]:
        """Ground-truth minutes per category (exact session durations)."""
        out = dict.fromkeys(APP_CATEGORIES, 0.0)
        for s in self.sessions:
            out[s.category] += s.minutes
        return out

    def window_labels(self, window_s: float = 60.0) -> np.ndarray:
        """Per window of the day: the category active for most of it, or 'idle'."""
        n_win = math.ceil(86_400 / window_s)
        cover = np.zeros((n_win, len(APP_CATEGORIES) + 1))
        for s in self.sessions:
            c = APP_CATEGORIES.index(s.category)
            first, last = int(s.start_s // window_s), int(min(s.end_s, 86_399.999) // window_s)
            for w in range(first, last + 1):
                lo, hi = max(s.start_s, w * window_s), min(s.end_s, (w + 1) * window_s)
                cover[w, c] += max(0.0, hi - lo)
        cover[:, -1] = window_s - cover[:, :-1].sum(axis=1)
        names = np.array([*APP_CATEGORIES, "idle"])
        return names[cover.argmax(axis=1)]


class _Packets:
    """Accumulates packet arrays from the per-app generators (all vectorised per session)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.next_flow = 0

    def new_flows(self, k: int = 1) -> np.ndarray:
        ids = np.arange(self.next_flow + 1, self.next_flow + 1 + k, dtype=np.int32)
        self.next_flow += k
        return ids

    def add(self, t: np.ndarray, size: np.ndarray | int, direction: int | np.ndarray,
            flow: int | np.ndarray, proto: int | np.ndarray) -> None:
        t = np.asarray(t, dtype=np.float64)
        n = t.shape[0]
        if n == 0:
            return
        self.parts.append((
            t,
            np.clip(np.broadcast_to(np.asarray(size), (n,)), 40, 1500).astype(np.int32),
            np.broadcast_to(np.asarray(direction, dtype=np.int8), (n,)).copy(),
            np.broadcast_to(np.asarray(flow, dtype=np.int32), (n,)).copy(),
            np.broadcast_to(np.asarray(proto, dtype=np.int8), (n,)).copy(),
        ))

    def bursts(self, rng: np.random.Generator, starts: np.ndarray, counts: np.ndarray,
               flows: np.ndarray | int, proto: int | np.ndarray, rate_pps: np.ndarray | float,
               big_share: np.ndarray | float = 0.9, ack_every: int = 2) -> None:
        """Download bursts: back-to-back downlink packets with uplink ACKs, one burst per start."""
        counts = np.maximum(np.asarray(counts, dtype=np.int64), 0)
        total = int(counts.sum())
        if total == 0:
            return
        which = np.repeat(np.arange(counts.shape[0]), counts)  # (P,) burst index of each packet
        per = lambda v: np.broadcast_to(np.asarray(v), counts.shape)[which]
        gaps = rng.exponential(1.0, total) / per(rate_pps)
        csum = np.cumsum(gaps)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])[which]  # (P,) burst's first packet
        times = per(starts) + csum - (csum - gaps)[first]  # cumsum restarted at each burst
        big = rng.random(total) < per(big_share)
        sizes = np.where(big, np.where(rng.random(total) < 0.9, 1500, rng.integers(200, 1500, total)),
                         rng.integers(150, 1200, total))
        f, pr = per(flows), per(proto)
        self.add(times, sizes, DOWN, f, pr)
        pos = np.arange(total) - first  # index inside the burst
        ack = pos % ack_every == 0
        n_ack = int(ack.sum())
        self.add(times[ack] + rng.exponential(0.01, n_ack), rng.integers(52, 90, n_ack), UP, f[ack],
                 pr[ack])

    def arrays(self) -> tuple[np.ndarray, ...]:
        if not self.parts:
            return (np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros(0, np.int32),
                    np.zeros(0, np.int8))
        cols = [np.concatenate([p[i] for p in self.parts]) for i in range(5)]
        order = np.argsort(cols[0], kind="stable")
        return tuple(c[order] for c in cols)


def _events(rng: np.random.Generator, t0: float, t1: float, mean_gap: float, jitter: float = 0.3) -> np.ndarray:
    """Event times from t0 to t1 with gaps around `mean_gap` (gamma-distributed)."""
    k = 1.0 / max(jitter, 1e-3) ** 2
    n = int((t1 - t0) / mean_gap * 1.5) + 4
    times = t0 + np.cumsum(rng.gamma(k, mean_gap / k, n))
    while times[-1] < t1:
        times = np.concatenate([times, times[-1] + np.cumsum(rng.gamma(k, mean_gap / k, n))])
    return times[times < t1]


def _spread(rng: np.random.Generator, starts: np.ndarray, lo: int, hi: int, within_s: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """lo..hi-1 packets after each start, uniformly within `within_s`: (times, event index)."""
    k = rng.integers(lo, hi, starts.shape[0])
    which = np.repeat(np.arange(starts.shape[0]), k)
    return starts[which] + rng.uniform(0.0, within_s, which.shape[0]), which


def _api_calls(p: _Packets, rng: np.random.Generator, events: np.ndarray, api: int | np.ndarray,
               per_event: tuple[int, int], within_s: float, up_sizes: tuple[int, int],
               down_sizes: tuple[int, int]) -> None:
    """An app's API chatter on its one TCP flow (telemetry, likes, feed requests): after each
    event, per_event[0]..per_event[1]-1 packets up within `within_s` (up_sizes[0]..up_sizes[1]-1
    B each), then, drawn afresh, packets down the same way (down_sizes)."""
    for direction, (lo, hi) in ((UP, up_sizes), (DOWN, down_sizes)):
        t, _ = _spread(rng, events, *per_event, within_s)
        p.add(t, rng.integers(lo, hi, t.shape[0]), direction, api, TCP)


def _gen_video_streaming(p: _Packets, rng: np.random.Generator, t0: float, t1: float) -> None:
    # Adaptive-bitrate player: one long connection, a segment every 4-10 s, fetched in a burst.
    flow, proto = p.new_flows()[0], (UDP if rng.random() < 0.5 else TCP)
    interval, seg = rng.uniform(4.0, 10.0), rng.uniform(60, 160)
    ev = _events(rng, t0, t1, interval, 0.1)
    p.add(ev, rng.integers(300, 700, ev.shape[0]), UP, flow, proto)  # segment requests
    p.bursts(rng, ev + 0.02, rng.normal(seg, seg * 0.15, ev.shape[0]).astype(int), flow, proto,
             rate_pps=rng.uniform(300, 800))


def _gen_short_video(p: _Packets, rng: np.random.Generator, t0: float, t1: float) -> None:
    # Swipe every 6-20 s: prefetch of the next clips from fresh CDN connections, plus telemetry.
    api = p.new_flows()[0]
    ev = _events(rng, t0, t1, rng.uniform(6.0, 20.0), 0.6)
    k = rng.integers(1, 4, ev.shape[0])
    starts = np.repeat(ev, k) + rng.uniform(0.0, 0.3, int(k.sum()))
    cdn = p.new_flows(int(k.sum()))
    p.add(starts, rng.integers(500, 800, starts.shape[0]), UP, cdn, TCP)  # TLS hello with SNI
    p.bursts(rng, starts + 0.05, rng.uniform(40, 160, starts.shape[0]).astype(int), cdn, TCP,
             rate_pps=rng.uniform(400, 1200, starts.shape[0]))
    _api_calls(p, rng, ev, api, (2, 6), 2.0, up_sizes=(200, 900), down_sizes=(100, 600))


def _gen_social_network(p: _Packets, rng: np.random.Generator, t0: float, t1: float) -> None:
    # Feed scrolling: images load in small bursts every 1.5-6 s; likes/comments go up.
    api = p.new_flows()[0]
    ev = _events(rng, t0, t1, rng.uniform(1.5, 6.0), 0.8)
    new_conn = rng.random(ev.shape[0]) < 0.15
    flows = p.new_flows(int(new_conn.sum()) + 1)[np.cumsum(new_conn)]
    p.bursts(rng, ev, rng.uniform(5, 35, ev.shape[0]).astype(int), flows, TCP,
             rate_pps=rng.uniform(200, 600, ev.shape[0]),
             big_share=np.where(rng.random(ev.shape[0]) < 0.7, 0.9, 0.0))
    _api_calls(p, rng, ev, api, (1, 4), 1.0, up_sizes=(150, 1200), down_sizes=(150, 900))


def _gen_messaging(p: _Packets, rng: np.random.Generator, t0: float, t1: float) -> None:
    # One persistent encrypted connection: a few small messages a minute, keep-alives, rare photos.
    flow = p.new_flows()[0]
    ev = _events(rng, t0, t1, rng.uniform(5.0, 20.0), 0.9)
    t, which = _spread(rng, ev, 1, 4, 0.5)
    direction = (rng.random(ev.shape[0]) < 0.5).astype(np.int8)[which]
    p.add(t, rng.integers(90, 600, t.shape[0]), direction, flow, TCP)
    p.add(t + rng.uniform(0.02, 0.2, t.shape[0]), rng.integers(52, 80, t.shape[0]), 1 - direction,
          flow, TCP)
    photos = ev[rng.random(ev.shape[0]) < 0.05]
    if photos.shape[0]:
        media = p.new_flows(photos.shape[0])
        down = rng.random(photos.shape[0]) < 0.5
        n = rng.uniform(20, 80, photos.shape[0]).astype(int)
        p.bursts(rng, photos[down], n[down], media[down], TCP, rate_pps=300.0)
        for ts, m, f in zip(photos[~down], n[~down], media[~down]):
            p.add(ts + np.cumsum(rng.exponential(1 / 200, m)), 1500, UP, f, TCP)
    keep = _events(rng, t0, t1, 30.0, 0.05)
    p.add(keep, 60, UP, flow, TCP)


def _gen_gaming(p: _Packets, rng: np.random.Generator, t0: float, t1: float) -> None:
    # Real-time game: steady UDP ticks both ways at a fixed server tick rate, small packets.
    flow, lobby = p.new_flows(2)
    tick = rng.uniform(8.0, 20.0)  # scaled-down tick rate (real games: 20-64 Hz)
    n = int((t1 - t0) * tick)
    base = t0 + np.arange(n) / tick
    p.add(base + rng.normal(0, 0.004, n), rng.integers(60, 160, n), UP, flow, UDP)
    p.add(base + 0.03 + rng.normal(0, 0.006, n), rng.integers(100, 420, n), DOWN, flow, UDP)
    ev = _events(rng, t0, t1, 45.0, 0.5)
    p.bursts(rng, ev, rng.uniform(3, 15, ev.shape[0]).astype(int), lobby, TCP, rate_pps=200.0,
             big_share=0.0)


def _gen_music(p: _Packets, rng: np.random.Generator, t0: float, t1: float) -> None:
    # Audio streaming: a track's chunks every 10-30 s, small compared with video.
    flow = p.new_flows()[0]
    ev = _events(rng, t0, t1, rng.uniform(10.0, 30.0), 0.2)
    p.bursts(rng, ev, rng.uniform(15, 45, ev.shape[0]).astype(int), flow, TCP,
             rate_pps=rng.uniform(150, 400))
    tracks = _events(rng, t0, t1, rng.uniform(150.0, 240.0), 0.3)  # next track: metadata + art
    p.bursts(rng, tracks, rng.uniform(5, 20, tracks.shape[0]).astype(int),
             p.new_flows(tracks.shape[0]), TCP, rate_pps=300.0, big_share=0.0)


def _gen_productivity(p: _Packets, rng: np.random.Generator, t0: float, t1: float) -> None:
    # Email/docs: edits synced every 1-4 s both ways (small), periodic mailbox sync, uploads.
    doc = p.new_flows()[0]
    ev = _events(rng, t0, t1, rng.uniform(1.0, 4.0), 0.7)
    p.add(ev, rng.integers(120, 700, ev.shape[0]), UP, doc, TCP)
    p.add(ev + rng.uniform(0.03, 0.15, ev.shape[0]), rng.integers(80, 400, ev.shape[0]), DOWN, doc, TCP)
    sync = _events(rng, t0, t1, rng.uniform(20.0, 60.0), 0.4)
    flows = p.new_flows(sync.shape[0])
    p.bursts(rng, sync, rng.uniform(4, 30, sync.shape[0]).astype(int), flows, TCP, rate_pps=250.0,
             big_share=0.0)
    for ts, f in zip(sync[rng.random(sync.shape[0]) < 0.2], flows):  # attachment uploads
        n = int(rng.uniform(20, 100))
        p.add(ts + np.cumsum(rng.exponential(1 / 150, n)), 1500, UP, f, TCP)


def _gen_browsing(p: _Packets, rng: np.random.Generator, t0: float, t1: float) -> None:
    # Web pages: a page load opens many connections at once, then the person reads.
    ev = _events(rng, t0, t1, rng.uniform(15.0, 60.0), 0.7)
    k = rng.integers(4, 16, ev.shape[0])
    starts = np.repeat(ev, k) + rng.exponential(0.4, int(k.sum()))
    flows = p.new_flows(starts.shape[0])
    p.add(starts, rng.integers(400, 700, starts.shape[0]), UP, flows, TCP)
    big = np.repeat(rng.random(ev.shape[0]) < 0.6, k)
    p.bursts(rng, starts + 0.05, rng.lognormal(2.5, 0.8, starts.shape[0]).astype(int), flows, TCP,
             rate_pps=rng.uniform(200, 800, starts.shape[0]), big_share=np.where(big, 0.9, 0.0))


_GENERATORS = {
    "video_streaming": _gen_video_streaming,
    "short_video": _gen_short_video,
    "social_network": _gen_social_network,
    "messaging": _gen_messaging,
    "gaming": _gen_gaming,
    "music": _gen_music,
    "productivity": _gen_productivity,
    "browsing": _gen_browsing,
}


def _gen_background(p: _Packets, rng: np.random.Generator) -> None:
    """All-day background: OS push channel keep-alives, occasional update checks."""
    push = p.new_flows()[0]
    keep = _events(rng, 0.0, 86_400.0, rng.uniform(60.0, 300.0), 0.2)
    p.add(keep, 66, UP, push, TCP)
    p.add(keep + 0.05, 66, DOWN, push, TCP)
    checks = _events(rng, 0.0, 86_400.0, rng.uniform(600.0, 3600.0), 0.8)
    p.bursts(rng, checks, rng.uniform(2, 12, checks.shape[0]).astype(int),
             p.new_flows(checks.shape[0]), TCP, rate_pps=100.0, big_share=0.0)


def simulate_traffic(rng: np.random.Generator, minutes: dict[str, float]) -> NetworkTrace:
    """A day of packets: each category's minutes split into sessions, placed in waking hours."""
    sessions: list[tuple[str, float]] = []
    for cat in APP_CATEGORIES:
        left = minutes.get(cat, 0.0)
        while left >= 1.0:
            length = min(left, float(rng.uniform(4.0, 45.0)))
            sessions.append((cat, length * 60.0))
            left -= length
    order = rng.permutation(len(sessions))
    total = sum(s[1] for s in sessions)
    wake, sleep = rng.uniform(6.0, 8.5) * 3600.0, rng.uniform(22.5, 24.0) * 3600.0
    free = max(sleep - wake - total, 0.0)
    gaps = rng.dirichlet(np.ones(len(sessions) + 1)) * free if sessions else np.zeros(1)
    p = _Packets()
    placed: list[AppSession] = []
    t = wake
    for i, idx in enumerate(order):
        cat, length = sessions[idx]
        t += gaps[i]
        end = min(t + length, 86_399.0)
        if end - t < 30.0:
            break
        _GENERATORS[cat](p, rng, t, end)
        placed.append(AppSession(cat, t, end))
        t = end
    _gen_background(p, rng)
    time_s, size, direction, flow, proto = p.arrays()
    keep = (time_s >= 0.0) & (time_s < 86_400.0)
    return NetworkTrace(time_s[keep], size[keep], direction[keep], flow[keep], proto[keep],
                        tuple(placed))


# --------------------------------------------------------------------------------------------------
# Thermostat: hourly indoor temperature driven by weather and a heating schedule
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemperatureHistory:
    """168 hourly indoor readings ending at midnight that starts `day`, plus the hidden next 24 h."""

    readings_c: np.ndarray  # (168,) past week, oldest first
    start: dt.datetime  # time of readings_c[0]
    future_c: np.ndarray  # (24,) ground truth for the day being forecast; never given to a model


def _outdoor_day(seed: int, day: dt.date) -> np.ndarray:
    """Hourly outdoor temperature (24,) for one date: season + daily cycle + that day's weather."""
    rng = _rng(seed, _STREAM_WEATHER, day.toordinal())
    doy = day.timetuple().tm_yday
    season = 10.0 - 9.0 * math.cos(2 * math.pi * (doy - 20) / 365.25)
    hours = np.arange(24)
    daily = rng.uniform(3.0, 6.0) * np.cos(2 * np.pi * (hours - 15) / 24)
    return season + rng.normal(0.0, 3.0) + daily + rng.normal(0.0, 0.4, 24)


def _schedule_day(seed: int, day: dt.date, hh: Household) -> np.ndarray:
    """Hourly heating set-point (24,) for one date: comfort while awake and home, setback at night."""
    rng = _rng(seed, _STREAM_SCHEDULE, day.toordinal())
    sp = np.full(24, hh.night_setpoint_c)
    wake, bed = int(rng.integers(6, 9)), int(rng.integers(21, 24))
    sp[wake:bed] = hh.comfort_setpoint_c
    if day.weekday() < 5 and rng.random() < 0.7:  # out at work
        sp[9:17] = hh.night_setpoint_c
    return sp


def simulate_temperature(day: dt.date, seed: int, hh: Household | None = None) -> TemperatureHistory:
    """Indoor temperature from a first-order thermal model with a bang-bang heater, sampled hourly."""
    hh = hh or household(seed)
    burn_in, past = 3, 7
    days = [day - dt.timedelta(days=k) for k in range(past + burn_in, 0, -1)] + [day]
    outdoor = np.concatenate([_outdoor_day(seed, d) for d in days])
    setpoint = np.concatenate([_schedule_day(seed, d, hh) for d in days])
    steps_per_h = 12
    tau = hh.thermal_time_constant_h
    heater_gain = 6.0 / tau * 2.5  # degC/h at full power, enough to reach comfort on cold days
    temp, heating = setpoint[0], False
    hourly = np.empty(outdoor.shape[0])
    sensor = _rng(seed, _STREAM_SCHEDULE, day.toordinal(), 99)
    for h in range(outdoor.shape[0]):
        gains = 0.5 + 1.5 * max(0.0, math.sin(math.pi * ((h % 24) - 7) / 12))  # sun + people
        for _ in range(steps_per_h):
            if temp < setpoint[h] - 0.3:
                heating = True
            elif temp > setpoint[h] + 0.3:
                heating = False
            dtemp = (outdoor[h] - temp) / tau + gains / tau + (heater_gain if heating else 0.0)
            temp += dtemp / steps_per_h
        hourly[h] = temp
    hourly = hourly + sensor.normal(0.0, 0.1, hourly.shape[0])  # +/-0.3 degC sensor
    hist = hourly[burn_in * 24: (burn_in + past) * 24]
    start = dt.datetime.combine(day - dt.timedelta(days=past), dt.time())
    return TemperatureHistory(readings_c=np.round(hist, 2), start=start,
                              future_c=np.round(hourly[-24:], 2))


# --------------------------------------------------------------------------------------------------
# Smart plug: one appliance's power at 1 Hz over a day, with dropped readings
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerReadings:
    """What the plug reports: (time, watts) pairs at 1 Hz with gaps, plus the true energy."""

    time_s: np.ndarray  # (M,) seconds since midnight of the reported readings
    watts: np.ndarray  # (M,) reported active power
    appliance: str
    true_energy_kwh: float  # integral of the true power over the day
    true_active_kwh: float


def simulate_power(rng: np.random.Generator, appliance: str, activity: float = 0.5) -> PowerReadings:
    """True power (1 Hz) of one appliance, meter noise (+/-1%), and about 2% of readings lost in runs."""
    n = 86_400
    standby = {"kettle": 0.3, "washing_machine": 1.2, "television": 0.5, "fridge": 0.0,
               "space_heater": 0.8}[appliance]
    power = np.full(n, standby)

    def run(start: int, profile: np.ndarray) -> None:
        end = min(start + profile.shape[0], n)
        power[start:end] = profile[: end - start]

    if appliance == "kettle":
        for _ in range(int(rng.integers(2, 9))):
            run(int(rng.uniform(6, 23) * 3600), np.full(int(rng.uniform(90, 240)), rng.uniform(1800, 2900)))
    elif appliance == "washing_machine":
        for _ in range(int(rng.integers(0, 3))):
            heat = np.full(int(rng.uniform(600, 1200)), rng.uniform(1800, 2200))
            wash = 250 + 150 * np.abs(np.sin(np.arange(int(rng.uniform(2400, 3600))) / 30.0))
            spin = np.full(int(rng.uniform(300, 600)), rng.uniform(400, 600))
            run(int(rng.uniform(7, 19) * 3600), np.concatenate([heat, wash, spin]))
    elif appliance == "television":
        start = int(rng.uniform(17, 21) * 3600)
        hours = rng.uniform(1.0, 4.5) * (1.3 - 0.6 * activity)
        run(start, 90 + 40 * rng.random(int(hours * 3600)))
    elif appliance == "fridge":
        t = 0
        while t < n:
            on, off = int(rng.uniform(600, 1200)), int(rng.uniform(1200, 2400))
            run(t, np.concatenate([np.full(on, rng.uniform(80, 120)), np.full(off, 1.5)]))
            t += on + off
    elif appliance == "space_heater":
        start = int(rng.uniform(6, 18) * 3600)
        dur = int(rng.uniform(2, 6) * 3600)
        cycle = np.concatenate([np.full(600, rng.uniform(1200, 2000)), np.full(int(rng.uniform(300, 1200)), 0.8)])
        run(start, np.tile(cycle, dur // cycle.shape[0] + 1)[:dur])
    else:
        raise ValueError(f"unknown appliance {appliance!r}")

    true_kwh = float(power.sum() / 3.6e6)  # 1 s per sample
    active_kwh = float(power[power > standby + 5.0].sum() / 3.6e6)
    reported = power * (1.0 + rng.normal(0.0, 0.01, n)) + rng.normal(0.0, 0.1, n)
    reported = np.round(np.clip(reported, 0.0, None), 1)
    keep = np.ones(n, dtype=bool)
    for _ in range(int(rng.poisson(20))):  # Wi-Fi dropouts of a few s to a few min
        s = int(rng.integers(0, n))
        keep[s: s + int(rng.exponential(90.0)) + 1] = False
    idx = np.flatnonzero(keep)
    return PowerReadings(time_s=idx.astype(np.float64), watts=reported[idx], appliance=appliance,
                         true_energy_kwh=true_kwh, true_active_kwh=active_kwh)


# --------------------------------------------------------------------------------------------------
# One day in one home
# --------------------------------------------------------------------------------------------------


@dataclass
class HomeRecordings:
    """Everything the home's sensors recorded on `day` for household `seed`, built lazily per sensor."""

    day: dt.date
    seed: int
    household: Household
    state: HomeState

    @cached_property
    def audio(self) -> AcousticRecording:
        rng = _rng(self.seed, _STREAM_AUDIO, self.day.toordinal())
        return simulate_acoustic(rng, self.state.heart_rate_bpm, self.state.respiration_rate_bpm,
                                 hh=self.household)

    @cached_property
    def network_traffic(self) -> NetworkTrace:
        rng = _rng(self.seed, _STREAM_TRAFFIC, self.day.toordinal())
        return simulate_traffic(rng, self.state.planned_app_minutes)

    @cached_property
    def temperature_history(self) -> TemperatureHistory:
        return simulate_temperature(self.day, self.seed, self.household)

    @cached_property
    def power_readings(self) -> PowerReadings:
        rng = _rng(self.seed, _STREAM_PLUG, self.day.toordinal())
        return simulate_power(rng, self.household.appliance, self.state.activity)

    def raw(self, name: str) -> object:
        """The raw input a device model declares (`audio`, `network_traffic`, ...)."""
        if name not in RAW_INPUTS:
            raise KeyError(name)
        return getattr(self, name)


RAW_INPUTS: tuple[str, ...] = ("audio", "network_traffic", "temperature_history", "power_readings")
"""Declared model inputs that come straight from sensors rather than from another model."""


def simulate_home(day: dt.date, seed: int) -> HomeRecordings:
    """The recordings of household `seed` on `day`; deterministic per (day, seed)."""
    if not isinstance(day, dt.date):
        raise TypeError(f"day must be a datetime.date, got {type(day).__name__}")
    hh = household(seed)
    return HomeRecordings(day=day, seed=seed, household=hh, state=home_state(day, seed, hh))
