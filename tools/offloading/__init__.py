"""MEC task offloading: the spec's cost model, scorer, scenario generator and solvers.

Entry points: `solve(instance, objective, solver)` with any name in `SOLVERS`,
`score(instance, decision)`, `load_instance` / `load_decision` and the writers, and the
generators `generate_instance` / `generate_trajectory` (channel model: `uplink_rate_bps`).
The LangChain tool lives in `edgeai.tools.offloading.tool` (imported on demand).
"""

from edgeai.tools.offloading.cost import Score, UECost, pair_tables, score
from edgeai.tools.offloading.problem import (
    LOCAL,
    OBJECTIVES,
    UE,
    Assignment,
    Decision,
    Instance,
    InstanceArrays,
    InstanceError,
    Objective,
    Server,
    decision_from_dict,
    instance_from_dict,
    load_decision,
    load_instance,
    write_decision,
    write_instance,
)
from edgeai.tools.offloading.registry import (
    SOLVERS,
    SolverEntry,
    get_solver,
    register_solver,
    solve,
)
from edgeai.tools.offloading.scenario import (
    SCENARIOS,
    generate_instance,
    generate_trajectory,
    uplink_rate_bps,
)

__all__ = [
    "LOCAL",
    "OBJECTIVES",
    "SCENARIOS",
    "SOLVERS",
    "UE",
    "Assignment",
    "Decision",
    "Instance",
    "InstanceArrays",
    "InstanceError",
    "Objective",
    "Score",
    "Server",
    "SolverEntry",
    "UECost",
    "decision_from_dict",
    "generate_instance",
    "generate_trajectory",
    "get_solver",
    "instance_from_dict",
    "load_decision",
    "load_instance",
    "pair_tables",
    "register_solver",
    "score",
    "solve",
    "uplink_rate_bps",
    "write_decision",
    "write_instance",
]
