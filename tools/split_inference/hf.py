"""Hugging Face ViT / BLIP checkpoints from a local folder, cut at transformer-block boundaries (SplitModel).

`load_hf_model(path, task)` loads ViTForImageClassification (classify), BlipForConditionalGeneration
(caption) or BlipForQuestionAnswering (vqa) with `local_files_only=True` (nothing is ever downloaded)
and wraps it so that the vision tower is a sequence of stages:

    stage 0      = the patch + position embeddings     (pixels [B, 3, S, S] -> [B, tokens, hidden])
    stage i >= 1 = encoder block i                      ([B, tokens, hidden] -> same)

and the head is what follows the tower in the original model: the final layernorm and the classifier
on the [CLS] token (ViT); the post-layernorm and greedy text-decoder generation (BLIP captioning); the
post-layernorm, the question encoder cross-attending to the image and the answer decoder (BLIP VQA).
Running stages [0, k) then `predict_from(h, k)` computes exactly what the unsplit model computes.
Decoding is greedy (as BLIP's `generate` with default settings). For VQA the answer decoder attends
to the question tokens under the question's padding mask (as BLIP's training forward does; its
`generate` attends to padding too), so a batch of questions of different lengths answers each
question as it would alone.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.errors import UserInputError, WeightsError
from edgeai.tools.split_inference.base import TASKS, Example, SplitModel, Task, image_batch
from PIL import Image
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)

# The manual model ids these networks serve (knowledge/samples/photo/manuals).
DEFAULT_MODEL_IDS: dict[str, str] = {
    "classify": "vit-image-classifier",
    "caption": "blip-image-captioner",
    "vqa": "blip-vqa",
}
# task -> (config model_type, transformers class name)
_ARCHITECTURES: dict[str, tuple[str, str]] = {
    "classify": ("vit", "ViTForImageClassification"),
    "caption": ("blip", "BlipForConditionalGeneration"),
    "vqa": ("blip", "BlipForQuestionAnswering"),
}
# BLIP's preprocessing when a folder has no preprocessor_config.json (OpenAI CLIP statistics).
_BLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_BLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _offline() -> None:
    """Never touch the hub, whatever the caller's environment says."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _check_folder(path: Path, task: str) -> dict[str, Any]:
    if task not in TASKS:
        raise UserInputError(f"unknown task '{task}' (expected one of: {', '.join(TASKS)})")
    if not path.exists():
        raise WeightsError(f"{path}: no such folder (expected a Hugging Face model folder)")
    if not path.is_dir():
        raise WeightsError(f"{path}: not a folder (expected a Hugging Face model folder)")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise WeightsError(f"{path}: no config.json (not a Hugging Face model folder)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{config_file}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{config_file}: not a JSON object")
    model_type, class_name = _ARCHITECTURES[task]
    found_type = config.get("model_type")
    if found_type != model_type:
        raise WeightsError(
            f"{path}: config model_type is '{found_type}', task '{task}' needs a '{model_type}' "
            f"checkpoint ({class_name})"
        )
    architectures = config.get("architectures") or []
    if architectures and class_name not in architectures:
        raise WeightsError(
            f"{path}: checkpoint architecture is {', '.join(map(str, architectures))}, "
            f"task '{task}' needs {class_name}"
        )
    return config


def _from_pretrained(cls: Any, path: Path) -> nn.Module:
    from safetensors import SafetensorError

    try:
        model, info = cls.from_pretrained(path, local_files_only=True, output_loading_info=True)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: cannot load {cls.__name__}: {first}") from None
    mismatched = sorted(
        str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys") or []
    )
    if mismatched:
        raise WeightsError(
            f"{path}: weights of the wrong shape for {cls.__name__} ({', '.join(mismatched[:3])})"
        )
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise WeightsError(
            f"{path}: weights missing for {len(missing)} tensors of {cls.__name__} ({shown})"
        )
    model.eval()
    return model


class _Pixels:
    """uint8 images -> pixel tensor: the folder's image processor, else resize + normalise from config."""

    def __init__(self, path: Path, image_size: int, mean: tuple, std: tuple, resample: int) -> None:
        self.processor = None
        if (path / "preprocessor_config.json").is_file():
            from transformers import AutoImageProcessor

            try:
                self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise WeightsError(f"{path}: bad preprocessor_config.json: {exc}") from None
        self.image_size, self.resample = image_size, resample
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, images: np.ndarray) -> torch.Tensor:
        images = image_batch(images)
        if self.processor is not None:
            return self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        size = (self.image_size, self.image_size)
        resized = np.stack(
            [np.asarray(Image.fromarray(im).resize(size, resample=self.resample)) for im in images]
        )
        x = torch.from_numpy(resized).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, S, S)
        return (x - self.mean) / self.std


