"""Structure: a chosen goal set closed over the manuals' declared inputs/outputs into a plan.

The last stage of planning, shared by every chooser (embedded, judged, TF-IDF, LLM). A pure
function of the pool's declared types and the chooser's `Choice`:

- each goal's declared inputs pull producers in, recursively. A type with a single producer that
  exists only as its output (a heart rate) brings it unconditionally; a type with several
  producers, or one that also exists raw (a photo, text the user types), is fed only by
  producers the request asked for (`Choice.named`, best ranked first), else by the user;
- grounding (when the chooser gives one): a medium the request mentions ("here's a photo", "a
  voice note") that no goal reads is where such an input comes from: the most relevant producer
  that reads it feeds the goal;
- producers come first, edges become `deps`, and several final outputs get a `combine` line
  (several estimates of one output are fused).
A choice with no goals is an unsupported request and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from edgeai.knowledge.manuals import humanize
from edgeai.knowledge.store import PoolModel
from edgeai.schemas import Plan, Subtask


class Grounding(Protocol):
    """Where an input with no asked-for producer may come from: the media the request mentions."""

    def mentioned(self) -> set[str]:
        """Declared input types a word of the request names ("photo" -> image)."""
        ...

    def rank(self, options: list[str]) -> dict[str, float]:
        """Relevance of each candidate producer to the request (higher is better)."""
        ...


@dataclass
class Choice:
    """What a chooser decided for one request; `structure` turns it into a plan."""

    goals: list[str]
    """models whose results the request asks for, in order (empty: unsupported)."""
    named: set[str] = field(default_factory=set)
    """models some part of the request asked for by itself: only they feed an ambiguous input."""
    rank: Mapping[str, float] = field(default_factory=dict)
    """ordering of several asked-for producers of one input (higher first)."""
    relevance: Mapping[str, float] | None = field(default_factory=dict)
    """per-model score reported in each sub-task (`relevance`, rounded to 0.01; None: none)."""
    excluded: set[str] = field(default_factory=set)
    """models the request rules out ("..., not from my phone"): never producers."""
    grounding: Grounding | None = None
    unsupported: str = ""
    """why nothing serves the request, when `goals` is empty."""
    chains: bool = True
    """close the goals over declared inputs (False: the goals alone, as the zero-shot baseline)."""
    provenance: dict[str, str] = field(default_factory=dict)
    """plan fields that say how the choice was made (a fallback's `planner`, `fallback_reason`)."""


@dataclass(frozen=True)
class PoolGraph:
    """The pool's declared types: who produces what, and which types exist before any model."""

    models: Mapping[str, PoolModel]
    producers: Mapping[str, list[str]]
    raw_available: frozenset[str]
    """types some model both consumes and produces (a photo an enhancer returns) exist raw."""

    @classmethod
    def of(cls, models: Iterable[PoolModel]) -> PoolGraph:
        by_name = {m.name: m for m in models}
        producers: dict[str, list[str]] = {}
        for m in by_name.values():
            for out in m.outputs:
                producers.setdefault(out, []).append(m.name)
        raw = frozenset(t for m in by_name.values() for t in m.inputs if t in m.outputs)
        return cls(by_name, producers, raw)

    def upstream(self, name: str, seen: set[str] | None = None, raw: bool = True) -> set[str]:
        """Every model that can feed `name`, transitively, through declared inputs/outputs
        (raw=False: only through types the user cannot supply, i.e. not `raw_available`)."""
        seen = set() if seen is None else seen
        for t in self.models[name].inputs:
            if not raw and t in self.raw_available:
                continue
            for p in self.producers.get(t, []):
                if p != name and p not in seen:
                    seen.add(p)
                    self.upstream(p, seen, raw)
        return seen

    def asked_producers(self, consumer: str, t: str, choice: Choice) -> list[str]:
        """Who feeds `consumer` its input `t` from the choice alone: the producers it names
        (best ranked first); else the single producer of a type that exists only as its output;
        else nobody (the user supplies it)."""
        options = [
            p for p in self.producers.get(t, []) if p != consumer and p not in choice.excluded
        ]
        if not options:
            return []
        asked = [p for p in options if p in choice.named]
        if asked:
            return sorted(asked, key=lambda p: -choice.rank.get(p, float("-inf")))
        if len(options) == 1 and t not in self.raw_available:
            return options
        return []

    def forced(self, chosen: Iterable[str]) -> set[str]:
        """Producers the structure brings in whatever the request names (transitively)."""
        _, deps = close(Choice(goals=[n for n in chosen if n in self.models]), self)
        return {p for ps in deps.values() for p in ps}


class _Media:
    """Grounding state of one plan: computed on the first input that has no producer."""

    def __init__(self, choice: Choice, graph: PoolGraph) -> None:
        self.choice, self.graph = choice, graph
        self.mentioned: set[str] | None = None
        self.media: set[str] = set()

    def producer(self, consumer: str, t: str) -> list[str]:
        """The producer of `t` that reads a medium the request mentions and no goal reads, and
        whose every input the request mentions: the most relevant one; [] if there is none."""
        models, grounding = self.graph.models, self.choice.grounding
        if grounding is None:
            return []
        if self.mentioned is None:
            self.mentioned = grounding.mentioned()
            read = {i for g in self.choice.goals for i in models[g].inputs}
            self.media = self.mentioned - read
        if not self.media:
            return []
        options = [
            p
            for p in self.graph.producers.get(t, [])
            if p != consumer
            and self.media & set(models[p].inputs)
            and set(models[p].inputs) <= self.mentioned
        ]
        chosen = []
        if options:
            rank = grounding.rank(options)
            chosen = [p for p in [max(options, key=rank.get)] if p not in self.choice.excluded]
        self.media.difference_update(*(models[p].inputs for p in chosen))
        return chosen


def close(choice: Choice, graph: PoolGraph) -> tuple[list[str], dict[str, list[str]]]:
    """The goals and everything that feeds them, producers first, with each model's producers."""
    order: list[str] = []
    deps: dict[str, list[str]] = {}
    media = _Media(choice, graph)

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in deps or name in stack:
            return
        deps[name] = []
        for t in graph.models[name].inputs if choice.chains else ():
            chosen = graph.asked_producers(name, t, choice)
            if not chosen and graph.producers.get(t):
                chosen = media.producer(name, t)
            for p in chosen:
                if p in stack + (name,):
                    continue
                visit(p, stack + (name,))
                if p not in deps[name]:
                    deps[name].append(p)
        order.append(name)  # producers first

    for g in choice.goals:
        visit(g, ())
    return order, deps


def goal_text(model: PoolModel) -> str:
    """A sub-task's goal: the model's task and what it gives."""
    outs = ", ".join(humanize(o) for o in model.outputs)
    return f"{model.task}" + (f" ({outs})" if outs else "")


def combine_text(sinks: list[str], models: Mapping[str, PoolModel]) -> str | None:
    """How several final results merge: fused when they estimate the same output."""
    if len(sinks) <= 1:
        return None
    if len({tuple(models[s].outputs) for s in sinks}) == 1:
        output = humanize(models[sinks[0]].outputs[0])
        return f"fuse the {len(sinks)} {output} estimates into one answer"
    return "combine " + " and ".join(humanize(t) for s in sinks for t in models[s].outputs)


def structure(request: str, choice: Choice, graph: PoolGraph, planner: str) -> Plan:
    """The plan of a choice: sub-tasks producers first, `deps` from declared types, `combine`."""
    if not choice.goals:
        plan = Plan(request=request, unsupported=[choice.unsupported], planner=planner)
        return _with_provenance(plan, choice)
    order, deps = close(choice, graph)
    models = graph.models
    ids = {name: i + 1 for i, name in enumerate(order)}
    scores = choice.relevance
    subtasks = [
        Subtask(
            id=ids[name],
            model=name,
            device=models[name].device,
            goal=goal_text(models[name]),
            deps=[ids[p] for p in deps[name]],
            **({} if scores is None else {"relevance": round(scores.get(name, 0.0), 2)}),
        )
        for name in order
    ]
    consumed = {p for ps in deps.values() for p in ps}
    combine = combine_text([n for n in order if n not in consumed], models)
    plan = Plan(
        request=request, subtasks=subtasks, combine=combine, unsupported=[], planner=planner
    )
    return _with_provenance(plan, choice)


def _with_provenance(plan: Plan, choice: Choice) -> Plan:
    for key, value in choice.provenance.items():
        setattr(plan, key, value)
    return plan
