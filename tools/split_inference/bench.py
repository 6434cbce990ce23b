"""`edgeai bench split`: the analogues of Table II and Fig. 3 of papers/autonomous-edge-ai-gpt.md.

Table II, honestly (`honest.equal_quality`, the headline): bytes on the wire of every scheme at
equal task quality (within 0.5 points of the uncompressed photo) on 1,000 held-out images per
task, against the cheapest image baseline (lossless or JPEG/WebP/AVIF, at the model's input size
or full size), with bootstrap intervals.

Fig. 3 (`latency_sweep`): end-to-end seconds through the socket runtime (a real edge server and a
real cloud server on 127.0.0.1, the link's rate and delay emulated by the sender) for link rates
50 KB/s .. 1 MB/s and the paper's task mix (10 % classification, 40 % captioning, 50 % VQA), two
figures per point side by side: emulated (the cost model: the photo manuals' compute_hz and
cycles, delay + bytes / rate on the request's own bytes) and measured (this machine's compute,
the shaped socket). Edge-only is there twice: the photo as taken in PNG, and the photo resized to
the model's input size and lossy-coded at the cheapest setting of equal quality. Co-inference
cuts each task where the partition predicts the lowest latency at that rate, among the split
points a shipped codec sits at (as the graph's offloading node does). Crossover rates come from
the emulated curves.
"""

from __future__ import annotations

import csv
import logging
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from edgeai.tools.split_inference.base import TASKS, Task, input_side
from edgeai.tools.split_inference.imagecodecs import LossySetting
from edgeai.tools.split_inference.partition import (
    choose_split,
    codec_payload_bytes,
    photo_hosts_from_manuals,
)
from edgeai.tools.split_inference.profile import make_compute_seconds, profile_model
from edgeai.tools.split_inference.runtime import (
    DEFAULT_LOSSY_QUALITY,
    DeviceClient,
    EdgeServer,
    load_task_codecs,
    load_task_model,
)
from edgeai.tools.split_inference.world import make_examples

log = logging.getLogger(__name__)

PHOTO_MANUALS = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "photo" / "manuals"
TASK_MIX: dict[Task, float] = {"classify": 0.10, "caption": 0.40, "vqa": 0.50}
DEFAULT_RATES_KBPS = (50, 75, 100, 150, 200, 300, 400, 500, 750, 1000)
LATENCY_SCHEMES = ("coinfer", "edge-lossy", "edge-lossless", "client-only", "cloud")
Progress = Callable[[str], None]


def csv_row(row: Any, digits: dict[str, int], rename: dict[str, str] | None = None) -> dict[str, Any]:
    """A result dataclass as one CSV row: fields in declaration order, rounded to `digits[name]`
    places where given; a dict field spreads into one column per key (after the others)."""
    out: dict[str, Any] = {}
    spread: dict[str, Any] = {}
    for f in fields(row):
        value, places = getattr(row, f.name), digits.get(f.name)
        if isinstance(value, dict):
            spread.update({k: v if places is None else round(v, places) for k, v in value.items()})
        else:
            out[(rename or {}).get(f.name, f.name)] = value if places is None else round(value, places)
    return {**out, **spread}


# --------------------------------------------------------------------------- latency (Fig. 3)


@dataclass
class LatencyRow:
    rate_kbps: float
    scheme: str
    task: str  # a task, or "mix" (the paper's 10/40/50 weighting of the task means)
    emulated_s: float  # the cost model's seconds for the request's own bytes
    measured_s: float  # this machine's compute and the shaped socket
    n: int
    payload_bytes: float
    wire_bytes: float  # every byte the device wrote (frame prefix, header, payload)
    parts: dict[str, float] = field(default_factory=dict)  # emulated breakdown

    def as_csv(self) -> dict[str, Any]:
        return csv_row(
            self, {"emulated_s": 4, "measured_s": 4, "payload_bytes": 1, "wire_bytes": 1, "parts": 4}
        )


@dataclass
class Scenario:
    """The photo pool's hosts as the manuals give them, plus the two round trips."""

    device: str
    device_hz: float
    edge_hz: float
    cloud_hz: float
    edge_one_way_s: float
    cloud_one_way_s: float