class HFSplitModel(SplitModel):
    """A Hugging Face vision(-language) model whose vision tower is cut into embeddings + blocks."""

    def __init__(
        self,
        hf: nn.Module,
        embeddings: nn.Module,
        blocks: nn.ModuleList,
        pixels: _Pixels,
        task: Task,
        model_id: str,
        path: Path,
    ) -> None:
        super().__init__()
        self.hf = hf
        self.embeddings = embeddings
        self.blocks = blocks
        self._pixels = pixels
        self.task = task
        self.model_id = model_id
        self.path = path

    @property
    def n_stages(self) -> int:
        return 1 + len(self.blocks)

    def stage_modules(self) -> list[nn.Module]:
        """The module of every stage (for parameter counts)."""
        return [self.embeddings, *self.blocks]

    @property
    def _device(self) -> torch.device:
        return next(self.hf.parameters()).device

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        return self._pixels(images).to(self._device)

    def run_stages(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        if not 0 <= start <= stop <= self.n_stages:
            raise UserInputError(
                f"stages [{start}, {stop}) out of range for a model of {self.n_stages} stages"
            )
        for i in range(start, stop):
            x = self.embeddings(x) if i == 0 else self.blocks[i - 1](x)  # (B, tokens, hidden)
        return x

    def _tower(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Stages [k, n) of the vision tower: the last hidden state before the head."""
        return self.run_stages(h, k, self.n_stages)


class HFViTClassifier(HFSplitModel):
    """ViTForImageClassification: head = final layernorm + linear classifier on the [CLS] token."""

    def logits_from(self, h: torch.Tensor, k: int) -> torch.Tensor:
        hidden = self.hf.vit.layernorm(self._tower(h, k))  # (B, tokens, hidden)
        return self.hf.classifier(hidden[:, 0, :])  # (B, num_labels)

    @torch.no_grad()
    def predict_from(
        self, h: torch.Tensor, k: int, questions: list[str | None] | None = None
    ) -> list[str]:
        id2label = self.hf.config.id2label
        return [str(id2label[int(i)]) for i in self.logits_from(h, k).argmax(dim=-1)]

    def loss_from(self, h: torch.Tensor, k: int, examples: list[Example]) -> torch.Tensor:
        label2id = {str(name): int(i) for name, i in self.hf.config.label2id.items()}
        labels = []
        for ex in examples:
            if not ex.targets or ex.targets[0] not in label2id:
                raise UserInputError(
                    f"classification target {ex.targets[:1]} is not a label of {self.path}"
                )
            labels.append(label2id[ex.targets[0]])
        target = torch.tensor(labels, dtype=torch.long, device=h.device)
        return F.cross_entropy(self.logits_from(h, k), target)


class _BlipText(HFSplitModel):
    """Shared BLIP text machinery: tokenizer, greedy decoding, teacher-forced sequence losses."""

    def __init__(self, *args: Any, tokenizer: Any, max_new_tokens: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        text = self.hf.config.text_config
        self.bos_id, self.sep_id, self.pad_id = (
            text.bos_token_id,
            text.sep_token_id,
            text.pad_token_id,
        )
        self.max_text = int(text.max_position_embeddings)

    def _image_embeds(self, h: torch.Tensor, k: int) -> torch.Tensor:
        return self.hf.vision_model.post_layernorm(self._tower(h, k))  # (B, tokens, hidden)

    def _tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_text, return_tensors="pt"
        )
        return enc["input_ids"].to(self._device), enc["attention_mask"].to(self._device)

    def _generate(self, memory: torch.Tensor, memory_mask: torch.Tensor) -> list[str]:
        """Greedy answer decoding cross-attending to `memory` (as BLIP's own generate)."""
        bos = torch.full((memory.size(0), 1), self.bos_id, dtype=torch.long, device=memory.device)
        out = self.hf.text_decoder.generate(
            input_ids=bos,
            eos_token_id=self.sep_id,
            pad_token_id=self.pad_id,
            encoder_hidden_states=memory,
            encoder_attention_mask=memory_mask,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            num_beams=1,
        )
        return [s.strip() for s in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _sequence_loss(
        self,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
        texts: list[str],
        weights: torch.Tensor,
    ) -> torch.Tensor:
        """Weighted teacher-forced next-token loss of `texts` given their memories (one row each)."""
        ids, mask = self._tokens(texts)
        ids = ids.clone()
        ids[:, 0] = self.bos_id  # the decoder starts from [DEC], as in generation
        labels = ids.masked_fill(mask == 0, -100)
        logits = self.hf.text_decoder(
            input_ids=ids,
            attention_mask=mask,
            encoder_hidden_states=memory,
            encoder_attention_mask=memory_mask,
            return_logits=False,
        ).logits  # (N, T, vocab)
        smoothing = float(getattr(self.hf.text_decoder, "label_smoothing", 0.0) or 0.0)
        per_token = F.cross_entropy(
            logits[:, :-1].transpose(1, 2),
            labels[:, 1:],
            ignore_index=-100,
            reduction="none",
            label_smoothing=smoothing,
        )  # (N, T-1)
        counts = (labels[:, 1:] != -100).sum(dim=1).clamp(min=1)
        per_seq = per_token.sum(dim=1) / counts
        return (per_seq * weights.to(per_seq.device)).sum()


class HFBlipCaptioner(_BlipText):
    """BlipForConditionalGeneration: head = post-layernorm + greedy text decoder."""

    @torch.no_grad()
    def predict_from(
        self, h: torch.Tensor, k: int, questions: list[str | None] | None = None
    ) -> list[str]:
        embeds = self._image_embeds(h, k)
        mask = torch.ones(embeds.shape[:-1], dtype=torch.long, device=embeds.device)
        return self._generate(embeds, mask)

    def loss_from(self, h: torch.Tensor, k: int, examples: list[Example]) -> torch.Tensor:
        """Mean over images of the mean loss of their reference captions."""
        embeds = self._image_embeds(h, k)
        rows, texts, weights = [], [], []
        for i, ex in enumerate(examples):
            if not ex.targets:
                raise UserInputError("a caption example needs at least one reference caption")
            for caption in ex.targets:
                rows.append(i)
                texts.append(caption)
                weights.append(1.0 / (len(ex.targets) * len(examples)))
        memory = embeds[torch.tensor(rows, device=embeds.device)]
        mask = torch.ones(memory.shape[:-1], dtype=torch.long, device=memory.device)
        return self._sequence_loss(memory, mask, texts, torch.tensor(weights))


class HFBlipVQA(_BlipText):
    """BlipForQuestionAnswering: head = post-layernorm, question encoder, greedy answer decoder."""

    def _questions(self, questions: list[str | None] | None, batch: int) -> list[str]:
        if questions is None or len(questions) != batch or any(not q for q in questions):
            raise UserInputError(f"VQA needs one non-empty question per image ({batch} images)")
        return [str(q) for q in questions]

    def _question_embeds(
        self, h: torch.Tensor, k: int, questions: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        embeds = self._image_embeds(h, k)
        image_mask = torch.ones(embeds.shape[:-1], dtype=torch.long, device=embeds.device)
        ids, mask = self._tokens(questions)
        q = self.hf.text_encoder(
            input_ids=ids,
            attention_mask=mask,
            encoder_hidden_states=embeds,
            encoder_attention_mask=image_mask,
        ).last_hidden_state  # (B, question tokens, text hidden)
        return q, mask

    @torch.no_grad()
    def predict_from(
        self, h: torch.Tensor, k: int, questions: list[str | None] | None = None
    ) -> list[str]:
        q, mask = self._question_embeds(h, k, self._questions(questions, h.size(0)))
        return self._generate(q, mask)

    def loss_from(self, h: torch.Tensor, k: int, examples: list[Example]) -> torch.Tensor:
        """Answer loss weighted by how many annotators gave each answer (BLIP's VQA objective)."""
        q, mask = self._question_embeds(
            h, k, self._questions([e.question for e in examples], h.size(0))
        )
        rows, texts, weights = [], [], []
        for i, ex in enumerate(examples):
            if not ex.targets:
                raise UserInputError("a VQA example needs at least one accepted answer")
            for answer, count in Counter(ex.targets).items():
                rows.append(i)
                texts.append(answer)
                weights.append(count / (len(ex.targets) * len(examples)))
        index = torch.tensor(rows, device=q.device)
        return self._sequence_loss(q[index], mask[index], texts, torch.tensor(weights))


def _tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    if not any((path / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise WeightsError(
            f"{path}: no tokenizer (tokenizer.json or vocab.txt) for the text decoder"
        )
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot load the tokenizer: {exc}") from None


def load_hf_model(
    path: str | Path,
    task: Task,
    model_id: str | None = None,
    max_new_tokens: int | None = None,
) -> HFSplitModel:
    """Load a local Hugging Face checkpoint for `task` as a SplitModel (never downloads).

    max_new_tokens: decoding budget of caption (default 20) and VQA answers (default 10).
    """
    _offline()
    path = Path(path).expanduser()
    config = _check_folder(path, task)
    import transformers

    model_id = model_id or DEFAULT_MODEL_IDS[task]
    if task == "classify":
        hf = _from_pretrained(transformers.ViTForImageClassification, path)
        vit = hf.vit
        blocks = vit.layers if hasattr(vit, "layers") else vit.encoder.layer
        size = int(hf.config.image_size)
        pixels = _Pixels(path, size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), Image.BILINEAR)
        return HFViTClassifier(hf, vit.embeddings, blocks, pixels, task, model_id, path)
    cls = (
        transformers.BlipForConditionalGeneration
        if task == "caption"
        else transformers.BlipForQuestionAnswering
    )
    tokenizer = _tokenizer(path)
    hf = _from_pretrained(cls, path)
    vision = hf.vision_model
    size = int(hf.config.vision_config.image_size)
    pixels = _Pixels(path, size, _BLIP_MEAN, _BLIP_STD, Image.BICUBIC)
    adapter = HFBlipCaptioner if task == "caption" else HFBlipVQA
    log.debug("loaded %s (%s) from %s", model_id, config.get("model_type"), path)
    return adapter(
        hf,
        vision.embeddings,
        vision.encoder.layers,
        pixels,
        task,
        model_id,
        path,
        tokenizer=tokenizer,
        max_new_tokens=max_new_tokens or (20 if task == "caption" else 10),
    )
