"""Planning: a request in plain language -> a plan (sub-tasks, models, dependencies).

Three stages a reader follows top to bottom (planner.py runs them):
- read (read.py; every word list in words.py, typo repair in spelling.py, gloss in gloss.py);
- choose (one `Chooser` protocol: embedded.py over index.py's calibrated retrieval, the
  learned judge in judged.py + relevance.py, the TF-IDF baseline in tfidf.py, an LLM in llm.py);
- structure (structure.py: one pure closure over the manuals' declared inputs/outputs).
units.py cuts manuals into the retrieval units the knowledge store keeps; evaluate.py scores
plans against labelled requests (the paper's Table I).
"""

from importlib import import_module

_EXPORTS = {
    "Choice": "structure",
    "Chooser": "planner",
    "EmbeddedPlanner": "planner",
    "JudgedPlanner": "judged",
    "LLMPlanner": "llm",
    "Planner": "planner",
    "PlannerConfig": "embedded",
    "PoolGraph": "structure",
    "TfidfPlanner": "tfidf",
    "build_units": "units",
    "make_planner": "planner",
    "structure": "structure",
    "validate_request": "read",
}
__all__ = [
    "Choice",
    "Chooser",
    "EmbeddedPlanner",
    "JudgedPlanner",
    "LLMPlanner",
    "Planner",
    "PlannerConfig",
    "PoolGraph",
    "TfidfPlanner",
    "build_units",
    "make_planner",
    "structure",
    "validate_request",
]


def __getattr__(name: str):
    """Exports load on first use, so importing one stage does not import every chooser."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
