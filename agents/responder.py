"""Responder: turns the executed sub-tasks into one answer that says what ran, where and why.

Outputs come from the models' real runs; models that are declared but not installed are reported
as such. Estimates of the same quantity (two mood classifiers) are fused by averaging their class
probabilities when both give them, so the combined answer is computed, not written.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from edgeai.knowledge.store import humanize


def fuse(results: list[dict]) -> list[str]:
    """One line per quantity estimated by several models, from their probabilities."""
    by_output: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        if r.get("status") != "ok":
            continue
        for name in r["outputs"]:
            by_output[name].append(r)
    lines = []
    for name, rs in by_output.items():
        if len(rs) < 2:
            continue
        probs = [r.get("details", {}).get("probabilities") for r in rs]
        if all(isinstance(p, dict) for p in probs):
            classes = sorted(set().union(*probs))
            avg = {c: sum(p.get(c, 0.0) for p in probs) / len(probs) for c in classes}
            best = max(avg, key=avg.get)
            lines.append(
                f"Combined {humanize(name)}: {best} ({avg[best]:.0%}, average of "
                + ", ".join(f"{r['model']}={r['outputs'][name]}" for r in rs)
                + ")."
            )
        else:
            values = [r["outputs"][name] for r in rs]
            if all(isinstance(v, (int, float)) for v in values):
                lines.append(f"Combined {humanize(name)}: {sum(values) / len(values):.2f} (mean).")
            else:
                lines.append(f"{humanize(name)} estimates: " + ", ".join(map(str, values)) + ".")
    return lines


def compose_answer(day: str, plan: dict, placements: list[dict], results: list[dict]) -> str:
    """The answer text: one line per model (output, where it ran, why), then the fused result."""
    if not plan.get("subtasks"):
        return "\n".join(plan.get("unsupported") or ["No registered model can serve this request."])
    where = {p["subtask"]: p for p in placements}
    lines = [f"For {day}:"]
    for r in results:
        p = where.get(r["subtask"], {})
        place = f"[{p.get('runs_on', '?')}, {p.get('mode', '?')}]"
        if r["status"] == "ok":
            lines.append(f"- {r['model']} {place}: {r['summary']}")
        else:
            lines.append(f"- {r['model']} {place}: not run ({r['error']})")
    lines += fuse(results)
    if plan.get("combine"):
        lines.append(f"Plan: {plan['combine']}.")
    for p in placements:
        lines.append(f"  why {p['model']} ran on {p['runs_on']}: {p['reason']}")
    if plan.get("unsupported"):
        lines.append("Not served: " + "; ".join(plan["unsupported"]))
    return "\n".join(lines)


def missing_model_answer(plan: dict, needed: list[str]) -> str:
    """The answer when no registered model fits: what would be needed, and that FL is not built yet."""
    reason = "; ".join(plan.get("unsupported") or []) or "no registered model fits"
    what = ", ".join(needed) if needed else "a model for this task"
    return (
        f"No model in the knowledge store fits this request ({reason}). "
        f"It would need {what}. The automatic federated-learning path (codegen + FL tuner) that would "
        "train such a model is not built yet, so nothing was run."
    )


def result_record(subtask: int, model: str, outcome: Any = None, error: str | None = None) -> dict:
    if error is not None:
        return {"subtask": subtask, "model": model, "status": "not_run", "error": error}
    return {
        "subtask": subtask,
        "model": model,
        "status": "ok",
        "outputs": outcome.outputs,
        "summary": outcome.summary,
        "details": outcome.details,
        "seconds": outcome.seconds,
    }
