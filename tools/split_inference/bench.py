"""`edgeai bench split`: the analogues of Table II and Fig. 3 of papers/autonomous-edge-ai-gpt.md.

Table II (`quality_table`): bytes per request and task quality of each scheme on held-out
photo-world images (seeds 0..n-1; every model and codec was trained on seeds >= 1,000,000):
edge-only with lossless PNG, edge-only with lossy JPEG / WebP at the co-inference's own byte
budget (per image, the best quality that fits), client-edge co-inference (the learned codec at
its split point), the raw float16 activation at the same split, and client-only. The bytes are
those of the real encoders (PNG/JPEG/WebP files, the codec's range-coded bit stream), the
quality that of the decoded input through the same models. A rate-quality curve adds every
shipped codec (one per lambda) and JPEG/WebP at a ladder of qualities.

Fig. 3 (`latency_sweep`): end-to-end seconds measured through the socket runtime (a real edge
server and a real cloud server on 127.0.0.1, link rate and delay emulated by the sender, compute
paced to the photo manuals' compute_hz and cycles) for link rates 50 KB/s .. 1 MB/s and the
paper's task mix (10 % classification, 40 % captioning, 50 % VQA). Co-inference cuts each task
where the partition predicts the lowest latency at that rate, among the split points a shipped
codec sits at (as the graph's offloading node does).
"""

from __future__ import annotations

import csv
import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.tools.split_inference.base import TASKS, Example, SplitModel, Task
from edgeai.tools.split_inference.codec import (
    CHECKPOINT_DIR,
    FeatureCodec,
    load_codec,
)
from edgeai.tools.split_inference.imagecodecs import (
    decode_image,
    encode_lossy,
    encode_png,
    encode_to_budget,
)
from edgeai.tools.split_inference.metrics import task_metrics, task_score
from edgeai.tools.split_inference.partition import (
    choose_split,
    codec_payload_bytes,
    photo_hosts_from_manuals,
)
from edgeai.tools.split_inference.profile import make_compute_seconds, profile_model
from edgeai.tools.split_inference.runtime import (
    DeviceClient,
    EdgeServer,
    load_task_codec,
    load_task_codecs,
    load_task_model,
)
from edgeai.tools.split_inference.world import make_examples

log = logging.getLogger(__name__)

PHOTO_MANUALS = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "photo" / "manuals"
TASK_MIX: dict[Task, float] = {"classify": 0.10, "caption": 0.40, "vqa": 0.50}
DEFAULT_RATES_KBPS = (50, 75, 100, 150, 200, 300, 400, 500, 750, 1000)
LATENCY_SCHEMES = ("coinfer", "edge-lossless", "client-only", "cloud")
LOSSY_QUALITIES = (1, 3, 5, 10, 20, 35, 50, 70, 90)
LOSSY_SIDES = (224, 112, 64, 32)
"""photo sides the lossy baseline may shrink to before coding (224 = the photo as taken)."""
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


@dataclass
class QualityRow:
    """One scheme on one task: mean payload bytes per request and the task's metrics."""

    task: str
    scheme: str
    n: int
    mean_bytes: float
    score: float
    metrics: dict[str, float]
    note: str = ""
    split: int | None = None
    lam: float | None = None

    def as_csv(self) -> dict[str, Any]:
        return csv_row(self, {"mean_bytes": 1, "score": 3, "metrics": 3}, rename={"lam": "lambda"})


@dataclass
class QualityReport:
    rows: list[QualityRow] = field(default_factory=list)
    curve: list[QualityRow] = field(default_factory=list)

    def get(self, task: str, scheme: str) -> QualityRow:
        return next(r for r in self.rows if r.task == task and r.scheme == scheme)


def _batched_predict(
    model: SplitModel,
    inputs: Sequence[np.ndarray],
    questions: list[str | None],
    batch: int = 32,
) -> list[str]:
    """Whole-model predictions on decoded images, in batches."""
    out: list[str] = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            images = np.stack(inputs[i : i + batch])
            out.extend(model.predict(images, questions[i : i + batch]))
    return out


def _shrink(image: np.ndarray, side: int) -> np.ndarray:
    """The photo resized to side x side (antialiased), as a device could before sending it."""
    from PIL import Image

    if image.shape[0] == side and image.shape[1] == side:
        return image
    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR))


def _codec_pass(
    model: SplitModel, codec: FeatureCodec, examples: list[Example]
) -> tuple[list[str], list[int]]:
    """Co-inference on each example: features -> bit stream -> decoded features -> answer."""
    k = int(codec.meta.split)
    preds, sizes = [], []
    with torch.no_grad():
        for ex in examples:
            h = model.features(ex.image[None], k)
            data = codec.compress(h)
            sizes.append(len(data))
            preds.extend(model.predict_from(codec.decompress(data), k, [ex.question]))
    return preds, sizes


