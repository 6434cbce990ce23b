"""Conversation helpers: which day a request is about, and whether it is a follow-up.

"and what about yesterday?" carries no task of its own: it re-asks the previous request of the
thread for another day. Time words are recognised in the languages the multilingual encoder
covers most often; anything else means today.
"""

from __future__ import annotations

import datetime as dt
import re

_DAY_WORDS = [
    (r"\bday before yesterday\b|\bavant-hier\b|\banteayer\b|\bvorgestern\b|前天", -2),
    (
        r"\byesterday\b|\blast night\b|\bhier\b|\bayer\b|\bgestern\b|\bieri\b|\bontem\b|昨天|昨日",
        -1,
    ),
    (r"\btomorrow\b|\bdemain\b|\bmañana\b|\bmorgen\b|\bdomani\b|\bamanhã\b|明天|明日", 1),
]
_DAYS_AGO = re.compile(r"\b(\d{1,2}) days? ago\b", re.IGNORECASE)
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_FOLLOWUP = re.compile(
    r"^\s*(and|what about|how about|and what about|same for|same but|et|y|und|e|what of|那|还有)\b|"
    r"^\s*(and|et|y|und)?\s*(what|how) about\b|\bsame (thing|question)\b",
    re.IGNORECASE,
)


def day_of(request: str, today: dt.date) -> dt.date:
    """The calendar day a request refers to (today unless it says otherwise)."""
    match = _ISO.search(request)
    if match:
        try:
            return dt.date(*(int(g) for g in match.groups()))
        except ValueError:
            pass
    match = _DAYS_AGO.search(request)
    if match:
        return today - dt.timedelta(days=int(match.group(1)))
    for pattern, offset in _DAY_WORDS:
        if re.search(pattern, request, re.IGNORECASE):
            return today + dt.timedelta(days=offset)
    return today


def looks_like_followup(request: str) -> bool:
    """Short, elliptical turns ("and yesterday?", "what about last night?")."""
    words = request.split()
    return bool(_FOLLOWUP.search(request)) and len(words) <= 8
