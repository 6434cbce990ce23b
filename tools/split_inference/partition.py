"""The partition point: where to cut a SplitModel between device and edge, for latency or device energy.

A plain function an agent (or the CLI, or the benchmark) can call: `choose_split(profile, cost_model,
link_bps, rtt_s, ...)` tabulates every split point k = 0..n_stages (the device runs stages [0, k)
and sends the payload of split k; the edge runs stages [k, n) and the head and sends the answer
back) and "client-only" (everything on the device, nothing sent), and picks the best.

Costs follow ../shared/specs/offloading.md, per request:
    latency(k) = device(0, k) + 8 * payload[k] / link_bps + rtt_s + edge(k, n, head)
                 + 8 * answer_bytes / downlink_bps
    device_energy(k) = device_power_w * device(0, k) + tx_power_w * 8 * payload[k] / link_bps
    client-only: latency = device(0, n, head); device_energy = device_power_w * latency
where device(...) / edge(...) are `CostModel.seconds` on the "device" / "edge" roles. Rates are in
BITS per second, as the manuals' `uplink_bps` (300 KB/s = 2.4e6 bit/s).

`photo_hosts_from_manuals(manual_dir)` reads the hosts (compute_hz, uplink_bps) and the models'
`cycles` from the photo pool's manuals, so the costs are those of the scenario's own devices.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from edgeai.errors import ManualError, UserInputError
from edgeai.knowledge.manuals import Manual, collect_manual_files, parse_manual
from edgeai.tools.split_inference import PHOTO_MANUALS
from edgeai.tools.split_inference.base import SplitModel
from edgeai.tools.split_inference.profile import (
    ComputeSeconds,
    CostModel,
    ModelProfile,
    Scaling,
    make_compute_seconds,
)
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from edgeai.tools.split_inference.codec import FeatureCodec

Objective = Literal["latency", "device_energy"]
OBJECTIVES: tuple[str, ...] = ("latency", "device_energy")
CLIENT_ONLY = "client-only"
DEFAULT_ANSWER_BYTES = 64  # a label, a caption or a short answer, with framing


class SplitRow(BaseModel):
    """The cost of one candidate: a split point k, or client-only."""

    split: int | Literal["client-only"]
    device_s: float
    payload_bytes: int
    uplink_s: float
    rtt_s: float
    edge_s: float
    downlink_s: float
    latency_s: float
    device_energy_j: float


class SplitDecision(BaseModel):
    """The chosen split (an int k, or "client-only"), what it is predicted to cost, and the table."""

    model_id: str
    task: str
    objective: Objective
    choice: int | Literal["client-only"]
    latency_s: float
    device_energy_j: float
    link_bps: float
    rtt_s: float
    rows: list[SplitRow]

    @property
    def split(self) -> int | None:
        """k, or None for client-only."""
        return None if self.choice == CLIENT_ONLY else int(self.choice)

    def row(self, split: int | str) -> SplitRow:
        for r in self.rows:
            if r.split == split:
                return r
        raise UserInputError(f"no candidate '{split}' in this decision")


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise UserInputError(f"{name} must be a finite number {bound}, got {value}")
    return float(value)


def choose_split(
    profile: ModelProfile,
    cost_model: CostModel,
    link_bps: float,
    rtt_s: float = 0.0,
    payload_bytes: dict[int, int] | None = None,
    objective: Objective = "latency",
    tx_power_w: float = 1.0,
    device_power_w: float = 1.0,
    answer_bytes: int = DEFAULT_ANSWER_BYTES,
    downlink_bps: float | None = None,
    device_role: str = "device",
    edge_role: str = "edge",
    client_only: bool = True,
) -> SplitDecision:
    """Pick the split point (or client-only) minimising `objective`; ties go to lower latency.

    payload_bytes[k]: bytes sent at split k (codec bytes where a codec exists, the PNG at k = 0);
    split points it leaves out take `profile.default_payload_bytes()` (PNG, then float16
    activations). downlink_bps
    defaults to link_bps. Powers follow the offloading spec (tx_power_w, local_power_w = 1 W).
    """
    if objective not in OBJECTIVES:
        raise UserInputError(
            f"unknown objective '{objective}' (choose from {', '.join(OBJECTIVES)})"
        )
    link_bps = _positive("link rate (bit/s)", link_bps)
    rtt_s = _positive("rtt_s", rtt_s, allow_zero=True)
    tx_power_w = _positive("tx_power_w", tx_power_w, allow_zero=True)
    device_power_w = _positive("device_power_w", device_power_w, allow_zero=True)
    answer_bytes = int(_positive("answer_bytes", answer_bytes, allow_zero=True))
    downlink = link_bps if downlink_bps is None else _positive("downlink_bps", downlink_bps)
    n = profile.n_stages
    if cost_model.profile.model_id != profile.model_id or cost_model.profile.n_stages != n:
        raise UserInputError(
            f"cost model is for '{cost_model.profile.model_id}' ({cost_model.profile.n_stages} "
            f"stages), profile for '{profile.model_id}' ({n} stages)"
        )
    for role in (device_role, edge_role):
        if role not in cost_model.hosts:
            raise UserInputError(
                f"cost model has no host '{role}' (known: {', '.join(cost_model.hosts)})"
            )
    payload = profile.default_payload_bytes() if payload_bytes is None else dict(payload_bytes)
    bad = sorted(set(payload) - set(range(n + 1)))
    if bad:
        raise UserInputError(f"payload_bytes has split points {bad} outside 0..{n}")
    missing = [k for k in range(n + 1) if k not in payload]
    if missing and payload_bytes is not None:
        defaults = profile.default_payload_bytes()
        payload.update({k: defaults[k] for k in missing})
    for k, value in payload.items():
        _positive(f"payload_bytes[{k}]", value, allow_zero=True)

    rows: list[SplitRow] = []
    downlink_s = 8.0 * answer_bytes / downlink
    for k in range(n + 1):
        device_s = cost_model.seconds(0, k, False, device_role)
        edge_s = cost_model.seconds(k, n, True, edge_role)
        uplink_s = 8.0 * payload[k] / link_bps
        rows.append(
            SplitRow(
                split=k,
                device_s=device_s,
                payload_bytes=int(payload[k]),
                uplink_s=uplink_s,
                rtt_s=rtt_s,
                edge_s=edge_s,
                downlink_s=downlink_s,
                latency_s=device_s + uplink_s + rtt_s + edge_s + downlink_s,
                device_energy_j=device_power_w * device_s + tx_power_w * uplink_s,
            )
        )
    if client_only:
        local_s = cost_model.seconds(0, n, True, device_role)
        rows.append(
            SplitRow(
                split=CLIENT_ONLY,
                device_s=local_s,
                payload_bytes=0,
                uplink_s=0.0,
                rtt_s=0.0,
                edge_s=0.0,
                downlink_s=0.0,
                latency_s=local_s,
                device_energy_j=device_power_w * local_s,
            )
        )

    def key(row: SplitRow) -> tuple[float, float]:
        if objective == "latency":
            return (row.latency_s, row.device_energy_j)
        return (row.device_energy_j, row.latency_s)

    best = min(rows, key=key)
    return SplitDecision(
        model_id=profile.model_id,
        task=profile.task,
        objective=objective,
        choice=best.split,
        latency_s=best.latency_s,
        device_energy_j=best.device_energy_j,
        link_bps=link_bps,
        rtt_s=rtt_s,
        rows=rows,
    )


# ----------------------------------------------------------------------------- manuals


class HostSpec(BaseModel):
    """A host of the photo scenario as its manual describes it."""

    device: str
    tier: str
    compute_hz: float
    uplink_bps: float | None = None
    source: str


class ModelSpec(BaseModel):
    """A hosted model's offloading numbers from its manual."""

    model_id: str
    task: str
    host: str
    cycles: float
    input_bits: float | None = None