def _row(
    task: Task,
    scheme: str,
    preds: list[str],
    examples: list[Example],
    sizes: Sequence[float],
    **extra: Any,
) -> QualityRow:
    return QualityRow(
        task=task,
        scheme=scheme,
        n=len(examples),
        mean_bytes=float(np.mean(sizes)) if len(sizes) else 0.0,
        score=task_score(task, preds, examples),
        metrics=task_metrics(task, preds, examples),
        **extra,
    )


def task_codecs(task: str) -> list[Path]:
    """Every shipped codec checkpoint of a task (one per split point and lambda)."""
    return sorted(CHECKPOINT_DIR.glob(f"codec-{task}-*.pt"))


def quality_table(
    n_images: int = 300,
    tasks: Sequence[Task] = TASKS,
    curve: bool = True,
    progress: Progress | None = None,
) -> QualityReport:
    """Table II: bytes and task quality of every scheme on held-out images (seeds 0..n-1)."""
    say = progress or (lambda _msg: None)
    report = QualityReport()
    for task in tasks:
        t0 = time.perf_counter()
        model = load_task_model(task)
        codec = load_task_codec(task)
        k = int(codec.meta.split)
        examples = make_examples(task, n_images, seed=0)
        questions = [ex.question for ex in examples]
        say(f"{task}: {n_images} held-out images")

        pngs = [encode_png(ex.image) for ex in examples]
        decoded = [decode_image(p) for p in pngs]
        preds = _batched_predict(model, decoded, questions)
        report.rows.append(_row(task, "edge-lossless", preds, examples, [len(p) for p in pngs]))

        co_preds, co_sizes = _codec_pass(model, codec, examples)
        report.rows.append(
            _row(task, "coinfer", co_preds, examples, co_sizes, split=k, lam=float(codec.meta.lam))
        )

        # At the co-inference's budget a full-size JPEG/WebP often does not fit even at quality
        # 1, so the lossy baseline may also shrink the photo first (as a device could): every
        # (format, side) variant is a row, and the best one that fits is the one to beat.
        for fmt in ("jpeg", "webp"):
            for side in LOSSY_SIDES:
                encs = [
                    encode_to_budget(_shrink(ex.image, side), size, fmt)
                    for ex, size in zip(examples, co_sizes, strict=True)
                ]
                preds = _batched_predict(model, [decode_image(e.data) for e in encs], questions)
                over = sum(e.n_bytes > size for e, size in zip(encs, co_sizes, strict=True))
                note = f"{side}x{side}, quality {min(e.quality for e in encs)}-"
                note += f"{max(e.quality for e in encs)}"
                if over:
                    note += f"; {over}/{len(encs)} above the budget at quality 1"
                report.rows.append(
                    _row(
                        task,
                        f"edge-lossy-{fmt}-{side}px",
                        preds,
                        examples,
                        [e.n_bytes for e in encs],
                        note=note,
                    )
                )

        with torch.no_grad():
            raw_preds, raw_sizes = [], []
            for ex in examples:
                h = model.features(ex.image[None], k).half()
                raw_sizes.append(h.numel() * 2)
                raw_preds.extend(model.predict_from(h.float(), k, [ex.question]))
        report.rows.append(_row(task, "split-raw-fp16", raw_preds, examples, raw_sizes, split=k))
        client = _batched_predict(model, [ex.image for ex in examples], questions)
        report.rows.append(_row(task, "client-only", client, examples, [0.0] * len(examples)))

        if curve:
            for path in task_codecs(task):
                other = load_codec(path)
                p, s = _codec_pass(model, other, examples)
                report.curve.append(
                    _row(
                        task,
                        "coinfer",
                        p,
                        examples,
                        s,
                        split=int(other.meta.split),
                        lam=float(other.meta.lam),
                        note=path.name,
                    )
                )
            for fmt in ("jpeg", "webp"):
                for q in LOSSY_QUALITIES:
                    data = [encode_lossy(ex.image, fmt, q) for ex in examples]
                    p = _batched_predict(model, [decode_image(d) for d in data], questions)
                    report.curve.append(
                        _row(
                            task,
                            f"edge-lossy-{fmt}",
                            p,
                            examples,
                            [len(d) for d in data],
                            note=f"quality {q}",
                        )
                    )
        say(f"{task}: done in {time.perf_counter() - t0:.0f} s")
    return report


# --------------------------------------------------------------------------- latency (Fig. 3)


