"""The spec's cost model and scorer: per-UE latency and energy, constraint checks, objective values.

This is the one place where the formulas of specs/offloading.md live; solvers use the
vectorised tables below (`pair_tables`) and every decision is judged by `score`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from edgeai.tools.offloading.problem import Decision, Instance, Objective
from pydantic import BaseModel

# Tolerances of the spec's constraints 2-4 (relative on deadlines, absolute on shares).
SHARE_TOL = 1e-9
DEADLINE_TOL = 1e-9


@dataclass(frozen=True)
class PairTables:
    """Every per-UE and per-(UE, server) quantity that does not depend on the shares.

    `lb[i, j]` is the smallest share that lets UE i meet its deadline on server j,
    `s >= c_i / (F_j (D_i - d_i / r_ij))`; it is +inf when the upload alone misses the deadline.
    A pair is usable (`pair_ok`) when that share is at most 1.
    """

    t_loc: np.ndarray  # (N,) local latency c/f
    e_loc: np.ndarray  # (N,) local energy q c/f
    local_ok: np.ndarray  # (N,) bool: local meets the deadline
    t_tx: np.ndarray  # (N, M) upload time d/r (inf when unreachable)
    e_off: np.ndarray  # (N, M) upload energy p d/r
    lb: np.ndarray  # (N, M) minimal deadline share (inf when impossible)
    pair_ok: np.ndarray  # (N, M) bool: lb <= 1


def upload_time(d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """d / r with the spec's corner case: rate 0 is unreachable unless there is nothing to send."""
    d, r = np.broadcast_arrays(np.asarray(d, dtype=float), np.asarray(r, dtype=float))
    out = np.full(d.shape, np.inf)
    np.divide(d, r, out=out, where=r > 0)
    out[d == 0] = 0.0
    return out


def pair_tables(instance: Instance) -> PairTables:
    a = instance.arrays
    t_loc = a.c / a.f
    t_tx = upload_time(a.d[:, None], a.R)  # (N, M)
    with np.errstate(invalid="ignore"):
        e_off = np.where(np.isfinite(t_tx), a.p[:, None] * t_tx, np.inf)
    slack = a.D[:, None] - t_tx  # (N, M) time left for computing
    lb = np.full(t_tx.shape, np.inf)
    np.divide(a.c[:, None], a.F[None, :] * slack, out=lb, where=slack > 0)
    return PairTables(
        t_loc=t_loc,
        e_loc=a.q * t_loc,
        local_ok=t_loc <= a.D * (1 + DEADLINE_TOL),
        t_tx=t_tx,
        e_off=e_off,
        lb=lb,
        pair_ok=lb <= 1.0,
    )


