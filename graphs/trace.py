"""One line per trace step: what each node of the request graph decided, in words.

A turn's trace (graphs/app.py `App.ask`) is a list of JSON steps; `edgeai demo` prints them and
scenario reports (graphs/scenario.py) write them, both with `summarize_step`, so a step reads
the same wherever it is shown.
"""

from __future__ import annotations

import json
from typing import Any


def summarize_step(step: dict[str, Any]) -> str:
    """The decision of one trace step (plan, selection, placements, results or answer)."""
    node = step["node"]
    if node == "plan_request":
        plan = step["plan"]
        if not plan["subtasks"]:
            return f"unsupported: {'; '.join(plan['unsupported'])}"
        parts = [
            f"{s['id']}:{s['model']}@{s['device']}" + (f"<-{s['deps']}" if s["deps"] else "")
            for s in plan["subtasks"]
        ]
        extra = (
            f" (follow-up of '{step['effective_request']}', day {step['day']})"
            if step.get("followup")
            else ""
        )
        return f"{step['planner']} planner -> " + ", ".join(parts) + extra
    if node == "choose_models":
        return ", ".join(f"{s['model']} ({s['tier']})" for s in step["selection"])
    if node == "place_work":
        return "; ".join(
            f"{p['model']} -> {p['runs_on']} ({p['mode']})" for p in step["placements"]
        )
    if node == "run_models":
        return "; ".join(
            f"{r['model']}: {json.dumps(r['outputs']) if r['status'] == 'ok' else r['status']}"
            for r in step["results"]
        )
    return step.get("answer", "").splitlines()[0] if step.get("answer") else ""
