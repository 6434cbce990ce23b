"""Instance generators of specs/offloading.md: lambo-50, lambo-50-tight, shifted; mobility.

The channel model (`uplink_rate_bps`, from the shared `tools/channel.py`) is re-exported because
instances are also built from device manuals (the offloading agent reuses it with distances and
powers read there).
Seeds are not portable between tools (spec); what is fixed here is the distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from edgeai.errors import UserInputError, lookup
from edgeai.tools.channel import path_loss_db, uplink_rate_bps  # noqa: F401  (path_loss_db re-exported)
from edgeai.tools.offloading.problem import UE, Instance, Objective, Server

Scenario = Literal["lambo-50", "lambo-50-tight", "shifted"]
SCENARIOS: tuple[str, ...] = get_args(Scenario)

AREA_M = 50.0  # side of the square area
DEFAULT_CAPACITIES_HZ = (1.5e10, 1.5e10, 3e10, 5e10)  # the paper's four servers (M = 4)
CAPACITY_CHOICES_HZ = (1.5e10, 3e10, 5e10)  # drawn per server when M != 4
BANDWIDTH_HZ = 1e6  # per UE, orthogonal (the channel default)
MAX_SPEED_MPS = 1.2
STEP_S = 1.0


@dataclass(frozen=True)
class ScenarioParams:
    """What distinguishes the scenario variants (everything else is the default scenario)."""

    capacity_scale: float = 1.0
    data_bits: tuple[float, float] = (1e6, 3e6)
    cycles: tuple[float, float] = (0.5e9, 1.5e9)
    local_hz: float = 1e9
    tx_power_w: float = 1.0
    local_power_w: float = 1.0
    deadline_s: float = 1.5


PARAMS: dict[str, ScenarioParams] = {
    "lambo-50": ScenarioParams(),
    "lambo-50-tight": ScenarioParams(capacity_scale=0.1),
    "shifted": ScenarioParams(capacity_scale=0.5, data_bits=(3e6, 6e6)),
}


def server_capacities(m: int, scenario: str, rng: np.random.Generator) -> np.ndarray:
    base = (
        np.array(DEFAULT_CAPACITIES_HZ)
        if m == len(DEFAULT_CAPACITIES_HZ)
        else rng.choice(CAPACITY_CHOICES_HZ, size=m)
    )
    return base * _params(scenario).capacity_scale


def _params(scenario: str) -> ScenarioParams:
    return lookup(PARAMS, scenario, "offloading scenario", SCENARIOS)


def _check_sizes(n: int, m: int, steps: int = 1) -> None:
    if n < 1:
        raise UserInputError(f"need at least one UE, got n={n}")
    if m < 0:
        raise UserInputError(f"the number of servers cannot be negative, got m={m}")
    if steps < 1:
        raise UserInputError(f"need at least one time step, got steps={steps}")


def _build(
    scenario: str,
    objective: Objective,
    seed: int,
    step: int,
    server_xy: np.ndarray,
    capacities: np.ndarray,
    ue_xy: np.ndarray,
    rng: np.random.Generator,
) -> Instance:
    """One time step: fresh tasks, shadowing and fading for the given positions."""
    params = _params(scenario)
    n, m = len(ue_xy), len(server_xy)
    data_bits = rng.uniform(*params.data_bits, size=n)
    cycles = rng.uniform(*params.cycles, size=n)
    distance = np.linalg.norm(ue_xy[:, None, :] - server_xy[None, :, :], axis=-1)  # (N, M)
    rate = uplink_rate_bps(distance, params.tx_power_w, rng)
    servers = [
        Server(
            id=f"mec{j}",
            capacity_hz=float(capacities[j]),
            x_m=float(server_xy[j, 0]),
            y_m=float(server_xy[j, 1]),
        )
        for j in range(m)
    ]
    ues = [
        UE(
            id=f"ue{i}",
            data_bits=float(data_bits[i]),
            cycles=float(cycles[i]),
            local_hz=params.local_hz,
            tx_power_w=params.tx_power_w,
            local_power_w=params.local_power_w,
            deadline_s=params.deadline_s,
            x_m=float(ue_xy[i, 0]),
            y_m=float(ue_xy[i, 1]),
        )
        for i in range(n)
    ]
    return Instance(
        objective=objective,
        servers=servers,
        ues=ues,
        rate_bps=[[float(r) for r in row] for row in rate],
        scenario=scenario,
        seed=seed,
        step=step,
    )


def reflect(position: np.ndarray, size: float = AREA_M) -> np.ndarray:
    """Fold positions back into [0, size] as a ball bouncing off the borders would."""
    folded = np.mod(position, 2.0 * size)
    return np.where(folded > size, 2.0 * size - folded, folded)


def generate_trajectory(
    n: int = 50,
    m: int = 4,
    steps: int = 1,
    seed: int = 0,
    scenario: str = "lambo-50",
    objective: Objective = "min_latency",
) -> list[Instance]:
    """`steps` instances 1 s apart: servers fixed, UEs moving (random direction, speed
    U(0, 1.2) m/s, redrawn every step, reflecting borders), tasks and channels redrawn."""
    _check_sizes(n, m, steps)
    _params(scenario)
    rng = np.random.default_rng(seed)
    server_xy = rng.uniform(0.0, AREA_M, size=(m, 2))
    capacities = server_capacities(m, scenario, rng)
    ue_xy = rng.uniform(0.0, AREA_M, size=(n, 2))
    out = []
    for step in range(steps):
        if step > 0:
            speed = rng.uniform(0.0, MAX_SPEED_MPS, size=n)
            heading = rng.uniform(0.0, 2.0 * np.pi, size=n)
            move = (speed * STEP_S)[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1)
            ue_xy = reflect(ue_xy + move)
        out.append(_build(scenario, objective, seed, step, server_xy, capacities, ue_xy, rng))
    return out


def generate_instance(
    n: int = 50,
    m: int = 4,
    seed: int = 0,
    scenario: str = "lambo-50",
    objective: Objective = "min_latency",
) -> Instance:
    """One instance of a scenario (the first step of its trajectory)."""
    return generate_trajectory(n, m, 1, seed, scenario, objective)[0]
