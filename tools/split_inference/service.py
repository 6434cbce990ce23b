"""The photo pool's models as a runtime of tools/runtimes.py: run through the socket runtime.

`RUNTIME` (a `PhotoRuntime`, registered in `tools.runtimes.builtin_runtimes`) answers one sub-task:
the photo is the household camera's photo of the day (a seeded photo-world image, like the
healthcare home's simulated sensors) unless `upstream["image"]` gives one (an array or a file
path); the VQA question is `upstream["question"]`, else the person's request. Where it runs
follows the placement: "local" -> client-only on the device; "split" / "offloaded" / "hosted"
-> over TCP to an edge server of this process (started once, on a free port of 127.0.0.1), with
the link of the device's manual emulated, the feature codec at split k ("split"), or the PNG
image (k = 0). The result reports the bytes that crossed the link and the measured latency.

`split_decision(model_id, hosts, objective)` is the partition choice the offloading agent calls:
the per-stage profile measured here (once per process), the manuals' cycles and compute_hz, the
shipped codecs' real bytes at their split points (a task may ship codecs at several; the
runtime holds them all, so whichever split the partition picks is sent with its codec).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import zlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from edgeai.errors import UserInputError
from edgeai.knowledge.manuals import DeviceManual, Manual
from edgeai.tools.runtimes import ModelResult, RunCall
from edgeai.tools.split_inference.base import TASKS, SplitModel, Task
from edgeai.tools.split_inference.codec import FeatureCodec
from edgeai.tools.split_inference.imagecodecs import LossySetting, read_photo
from edgeai.tools.split_inference.partition import (
    PHOTO_MANUALS,
    PhotoHosts,
    SplitDecision,
    choose_split,
    codec_payload_bytes,
    photo_hosts,
    photo_hosts_from_manuals,
)
from edgeai.tools.split_inference.profile import (
    CostModel,
    ModelProfile,
    make_compute_seconds,
    profile_model,
)
from edgeai.tools.split_inference.question import visual_question
from edgeai.tools.split_inference.runtime import (
    DeviceClient,
    EdgeServer,
    InferenceResult,
    load_task_codecs,
    load_task_model,
)
from edgeai.tools.split_inference.world import example

log = logging.getLogger(__name__)

MODEL_TASKS: dict[str, Task] = {
    "vit-image-classifier": "classify",
    "blip-image-captioner": "caption",
    "blip-vqa": "vqa",
}
OUTPUT_NAME = {"classify": "class_label", "caption": "text", "vqa": "text"}
DEFAULT_ONE_WAY_S = 0.010


@lru_cache(maxsize=1)
def _models() -> dict[Task, SplitModel]:
    return {task: load_task_model(task) for task in TASKS}


@lru_cache(maxsize=1)
def _codecs() -> dict[Task, list[FeatureCodec]]:
    """Every shipped codec per task (one per split point, the default first)."""
    return {task: load_task_codecs(task) for task in TASKS}


def _task(model_id: str) -> Task:
    if model_id not in MODEL_TASKS:
        raise UserInputError(
            f"'{model_id}' is not a split-inference model (known: {', '.join(sorted(MODEL_TASKS))})"
        )
    return MODEL_TASKS[model_id]


@lru_cache(maxsize=8)
def profile_of(model_id: str) -> ModelProfile:
    """Per-stage profile of one model, measured here once per process on 2 sample photos."""
    task = _task(model_id)
    samples = [example(task, seed) for seed in (0, 1)]
    qs = [ex.question for ex in samples] if task == "vqa" else None
    return profile_model(
        _models()[task], np.stack([ex.image for ex in samples]), repeats=2, questions=qs
    )


@lru_cache(maxsize=4)
def edge_image(task: str) -> LossySetting | None:
    """How edge-only sends the task's photo: the cheapest lossy setting of equal quality that
    `edgeai bench split` measured, recorded in the checkpoints' manifest ("edge-image-<task>");
    None (the PNG as taken) when the manifest has none."""
    import json

    from edgeai.tools.split_inference.codec import CHECKPOINT_DIR

    try:
        entry = json.loads((CHECKPOINT_DIR / "manifest.json").read_text()).get(f"edge-image-{task}")
    except (OSError, ValueError):
        return None
    if not entry:
        return None
    return LossySetting(str(entry["fmt"]), int(entry["side"]), int(entry["quality"]))


def edge_image_label(model_id: str) -> str:
    setting = edge_image(_task(model_id))
    return f"photo as {setting}" if setting else "PNG photo"


@lru_cache(maxsize=8)
def _codec_bytes(model_id: str) -> dict[int, int]:
    """Payload bytes per split point: the codecs' at theirs, the edge-only photo's at k = 0."""
    task = _task(model_id)
    images = np.stack([example(task, seed).image for seed in range(4)])
    out: dict[int, int] = {}
    setting = edge_image(task)
    if setting is not None:
        out[0] = round(float(np.mean([len(setting.encode(im)) for im in images])))
    for codec in _codecs()[task]:
        out.update(codec_payload_bytes(_models()[task], codec, images))
    return out


def hosts_for(manual_dir: Path | None = None) -> PhotoHosts:
    return photo_hosts_from_manuals(manual_dir or PHOTO_MANUALS)


def _cost_models(hosts: PhotoHosts) -> dict[str, CostModel]:
    return {mid: hosts.cost_model(profile_of(mid)) for mid in MODEL_TASKS if mid in hosts.models}


def split_decision(
    model_id: str,
    hosts: PhotoHosts | None = None,
    objective: str = "latency",
    link_bps: float | None = None,
    rtt_s: float = 2 * DEFAULT_ONE_WAY_S,
) -> SplitDecision:
    """Where to cut `model_id` between the photo's device and the edge (k, or client-only)."""
    hosts = hosts or hosts_for()
    profile = profile_of(model_id)
    return choose_split(
        profile,
        hosts.cost_model(profile),
        link_bps=link_bps or float(hosts.device.uplink_bps or 0.0),
        rtt_s=rtt_s,
        payload_bytes=_codec_bytes(model_id),
        objective=objective,  # type: ignore[arg-type]
    )


