"""Plan quality as in the paper's Table I: exact-set accuracy, model F1, dependency-edge F1,
unsupported accuracy, hallucination rate and seconds per request, over a labelled request file;
and where the plans go wrong (OUTCOMES), with why whole requests were refused."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgeai.agents.planning.embedded import REFUSAL_CAUSES, refusal_cause
from edgeai.errors import UserInputError
from edgeai.knowledge.store import KnowledgeStore
from edgeai.schemas import Plan
from pydantic import BaseModel, Field, ValidationError


class LabelledRequest(BaseModel):
    """One line of a pool's requests.jsonl."""

    request: str = Field(min_length=1)
    models: list[str] = Field(default_factory=list)
    edges: list[tuple[str, str]] = Field(default_factory=list)
    unsupported: bool = False
    kind: str = "single"
    lang: str = "en"


class Planner(Protocol):
    name: str

    def plan(self, request: str) -> Plan: ...


def load_requests(path: Path) -> list[LabelledRequest]:
    out = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(LabelledRequest.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "line"
            raise UserInputError(f"{path}:{i}: field '{field}': {first['msg']}") from None
    if not out:
        raise UserInputError(f"{path}: no labelled requests")
    return out


OUTCOMES = ("right", "false refusal", "false accept", "missing", "extra", "wrong")
"""How a plan's model set compares with the labelled one: equal; empty where models were
expected; models where none were; a strict subset; a strict superset; anything else."""

REFUSED_COLUMNS = {cause: f"refused: {cause}" for cause in REFUSAL_CAUSES}
"""The failures() key (and CSV column) counting the false refusals of each cause."""


def outcome(pred: set, gold: set) -> str:
    """The OUTCOMES class of a predicted model set against the labelled one."""
    if pred == gold:
        return "right"
    if not pred:
        return "false refusal"
    if not gold:
        return "false accept"
    if pred < gold:
        return "missing"
    if pred > gold:
        return "extra"
    return "wrong"


def _f1(pred: set, gold: set) -> float:
    if not pred and not gold:
        return 1.0
    tp = len(pred & gold)
    if tp == 0:
        return 0.0
    p, r = tp / len(pred), tp / len(gold)
    return 2 * p * r / (p + r)


@dataclass
class PlanScore:
    planner: str
    n: int
    exact_accuracy: float
    model_f1: float
    edge_f1: float
    unsupported_accuracy: float
    hallucination_rate: float
    median_seconds: float
    details: list[dict]

    def row(self) -> dict:
        """The Table I figures (no per-request details)."""
        return {k: v for k, v in self.__dict__.items() if k != "details"}

    def failures(self) -> dict[str, int]:
        """Requests per OUTCOMES class, and the false refusals per REFUSAL_CAUSES entry."""
        out = dict.fromkeys(OUTCOMES, 0)
        out.update(dict.fromkeys(REFUSED_COLUMNS.values(), 0))
        for d in self.details:
            out[d["outcome"]] += 1
            if d["outcome"] == "false refusal":
                out[REFUSED_COLUMNS[d["refusal_cause"]]] += 1
        return out


def evaluate(
    planner: Planner, store: KnowledgeStore, requests: list[LabelledRequest], progress=None
) -> PlanScore:
    owners = store.owner_of()
    details = []
    exact = f1s = halluc = 0.0
    edge_tp = edge_pred = edge_gold = 0
    unsup_right = unsup_n = 0
    seconds = []
    for item in requests:
        t0 = time.perf_counter()
        plan = planner.plan(item.request)
        seconds.append(time.perf_counter() - t0)
        pred = set(plan.model_ids())
        gold = set(item.models)
        exact += pred == gold
        f1s += _f1(pred, gold)
        bad = [s for s in plan.subtasks if owners.get(s.model) != s.device]
        halluc += bool(bad)
        pe, ge = plan.edges(), {tuple(e) for e in item.edges}
        edge_tp += len(pe & ge)
        edge_pred += len(pe)
        edge_gold += len(ge)
        if item.unsupported:
            unsup_n += 1
            unsup_right += not plan.subtasks
        details.append(
            {
                "request": item.request,
                "kind": item.kind,
                "lang": item.lang,
                "expected": sorted(gold),
                "got": sorted(pred),
                "exact": pred == gold,
                "outcome": outcome(pred, gold),
                "unsupported": list(plan.unsupported),
                "refusal_cause": refusal_cause(plan.unsupported) if not pred else None,
                "expected_edges": sorted(ge),
                "got_edges": sorted(pe),
                "seconds": seconds[-1],
            }
        )
        if progress is not None:
            progress()
    n = len(requests)
    p = edge_tp / edge_pred if edge_pred else 1.0
    r = edge_tp / edge_gold if edge_gold else 1.0
    edge_f1 = 2 * p * r / (p + r) if p + r else 0.0
    return PlanScore(
        planner=planner.name,
        n=n,
        exact_accuracy=exact / n,
        model_f1=f1s / n,
        edge_f1=edge_f1,
        unsupported_accuracy=unsup_right / unsup_n if unsup_n else float("nan"),
        hallucination_rate=halluc / n,
        median_seconds=statistics.median(seconds),
        details=details,
    )


def write_details(path: Path, score: PlanScore) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for d in score.details:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
