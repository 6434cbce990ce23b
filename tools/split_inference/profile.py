"""Layer-by-layer profile of a SplitModel and the compute-time model that scales it to the manuals' hosts.

`profile_model` runs a SplitModel stage by stage on one CPU thread and records, per stage, the median
seconds per image, the output activation's shape and size (float32 and float16) and its parameter
count; then the head (decoding included) and the PNG size of the input photo (what edge-only sends).

The models we run are small stand-ins for the manuals' ViT-B/16 and BLIP, so a host's compute time
is not what we measure here. `CostModel` offers two scalings (pick with `scaling=`):

- "manual" (default): the manual says how many cycles one inference of the model takes (`cycles`,
  e.g. 3.5e10 for ViT-B/16) and how fast a host is (`compute_hz`). A part of the model costs
  `cycles * share / compute_hz`, where `share` is that part's fraction of the time measured here
  (`ModelProfile.cycle_fractions`). The measured profile says HOW the work splits across stages;
  the manual says how much work there is.
- "measured": the time measured here, rescaled by clock rates: `seconds_here * here_hz / compute_hz`
  (here_hz = this CPU's clock). This is what our small model would cost on that host.

Preprocessing (resize + normalise) always runs next to stage 0 (on the device when k >= 1, on the
edge when the photo itself is sent, k = 0), so its cost travels with stage 0. It is the same work
whatever network follows (a resize), so it is not part of the model's cycle shares: it costs
`preprocess_seconds * here_hz` cycles on any host, under both scalings.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from edgeai.errors import UserInputError
from edgeai.tools.split_inference.base import SplitModel
from edgeai.tools.split_inference.imagecodecs import encode_png
from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

DEFAULT_QUESTION = "what is in the picture?"
Scaling = Literal["manual", "measured"]
ComputeSeconds = Callable[[str, int, int, bool, str], float]


class StageProfile(BaseModel):
    """One encoder stage: its time here and what it hands to the next stage (per image)."""

    index: int
    seconds: float = Field(description="median seconds per image on one thread, here")
    output_shape: list[int] = Field(description="activation shape per image, e.g. [tokens, dim]")
    bytes_fp32: int
    bytes_fp16: int
    params: int


class HeadProfile(BaseModel):
    """The task head after the last stage (decoding included for caption/VQA)."""

    seconds: float
    params: int


class ModelProfile(BaseModel):
    """Per-stage measurements of one SplitModel (JSON: `model_dump_json` / `model_validate_json`)."""

    model_id: str
    task: str
    n_stages: int
    images: int = Field(description="photos measured, one per call (seconds are per photo)")
    repeats: int
    threads: int
    here_hz: float | None = Field(None, description="clock of the CPU that measured (Hz)")
    input_png_bytes: int = Field(description="mean lossless PNG size of one input photo")
    input_shape: list[int] = Field(description="preprocessed input of stage 0, per image")
    preprocess_seconds: float
    stages: list[StageProfile]
    head: HeadProfile
    total_params: int

    def part_seconds(self) -> list[float]:
        """Seconds per image of [stage 0, stage 1, ..., head] here (preprocessing apart)."""
        return [s.seconds for s in self.stages] + [self.head.seconds]

    def total_seconds(self) -> float:
        """Whole model per image here, preprocessing included."""
        return sum(self.part_seconds()) + self.preprocess_seconds

    def cycle_fractions(self) -> list[float]:
        """Each stage's share and, last, the head's share of the model's measured time (sums to 1)."""
        parts = self.part_seconds()
        total = sum(parts)
        if total <= 0:
            return [1.0 / len(parts)] * len(parts)
        return [p / total for p in parts]

    def activation_bytes(self, k: int, dtype: Literal["float16", "float32"] = "float16") -> int:
        """Bytes sent at split k without a codec: the PNG at k = 0, the raw activation after."""
        self._check_split(k)
        if k == 0:
            return self.input_png_bytes
        stage = self.stages[k - 1]
        return stage.bytes_fp16 if dtype == "float16" else stage.bytes_fp32

    def default_payload_bytes(self) -> dict[int, int]:
        """{k: bytes} for every split point: PNG at k = 0, float16 activations after."""
        return {k: self.activation_bytes(k) for k in range(self.n_stages + 1)}

    def _check_split(self, k: int) -> None:
        if not 0 <= k <= self.n_stages:
            raise UserInputError(f"split point {k} out of range 0..{self.n_stages}")

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ModelProfile:
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserInputError(f"{path}: cannot read profile: {exc.strerror or exc}") from None
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise UserInputError(f"{path}: not a model profile ({first})") from None


