"""What the `edgeai split` command modules share: task choices, how a shipped checkpoint path
appears in a reproducing command, flag checks and result tables (rich, imported when printing)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from edgeai.errors import UserInputError
from edgeai.tools import split_inference
from edgeai.tools.split_inference import TASKS

if TYPE_CHECKING:
    from rich.table import Table

TASK_CHOICES: tuple[str, ...] = TASKS
SHIPPED = Path(split_inference.__file__).resolve().parent / "checkpoints"
"""Where the package's model and codec checkpoints live (models.CHECKPOINT_DIR, codec's too)."""


def shown(path: Path) -> str:
    """`path` as a reproducing command shows it: repository-relative for a shipped checkpoint."""
    try:
        return f"tools/split_inference/checkpoints/{path.resolve().relative_to(SHIPPED)}"
    except ValueError:
        return str(path)


def check_positive(args: argparse.Namespace, *flags: str) -> None:
    """Refuse any of `flags` that is given and not > 0 (one left at None takes its default)."""
    for flag in flags:
        value = getattr(args, flag)
        if value is not None and not value > 0:
            raise UserInputError(f"--{flag.replace('_', '-')} must be > 0, got {value}")


def table(columns: list[str], rows: list[list[str]], title: str | None = None) -> Table:
    """A rich table whose first column is left-aligned and the others right-aligned."""
    from rich.table import Table

    out = Table(title=title)
    for i, col in enumerate(columns):
        out.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        out.add_row(*row)
    return out