class PhotoHosts(BaseModel):
    """The photo pool's device (client that sends), edge and cloud, and the models' cycles."""

    device: HostSpec
    edge: HostSpec
    cloud: HostSpec | None = None
    models: dict[str, ModelSpec] = Field(default_factory=dict)

    def compute_hz(self) -> dict[str, float]:
        """{role: compute_hz} for CostModel.hosts."""
        hosts = {"device": self.device.compute_hz, "edge": self.edge.compute_hz}
        if self.cloud is not None:
            hosts["cloud"] = self.cloud.compute_hz
        return hosts

    def cycles(self, model_id: str) -> float:
        if model_id not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise UserInputError(f"no manual gives cycles for model '{model_id}' (known: {known})")
        return self.models[model_id].cycles

    def cost_model(self, profile: ModelProfile, scaling: Scaling = "manual") -> CostModel:
        """The CostModel of `profile`'s model on these hosts (the manual's cycles for that id)."""
        return CostModel(
            profile=profile,
            total_cycles=self.cycles(profile.model_id),
            hosts=self.compute_hz(),
            scaling=scaling,
        )


def _host(manual: Manual) -> HostSpec:
    entry = manual.entry
    if entry.compute_hz is None:
        raise ManualError(manual.source, "compute_hz", "missing (needed to time split inference)")
    return HostSpec(
        device=entry.device,
        tier=entry.tier,
        compute_hz=entry.compute_hz,
        uplink_bps=entry.uplink_bps,
        source=manual.source,
    )


