"""Split inference: photo-world models cut between device and edge, a learned feature codec, a socket runtime.

This package file holds only what a command line needs before any model loads (the task names and
where the photo pool's manuals are), so `edgeai --help` imports no torch; `base.py` holds the
SplitModel contract and re-exports the task names.
"""

from pathlib import Path
from typing import Literal

Task = Literal["classify", "caption", "vqa"]
TASKS: tuple[Task, ...] = ("classify", "caption", "vqa")
PHOTO_MANUALS = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "photo" / "manuals"
