"""The visual question inside a person's request, for the question answerer (issue 33).

"Look at this photo: what colour is the car?" asks the VQA model "what colour is the car?", not
the whole request. `visual_question` splits the request into sentences and clauses, keeps the
first one that asks something (a question word, or a question mark), and drops the framing
around it ("please tell me", "in this photo"). `is_visual_question` says whether a request asks
the kind of thing only a question answerer answers: counts, colours, positions, presence.
English only: a request in another language is passed on as it is (README: not done).
"""

from __future__ import annotations

import re

_SENTENCES = re.compile(r"(?<=[.!?;:])\s+|\n+")
_CLAUSES = re.compile(r",\s*|\s+(?:and|then|but)\s+(?=(?:what|which|how|where|who|whose|is|are|"
                      r"does|do|can|tell|count)\b)", re.IGNORECASE)
_ASKS = re.compile(
    r"^(?:what|which|how|where|who|whose|why|when|is|are|was|were|does|do|did|can|could|"
    r"count)\b",
    re.IGNORECASE,
)
_FRAMING = re.compile(
    r"^(?:(?:please|hey|hi|ok|so|now)[, ]+)*"
    r"(?:(?:can|could|would|will) you\s+)?(?:please\s+)?"
    r"(?:(?:tell|show|let) me|i (?:want|would like|wonder|need) to know|i wonder|"
    r"(?:do|can) you (?:see|tell)|look(?:ing)? at (?:this|my|the) (?:photo|picture|image|pic)"
    r"(?: and)?|check)\s*[,:]?\s*",
    re.IGNORECASE,
)
_VISUAL = re.compile(
    r"\b(?:how many|count|number of|colou?r|what colou?r|where is|where are|left|right|"
    r"above|below|behind|in front|next to|is there|are there|there (?:is|are) an?y?\b|any\b.*\b(?:in|on) (?:the|this) "
    r"(?:photo|picture|image)|which side|what shape|what is (?:he|she|it|the \w+) doing)",
    re.IGNORECASE,
)


def visual_question(request: str) -> str:
    """The question about the photo inside `request` (the whole request when none is found)."""
    text = " ".join(request.split())
    for sentence in _SENTENCES.split(text):
        clauses = [_reword(_FRAMING.sub("", c.strip()).strip(" ,:;?")) for c in _CLAUSES.split(sentence)]
        clauses = [c for c in clauses if c]
        asking = [c for c in clauses if _ASKS.match(c)]
        if asking:
            return asking[0] + "?"
        if clauses and sentence.rstrip().endswith("?"):
            return clauses[-1] + "?"
    return text


def _reword(clause: str) -> str:
    """Indirect and imperative forms as direct questions: "whether there is a dog" -> "is there
    a dog", "count the stars in it" -> "how many stars are in it"."""
    m = re.match(r"^(?:whether|if)\s+there\s+(is|are)\b(.*)$", clause, re.IGNORECASE)
    if m:
        return f"{m.group(1)} there{m.group(2)}"
    m = re.match(r"^count\s+(?:the\s+|all\s+the\s+)?(\w+)(.*)$", clause, re.IGNORECASE)
    if m:
        rest = m.group(2).strip()
        return f"how many {m.group(1)} are " + (rest or "there")
    return clause


def is_visual_question(request: str) -> bool:
    """Whether the request asks a count, a colour, a position or a presence in a photo."""
    return bool(_VISUAL.search(request))