def latency_sweep(
    rates_kbps: Sequence[float] = DEFAULT_RATES_KBPS,
    images_per_task: int = 3,
    schemes: Sequence[str] = LATENCY_SCHEMES,
    edge_one_way_s: float = 0.010,
    cloud_one_way_s: float = 0.150,
    manuals: Path = PHOTO_MANUALS,
    progress: Progress | None = None,
    lossy: dict[str, LossySetting] | None = None,
) -> tuple[list[LatencyRow], Scenario]:
    """Fig. 3: emulated and measured end-to-end seconds per scheme and link rate (task means and
    the mix). `lossy`: edge-lossy's setting per task (default: WebP at the model's input size,
    quality 75); the bench passes the cheapest setting of equal quality from the headline."""
    say = progress or (lambda _msg: None)
    hosts = photo_hosts_from_manuals(manuals)
    models = {task: load_task_model(task) for task in TASKS}
    codecs = {task: load_task_codecs(task) for task in TASKS}
    examples = {task: make_examples(task, images_per_task, seed=0) for task in TASKS}
    cost_models, profiles, codec_bytes = {}, {}, {}
    for task, model in models.items():
        sample = np.stack([ex.image for ex in examples[task]])
        qs = [ex.question for ex in examples[task]] if task == "vqa" else None
        profiles[task] = profile_model(model, sample, repeats=3, questions=qs)
        cost_models[model.model_id] = hosts.cost_model(profiles[task])
        codec_bytes[task] = {}
        for codec in codecs[task]:
            codec_bytes[task].update(codec_payload_bytes(model, codec, sample))
    lossy = {
        t: (lossy or {}).get(t)
        or LossySetting(side=input_side(models[t]), quality=DEFAULT_LOSSY_QUALITY)
        for t in TASKS
    }

    def coinfer_split(task: str, rate: float) -> int:
        """Co-inference cuts where the partition predicts the lowest latency at this rate,
        among the split points a shipped codec sits at (as the graph's offloading node does)."""
        decision = choose_split(
            profiles[task],
            cost_models[models[task].model_id],
            link_bps=rate * 8000.0,
            rtt_s=2 * edge_one_way_s,
            payload_bytes=codec_bytes[task],
        )
        rows = [r for r in decision.rows if r.split in codec_bytes[task]]
        return int(min(rows, key=lambda r: r.latency_s).split)

    compute = make_compute_seconds(cost_models)
    scenario = Scenario(
        device=hosts.device.device,
        device_hz=hosts.device.compute_hz,
        edge_hz=hosts.edge.compute_hz,
        cloud_hz=hosts.cloud.compute_hz if hosts.cloud else math.nan,
        edge_one_way_s=edge_one_way_s,
        cloud_one_way_s=cloud_one_way_s,
    )
    rows: list[LatencyRow] = []
    edge = EdgeServer(models=models, codecs=codecs, compute=compute, role="edge").start()
    cloud = EdgeServer(models=models, codecs=codecs, compute=compute, role="cloud").start()
    try:
        client = DeviceClient(models, codecs, compute)
        for rate in rates_kbps:
            for scheme in schemes:
                means: dict[str, LatencyRow] = {}
                for task in TASKS:
                    runs = [
                        client.infer(
                            ex.image,
                            task,
                            scheme,
                            rate * 1000.0,
                            ex.question,
                            edge.address,
                            cloud=cloud.address,
                            one_way_delay_s=edge_one_way_s,
                            cloud_one_way_s=cloud_one_way_s,
                            split=coinfer_split(task, rate) if scheme == "coinfer" else None,
                            lossy_format=lossy[task].fmt,
                            quality=lossy[task].quality,
                            lossy_side=lossy[task].side,
                        )
                        for ex in examples[task]
                    ]
                    parts = {
                        name: statistics.fmean(getattr(r.emulated, name) for r in runs)
                        for name in ("device_s", "uplink_s", "server_s", "downlink_s", "plan_s")
                    }
                    means[task] = LatencyRow(
                        rate,
                        scheme,
                        task,
                        statistics.fmean(r.emulated_s for r in runs),
                        statistics.fmean(r.seconds for r in runs),
                        len(runs),
                        statistics.fmean(r.payload_bytes for r in runs),
                        statistics.fmean(r.bytes_up for r in runs),
                        parts,
                    )
                rows.extend(means.values())
                rows.append(_mix(rate, scheme, means))
                say(
                    f"{rate:g} KB/s {scheme}: {rows[-1].emulated_s:.3f} s emulated, "
                    f"{rows[-1].measured_s:.3f} s measured (mix)"
                )
    finally:
        edge.stop()
        cloud.stop()
    return rows, scenario


