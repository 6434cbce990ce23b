"""Offloading agent: where each selected model's work runs, decided by the offloading solver.

Client-hosted sub-tasks are the UEs of a spec instance (../shared/specs/offloading.md): their
data is on the device, which may run the model itself or offload it to an edge server. Edge and
cloud servers of the store are the servers (capacity = their `compute_hz`). Models hosted only
on an edge or cloud server run there. The instance is solved through the `solve_offloading`
LangChain tool (tools/offloading/tool.py).
"""

from __future__ import annotations

import logging

import numpy as np
from edgeai.errors import EdgeAIError
from edgeai.knowledge.store import KnowledgeStore
from edgeai.schemas import Placement, Selection
from edgeai.tools.offloading import LOCAL, decision_from_dict, instance_from_dict, score
from edgeai.tools.offloading.scenario import uplink_rate_bps
from edgeai.tools.offloading.tool import solve_offloading

log = logging.getLogger(__name__)

# Defaults for manual entries that omit offloading fields (spec's lambo-50 midpoints).
DEFAULT_INPUT_BITS = 2.0e6
DEFAULT_CYCLES = 1.0e9
DEFAULT_LOCAL_HZ = 1.0e9
DEFAULT_DISTANCE_M = 10.0


def build_instance(
    selection: list[Selection], store: KnowledgeStore, objective: str, seed: int = 0
):
    """A spec instance from the client-hosted sub-tasks, or None when nothing can be offloaded."""
    ues = [s for s in selection if s.tier == "client"]
    servers = [d for d in store.manuals() if d.tier == "edge" and d.compute_hz]
    if not ues or not servers:
        return None
    rng = np.random.default_rng(seed)
    ue_rows, rates = [], []
    for s in ues:
        local_hz = s.compute_hz or DEFAULT_LOCAL_HZ
        cycles = s.cycles or DEFAULT_CYCLES
        ue_rows.append(
            {
                "id": f"subtask{s.subtask}",
                "data_bits": s.input_bits or DEFAULT_INPUT_BITS,
                "cycles": cycles,
                "local_hz": local_hz,
                "tx_power_w": 1.0,
                "local_power_w": 1.0,
                # running locally must stay feasible: the deadline leaves it twice its local time
                "deadline_s": max(1.5, 2.0 * cycles / local_hz),
                "model": s.model,
            }
        )
        # the manual's uplink when it gives one, else the spec's channel at a nominal distance
        rate = s.uplink_bps or uplink_rate_bps(DEFAULT_DISTANCE_M, 1.0, rng)
        rates.append([float(rate)] * len(servers))
    data = {
        "objective": objective,
        "servers": [{"id": d.device, "capacity_hz": d.compute_hz} for d in servers],
        "ues": ue_rows,
        "rate_bps": rates,
    }
    return instance_from_dict(data)