def photo_hosts_from_manuals(manual_dir: str | Path, device: str | None = None) -> PhotoHosts:
    """Hosts and model cycles of a pool's manuals (a folder of *.md, or its parent with manuals/).

    device: the client that runs the first stages and sends (default: the client-tier device that
    hosts a model and has an uplink, e.g. the Jetson Nano camera; else the first client with an
    uplink). The edge is the edge-tier host, the cloud the cloud-tier host (optional).
    """
    manuals = [parse_manual(p) for p in collect_manual_files([Path(manual_dir)])]
    return photo_hosts(manuals, device, str(manual_dir))


def photo_hosts(
    manuals: list[Manual], device: str | None = None, where: str = "manuals"
) -> PhotoHosts:
    """`photo_hosts_from_manuals` for manuals already parsed (e.g. from the knowledge store)."""
    manual_dir = where
    clients = [m for m in manuals if m.entry.tier == "client"]
    if device is not None:
        chosen = [m for m in manuals if m.entry.device == device]
        if not chosen:
            names = ", ".join(m.entry.device for m in manuals)
            raise UserInputError(f"no manual for device '{device}' in {manual_dir} (have: {names})")
    else:
        with_uplink = [m for m in clients if m.entry.uplink_bps is not None]
        chosen = [m for m in with_uplink if m.entry.models] or with_uplink
        if not chosen:
            raise ManualError(str(manual_dir), "tier", "no client device with an uplink_bps")
    dev = _host(chosen[0])
    if dev.uplink_bps is None:
        raise ManualError(dev.source, "uplink_bps", "missing (the device's link to the edge)")
    edges = [m for m in manuals if m.entry.tier == "edge"]
    if not edges:
        raise ManualError(str(manual_dir), "tier", "no edge-tier manual")
    clouds = [m for m in manuals if m.entry.tier == "cloud"]
    models: dict[str, ModelSpec] = {}
    for m in manuals:
        for entry in m.entry.models:
            if entry.cycles is not None:
                models[entry.name] = ModelSpec(
                    model_id=entry.name,
                    task=entry.task,
                    host=m.entry.device,
                    cycles=entry.cycles,
                    input_bits=entry.input_bits,
                )
    return PhotoHosts(
        device=dev,
        edge=_host(edges[0]),
        cloud=_host(clouds[0]) if clouds else None,
        models=models,
    )


def compute_seconds_from_manuals(
    profiles: list[ModelProfile],
    manual_dir: str | Path = PHOTO_MANUALS,
    scaling: Scaling = "manual",
    device: str | None = None,
) -> ComputeSeconds:
    """The runtime's `compute_seconds(model_id, start, stop, head, role)` for these profiled models
    on the hosts of a pool's manuals (roles "device", "edge", "cloud")."""
    hosts = photo_hosts_from_manuals(manual_dir, device=device)
    return make_compute_seconds({p.model_id: hosts.cost_model(p, scaling) for p in profiles})


# ----------------------------------------------------------------------------- codec payloads


def codec_payload_bytes(
    model: SplitModel, codec: FeatureCodec, images: np.ndarray
) -> dict[int, int]:
    """{k: mean compressed bytes per image} at the codec's split point k, measured for real."""
    k = int(codec.meta.split)
    if not 1 <= k <= model.n_stages:
        raise UserInputError(f"codec split point {k} out of range 1..{model.n_stages}")
    if codec.meta.task != model.task or codec.meta.model_id != model.model_id:
        raise UserInputError(
            f"codec is for {codec.meta.model_id} ({codec.meta.task}), "
            f"the model is {model.model_id} ({model.task})"
        )
    images = np.asarray(images)
    sizes = []
    with torch.no_grad():
        for image in images:
            h = model.features(image[None], k)  # (1, tokens, dim)
            sizes.append(len(codec.compress(h)))
    return {k: round(sum(sizes) / len(sizes))}
