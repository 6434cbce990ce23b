"""The plan's provenance is declared (no `type: ignore` to read it) and dumps to the same JSON,
key for key and in order, as when it was carried in extra keys."""

from __future__ import annotations

from edgeai.schemas import Plan, Subtask

# The JSON these plans dumped to when their provenance was carried in extra keys (before it was
# declared), written by the schema of that time from the same constructions as `build` below.
OLD_JSON = [
    '{"request":"r","subtasks":[],"combine":null,"unsupported":["x"],"planner":"embedded"}',
    (
        '{"request":"r","subtasks":[],"combine":null,"unsupported":["x"],"planner":"embedded",'
        '"seconds":0.1}'
    ),
    (
        '{"request":"r","subtasks":[{"id":1,"model":"m","device":"d","goal":"g","deps":[],'
        '"relevance":1.5}],"combine":null,"unsupported":[],"planner":"embedded","seconds":0.2}'
    ),
    (
        '{"request":"r","subtasks":[{"id":1,"model":"m","device":"d","goal":"g","deps":[]}],'
        '"combine":null,"unsupported":[],"planner":"tfidf","seconds":0.3}'
    ),
    (
        '{"request":"r","subtasks":[],"combine":null,"unsupported":[],'
        '"planner":"embedded (fallback from openai)","seconds":0.4,"fallback_reason":"bad"}'
    ),
    (
        '{"request":"r","subtasks":[{"id":1,"model":"m","device":"d","goal":"g","deps":[]}],'
        '"combine":"c","unsupported":[],"planner":"openai","seconds":1.0}'
    ),
]


def build(P: type[Plan] = Plan, S: type[Subtask] = Subtask) -> list[Plan]:
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
    assert [p.model_dump_json() for p in build()] == OLD_JSON


def test_provenance_reads_as_fields_and_round_trips() -> None:
    plan = build()[4]
    assert plan.planner == "embedded (fallback from openai)" and plan.fallback_reason == "bad"
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again == plan and again.seconds == 0.4
    assert Plan.model_validate(build()[2].model_dump()).subtasks[0].relevance == 1.5
    assert Plan(request="r", shadow="kept").model_dump()["shadow"] == "kept"  # extras still allowed