def cpu_hz() -> float | None:
    """This machine's CPU clock in Hz (from /proc/cpuinfo), or None when it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    mhz = [
        float(line.split(":", 1)[1])
        for line in text.splitlines()
        if line.lower().startswith("cpu mhz") and ":" in line
    ]
    return max(mhz) * 1e6 if mhz else None


def _stage_params(model: SplitModel, x: torch.Tensor) -> list[int]:
    """Parameters each stage uses: the model's `stage_modules()` or, failing that, the parameters
    that receive a gradient from that stage alone."""
    modules = getattr(model, "stage_modules", None)
    if callable(modules):
        return [sum(p.numel() for p in m.parameters()) for m in modules()]
    params = list(model.parameters())
    saved = [p.requires_grad for p in params]
    counts = []
    try:
        for p in params:
            p.requires_grad_(True)
        h = x
        for i in range(model.n_stages):
            model.zero_grad(set_to_none=True)
            with torch.enable_grad():
                out = model.run_stages(h.detach(), i, i + 1)
                out.float().sum().backward()
            counts.append(sum(p.numel() for p in params if p.grad is not None))
            h = out.detach()
    finally:
        model.zero_grad(set_to_none=True)
        for p, flag in zip(params, saved, strict=True):
            p.requires_grad_(flag)
    return counts


def profile_model(
    model: SplitModel,
    images: np.ndarray,
    repeats: int = 5,
    warmup: int = 1,
    questions: list[str | None] | None = None,
    here_hz: float | None = None,
) -> ModelProfile:
    """Measure `model` stage by stage on one thread, one photo per call (as a request runs).

    images: [B, H, W, 3] uint8, each timed alone; seconds are medians over images x `repeats`
    (after `warmup` untimed passes). questions: VQA questions, one per image (default: a generic
    one). here_hz: this CPU's clock for the "measured" scaling (default: /proc/cpuinfo).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise UserInputError(
            f"profile needs uint8 images [B, H, W, 3], got {images.dtype} {list(images.shape)}"
        )
    if repeats < 1 or warmup < 0:
        raise UserInputError(f"repeats must be >= 1 and warmup >= 0 (got {repeats}, {warmup})")
    count = len(images)
    if model.task == "vqa" and questions is None:
        questions = [DEFAULT_QUESTION] * count
    if questions is not None and len(questions) != count:
        raise UserInputError(f"{len(questions)} questions for {count} images")
    n = model.n_stages
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    was_training = model.training
    model.eval()
    pre_times: list[float] = []
    stage_times: list[list[float]] = [[] for _ in range(n)]
    head_times: list[float] = []
    outputs: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for r in range(warmup + repeats):
                for j in range(count):
                    one = images[j : j + 1]
                    question = None if questions is None else questions[j : j + 1]
                    t0 = time.perf_counter()
                    h = model.preprocess(one)
                    pre = time.perf_counter() - t0
                    x0, outs, times = h, [], []
                    for i in range(n):
                        t0 = time.perf_counter()
                        h = model.run_stages(h, i, i + 1)
                        times.append(time.perf_counter() - t0)
                        outs.append(h)
                    t0 = time.perf_counter()
                    model.predict_from(h, n, question)
                    head = time.perf_counter() - t0
                    outputs = outs
                    if r >= warmup:
                        pre_times.append(pre)
                        head_times.append(head)
                        for i, t in enumerate(times):
                            stage_times[i].append(t)
        params = _stage_params(model, x0)
    finally:
        torch.set_num_threads(threads)
        model.train(was_training)
    stages = []
    for i, out in enumerate(outputs):
        per_item = int(out[0].numel())
        stages.append(
            StageProfile(
                index=i,
                seconds=statistics.median(stage_times[i]),
                output_shape=list(out.shape[1:]),
                bytes_fp32=per_item * 4,
                bytes_fp16=per_item * 2,
                params=params[i],
            )
        )
    total_params = sum(p.numel() for p in model.parameters())
    png = [len(encode_png(np.ascontiguousarray(im))) for im in images]
    profile = ModelProfile(
        model_id=model.model_id,
        task=model.task,
        n_stages=n,
        images=count,
        repeats=repeats,
        threads=1,
        here_hz=here_hz if here_hz is not None else cpu_hz(),
        input_png_bytes=round(sum(png) / count),
        input_shape=list(x0.shape[1:]),
        preprocess_seconds=statistics.median(pre_times),
        stages=stages,
        head=HeadProfile(
            seconds=statistics.median(head_times),
            params=max(0, total_params - sum(params)),
        ),
        total_params=total_params,
    )
    log.debug("profiled %s: %.4f s per image here", model.model_id, profile.total_seconds())
    return profile


