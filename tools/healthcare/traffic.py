"""App usage from encrypted traffic metadata: per-minute flow features and a gradient-boosted classifier.

What `traffic-app-usage` runs on the router: the day's packet metadata is cut into 60 s windows; each
window gets shape features (volume each way, packet-size mix, UDP share, flow count and churn, burst
structure, timing regularity) plus the mean features of its two neighbours (sessions last minutes);
a HistGradientBoostingClassifier trained on simulated traces labels the window with an app category
or `idle`, and the minutes per category are the counts of labelled windows.
"""

from __future__ import annotations

import numpy as np
from edgeai.tools.healthcare.sensors import APP_CATEGORIES, DOWN, UDP, UP, NetworkTrace
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

WINDOW_S = 60.0
N_WINDOWS = int(86_400 // WINDOW_S)
IDLE = "idle"
LABELS: tuple[str, ...] = (*APP_CATEGORIES, IDLE)

_BASE_FEATURES = (
    "log_pkts_up", "log_pkts_down", "log_bytes_up", "log_bytes_down", "log_down_up_byte_ratio",
    "mean_size_up", "mean_size_down", "share_large", "share_small", "share_udp", "log_flows",
    "log_new_flows", "active_seconds_share", "per_second_cv", "log_bursts", "log_pkts_per_burst",
    "mean_log_gap", "std_log_gap",
)
FEATURE_NAMES: tuple[str, ...] = (*_BASE_FEATURES, *(f"nbr_{f}" for f in _BASE_FEATURES))


def _per_window(index: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(index, weights=weights, minlength=N_WINDOWS)[:N_WINDOWS].astype(np.float64)


def window_features(trace: NetworkTrace) -> np.ndarray:
    """(N_WINDOWS, len(FEATURE_NAMES)) features of every minute of the day."""
    t, size = trace.time_s, trace.size.astype(np.float64)
    w = np.minimum((t // WINDOW_S).astype(np.int64), N_WINDOWS - 1)
    up, down = trace.direction == UP, trace.direction == DOWN
    n = _per_window(w)
    safe_n = np.maximum(n, 1.0)
    n_up, n_down = _per_window(w[up]), _per_window(w[down])
    b_up, b_down = _per_window(w[up], size[up]), _per_window(w[down], size[down])
    large = _per_window(w, (size >= 1200).astype(float)) / safe_n
    small = _per_window(w, (size <= 120).astype(float)) / safe_n
    udp = _per_window(w, (trace.proto == UDP).astype(float)) / safe_n

    # Flows present in each window, and flows first seen in it (connection churn).
    key = w * (int(trace.flow.max(initial=0)) + 1) + trace.flow
    flows = _per_window(np.unique(key) // (int(trace.flow.max(initial=0)) + 1))
    _, first = np.unique(trace.flow, return_index=True)
    new_flows = _per_window(w[first])

    # Per-second activity: how many seconds had traffic, and how even the per-second rate is.
    sec = (t // 1.0).astype(np.int64)
    secs, per_sec = np.unique(sec, return_counts=True)
    sec_w = np.minimum(secs // int(WINDOW_S), N_WINDOWS - 1)
    active = _per_window(sec_w)
    mean_ps = _per_window(sec_w, per_sec) / np.maximum(active, 1.0)
    var_ps = _per_window(sec_w, per_sec.astype(float) ** 2) / np.maximum(active, 1.0) - mean_ps**2
    cv = np.sqrt(np.maximum(var_ps, 0.0)) / np.maximum(mean_ps, 1e-9)

    # Bursts: a gap over 0.5 s (or a new window) starts a new burst. Gaps inside a window only.
    gaps = np.diff(t)
    same = w[1:] == w[:-1]
    starts = np.concatenate([[True], ~same | (gaps > 0.5)]) if t.size else np.zeros(0, bool)
    bursts = _per_window(w[starts])
    log_gap = np.log10(gaps[same] + 1e-4)
    gw = w[1:][same]
    g_n = np.maximum(_per_window(gw), 1.0)
    g_mean = _per_window(gw, log_gap) / g_n
    g_std = np.sqrt(np.maximum(_per_window(gw, log_gap**2) / g_n - g_mean**2, 0.0))

    base = np.column_stack([
        np.log1p(n_up), np.log1p(n_down), np.log1p(b_up), np.log1p(b_down),
        np.log((b_down + 1.0) / (b_up + 1.0)),
        b_up / np.maximum(n_up, 1.0), b_down / np.maximum(n_down, 1.0),
        large, small, udp, np.log1p(flows), np.log1p(new_flows), active / WINDOW_S, cv,
        np.log1p(bursts), np.log1p(n / np.maximum(bursts, 1.0)), g_mean, g_std,
    ])
    padded = np.vstack([base[:1] * 0, base, base[:1] * 0])
    neighbours = 0.5 * (padded[:-2] + padded[2:])
    return np.hstack([base, neighbours])


def new_classifier(seed: int = 0) -> HistGradientBoostingClassifier:
    """The router's window classifier: small enough to ship (few hundred KB) and fast on a SoC."""
    return HistGradientBoostingClassifier(
        max_iter=60, max_leaf_nodes=15, learning_rate=0.15, l2_regularization=1.0,
        random_state=seed,
    )


def training_windows(traces: list[NetworkTrace], rng: np.random.Generator,
                     idle_keep: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the windows of `traces`; most idle windows dropped to balance classes."""
    xs, ys = [], []
    for trace in traces:
        x, y = window_features(trace), trace.window_labels(WINDOW_S)
        keep = (y != IDLE) | (rng.random(y.shape[0]) < idle_keep)
        xs.append(x[keep])
        ys.append(y[keep])
    return np.vstack(xs), np.concatenate(ys)


def classify_windows(model: HistGradientBoostingClassifier, trace: NetworkTrace) -> np.ndarray:
    """A label from LABELS for every minute of the day; windows with no packets are idle."""
    x = window_features(trace)
    labels = np.full(N_WINDOWS, IDLE, dtype=object)
    busy = (x[:, 0] + x[:, 1]) > 0
    if busy.any():
        # One thread: per-day batches are small and OpenMP start-up dominates on a shared machine.
        with threadpool_limits(limits=1, user_api="openmp"):
            labels[busy] = model.predict(x[busy])
    return labels.astype(str)


def app_usage_minutes(labels: np.ndarray) -> dict[str, float]:
    """Minutes per app category from window labels (every category present, zeros included)."""
    return {c: float(np.sum(labels == c) * WINDOW_S / 60.0) for c in APP_CATEGORIES}
