"""Responder: turns the executed sub-tasks into one answer that says what ran, where and why.

Outputs come from the models' real runs; models that are declared but not installed are reported
as such. Estimates of the same quantity (two mood classifiers) are fused by averaging their class
probabilities when both give them, so the combined answer is computed, not written.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

from edgeai.knowledge.store import humanize
from edgeai.schemas import Placement, Plan
from pydantic import BaseModel, Field


def _unset(value: Any) -> bool:
    return value is None


class RunResult(BaseModel):
    """One sub-task's run: its outputs when it ran ("ok"), else why not ("not_run").

    Fields that do not apply to the status are left out of the dump, so a record dumps to the
    same JSON as the dicts the graph checkpointed before the state was typed.
    """

    subtask: int
    model: str
    status: Literal["ok", "not_run"]
    error: str | None = Field(None, exclude_if=_unset)
    outputs: dict[str, Any] | None = Field(None, exclude_if=_unset)
    summary: str | None = Field(None, exclude_if=_unset)
    details: dict[str, Any] | None = Field(None, exclude_if=_unset)
    seconds: float | None = Field(None, exclude_if=_unset)


def fuse(results: list[RunResult]) -> list[str]:
    """One line per quantity estimated by several models, from their probabilities."""
    by_output: dict[str, list[RunResult]] = defaultdict(list)
    for r in results:
        if r.status != "ok":
            continue
        for name in r.outputs or {}:
            by_output[name].append(r)
    lines = []
    for name, rs in by_output.items():
        if len(rs) < 2:
            continue
        probs = [(r.details or {}).get("probabilities") for r in rs]
        if all(isinstance(p, dict) for p in probs):
            classes = sorted(set().union(*probs))
            avg = {c: sum(p.get(c, 0.0) for p in probs) / len(probs) for c in classes}
            best = max(avg, key=avg.get)
            lines.append(
                f"Combined {humanize(name)}: {best} ({avg[best]:.0%}, average of "
                + ", ".join(f"{r.model}={r.outputs[name]}" for r in rs)
                + ")."
            )
        else:
            values = [r.outputs[name] for r in rs]
            if all(isinstance(v, (int, float)) for v in values):
                lines.append(f"Combined {humanize(name)}: {sum(values) / len(values):.2f} (mean).")
            else:
                lines.append(f"{humanize(name)} estimates: " + ", ".join(map(str, values)) + ".")
    return lines


def compose_answer(
    day: str, plan: Plan, placements: list[Placement], results: list[RunResult]
) -> str:
    """The answer text: one line per model (output, where it ran, why), then the fused result."""
    if not plan.subtasks:
        return "\n".join(plan.unsupported or ["No registered model can serve this request."])
    where = {p.subtask: p for p in placements}
    lines = [f"For {day}:"]
    for r in results:
        p = where.get(r.subtask)
        place = f"[{p.runs_on}, {p.mode}]" if p is not None else "[?, ?]"
        if r.status == "ok":
            lines.append(f"- {r.model} {place}: {r.summary}")
        else:
            lines.append(f"- {r.model} {place}: not run ({r.error})")
    lines += fuse(results)
    if plan.combine:
        lines.append(f"Plan: {plan.combine}.")
    for p in placements:
        lines.append(f"  why {p.model} ran on {p.runs_on}: {p.reason}")
    if plan.unsupported:
        lines.append("Not served: " + "; ".join(plan.unsupported))
    return "\n".join(lines)


def missing_model_answer(plan: Plan, needed: list[str]) -> str:
    """The answer when no registered model fits and none was trained: what would be needed."""
    reason = "; ".join(plan.unsupported) or "no registered model fits"
    what = ", ".join(needed) if needed else "a model for this task"
    return (
        f"No model in the knowledge store fits this request ({reason}). "
        f"It would need {what}. Automatic federated learning trains only what its templates "
        "cover (image classification: ask e.g. \"train an image classifier for my photos\"), "
        "so nothing was run."
    )


def result_record(
    subtask: int, model: str, outcome: Any = None, error: str | None = None
) -> RunResult:
    """The record of one run: the runtime's outcome (outputs, summary, details, time) or an error."""
    if error is not None:
        return RunResult(subtask=subtask, model=model, status="not_run", error=error)
    return RunResult(
        subtask=subtask,
        model=model,
        status="ok",
        outputs=outcome.outputs,
        summary=outcome.summary,
        details=outcome.details,
        seconds=outcome.seconds,
    )
