"""The plan's provenance is declared (no `type: ignore` to read it) and dumps to the same JSON,
key for key and in order, as when it was carried in extra keys."""

from __future__ import annotations

from edgeai.schemas import Plan, Subtask
from pydantic import BaseModel, ConfigDict, Field


class OldSub(BaseModel):
    """Subtask before its provenance was declared."""

    model_config = ConfigDict(extra="allow")
    id: int
    model: str
    device: str
    goal: str
    deps: list[int] = Field(default_factory=list)


class OldPlan(BaseModel):
    """Plan before its provenance was declared."""

    model_config = ConfigDict(extra="allow")
    request: str
    subtasks: list[OldSub] = Field(default_factory=list)
    combine: str | None = None
    unsupported: list[str] = Field(default_factory=list)


def build(P, S) -> list:
    """Plans made the ways the planners make them (constructor keywords, then attributes)."""
    out = [
        P(request="r", unsupported=["x"], planner="embedded"),
        P(request="r", unsupported=["x"], planner="embedded", seconds=0.1),
    ]
    p = P(
        request="r",
        subtasks=[S(id=1, model="m", device="d", goal="g", deps=[], relevance=1.5)],
        combine=None,
        unsupported=[],
        planner="embedded",
    )
    p.seconds = 0.2
    out.append(p)
    out.append(
        P(
            request="r",
            subtasks=[S(id=1, model="m", device="d", goal="g")],
            planner="tfidf",
            seconds=0.3,
        )
    )
    p = P(request="r", unsupported=[], planner="embedded", seconds=0.1)
    p.planner = "embedded (fallback from openai)"
    p.fallback_reason = "bad"
    p.seconds = 0.4
    out.append(p)
    p = P(request="r", subtasks=[S(id=1, model="m", device="d", goal="g")], combine="c")
    p.planner = "openai"
    p.seconds = 1.0
    out.append(p)
    return out


def test_declared_provenance_dumps_as_the_extra_keys_did() -> None:
    for new, old in zip(build(Plan, Subtask), build(OldPlan, OldSub), strict=True):
        assert new.model_dump_json(indent=2) == old.model_dump_json(indent=2)
        assert list(new.model_dump()) == list(old.model_dump())


def test_provenance_reads_as_fields_and_round_trips() -> None:
    plan = build(Plan, Subtask)[4]
    assert plan.planner == "embedded (fallback from openai)" and plan.fallback_reason == "bad"
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again == plan and again.seconds == 0.4
    assert Plan.model_validate(build(Plan, Subtask)[2].model_dump()).subtasks[0].relevance == 1.5
    assert Plan(request="r", shadow="kept").model_dump()["shadow"] == "kept"  # extras still allowed
