"""Split inference: photo-world models cut between device and edge, a learned feature codec, a socket runtime.

This package file holds only what a command line needs before any model loads (the task names and
where the photo pool's manuals are), so `edgeai --help` imports no torch; `base.py` holds the
SplitModel contract and re-exports the task names.
"""

from pathlib import Path
from typing import Literal

Task = Literal["classify", "caption", "vqa"]
TASKS: tuple[Task, ...] = ("classify", "caption", "vqa")
IMAGENET_TASK = "imagenet"
"""The runtime's task for the real pretrained network (EfficientNet-Lite0, ImageNet-1k classes,
`effnet.py`); kept out of TASKS, whose three tasks are the photo world's (generated examples)."""
RUNTIME_TASKS: tuple[str, ...] = (*TASKS, IMAGENET_TASK)
PHOTO_MANUALS = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "photo" / "manuals"
