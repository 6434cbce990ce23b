"""Our three photo-pool models (classifier, captioner, VQA) as SplitModels over one small ViT encoder.

Each model is a ViT-style image encoder cut into stages - [patch embedding + position embedding,
block 1, ..., block L] - plus a task head that runs on the edge: a linear classifier, a small
transformer decoder with cross-attention (greedy captions), or a fusion transformer over image and
question tokens with an answer classifier. Images are resized 224 -> 64 inside `preprocess`, which
runs on the device, so split point k = 0 still sends the full photo (edge-only baseline).
The encoder costs ~14 M multiply-accumulates per photo; checkpoints are fp16, 0.36-0.6 MB.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from edgeai.errors import UserInputError
from edgeai.tools import checkpoints
from edgeai.tools.split_inference.base import TASKS, Example, SplitModel, Task
from edgeai.tools.split_inference.text import ANSWERS, BOS, CLASSES, EOS, PAD, WORDS, Vocab
from torch import nn

log = logging.getLogger(__name__)

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
MODEL_IDS: dict[str, str] = {
    "classify": "vit-image-classifier",
    "caption": "blip-image-captioner",
    "vqa": "blip-vqa",
}
_MEAN, _STD = 0.5, 0.25


@dataclass
class ModelConfig:
    """Sizes of one model; the encoder part is shared by all three tasks."""

    image_size: int = 64  # preprocess resizes 224 -> this (antialiased bilinear)
    patch: int = 8  # 64 / 8 = 8 x 8 = 64 image tokens
    dim: int = 64  # token width everywhere (encoder, decoder, fusion)
    depth: int = 4  # encoder blocks; n_stages = depth + 1 (the patch embedding is stage 0)
    heads: int = 4
    mlp_ratio: float = 2.0
    head_layers: int = 2  # caption decoder layers / VQA fusion layers (unused by classify)
    max_caption_len: int = 20  # longest caption of the world is 16 tokens + <eos>
    max_question_len: int = 12  # longest question is 8 tokens

    @property
    def n_tokens(self) -> int:
        return (self.image_size // self.patch) ** 2


# ----------------------------------------------------------------------------- building blocks


class Attention(nn.Module):
    """Multi-head attention; q from x, k/v from `context` (self-attention when context is None)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        b, n, d = x.shape
        ctx = x if context is None else context
        q = self.q(x).view(b, n, self.heads, d // self.heads).transpose(1, 2)  # (B, h, N, d/h)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, self.heads, d // self.heads).unbind(2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)  # (B, h, M, d/h)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc = nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm transformer block; with cross=True it also attends to a memory (decoder block)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, cross: bool = False) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ln_x = nn.LayerNorm(dim) if cross else None
        self.xattn = Attention(dim, heads) if cross else None
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask=mask, causal=causal)
        if self.xattn is not None and self.ln_x is not None:
            x = x + self.xattn(self.ln_x(x), context=memory)
        return x + self.mlp(self.ln_2(x))


