"""The contract of split inference: an image encoder cut into stages, a task head, and the split point.

Every model that can run across device and edge (our photo-world models, the Hugging Face ViT/BLIP
adapters) implements `SplitModel`. A *split point* k in 0..n_stages means: the device runs encoder
stages [0, k), sends the activation, and the edge runs stages [k, n_stages) and the head.
k = 0 sends the image itself (edge-only); k = n_stages with the head on the device is client-only.

Stage 0 takes the preprocessed pixels (`preprocess`); every stage's output is a float tensor
[B, tokens, dim]. The head answers with strings (class name, caption, answer) so the runtime,
the metrics and the graph never see task-specific tensors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch
from edgeai.tools.split_inference import TASKS, Task
from torch import nn

__all__ = ["TASKS", "Example", "SplitModel", "Task"]


def image_batch(images: np.ndarray) -> np.ndarray:
    """[B, H, W, 3] uint8 (one H x W x 3 image becomes a batch of one); a clear error otherwise."""
    from edgeai.errors import UserInputError

    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise UserInputError(
            f"images must be uint8 [B, H, W, 3], got {images.dtype} {list(images.shape)}"
        )
    return images


def input_side(model: object, default: int = 224) -> int:
    """The side a model resizes its photo to (the photo-world models' cfg.image_size), else
    `default`: what edge-only need not send more than."""
    cfg = getattr(model, "cfg", None)
    return int(getattr(cfg, "image_size", default))


@dataclass
class Example:
    """One labelled request: an RGB image, the question (VQA only) and the accepted targets.

    targets: [label] for classify, the reference captions for caption, the accepted answers
    (10 annotator answers, VQA-style, may repeat) for vqa.
    """

    image: np.ndarray  # H x W x 3, uint8
    question: str | None = None
    targets: list[str] = field(default_factory=list)


class SplitModel(nn.Module, ABC):
    """An image model whose encoder is a sequence of stages followed by a task head."""

    task: Task
    model_id: str  # the manual's model id this network serves (e.g. "vit-image-classifier")

    @property
    @abstractmethod
    def n_stages(self) -> int:
        """Number of encoder stages; valid split points are 0..n_stages."""

    @abstractmethod
    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """[B, H, W, 3] uint8 -> the input of stage 0 (float, on the model's device)."""

    @abstractmethod
    def run_stages(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Run encoder stages [start, stop) on x (stage `start`'s input)."""

    @abstractmethod
    def predict_from(
        self, h: torch.Tensor, k: int, questions: list[str | None] | None = None
    ) -> list[str]:
        """Finish from split point k: stages [k, n_stages) then the head; one string per item."""

    @abstractmethod
    def loss_from(self, h: torch.Tensor, k: int, examples: list[Example]) -> torch.Tensor:
        """Training loss (scalar) of the task when the activation at split point k is h."""

    def features(self, images: np.ndarray, k: int) -> torch.Tensor:
        """The activation at split point k for a batch of uint8 images."""
        return self.run_stages(self.preprocess(images), 0, k)

    @torch.no_grad()
    def predict(self, images: np.ndarray, questions: list[str | None] | None = None) -> list[str]:
        """Whole model in one place (client-only or edge-only)."""
        return self.predict_from(self.preprocess(images), 0, questions)