@dataclass
class LatencyRow:
    rate_kbps: float
    scheme: str
    task: str  # a task, or "mix" (the paper's 10/40/50 weighting of the task means)
    seconds: float
    n: int
    payload_bytes: float
    parts: dict[str, float] = field(default_factory=dict)

    def as_csv(self) -> dict[str, Any]:
        return csv_row(self, {"seconds": 4, "payload_bytes": 1, "parts": 4})


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
) -> tuple[list[LatencyRow], Scenario]:
    """Fig. 3: measured end-to-end seconds per scheme and link rate (task means and the mix)."""
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
                        )
                        for ex in examples[task]
                    ]
                    parts = {
                        name: statistics.fmean(getattr(r.breakdown, name) for r in runs)
                        for name in ("device_s", "uplink_s", "server_s", "downlink_s", "plan_s")
                    }
                    means[task] = LatencyRow(
                        rate,
                        scheme,
                        task,
                        statistics.fmean(r.seconds for r in runs),
                        len(runs),
                        statistics.fmean(r.payload_bytes for r in runs),
                        parts,
                    )
                rows.extend(means.values())
                rows.append(
                    LatencyRow(
                        rate,
                        scheme,
                        "mix",
                        sum(TASK_MIX[t] * means[t].seconds for t in TASKS),
                        sum(m.n for m in means.values()),
                        sum(TASK_MIX[t] * means[t].payload_bytes for t in TASKS),
                    )
                )
                say(f"{rate:g} KB/s {scheme}: {rows[-1].seconds:.3f} s (mix)")
    finally:
        edge.stop()
        cloud.stop()
    return rows, scenario


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


def plot_quality_curve(report: QualityReport, path: Path) -> None:
    """Rate-quality per task: learned codec points vs JPEG/WebP ladders vs lossless PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(r.task == t for r in report.rows)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    labels = {"classify": "top-1 accuracy (%)", "caption": "BLEU-4", "vqa": "VQA accuracy (%)"}
    for ax, task in zip(axes[0], tasks, strict=True):
        for scheme, style in (
            ("coinfer", "o-"),
            ("edge-lossy-jpeg", "s--"),
            ("edge-lossy-webp", "^--"),
        ):
            pts = sorted(
                (r.mean_bytes, r.score)
                for r in report.curve
                if r.task == task and r.scheme == scheme
            )
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, style, label=scheme)
        png = report.get(task, "edge-lossless")
        ax.plot([png.mean_bytes], [png.score], "k*", markersize=12, label="edge-lossless (PNG)")
        co = report.get(task, "coinfer")
        ax.plot([co.mean_bytes], [co.score], "r*", markersize=12, label="coinfer (default)")
        ax.set_xscale("log")
        ax.set_xlabel("bytes per request")
        ax.set_ylabel(labels[task])
        ax.set_title(task)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_latency(rows: list[LatencyRow], path: Path) -> None:
    """Fig. 3: mixed-task latency against link rate, one line per scheme."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for scheme in dict.fromkeys(r.scheme for r in rows):
        pts = sorted(
            (r.rate_kbps, r.seconds) for r in rows if r.scheme == scheme and r.task == "mix"
        )
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, "o-", label=scheme)
    ax.set_xlabel("uplink rate (KB/s)")
    ax.set_ylabel("end-to-end latency (s), task mix 10/40/50 %")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def check_shape(rows: list[LatencyRow]) -> dict[str, bool]:
    """The paper's Fig. 3 claims, checked on the measured mix curves."""
    mix: dict[str, dict[float, float]] = {}
    for r in rows:
        if r.task == "mix":
            mix.setdefault(r.scheme, {})[r.rate_kbps] = r.seconds
    rates = sorted(next(iter(mix.values())))
    out: dict[str, bool] = {}
    if "coinfer" in mix:
        out["coinfer lowest at every rate"] = all(
            mix["coinfer"][x] <= min(v[x] for s, v in mix.items() if s != "coinfer") for x in rates
        )
    if {"edge-lossless", "client-only"} <= set(mix):
        e, c = mix["edge-lossless"], mix["client-only"]
        out["edge-only beats client-only at the top rate"] = e[rates[-1]] < c[rates[-1]]
        out["edge-only loses to client-only at the bottom rate"] = e[rates[0]] > c[rates[0]]
    if "cloud" in mix:
        out["cloud-only highest at every rate"] = all(
            mix["cloud"][x] >= max(v[x] for s, v in mix.items() if s != "cloud") for x in rates
        )
    return out


def acceptance(report: QualityReport) -> list[dict[str, Any]]:
    """Per task: byte ratio vs lossless, quality gap to lossless, margin over lossy at equal bytes."""
    need = {"classify": 8.0, "caption": 10.0, "vqa": 10.0}
    out = []
    for task in dict.fromkeys(r.task for r in report.rows):
        png = report.get(task, "edge-lossless")
        co = report.get(task, "coinfer")
        lossy_rows = [
            r for r in report.rows if r.task == task and r.scheme.startswith("edge-lossy")
        ]
        fitting = [r for r in lossy_rows if r.mean_bytes <= 1.05 * co.mean_bytes]
        lossy = max(fitting or lossy_rows, key=lambda r: r.score)
        ratio = png.mean_bytes / co.mean_bytes if co.mean_bytes else math.inf
        out.append(
            {
                "task": task,
                "byte_ratio": ratio,
                "ratio_needed": need[task],
                "quality_gap": png.score - co.score,
                "best_lossy_at_equal_bytes": lossy.score,
                "lossy_scheme": lossy.scheme,
                "lossy_bytes": lossy.mean_bytes,
                "coinfer_score": co.score,
                "holds": ratio >= need[task]
                and png.score - co.score <= 0.5
                and co.score > lossy.score,
            }
        )
    return out
