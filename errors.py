"""Typed errors that the CLI and API edges turn into one-line messages and exit status 2, and
`lookup`, the one way a named entry (solver, scenario, ...) is fetched with that message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

V = TypeVar("V")


class EdgeAIError(Exception):
    """Base class for every error a user can fix: bad input, missing home, unknown id."""

    exit_code = 2


class UserInputError(EdgeAIError):
    """A request, flag or file the user gave is invalid."""


class HomeNotFoundError(EdgeAIError):
    """The data home does not exist or holds no store."""


class ManualError(EdgeAIError):
    """A device manual does not parse or conflicts with the store; names file and field."""

    def __init__(self, file: str, field: str, message: str) -> None:
        self.file, self.field = file, field
        super().__init__(f"{file}: field '{field}': {message}")


class UnknownThreadError(EdgeAIError):
    """A follow-up names a conversation thread that has no checkpoint."""


class WeightsError(EdgeAIError):
    """Shipped or user-given weights are missing or cannot be loaded; names the file."""


def lookup(table: Mapping[str, V], name: str, what: str, known: Iterable[str] | None = None) -> V:
    """`table[name]`, or a UserInputError "unknown <what> '<name>' (known: ...)" listing `known`
    (default: the table's names, sorted)."""
    try:
        return table[name]
    except KeyError:
        names = sorted(table) if known is None else known
        raise UserInputError(f"unknown {what} '{name}' (known: {', '.join(names)})") from None