class CostModel(BaseModel):
    """Compute seconds of any part of one model on the hosts of a scenario (see module docstring).

    hosts: {role: compute_hz}, e.g. {"device": 1.43e9, "edge": 5e10}. total_cycles: the manual's
    `cycles` of the model this profile stands in for (used by the "manual" scaling).
    """

    profile: ModelProfile
    total_cycles: float = Field(gt=0)
    hosts: dict[str, float]
    scaling: Scaling = "manual"

    def model_post_init(self, context: object, /) -> None:
        for role, hz in self.hosts.items():
            if not (isinstance(hz, (int, float)) and math.isfinite(hz) and hz > 0):
                raise UserInputError(f"host '{role}': compute_hz must be > 0, got {hz}")
        if self.scaling == "measured" and not self.profile.here_hz:
            raise UserInputError(
                "the 'measured' scaling needs the profile's here_hz (this CPU's clock)"
            )

    def _part(self, start: int, stop: int, head: bool) -> tuple[float, float, float]:
        """(cycle share, seconds here, preprocessing seconds here) of stages [start, stop) + head."""
        n = self.profile.n_stages
        if not 0 <= start <= stop <= n:
            raise UserInputError(f"stages [{start}, {stop}) out of range 0..{n}")
        fractions = self.profile.cycle_fractions()
        seconds = self.profile.part_seconds()
        sel = list(range(start, stop)) + ([n] if head else [])
        pre = self.profile.preprocess_seconds if start == 0 < stop else 0.0
        return sum(fractions[i] for i in sel), sum(seconds[i] for i in sel), pre

    def cycles(self, start: int, stop: int, head: bool) -> float:
        """Cycles of stages [start, stop) (+ the head, + preprocessing with stage 0)."""
        fraction, here, pre = self._part(start, stop, head)
        here_hz = float(self.profile.here_hz or 0.0)
        model = fraction * self.total_cycles if self.scaling == "manual" else here * here_hz
        return model + pre * here_hz

    def seconds(self, start: int, stop: int, head: bool, role: str) -> float:
        """Seconds that stages [start, stop) (+ the head when `head`) take on host `role`."""
        if role not in self.hosts:
            raise UserInputError(f"unknown host role '{role}' (known: {', '.join(self.hosts)})")
        return self.cycles(start, stop, head) / self.hosts[role]


def make_compute_seconds(cost_models: dict[str, CostModel]) -> ComputeSeconds:
    """`compute_seconds(model_id, start, stop, head, role) -> float` for the runtime's emulation."""
    models = dict(cost_models)

    def compute_seconds(model_id: str, start: int, stop: int, head: bool, role: str) -> float:
        if model_id not in models:
            raise UserInputError(
                f"no cost model for '{model_id}' (known: {', '.join(sorted(models)) or 'none'})"
            )
        return models[model_id].seconds(start, stop, head, role)

    return compute_seconds