class _Runtime:
    """One edge server thread and one device client per process, paced to the manuals."""

    def __init__(self, hosts: PhotoHosts) -> None:
        compute = make_compute_seconds(_cost_models(hosts))
        models, codecs = _models(), _codecs()
        self.hosts = hosts
        self.edge = EdgeServer(models=models, codecs=codecs, compute=compute).start()
        self.client = DeviceClient(models, codecs, compute)


_RUNTIME: _Runtime | None = None
_LOCK = threading.Lock()


def _runtime() -> _Runtime:
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is None:
            _RUNTIME = _Runtime(hosts_for())
        return _RUNTIME


def camera_seed(day: dt.date, seed: int) -> int:
    """The photo-world seed of the household camera's photo on `day` (held-out range 0..99,999)."""
    return zlib.crc32(f"{day.isoformat()}:{seed}".encode()) % 100_000


def _image(upstream: Mapping[str, Any], task: Task, day: dt.date, seed: int,
           photo: str | None = None):
    if photo is not None:
        return read_photo(photo), None, "your photo"
    given = upstream.get("image")
    if given is None:
        ex = example(task, camera_seed(day, seed))
        return ex.image, ex, "the camera's photo of the day (generated)"
    if isinstance(given, (str, Path)):
        return read_photo(str(given)), None, str(given)
    return np.asarray(given, dtype=np.uint8), None, "the given image"


class PhotoRuntime:
    """The photo pool's models as a `tools.runtimes.ModelRuntime` (the socket runtime starts, and
    the weights load, on the first run)."""

    name = "photo split inference"

    def model_ids(self) -> list[str]:
        return sorted(MODEL_TASKS)

    def run(self, call: RunCall) -> ModelResult:
        return _run(call.model_id, call.upstream, call.day, call.seed, call.placement or {},
                    call.request, call.image)


RUNTIME = PhotoRuntime()


