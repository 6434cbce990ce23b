"""`edgeai bench split`'s headline: bytes on the wire at equal task quality (issue 33).

Per task, on n held-out photo-world images (seeds 0..n-1; every model and codec was trained on
seeds >= 1,000,000):
- the reference is the model on the uncompressed photo, and a scheme *meets* the quality when its
  score is within `tolerance` (0.5 points) of the reference's;
- candidates: lossless PNG at the model's input size and at full size; JPEG, WebP and AVIF at the
  model's input size and at full size, each at the cheapest quality that meets (bisection over
  quality 1..100: bytes grow with quality, and so, up to noise, does the score); co-inference
  with every shipped codec (split point, lambda); the raw float16 activation beside them;
- bytes are those of the device's infer frame on the wire (length prefix, JSON header, payload),
  exactly as the runtime sends it (`runtime.infer_header`), with the payload alone beside them;
- the headline: the cheapest baseline that meets over the cheapest co-inference that meets, with
  a paired bootstrap 95 % interval over images; every quality difference to the reference has a
  paired bootstrap interval too (the same resamples for every scheme).
Side information: a feature codec's weights and entropy tables sit in a checkpoint at both ends
(reported as the file's bytes, paid once); an image file carries its own tables every time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.tools.split_inference.base import TASKS, Example, SplitModel, Task, input_side
from edgeai.tools.split_inference.imagecodecs import (
    LOSSY_FORMATS,
    decode_image,
    encode_lossy,
    encode_png,
    resize_square,
)
from edgeai.tools.split_inference.metrics import caption_tokens, vqa_score
from edgeai.tools.split_inference.runtime import infer_header, raw_activation_bytes, wire_bytes
from edgeai.tools.split_inference.world import make_examples

Progress = Callable[[str], None]
TOLERANCE = 0.5
"""points of task quality a scheme may lose to the uncompressed photo and still 'meet' it"""
BOOTSTRAP = 1000


# ----------------------------------------------------------------------------- per-image scores


class Scorer:
    """A task's score as a function of per-image statistics, so that resampled images (the
    bootstrap) cost a matrix product: top-1 and VQA accuracy are means of per-image scores;
    corpus BLEU-4 is a function of per-image n-gram counts summed over the corpus (pycocoevalcap's
    own cooking, 'closest' reference length, so the full-set score equals `metrics.bleu4`)."""

    def __init__(self, task: Task, examples: Sequence[Example]) -> None:
        self.task = task
        self.examples = list(examples)
        if task == "caption":
            from pycocoevalcap.bleu.bleu_scorer import cook_refs

            self._refs = [cook_refs([caption_tokens(t) for t in e.targets]) for e in examples]

    def stats(self, preds: Sequence[str]) -> np.ndarray:
        """[n, d] per-image statistics of these predictions."""
        if self.task == "classify":
            return np.array([[100.0 * (p == e.targets[0])] for p, e in zip(preds, self.examples, strict=True)])
        if self.task == "vqa":
            return np.array(
                [[100.0 * vqa_score(p, e.targets)] for p, e in zip(preds, self.examples, strict=True)]
            )
        from pycocoevalcap.bleu.bleu_scorer import cook_test

        rows = []
        for p, refs in zip(preds, self._refs, strict=True):
            c = cook_test(caption_tokens(p), refs, eff="closest")
            rows.append([*c["correct"], *c["guess"], c["testlen"], c["reflen"]])
        return np.array(rows, dtype=np.float64)

    def score(self, totals: np.ndarray) -> np.ndarray:
        """Scores from weighted sums of the stats ([..., d] -> [...]); weights = image counts."""
        if self.task != "caption":
            return totals[..., 0]
        correct, guess = totals[..., 0:4], totals[..., 4:8]
        testlen, reflen = totals[..., 8], totals[..., 9]
        prec = np.prod((correct + 1e-15) / (guess + 1e-9), axis=-1) ** 0.25
        ratio = (testlen + 1e-15) / (reflen + 1e-9)
        penalty = np.where(ratio < 1, np.exp(1 - 1 / np.maximum(ratio, 1e-12)), 1.0)
        return 100.0 * prec * penalty


@dataclass
class Resamples:
    """One set of bootstrap weights per task, shared by every scheme (paired intervals)."""

    weights: np.ndarray  # [B, n] image counts of each resample

    @classmethod
    def draw(cls, n: int, b: int = BOOTSTRAP, seed: int = 0) -> Resamples:
        rng = np.random.default_rng(seed)
        return cls(rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64))

    def totals(self, stats: np.ndarray) -> np.ndarray:
        """[B, d] totals (the task's caption stats are sums; accuracies are divided by n)."""
        return self.weights @ stats


def _score_of(scorer: Scorer, stats: np.ndarray) -> float:
    total = stats.sum(axis=0)
    if scorer.task != "caption":
        total = total / len(stats)
    return float(scorer.score(total))


def _resampled(scorer: Scorer, res: Resamples, stats: np.ndarray) -> np.ndarray:
    totals = res.totals(stats)
    if scorer.task != "caption":
        totals = totals / len(stats)
    return scorer.score(totals)


# ----------------------------------------------------------------------------- rows


@dataclass
class Candidate:
    """One scheme on one task: answers and per-image bytes (wire and payload)."""

    scheme: str
    preds: list[str]
    wire: np.ndarray
    payload: np.ndarray
    fmt: str = ""
    side: int | None = None
    quality: int | None = None
    split: int | None = None
    lam: float | None = None
    note: str = ""


@dataclass
class EqualRow:
    task: str
    scheme: str
    n: int
    wire_bytes: float
    payload_bytes: float
    score: float
    delta: float  # score - reference (points)
    delta_lo: float
    delta_hi: float
    meets: bool
    fmt: str = ""
    side: int | None = None
    quality: int | None = None
    split: int | None = None
    lam: float | None = None
    note: str = ""


@dataclass
class Headline:
    task: str
    n: int
    reference: float
    tolerance: float
    coinfer: str
    coinfer_wire: float
    coinfer_delta: tuple[float, float, float]
    baseline: str
    baseline_wire: float
    baseline_delta: tuple[float, float, float]
    ratio: float
    ratio_lo: float
    ratio_hi: float
    png_full_wire: float  # the old headline's baseline (the 224-px PNG), for context only
    side_info_bytes: int  # the chosen codec's checkpoint file, at both ends


@dataclass
class EqualQualityReport:
    rows: list[EqualRow] = field(default_factory=list)
    headlines: list[Headline] = field(default_factory=list)
    curve: list[EqualRow] = field(default_factory=list)  # every evaluated lossy setting


class _Task:
    """Everything the rows of one task share: model, examples, scorer, reference, resamples."""

    def __init__(self, task: Task, n: int, tolerance: float, seed: int) -> None:
        from edgeai.tools.split_inference.runtime import load_task_model

        self.task, self.tolerance = task, tolerance
        self.model: SplitModel = load_task_model(task)
        self.examples = make_examples(task, n, seed=0)
        self.questions = [ex.question for ex in self.examples]
        self.scorer = Scorer(task, self.examples)
        self.res = Resamples.draw(n, seed=seed)
        ref = self.predict([ex.image for ex in self.examples])
        self.ref_stats = self.scorer.stats(ref)
        self.reference = _score_of(self.scorer, self.ref_stats)
        self.ref_boot = _resampled(self.scorer, self.res, self.ref_stats)
        self.wires: dict[tuple, np.ndarray] = {}  # per-image wire bytes of every row made

    def predict(self, images: Sequence[np.ndarray], batch: int = 64) -> list[str]:
        out: list[str] = []
        with torch.no_grad():
            for i in range(0, len(images), batch):
                qs = self.questions[i : i + batch]
                out.extend(self.model.predict(np.stack(images[i : i + batch]), qs))
        return out

    def header(self, scheme: str, q: str | None, split: int = 0, shape: Any = None) -> dict:
        return infer_header(
            scheme, self.task, self.model.model_id, q if self.task == "vqa" else None, split,
            shape=shape,
        )

    def row(self, c: Candidate) -> EqualRow:
        self.wires[_key(c)] = c.wire
        stats = self.scorer.stats(c.preds)
        score = _score_of(self.scorer, stats)
        boot = _resampled(self.scorer, self.res, stats) - self.ref_boot
        lo, hi = np.percentile(boot, [2.5, 97.5])
        return EqualRow(
            task=self.task,
            scheme=c.scheme,
            n=len(c.preds),
            wire_bytes=float(c.wire.mean()),
            payload_bytes=float(c.payload.mean()),
            score=score,
            delta=score - self.reference,
            delta_lo=float(lo),
            delta_hi=float(hi),
            meets=score >= self.reference - self.tolerance,
            fmt=c.fmt,
            side=c.side,
            quality=c.quality,
            split=c.split,
            lam=c.lam,
            note=c.note,
        )

    # -- candidates ---------------------------------------------------------------------------

    def image(self, scheme: str, fmt: str, side: int, quality: int | None) -> Candidate:
        payloads, decoded = [], []
        for ex in self.examples:
            img = resize_square(ex.image, side)
            data = encode_png(img) if fmt == "png" else encode_lossy(img, fmt, quality or 1)
            payloads.append(data)
            decoded.append(decode_image(data))
        wire = [
            wire_bytes(self.header(scheme, q), d)
            for d, q in zip(payloads, self.questions, strict=True)
        ]
        return Candidate(
            scheme=f"{scheme}-{fmt}-{side}px",
            preds=self.predict(decoded),
            wire=np.array(wire, float),
            payload=np.array([len(d) for d in payloads], float),
            fmt=fmt,
            side=side,
            quality=quality,
        )

    def coinfer(self, codec: Any, name: str) -> Candidate:
        k = int(codec.meta.split)
        preds, wire, payload = [], [], []
        with torch.no_grad():
            for ex in self.examples:
                data = codec.compress(self.model.features(ex.image[None], k))
                preds.extend(self.model.predict_from(codec.decompress(data), k, [ex.question]))
                wire.append(wire_bytes(self.header("coinfer", ex.question, k), data))
                payload.append(len(data))
        return Candidate(
            scheme="coinfer",
            preds=preds,
            wire=np.array(wire, float),
            payload=np.array(payload, float),
            split=k,
            lam=float(codec.meta.lam),
            note=name,
        )

    def raw(self, k: int) -> Candidate:
        preds, wire, payload = [], [], []
        with torch.no_grad():
            for ex in self.examples:
                h = self.model.features(ex.image[None], k).half()
                data = raw_activation_bytes(h)
                preds.extend(self.model.predict_from(h.float(), k, [ex.question]))
                head = self.header("split-raw", ex.question, k, shape=list(h.shape))
                wire.append(wire_bytes(head, data))
                payload.append(len(data))
        return Candidate("split-raw-fp16", preds, np.array(wire, float), np.array(payload, float),
                         split=k)


def _key(row: Candidate | EqualRow) -> tuple:
    """What tells a task's rows apart (so a row finds its candidate's per-image bytes)."""
    return (row.scheme, row.fmt, row.side, row.quality, row.split, row.note)


def _cheapest_quality(t: _Task, fmt: str, side: int, curve: list[EqualRow]) -> EqualRow:
    """The lowest quality (1..100) whose score meets the reference, by bisection; every setting
    evaluated goes to `curve`. When even quality 100 falls short, that row (meets = False)."""
    seen: dict[int, EqualRow] = {}

    def at(q: int) -> EqualRow:
        if q not in seen:
            seen[q] = t.row(t.image("edge-lossy", fmt, side, q))
            curve.append(seen[q])
        return seen[q]

    if not at(100).meets:
        return seen[100]
    lo, hi = 1, 100  # invariant: hi meets
    if at(1).meets:
        return seen[1]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if at(mid).meets:
            hi = mid
        else:
            lo = mid
    return seen[hi]


def _boot_ratio(res: Resamples, num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    ratios = (res.weights @ num) / (res.weights @ den)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def equal_quality(
    n_images: int = 1000,
    tasks: Sequence[Task] = TASKS,
    tolerance: float = TOLERANCE,
    formats: Sequence[str] = LOSSY_FORMATS,
    seed: int = 0,
    progress: Progress | None = None,
) -> EqualQualityReport:
    """Bytes on the wire of every scheme at equal quality, and the headline ratio per task."""
    from edgeai.tools.split_inference.codec import CHECKPOINT_DIR, task_codec_paths
    from edgeai.tools.split_inference.runtime import load_task_codec

    say = progress or (lambda _msg: None)
    report = EqualQualityReport()
    for task in tasks:
        t = _Task(task, n_images, tolerance, seed)
        side_in = input_side(t.model)
        full = int(t.examples[0].image.shape[0])
        say(f"{task}: {n_images} held-out images, reference {t.reference:.2f}")
        rows: list[EqualRow] = []
        for side in dict.fromkeys((side_in, full)):
            rows.append(t.row(t.image("edge-lossless", "png", side, None)))
            for fmt in formats:
                rows.append(_cheapest_quality(t, fmt, side, report.curve))
                say(f"{task}: {rows[-1].scheme} q={rows[-1].quality} {rows[-1].wire_bytes:.0f} B")
        codecs = {p.name: load_task_codec(path=p) for p in task_codec_paths(task)}  # default 1st
        for p in sorted(CHECKPOINT_DIR.glob(f"codec-{task}-*.pt")):
            codecs.setdefault(p.name, load_task_codec(path=p))
        co_rows = []
        for name, codec in codecs.items():
            co_rows.append(t.row(t.coinfer(codec, name)))
            say(f"{task}: coinfer {name} {co_rows[-1].wire_bytes:.0f} B, {co_rows[-1].score:.2f}")
        default_k = int(next(iter(codecs.values())).meta.split)
        rows += co_rows
        rows.append(t.row(t.raw(default_k)))
        report.rows += rows
        report.headlines.append(_headline(t, rows, codecs, full))
    return report


def _headline(t: _Task, rows: list[EqualRow], codecs: dict[str, Any], full: int) -> Headline:
    met_base = [r for r in rows if r.meets and r.scheme.startswith("edge-")]
    met_co = [r for r in rows if r.meets and r.scheme == "coinfer"]
    co = min(met_co or [r for r in rows if r.scheme == "coinfer"], key=lambda r: r.wire_bytes)
    edge = [r for r in rows if r.scheme.startswith("edge-")]
    base = min(met_base, key=lambda r: r.wire_bytes) if met_base else max(edge, key=lambda r: r.score)
    png_full = next(r for r in rows if r.scheme == f"edge-lossless-png-{full}px")
    lo, hi = _boot_ratio(t.res, t.wires[_key(base)], t.wires[_key(co)])
    from edgeai.tools.split_inference.codec import CHECKPOINT_DIR

    side_info = (CHECKPOINT_DIR / co.note).stat().st_size
    return Headline(
        task=t.task,
        n=co.n,
        reference=t.reference,
        tolerance=t.tolerance,
        coinfer=f"coinfer k={co.split} lambda={co.lam:g}" + ("" if co.meets else " (does not meet)"),
        coinfer_wire=co.wire_bytes,
        coinfer_delta=(co.delta, co.delta_lo, co.delta_hi),
        baseline=base.scheme + (f" q={base.quality}" if base.quality else "")
        + ("" if base.meets else " (does not meet)"),
        baseline_wire=base.wire_bytes,
        baseline_delta=(base.delta, base.delta_lo, base.delta_hi),
        ratio=base.wire_bytes / co.wire_bytes if co.wire_bytes else math.inf,
        ratio_lo=lo,
        ratio_hi=hi,
        png_full_wire=png_full.wire_bytes,
        side_info_bytes=int(side_info),
    )


def lossy_settings(report: EqualQualityReport) -> dict[str, Any]:
    """Per task, the cheapest lossy image setting that meets the quality (Fig. 3's edge-lossy)."""
    from edgeai.tools.split_inference.imagecodecs import LossySetting

    out: dict[str, Any] = {}
    for task in dict.fromkeys(r.task for r in report.rows):
        lossy = [r for r in report.rows if r.task == task and r.scheme.startswith("edge-lossy")]
        met = [r for r in lossy if r.meets] or lossy
        if met:
            best = min(met, key=lambda r: r.wire_bytes)
            out[task] = LossySetting(best.fmt, int(best.side or 224), int(best.quality or 1))
    return out


def plot(report: EqualQualityReport, path: Path) -> None:
    """Quality against wire bytes per task: every lossy setting evaluated (per format and side),
    lossless PNG, the codecs; the band the reference allows shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r.task for r in report.rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    labels = {"classify": "top-1 accuracy (%)", "caption": "BLEU-4", "vqa": "VQA accuracy (%)"}
    for ax, task in zip(axes[0], tasks, strict=True):
        head = next(h for h in report.headlines if h.task == task)
        ax.axhspan(head.reference - head.tolerance, head.reference, color="0.9")
        ax.axhline(head.reference, color="k", lw=0.8, label="uncompressed photo")
        groups: dict[str, list[EqualRow]] = {}
        for r in report.curve:
            if r.task == task:
                groups.setdefault(r.scheme, []).append(r)
        for i, (scheme, rows) in enumerate(groups.items()):
            pts = sorted((r.wire_bytes, r.score) for r in rows)
            ax.plot(*zip(*pts, strict=True), "s--" if "224" in scheme else "^-", ms=3,
                    color=f"C{i + 1}", label=scheme.replace("edge-lossy-", ""))
        for r in report.rows:
            if r.task == task and r.scheme.startswith("edge-lossless"):
                ax.plot([r.wire_bytes], [r.score], "k*", ms=10)
        co = sorted((r.wire_bytes, r.score) for r in report.rows
                    if r.task == task and r.scheme == "coinfer")
        ax.plot(*zip(*co, strict=True), "ro", ms=7, label="co-inference (codecs)")
        ax.set_xscale("log")
        ax.set_xlabel("bytes on the wire per request")
        ax.set_ylabel(labels.get(task, "score"))
        ax.set_title(f"{task}: headline {head.ratio:.2f}x")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
