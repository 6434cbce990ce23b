"""Typed input errors of the healthcare-home models; all are EdgeAIError, so the CLI prints one line.

(A model that does not run here is `tools.runtimes.ModelNotInstalledError`, shared by every runtime.)
"""

from __future__ import annotations

from edgeai.errors import UserInputError


class MissingInputError(UserInputError):
    """A consumer model was called without an input it declares (e.g. mood-from-vitals without a rate)."""

    def __init__(self, model: str, missing: str, given: list[str]) -> None:
        self.model, self.missing = model, missing
        have = ", ".join(sorted(given)) or "nothing"
        super().__init__(
            f"model '{model}' needs input '{missing}' (got {have}); run the model that outputs "
            f"'{missing}' first and pass its outputs as upstream"
        )


class InvalidInputError(UserInputError):
    """An upstream value has the wrong type or is out of the physical range the model accepts."""

    def __init__(self, model: str, name: str, message: str) -> None:
        self.model, self.name = model, name
        super().__init__(f"model '{model}': input '{name}': {message}")