def ue_costs(
    instance: Instance, target: np.ndarray, share: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised latency and energy of every UE: target (N,) int, -1 = local; share (N,) float.

    A non-positive share gives latency +inf (the task never finishes).
    """
    a = instance.arrays
    target = np.asarray(target, dtype=int)
    share = np.asarray(share, dtype=float)
    latency = a.c / a.f
    energy = a.q * latency
    off = target >= 0
    if off.any():
        i = np.nonzero(off)[0]
        j = target[off]
        t_tx = upload_time(a.d[i], a.R[i, j])
        s = share[off]
        with np.errstate(divide="ignore", invalid="ignore"):
            compute = np.where(s > 0, a.c[i] / (s * a.F[j]), np.inf)
            latency = latency.copy()
            energy = energy.copy()
            latency[i] = t_tx + compute
            energy[i] = np.where(np.isfinite(t_tx), a.p[i] * t_tx, np.inf)
    return latency, energy


def objective_value(objective: Objective, latency: np.ndarray, energy: np.ndarray) -> float:
    """min_latency: mean latency over all UEs; min_energy: total energy."""
    if objective == "min_latency":
        return float(np.mean(latency))
    if objective == "min_energy":
        return float(np.sum(energy))
    raise ValueError(f"unknown objective {objective!r}")


class UECost(BaseModel):
    """Latency and energy of one UE under a decision (None where they cannot be computed)."""

    ue: str
    target: str | None
    share: float | None
    latency_s: float | None
    energy_j: float | None
    meets_deadline: bool | None

    @classmethod
    def unscored(cls, ue: str, target: str | None = None, share: float | None = None) -> UECost:
        """A UE whose costs cannot be computed (missing from the decision, or an unknown target)."""
        return cls(
            ue=ue, target=target, share=share, latency_s=None, energy_j=None, meets_deadline=None
        )


class Score(BaseModel):
    """What a scorer reports for a decision on an instance (spec: feasible, violations, values)."""

    objective: Objective
    feasible: bool
    violations: list[str]
    objective_value: float | None
    mean_latency_s: float | None
    total_energy_j: float | None
    per_ue: list[UECost]

    def summary(self) -> str:
        """One line for a terminal: feasibility, objective value, mean latency, total energy."""

        def fmt(x: float | None, unit: str) -> str:
            return "n/a" if x is None else f"{x:.6g} {unit}"

        unit = "s" if self.objective == "min_latency" else "J"
        head = "feasible" if self.feasible else f"INFEASIBLE ({len(self.violations)} violations)"
        return (
            f"{head}; {self.objective} = {fmt(self.objective_value, unit)}; "
            f"mean latency {fmt(self.mean_latency_s, 's')}; "
            f"total energy {fmt(self.total_energy_j, 'J')}"
        )


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def score(instance: Instance, decision: Decision, objective: Objective | None = None) -> Score:
    """Check the spec's four constraints and compute the costs, also for infeasible decisions.

    The objective is the decision's unless one is given. Costs are computed for every UE that
    has a usable assignment; the totals are None only when some UE's cost cannot be computed
    (missing, unknown target, no share, or an unreachable link).
    """
    objective = objective or decision.objective
    a = instance.arrays
    violations: list[str] = []
    by_ue: dict[str, int] = {}  # index into decision.assignments of the first entry per UE
    for k, item in enumerate(decision.assignments):
        if item.ue not in instance.ue_index:
            violations.append(f"assignment {k}: unknown ue '{item.ue}'")
        elif item.ue in by_ue:
            violations.append(f"{item.ue}: assigned more than once")
        else:
            by_ue[item.ue] = k

    per_ue: list[UECost] = []
    share_sum = np.zeros(instance.m)
    latency = np.full(instance.n, np.nan)
    energy = np.full(instance.n, np.nan)
    for i, ue in enumerate(instance.ues):
        if ue.id not in by_ue:
            violations.append(f"{ue.id}: missing from the decision")
            per_ue.append(UECost.unscored(ue.id))
            continue
        item = decision.assignments[by_ue[ue.id]]
        if item.is_local:
            t, e = a.c[i] / a.f[i], a.q[i] * a.c[i] / a.f[i]
            share = None
        elif item.target not in instance.server_index:
            violations.append(f"{ue.id}: unknown target '{item.target}'")
            per_ue.append(UECost.unscored(ue.id, item.target, item.share))
            continue
        else:
            j = instance.server_index[item.target]
            share = item.share
            t_up = float(upload_time(a.d[i], a.R[i, j]))
            e = a.p[i] * t_up if math.isfinite(t_up) else math.inf
            if share is None:
                violations.append(f"{ue.id}: offloaded to {item.target} without a share")
                t = math.inf
            else:
                share_sum[j] += share
                if not (0 < share <= 1 + SHARE_TOL):
                    violations.append(
                        f"{ue.id}: share {share:.6g} on {item.target} is not in (0, 1]"
                    )
                t = t_up + (a.c[i] / (share * a.F[j]) if share > 0 else math.inf)
        meets = bool(t <= a.D[i] * (1 + DEADLINE_TOL))
        if not meets and share is not None:  # offloaded with a share
            if math.isfinite(t):
                violations.append(f"{ue.id}: latency {t:.6g} s misses the deadline {a.D[i]:.6g} s")
            elif share > 0:
                violations.append(
                    f"{ue.id}: cannot reach {item.target} (rate 0), misses its deadline"
                )
            else:
                violations.append(f"{ue.id}: never finishes on {item.target}, misses its deadline")
        elif not meets and item.is_local:
            violations.append(f"{ue.id}: latency {t:.6g} s misses the deadline {a.D[i]:.6g} s")
        latency[i], energy[i] = t, e
        per_ue.append(
            UECost(
                ue=ue.id,
                target=item.target,
                share=share,
                latency_s=_finite(t),
                energy_j=_finite(e),
                meets_deadline=meets,
            )
        )
    for j, server in enumerate(instance.servers):
        if share_sum[j] > 1 + SHARE_TOL:
            violations.append(f"server {server.id}: shares sum to {share_sum[j]:.6g} > 1")

    mean_latency = _finite(float(np.mean(latency))) if np.isfinite(latency).all() else None
    total_energy = _finite(float(np.sum(energy))) if np.isfinite(energy).all() else None
    value = mean_latency if objective == "min_latency" else total_energy
    return Score(
        objective=objective,
        feasible=not violations,
        violations=violations,
        objective_value=value,
        mean_latency_s=mean_latency,
        total_energy_j=total_energy,
        per_ue=per_ue,
    )