def place_work(
    selection: list[Selection],
    store: KnowledgeStore,
    objective: str = "min_latency",
    solver: str | None = None,
) -> tuple[list[Placement], dict | None]:
    """Placements for every sub-task, plus the decision and its score (None if nothing to decide)."""
    instance = build_instance(selection, store, objective)
    placements: dict[int, Placement] = {}
    record = None
    if instance is not None:
        name = solver or ("exact" if len(instance.ues) <= 10 else "aed")
        # the agent decides through the LangChain tool, the same one an LLM agent would call
        out = solve_offloading.invoke(
            {"instance": instance.to_dict(), "objective": objective, "solver": name}
        )
        decision = decision_from_dict(out["decision"])
        result = score(instance, decision)
        record = {
            "instance": instance.to_dict(),
            "decision": out["decision"],
            "score": out["score"],
        }
        for ue, a, cost in zip(instance.ues, decision.assignments, result.per_ue):
            sid = int(ue.id.removeprefix("subtask"))
            local_t = ue.cycles / ue.local_hz
            local = a.target == LOCAL
            if local:
                why = f"{local_t:.2f} s locally beats offloading"
            else:
                why = (
                    f"{cost.latency_s:.2f} s (upload + {a.share:.0%} of its CPU) "
                    f"vs {local_t:.2f} s on the device"
                )
            verb = "kept on the device" if local else f"offloaded to {a.target}"
            placements[sid] = Placement(
                subtask=sid,
                model=ue.model,
                runs_on=_device_of(selection, sid) if local else a.target,
                mode="local" if local else "offloaded",
                share=None if local else a.share,
                latency_s=cost.latency_s,
                local_latency_s=local_t,
                energy_j=cost.energy_j,
                reason=f"{verb} by the {name} solver ({objective}): {why}",
            )
    refine_with_splits(placements, selection, store, objective)
    out = []
    for s in selection:
        if s.subtask in placements:
            out.append(placements[s.subtask])
        else:
            t = (s.cycles or DEFAULT_CYCLES) / s.compute_hz if s.compute_hz else None
            out.append(
                Placement(
                    subtask=s.subtask,
                    model=s.model,
                    runs_on=s.device,
                    mode="hosted",
                    latency_s=t,
                    reason=f"hosted only on {s.device} ({s.tier} tier): runs where it is installed",
                )
            )
    return out, record


def _device_of(selection: list[Selection], sid: int) -> str:
    return next(s.device for s in selection if s.subtask == sid)


def refine_with_splits(
    placements: dict[int, Placement],
    selection: list[Selection],
    store: KnowledgeStore,
    objective: str,
) -> None:
    """Image models that split-inference can cut: choose the partition point (paper III-A2).

    The solver decides device vs edge for whole models; for a model the split runtime serves,
    the partition function also weighs running its first stages on the photo's device and
    sending the learned codec's bits. The placement becomes "split" (k), "offloaded" (k = 0:
    the image is sent) or "local" (client-only), with the predicted costs as the reason.
    """
    from edgeai.tools.split_inference import service

    splittable = [s for s in selection if s.model in service.MODEL_TASKS]
    if not splittable:
        return
    manuals = store.manuals()
    goal = "device_energy" if objective == "min_energy" else "latency"
    for s in splittable:
        solver_target = placements[s.subtask].runs_on if s.subtask in placements else None
        try:
            hosts = service.hosts_from_manuals(manuals, s.model, edge=solver_target)
            decision = service.split_decision(s.model, hosts, goal)
        except EdgeAIError as exc:  # no client/edge pair, weights or codec missing: keep the
            log.warning("no split decision for %s: %s", s.model, exc)  # solver's placement
            continue
        rows = {r.split: r for r in decision.rows}
        edge_only, local = rows[0], rows["client-only"]
        k = decision.split
        if k is None:
            mode, runs_on = "local", hosts.device.device
            what = f"whole model on {hosts.device.device}"
        elif k == 0:
            mode, runs_on = "offloaded", hosts.edge.device
            what = f"photo sent to {hosts.edge.device}"
        else:
            mode, runs_on = "split", f"{hosts.device.device}+{hosts.edge.device}"
            what = (
                f"stages [0, {k}) on {hosts.device.device}, {rows[k].payload_bytes} B of "
                f"coded features to {hosts.edge.device}"
            )
        placements[s.subtask] = Placement(
            subtask=s.subtask,
            model=s.model,
            runs_on=runs_on,
            mode=mode,
            split=k,
            latency_s=decision.latency_s,
            local_latency_s=local.latency_s,
            energy_j=decision.device_energy_j,
            reason=(
                f"partition ({goal}): {what}: {decision.latency_s:.3f} s predicted vs "
                f"{edge_only.latency_s:.3f} s sending the {edge_only.payload_bytes:,} B "
                f"{service.edge_image_label(s.model)} and "
                f"{local.latency_s:.3f} s on the device"
            ),
        )