def _run(model_id: str, upstream: Mapping[str, Any], day: dt.date, seed: int,
         placement: Mapping[str, Any], request: str | None,
         photo: str | None = None) -> ModelResult:
    """Run one photo model where the placement says, through the socket runtime: on the
    person's photo when there is one, else the household camera's generated photo of the day;
    the question answerer gets the question inside the request (`question.visual_question`)."""
    task = _task(model_id)
    image, ex, source = _image(upstream, task, day, seed, photo)
    question = None
    if task == "vqa":
        question = upstream.get("question") or (visual_question(request) if request else None)
        if not question:
            raise UserInputError("blip-vqa needs a question about the photo")
    mode = placement.get("mode", "split")
    k = placement.get("split")
    rt = _runtime()
    rate = float(rt.hosts.device.uplink_bps or 2.4e6) / 8.0  # bytes/s
    started = time.perf_counter()
    setting = edge_image(task)
    if mode == "local":
        scheme = "client-only"
    elif (k is None or k == 0) and setting is not None:
        scheme = "edge-lossy"
    elif k is None or k == 0:
        scheme = "edge-lossless"
    elif k in {int(c.meta.split) for c in _codecs()[task]}:
        scheme = "coinfer"
    else:
        scheme = "split-raw"
    res: InferenceResult = rt.client.infer(
        image,
        task,
        scheme,
        rate,
        question,
        rt.edge.address,
        one_way_delay_s=DEFAULT_ONE_WAY_S,
        split=None if scheme in ("client-only", "edge-lossless", "edge-lossy") else int(k),
        **(
            {"lossy_format": setting.fmt, "quality": setting.quality, "lossy_side": setting.side}
            if scheme == "edge-lossy" and setting is not None
            else {}
        ),
    )
    where = {
        "client-only": f"entirely on {rt.hosts.device.device}",
        "edge-lossless": f"on {rt.hosts.edge.device} (PNG photo sent)",
        "edge-lossy": f"on {rt.hosts.edge.device} (photo sent as {setting})",
        "coinfer": f"split at stage {res.split} between {rt.hosts.device.device} and "
        f"{rt.hosts.edge.device} (learned feature codec)",
        "split-raw": f"split at stage {res.split} (raw float16 activation)",
    }[scheme]
    sent = f"{res.bytes_up:,} bytes sent" if res.bytes_up else "nothing sent"
    summary = (
        f"{_says(task, res.answer, question)} (on {source}) — ran {where}; {sent}, "
        f"{res.seconds:.3f} s measured, {res.emulated_s:.3f} s emulated"
    )
    details: dict[str, Any] = {
        "scheme": scheme,
        "split": res.split,
        "bytes_up": res.bytes_up,
        "bytes_down": res.bytes_down,
        "payload_bytes": res.payload_bytes,
        "latency_s": round(res.seconds, 4),
        "breakdown": {k: round(v, 4) for k, v in vars(res.breakdown).items()},
        "emulated_latency_s": round(res.emulated_s, 4),
        "emulated_breakdown": {k: round(v, 4) for k, v in vars(res.emulated).items()},
        "link_bytes_per_s": rate,
        "image": source,
    }
    if question:
        details["question"] = question
    if ex is not None:  # only a generated photo has a ground truth, and VQA's only for its question
        if task != "vqa" or question == ex.question:
            details["ground_truth"] = ex.targets[:3]
            details["ground_truth_of"] = "the generated photo (the photo world's own labels)"
        else:
            details["ground_truth_of"] = (
                f"none: the generated photo has answers only for its own question "
                f"({ex.question!r})"
            )
    return ModelResult(
        model=model_id,
        device=rt.hosts.device.device if scheme == "client-only" else rt.hosts.edge.device,
        outputs={OUTPUT_NAME[task]: res.answer},
        summary=summary,
        details=details,
        seconds=round(time.perf_counter() - started, 4),
    )


def _says(task: Task, answer: str, question: str | None) -> str:
    if task == "classify":
        return f"the photo shows a {answer}"
    if task == "caption":
        return f'caption: "{answer}"'
    return f'"{question}" -> {answer}'


def hosts_from_manuals(
    manuals: list[DeviceManual], model_id: str | None = None, edge: str | None = None
) -> PhotoHosts:
    """The hosts a photo model splits across, from device manuals held in the knowledge store.

    With `model_id`: its own host is one end (the device if client-tier, the edge if edge-tier);
    the other end is `edge` (e.g. the solver's target) or the fastest edge, and for an
    edge-hosted model the client with an uplink whose models take the same input (the camera
    that holds the photo). Without it: the first client with an uplink and the first edge.
    """
    pick = list(manuals)
    device = None
    if model_id is not None:
        host = next((m for m in manuals if any(e.name == model_id for e in m.models)), None)
        if host is None:
            raise UserInputError(f"no manual in the store hosts '{model_id}'")
        inputs = set(next(e for e in host.models if e.name == model_id).inputs)
        clients = [m for m in manuals if m.tier == "client" and m.uplink_bps]
        edges = [m for m in manuals if m.tier == "edge" and m.compute_hz]
        if host.tier == "client":
            dev = host
        else:
            ranked = sorted(
                clients,
                key=lambda m: (
                    not any(inputs & set(e.inputs) for e in m.models),
                    not m.models,
                ),
            )
            dev = ranked[0] if ranked else host
        if host.tier == "edge":
            srv = host
        else:
            named = [m for m in edges if m.device == edge]
            srv = named[0] if named else max(edges, key=lambda m: m.compute_hz or 0.0, default=None)
        clouds = [m for m in manuals if m.tier == "cloud" and m.compute_hz]
        pick = [m for m in (dev, srv, *clouds[:1]) if m is not None]
        device = dev.device
    return photo_hosts(
        [Manual(entry=m, body="", source=f"store:{m.device}") for m in pick], device=device
    )