class ConvStem(nn.Module):
    """Patch embedding as a few stride-2 3x3 convolutions instead of one 8x8 patchify: the same
    (B, N, dim) tokens, but a ViT trained from scratch on little compute learns far faster
    (Xiao et al., "Early convolutions help transformers see better", 2021)."""

    def __init__(self, dim: int, patch: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch, width = 3, max(8, dim // 4)
        for _ in range(int(math.log2(patch))):
            layers += [nn.Conv2d(ch, width, 3, stride=2, padding=1), nn.BatchNorm2d(width),
                       nn.GELU()]
            ch, width = width, width * 2
        layers.append(nn.Conv2d(ch, dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 3, S, S) -> (B, dim, S/patch, S/patch)


class ImageEncoder(nn.Module):
    """Stage 0: patch embedding (conv stem) + position embedding; stages 1..depth: blocks."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.patch & (cfg.patch - 1) or cfg.patch < 2:
            raise UserInputError(f"patch must be a power of two >= 2, got {cfg.patch}")
        self.patch_embed = ConvStem(cfg.dim, cfg.patch)
        self.pos = nn.Parameter(torch.randn(1, cfg.n_tokens, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.depth))

    def stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        if i == 0:  # (B, 3, S, S) -> (B, N, dim)
            return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.blocks[i - 1](x)  # (B, N, dim)


# ----------------------------------------------------------------------------- the models


class PhotoModel(SplitModel):
    """Shared encoder, preprocessing and stage bookkeeping of the three photo-world models."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ImageEncoder(cfg)
        self.enc_norm = nn.LayerNorm(cfg.dim)
        self.model_id = MODEL_IDS[self.task]

    @property
    def n_stages(self) -> int:
        return self.cfg.depth + 1

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """[B, H, W, 3] uint8 -> (B, 3, S, S) normalised float on the model's device."""
        if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[-1] != 3:
            shape = getattr(images, "shape", type(images).__name__)
            raise UserInputError(f"images must be a [B, H, W, 3] uint8 array, got {shape}")
        if images.dtype != np.uint8:
            raise UserInputError(f"images must be uint8, got {images.dtype}")
        dev = self.encoder.pos.device
        x = torch.from_numpy(np.ascontiguousarray(images)).to(dev).permute(0, 3, 1, 2).float()
        s = self.cfg.image_size
        x = F.interpolate(x / 255.0, size=(s, s), mode="bilinear", antialias=True,
                          align_corners=False)
        return (x - _MEAN) / _STD  # (B, 3, S, S)

    def _check_k(self, k: int) -> None:
        if not 0 <= k <= self.n_stages:
            raise UserInputError(f"split point {k} is outside 0..{self.n_stages}")

    def run_stages(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        if not 0 <= start <= stop <= self.n_stages:
            raise UserInputError(
                f"stages [{start}, {stop}) are not within 0..{self.n_stages} in order")
        for i in range(start, stop):
            x = self.encoder.stage(i, x)
        return x

    def encode_from(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Finish the encoder from split point k: (B, N, dim) normalised image tokens."""
        self._check_k(k)
        return self.enc_norm(self.run_stages(h, k, self.n_stages))

    def macs(self) -> int:
        """Multiply-accumulates of the image encoder's forward pass for one image (profiles)."""
        c = self.cfg
        n, d = c.n_tokens, c.dim
        total, side = 0, c.image_size
        for layer in self.encoder.patch_embed.net:
            if isinstance(layer, nn.Conv2d):
                side = (side + 2 * layer.padding[0] - layer.kernel_size[0]) // layer.stride[0] + 1
                total += side * side * layer.out_channels * layer.in_channels * \
                    layer.kernel_size[0] * layer.kernel_size[1]
        per_block = n * (4 * d * d + 2 * d * int(d * c.mlp_ratio)) + 2 * n * n * d
        return total + c.depth * per_block


class ViTClassifier(PhotoModel):
    """Image classification: final norm, mean pooling over tokens, linear over the class names."""

    task: Task = "classify"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.classes: tuple[str, ...] = CLASSES
        self.head = nn.Linear(cfg.dim, len(self.classes))

    def logits_from(self, h: torch.Tensor, k: int) -> torch.Tensor:
        return self.head(self.encode_from(h, k).mean(1))  # (B, classes)

    @torch.no_grad()
    def predict_from(
        self, h: torch.Tensor, k: int, questions: list[str | None] | None = None
    ) -> list[str]:
        return [self.classes[i] for i in self.logits_from(h, k).argmax(-1).tolist()]

    def loss_from(self, h: torch.Tensor, k: int, examples: list[Example]) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.classes)}
        y = torch.tensor([index[e.targets[0]] for e in examples], device=h.device)
        return F.cross_entropy(self.logits_from(h, k), y)


class Captioner(PhotoModel):
    """Captioning: a causal transformer decoder cross-attending to the image tokens; greedy.

    Trained on the canonical (first) reference caption of each image, so greedy decoding
    settles on one phrasing instead of blending five.
    """

    task: Task = "caption"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.vocab: Vocab = WORDS
        self.tok = nn.Embedding(len(self.vocab), cfg.dim)
        self.tok_pos = nn.Parameter(torch.randn(1, cfg.max_caption_len, cfg.dim) * 0.02)
        self.decoder = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio, cross=True)
                                     for _ in range(cfg.head_layers))
        self.ln_f = nn.LayerNorm(cfg.dim)
        self.lm_head = nn.Linear(cfg.dim, len(self.vocab))

    def decode_logits(self, memory: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) input ids -> (B, T, vocab) next-token logits."""
        x = self.tok(ids) + self.tok_pos[:, : ids.shape[1]]  # (B, T, dim)
        for block in self.decoder:
            x = block(x, memory=memory, causal=True)
        return self.lm_head(self.ln_f(x))

    @torch.no_grad()
    def predict_from(
        self, h: torch.Tensor, k: int, questions: list[str | None] | None = None
    ) -> list[str]:
        memory = self.encode_from(h, k)  # (B, N, dim)
        b = memory.shape[0]
        bos, eos = self.vocab.id(BOS), self.vocab.id(EOS)
        ids = torch.full((b, 1), bos, dtype=torch.long, device=memory.device)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for _ in range(self.cfg.max_caption_len - 1):
            nxt = self.decode_logits(memory, ids)[:, -1].argmax(-1)  # (B,)
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
            ids = torch.cat([ids, nxt[:, None]], 1)
            done |= nxt == eos
            if bool(done.all()):
                break
        return [self.vocab.decode(row[1:]) for row in ids.tolist()]

    def loss_from(self, h: torch.Tensor, k: int, examples: list[Example]) -> torch.Tensor:
        memory = self.encode_from(h, k)
        seq = self.vocab.encode_batch([e.targets[0] for e in examples],
                                      self.cfg.max_caption_len + 1, bos=True, eos=True)
        seq = seq.to(memory.device)  # (B, T+1): <bos> words <eos> <pad>...
        logits = self.decode_logits(memory, seq[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1),
                               ignore_index=self.vocab.id(PAD))


class VQAModel(PhotoModel):
    """VQA: [answer token, question tokens, image tokens] through a fusion transformer, then a
    classifier over the canonical answers, read at the answer token."""

    task: Task = "vqa"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.vocab: Vocab = WORDS
        self.answers: Vocab = ANSWERS
        self.tok = nn.Embedding(len(self.vocab), cfg.dim)
        self.q_pos = nn.Parameter(torch.randn(1, cfg.max_question_len, cfg.dim) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, cfg.dim) * 0.02)
        self.type_emb = nn.Parameter(torch.randn(2, cfg.dim) * 0.02)  # question / image
        self.fusion = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.head_layers))
        self.ln_f = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, len(self.answers))

    def logits_from(self, h: torch.Tensor, k: int, questions: list[str | None] | None
                    ) -> torch.Tensor:
        if questions is None or any(not q for q in questions):
            raise UserInputError("VQA needs one non-empty question per image")
        memory = self.encode_from(h, k)  # (B, N, dim)
        if len(questions) != memory.shape[0]:
            raise UserInputError(
                f"{len(questions)} questions for {memory.shape[0]} images")
        ids = self.vocab.encode_batch([str(q) for q in questions], self.cfg.max_question_len)
        ids = ids.to(memory.device)  # (B, Q)
        q = self.tok(ids) + self.q_pos + self.type_emb[0]
        img = memory + self.type_emb[1]
        x = torch.cat([self.cls.expand(len(ids), -1, -1), q, img], 1)  # (B, 1+Q+N, dim)
        keep = torch.cat([torch.ones(len(ids), 1, dtype=torch.bool, device=ids.device),
                          ids != self.vocab.id(PAD),
                          torch.ones(img.shape[:2], dtype=torch.bool, device=ids.device)], 1)
        mask = keep[:, None, None, :]  # (B, 1, 1, T): True = may attend
        for block in self.fusion:
            x = block(x, mask=mask)
        logits = self.head(self.ln_f(x[:, 0]))  # (B, answers)
        unk = torch.arange(logits.shape[1], device=logits.device) == self.answers.id("<unk>")
        return logits.masked_fill(unk, -1e4)  # never answer <unk>

    @torch.no_grad()
    def predict_from(
        self, h: torch.Tensor, k: int, questions: list[str | None] | None = None
    ) -> list[str]:
        idx = self.logits_from(h, k, questions).argmax(-1).tolist()
        return [self.answers.tokens[i] for i in idx]

    def loss_from(self, h: torch.Tensor, k: int, examples: list[Example]) -> torch.Tensor:
        """Soft-target cross-entropy against the annotators' answers (VQA-style soft scores
        min(count/3, 1), normalised), so synonyms and slips do not fight the canonical answer."""
        logits = self.logits_from(h, k, [e.question for e in examples])
        target = torch.zeros_like(logits)
        for i, e in enumerate(examples):
            for a in set(e.targets):
                j = self.answers.id(a)
                if self.answers.tokens[j] == a:
                    target[i, j] = min(e.targets.count(a) / 3.0, 1.0)
        target = target / target.sum(1, keepdim=True).clamp_min(1e-6)
        return -(target * F.log_softmax(logits, -1)).sum(1).mean()


_CLASSES: dict[str, type[PhotoModel]] = {
    "classify": ViTClassifier, "caption": Captioner, "vqa": VQAModel,
}


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise UserInputError(f"unknown task '{task}' (choose from {', '.join(TASKS)})")


def build_model(task: Task, **config: object) -> PhotoModel:
    """A freshly initialised model for `task`; keyword arguments override ModelConfig fields."""
    _check_task(task)
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise UserInputError(f"unknown model config field(s): {', '.join(unknown)}")
    return _CLASSES[task](ModelConfig(**config))  # type: ignore[arg-type]


def save_model(model: PhotoModel, path: str | Path) -> Path:
    """Write task, config and an fp16 state dict to `path` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"task": model.task, "config": asdict(model.cfg), "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def checkpoint_path(task: Task, checkpoint_dir: str | Path | None = None) -> Path:
    """Where the model of `task` lives: <checkpoint_dir or the shipped dir>/<task>.pt."""
    _check_task(task)
    return Path(checkpoint_dir or CHECKPOINT_DIR) / f"{task}.pt"


def load_model(task: Task, checkpoint_dir: str | Path | None = None) -> PhotoModel:
    """The trained model of `task` (shipped weights by default), float32, eval mode;
    WeightsError when the file is missing, unreadable or holds another task's model."""
    return checkpoints.load(
        checkpoint_path(task, checkpoint_dir),
        f"{task} checkpoint",
        _model_from,
        hint=f"train one: edgeai split train-model --task {task}",
        expect={"task": task},
    )


def _model_from(blob: dict) -> PhotoModel:
    model = build_model(blob["task"], **blob["config"])
    model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    return model.eval()
