"""The LangChain tool `solve_offloading`: an offloading decision and its score for one instance."""

from __future__ import annotations

from typing import Any

from edgeai.tools.offloading.cost import score
from edgeai.tools.offloading.problem import Objective, instance_from_dict
from edgeai.tools.offloading.registry import SOLVERS, solve
from langchain_core.tools import tool
from pydantic import BaseModel, Field


class SolveOffloadingArgs(BaseModel):
    """Arguments of `solve_offloading` (the instance is the spec's instance JSON object)."""

    instance: dict[str, Any] = Field(
        description="MEC instance: objective, servers [{id, capacity_hz}], ues [{id, data_bits, "
        "cycles, local_hz, tx_power_w, local_power_w, deadline_s}], rate_bps (N x M)"
    )
    objective: Objective | None = Field(
        None, description="min_latency or min_energy; overrides the instance's objective"
    )
    solver: str = Field("greedy", description="solver name: " + ", ".join(SOLVERS))
    seed: int = Field(0, description="seed of randomised solvers")


def solve_and_score(
    instance: dict[str, Any], objective: str | None = None, solver: str = "greedy", seed: int = 0
) -> dict[str, Any]:
    """Validate, solve and score: {"decision": spec decision JSON, "score": scorer report}."""
    parsed = instance_from_dict(instance, objective)
    decision = solve(parsed, solver=solver, seed=seed)
    return {
        "decision": decision.to_dict(),
        "score": score(parsed, decision).model_dump(mode="json"),
    }


@tool("solve_offloading", args_schema=SolveOffloadingArgs)
def solve_offloading(
    instance: dict[str, Any], objective: str | None = None, solver: str = "greedy", seed: int = 0
) -> dict[str, Any]:
    """Decide where each user device's task runs (locally or on an edge server, with a CPU
    share) to minimise mean latency or total energy under deadlines; returns the decision
    and its score (feasible, violations, objective value, mean latency, total energy)."""
    return solve_and_score(instance, objective, solver, seed)
