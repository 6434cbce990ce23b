"""Model selector: checks a plan against the store and attaches what the later steps need.

Every model and device of a plan must exist in the knowledge store *now* (the spec's rule); the
selector looks each one up, refuses unknown ids and returns the manual entries (tier, speeds,
input size, cycles) that offloading and execution read.
"""

from __future__ import annotations

from edgeai.errors import EdgeAIError
from edgeai.knowledge.store import KnowledgeStore
from edgeai.schemas import Plan, Selection


class PlanValidationError(EdgeAIError):
    """A plan names a model or device the store does not hold, or has broken dependencies."""


# what a Selection takes from the device's manual entry and from the model's
DEVICE_FIELDS = ("tier", "compute_hz", "uplink_bps")
ENTRY_FIELDS = ("inputs", "outputs", "input_bits", "cycles")


def validate_plan(plan: Plan, store: KnowledgeStore) -> None:
    """Raise PlanValidationError unless every id exists and deps point backwards to known ids."""
    owners = store.owner_of()
    ids = [s.id for s in plan.subtasks]
    if len(set(ids)) != len(ids):
        raise PlanValidationError("plan has duplicate sub-task ids")
    for s in plan.subtasks:
        if s.model not in owners:
            raise PlanValidationError(
                f"sub-task {s.id} names model '{s.model}', absent from the store"
            )
        if owners[s.model] != s.device:
            raise PlanValidationError(
                f"sub-task {s.id}: model '{s.model}' is hosted by '{owners[s.model]}', not '{s.device}'"
            )
        for d in s.deps:
            if d not in ids or d == s.id:
                raise PlanValidationError(f"sub-task {s.id} depends on unknown sub-task {d}")
    # no cycles: a topological order must exist
    order = topological_order(plan)
    if len(order) != len(plan.subtasks):
        raise PlanValidationError("plan dependencies form a cycle")


def topological_order(plan: Plan) -> list[int]:
    done: list[int] = []
    pending = {s.id: set(s.deps) for s in plan.subtasks}
    while pending:
        ready = sorted(i for i, deps in pending.items() if deps <= set(done))
        if not ready:
            break
        done.extend(ready)
        for i in ready:
            pending.pop(i)
    return done


def select_models(plan: Plan, store: KnowledgeStore) -> list[Selection]:
    """The plan's sub-tasks in execution order, each with its manual entry."""
    validate_plan(plan, store)
    devices = {d.device: d for d in store.manuals()}
    by_id = {s.id: s for s in plan.subtasks}
    out = []
    for sid in topological_order(plan):
        s = by_id[sid]
        dev = devices[s.device]
        entry = next(m for m in dev.models if m.name == s.model)
        # the sub-task, its device's tier and speeds, its model's inputs, outputs and costs
        out.append(
            Selection.model_validate(
                {"subtask": s.id, **s.model_dump(include={"model", "device", "goal", "deps"})}
                | dev.model_dump(include=set(DEVICE_FIELDS))
                | entry.model_dump(include=set(ENTRY_FIELDS))
            )
        )
    return out