def _mix(rate: float, scheme: str, means: dict[str, LatencyRow]) -> LatencyRow:
    def weighted(name: str) -> float:
        return sum(TASK_MIX[t] * getattr(means[t], name) for t in TASKS)  # type: ignore[index]

    return LatencyRow(
        rate,
        scheme,
        "mix",
        weighted("emulated_s"),
        weighted("measured_s"),
        sum(m.n for m in means.values()),
        weighted("payload_bytes"),
        weighted("wire_bytes"),
    )


def lossy_bytes(setting: LossySetting, images: Sequence[np.ndarray]) -> float:
    """Mean payload bytes of edge-lossy's photo at this setting (the partitioner's k = 0)."""
    return float(np.mean([len(setting.encode(im)) for im in images]))


def crossovers(rows: list[LatencyRow], key: str = "emulated_s") -> list[dict[str, Any]]:
    """Link rates where two schemes' mixed-task curves cross, for every pair (linear
    interpolation between the swept rates; on the emulated curves by default). A pair that does
    not cross in the range gets rate NaN and the scheme faster throughout."""
    mix: dict[str, dict[float, float]] = {}
    for r in rows:
        if r.task == "mix":
            mix.setdefault(r.scheme, {})[r.rate_kbps] = getattr(r, key)
    out: list[dict[str, Any]] = []
    names = list(mix)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            rates = sorted(set(mix[a]) & set(mix[b]))
            diff = [mix[b][x] - mix[a][x] for x in rates]  # > 0: a faster
            found = False
            for (x0, d0), (x1, d1) in zip(
                zip(rates, diff, strict=True), zip(rates[1:], diff[1:], strict=True), strict=False
            ):
                if (d0 < 0) != (d1 < 0):
                    at = x0 + (x1 - x0) * d0 / (d0 - d1)
                    out.append({"a": a, "b": b, "rate_kbps": at, "faster_above": a if d1 > 0 else b})
                    found = True
            if not found and diff:
                lead = a if diff[0] > 0 else b
                out.append({"a": a, "b": b, "rate_kbps": math.nan, "faster_above": lead})
    return out


# ------------------------------------------------------------------------------ output files


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def plot_latency(rows: list[LatencyRow], path: Path) -> None:
    """Fig. 3: mixed-task latency against link rate, one colour per scheme: emulated (solid)
    and measured (dashed) side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, scheme in enumerate(dict.fromkeys(r.scheme for r in rows)):
        mix = sorted((r.rate_kbps, r) for r in rows if r.scheme == scheme and r.task == "mix")
        xs = [x for x, _ in mix]
        colour = f"C{i}"
        ax.plot(xs, [r.emulated_s for _, r in mix], "o-", color=colour, label=f"{scheme}")
        ax.plot(xs, [r.measured_s for _, r in mix], "x--", color=colour, alpha=0.6)
    ax.plot([], [], "k-", label="emulated (cost model)")
    ax.plot([], [], "k--", alpha=0.6, label="measured (this machine)")
    ax.set_xlabel("uplink rate (KB/s)")
    ax.set_ylabel("end-to-end latency (s), task mix 10/40/50 %")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def check_shape(rows: list[LatencyRow], key: str = "emulated_s") -> dict[str, bool]:
    """The paper's Fig. 3 claims, checked on the mixed-task curves (emulated by default)."""
    mix: dict[str, dict[float, float]] = {}
    for r in rows:
        if r.task == "mix":
            mix.setdefault(r.scheme, {})[r.rate_kbps] = getattr(r, key)
    rates = sorted(next(iter(mix.values())))
    out: dict[str, bool] = {}
    if "coinfer" in mix:
        out["coinfer lowest at every rate"] = all(
            mix["coinfer"][x] <= min(v[x] for s, v in mix.items() if s != "coinfer") for x in rates
        )
    if {"edge-lossless", "client-only"} <= set(mix):
        e, c = mix["edge-lossless"], mix["client-only"]
        out["edge-only (PNG) beats client-only at the top rate"] = e[rates[-1]] < c[rates[-1]]
        out["edge-only (PNG) loses to client-only at the bottom rate"] = e[rates[0]] > c[rates[0]]
    if "cloud" in mix:
        out["cloud-only highest at every rate"] = all(
            mix["cloud"][x] >= max(v[x] for s, v in mix.items() if s != "cloud") for x in rates
        )
    return out
