"""Route a question about a photo to the question answerer (issue 33 point 3).

A request that comes with the person's photo (or talks about a photo) and asks a count, a colour,
a position or whether something is there needs a model that reads both an image and a question
(its manual declares `inputs: [image, question]`). The planners score models on the request's
words, and a camera's manual that "cannot count objects" or a classifier's "what is in the photo"
can win there; this step, run by the graph after planning, keeps such a plan only when it already
holds a question answerer, and otherwise plans the question answerer the store declares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from edgeai.knowledge.store import PoolModel
from edgeai.schemas import Plan, Subtask
from edgeai.tools.split_inference.question import is_visual_question, visual_question

_MENTIONS_PHOTO = re.compile(r"\b(?:photo|picture|image|pic|snapshot|camera)s?\b", re.IGNORECASE)


def answers_questions(model: PoolModel) -> bool:
    """A model that reads an image and a question."""
    return "image" in model.inputs and "question" in model.inputs


def route_visual_question(
    plan: Plan, store_models: Callable[[], Sequence[PoolModel]], request: str, has_photo: bool
) -> Plan:
    """`plan`, or a plan for the store's question answerer when the request is a visual question
    about a photo (given, or mentioned) and the plan has no question answerer. `store_models`
    is read only for such a request."""
    if not (has_photo or _MENTIONS_PHOTO.search(request)) or not is_visual_question(request):
        return plan
    models = store_models()
    answerers = [m for m in models if answers_questions(m)]
    if not answerers or any(
        answers_questions(m) for m in models if m.name in set(plan.model_ids())
    ):
        return plan
    best = min(answerers, key=lambda m: (m.tier != "edge", m.name))  # prefer an edge host
    question = visual_question(request)
    routed = plan.model_copy(deep=True)
    routed.subtasks = [Subtask(id=1, model=best.name, device=best.device, goal=f"{best.task} (text)")]
    routed.unsupported = []
    routed.combine = None
    routed.fallback_reason = (
        f"a question about the photo ({question!r}): routed to {best.name}, which reads an image "
        f"and a question (the planner chose {', '.join(plan.model_ids()) or 'no model'})"
    )
    return routed
