"""Task-oriented feature codec at the split point: analysis MLP, quantiser, entropy model, synthesis MLP.

Paper section III-A3: the device runs the encoder up to split point k, maps each token's
activation (D numbers) to C latent channels, rounds them and range-codes them with a learned
factorised entropy model (`entropy.EntropyBottleneck`); the edge decodes, maps the C channels
back to D and continues the frozen model. The codec is trained for the task (task loss plus
lambda times the rate, `train_codec.py`), so it keeps only what the head needs.

Wire format of `compress` (little-endian): magic 0xEC, format version, T (uint16), CRC-32 of
(codec tag + payload), then the range coder's uint32 words. The codec tag is a checksum of the
codec's symbol tables and shape, so bytes from another codec or corrupted in transit fail the
CRC with a `CodecError` instead of decoding into a plausible but wrong tensor.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from edgeai.errors import EdgeAIError
from edgeai.tools import checkpoints
from edgeai.tools.split_inference.entropy import CodecError, EntropyBottleneck
from torch import nn

MAGIC = 0xEC
FORMAT_VERSION = 1
_HEADER = struct.Struct("<BBHI")  # magic, version, tokens, crc32
HEADER_BYTES = _HEADER.size
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"

# The shipped codec each task uses by default (file names under CHECKPOINT_DIR); chosen in
# checkpoints/manifest.json by held-out quality within 0.5 points of the uncompressed model.
DEFAULT_CODECS: dict[str, str] = {
    "caption": "codec-caption-k4-lam3e-5.pt",
    "classify": "codec-classify-k4-lam1e-4.pt",
    "vqa": "codec-vqa-k1-lam1e-4-4k.pt",
}
OTHER_SPLIT_CODECS: dict[str, tuple[str, ...]] = {
    "caption": ("codec-caption-k2-lam1e-6.pt",),
    "classify": ("codec-classify-k1-lam1e-6.pt",),
    "vqa": (),
}
"""Shipped codecs at other split points that the runtime also loads, so the partition can pick
an earlier cut where device compute costs more than the default codec's fewer bytes save."""
EFFNET_CODECS: tuple[str, ...] = (
    "codec-effnet-k7-lam1e-8-linear192-g9.pt",
    "codec-effnet-k7-lam1e-8-linear192-g6.pt",
    "codec-effnet-k7-lam1e-8-linear192-g14.pt",
    "codec-effnet-k8-lam3e-6.pt",
    "codec-effnet-k8-lam1e-6.pt",
)
"""EfficientNet-Lite0's shipped label-free codecs (task 'imagenet'), the runtime's default first
(the cheapest one reaching 99 % top-1 agreement on the held-out photos, docs/BENCHMARKS.md);
trained by `edgeai split train-effnet-codec` (checkpoints/manifest-effnet.json)."""
# The runtime holds only the default: the others trade agreement for bytes (the k=8 MLP codecs
# agree on 37-55 %), and a partition choosing by bytes alone must not pick them.
RUNTIME_CODECS: dict[str, tuple[str, ...]] = {"imagenet": EFFNET_CODECS[:1]}


@dataclass
class CodecMeta:
    """What a shipped codec is for and how it was shaped; saved next to its weights."""

    model_id: str  # the SplitModel it was trained against (frozen)
    task: str
    split: int  # split point k: the codec sits between stage k-1 and stage k
    lam: float  # rate weight: loss = task loss + lam * bits per image
    channels: int  # latent channels C per token
    d_model: int  # activation width D at the split point
    hidden: int  # width of the analysis / synthesis MLPs
    init_gain: float = 1.0  # initial latent gain: quantisation step 1/gain in analysis units
    arch: str = "mlp"  # "mlp": LayerNorm + MLP transforms; "linear": one affine map each way


ARCHS = ("mlp", "linear")


class FeatureCodec(nn.Module):
    """Compresses split-point activations [B, T, D] into bits and back (see module docstring)."""

    def __init__(self, meta: CodecMeta) -> None:
        super().__init__()
        self.meta = meta
        d, c, hdim = meta.d_model, meta.channels, meta.hidden
        if meta.arch == "linear":
            # A learned transform coder (a trained KLT): per token, an affine map to C channels,
            # a per-channel quantisation step, the entropy model, and an affine map back. With
            # C = D and fine steps it is near-lossless, which the MLP's LayerNorm (it drops
            # each token's scale) and bottleneck cannot be.
            self.analysis: nn.Module = nn.Linear(d, c)
            self.synthesis: nn.Module = nn.Linear(c, d)
        elif meta.arch == "mlp":
            self.analysis = nn.Sequential(
                nn.LayerNorm(d), nn.Linear(d, hdim), nn.GELU(), nn.Linear(hdim, c)
            )
            self.synthesis = nn.Sequential(nn.Linear(c, hdim), nn.GELU(), nn.Linear(hdim, d))
        else:
            raise EdgeAIError(f"unknown codec arch '{meta.arch}' (have: {', '.join(ARCHS)})")
        self.entropy = EntropyBottleneck(c)
        # Per-channel gain before rounding (and its inverse after): a large gain starts the codec
        # at fine quantisation; the rate term then lowers it where the task does not need detail.
        self.log_gain = nn.Parameter(torch.full((c,), math.log(meta.init_gain)))
        self._tag: bytes | None = None

    def _analyse(self, h: torch.Tensor) -> torch.Tensor:
        return self.analysis(h) * self.log_gain.exp()  # (B, T, C)

    def _synthesise(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.synthesis(y_hat * torch.exp(-self.log_gain))  # (B, T, D)

    # -- training / rounding path -----------------------------------------------------------
    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h: [B, T, D] -> (h_hat [B, T, D], estimated bits per item [B]).

        Training: the rate sees y + uniform noise, the synthesis sees round(y) (straight-through),
        so the edge trains on exactly what it will receive. Eval: both see the rounded y.
        """
        self._check(h)
        y = self._analyse(h)  # (B, T, C)
        if self.training:
            y_hat = self.entropy.quantize(y)  # (B, T, C), rounded around the medians
            y_rate = self.entropy.noisy(y)
        else:  # bit-identical to what decompress() rebuilds
            y_hat = y_rate = self.entropy.dequantize(self.entropy.symbols(y))
        bits = self.entropy.bits(y_rate).sum(dim=(1, 2))  # (B,)
        return self._synthesise(y_hat), bits

    @torch.no_grad()
    def reconstruct(self, h: torch.Tensor) -> torch.Tensor:
        """The rounded-path reconstruction: what decompress(compress(h)) returns."""
        self._check(h)
        s = self.entropy.symbols(self._analyse(h))
        return self._synthesise(self.entropy.dequantize(s))

    def aux_loss(self) -> torch.Tensor:
        """Entropy-model median fit (add to the training loss; touches only the medians)."""
        return self.entropy.aux_loss()

    def update(self) -> None:
        """Freeze the entropy model's symbol tables (after training, before coding)."""
        self.entropy.update()
        self._tag = None

    # -- real bits -----------------------------------------------------------------------------
    @torch.no_grad()
    def compress(self, h: torch.Tensor) -> bytes:
        """One item's activation [1, T, D] -> bytes (header + range-coded latents)."""
        self._check(h)
        if h.shape[0] != 1:
            raise EdgeAIError(f"compress takes one item [1, T, D], got shape {tuple(h.shape)}")
        tokens = h.shape[1]
        if tokens > 0xFFFF:
            raise EdgeAIError(f"too many tokens to code: {tokens} > 65535")
        s = self.entropy.symbols(self._analyse(h))[0]  # (T, C)
        payload = self.entropy.encode(s).astype("<u4").tobytes()
        crc = zlib.crc32(self._codec_tag() + payload)
        return _HEADER.pack(MAGIC, FORMAT_VERSION, tokens, crc) + payload

    @torch.no_grad()
    def decompress(self, data: bytes) -> torch.Tensor:
        """Inverse of `compress`: bytes -> h_hat [1, T, D]; CodecError on bad bytes."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"compressed features must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < HEADER_BYTES:
            raise CodecError(f"compressed features truncated: {len(data)} bytes < header")
        magic, version, tokens, crc = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CodecError(f"not feature-codec data (magic byte {magic:#04x}, expected 0xec)")
        if version != FORMAT_VERSION:
            raise CodecError(f"feature-codec format version {version}, this codec reads 1")
        payload = data[HEADER_BYTES:]
        if len(payload) % 4:
            raise CodecError(f"compressed features truncated: payload of {len(payload)} bytes")
        if zlib.crc32(self._codec_tag() + payload) != crc:
            raise CodecError(
                "compressed features fail their checksum: corrupt, truncated, or made by a "
                f"different codec than {self.describe()}"
            )
        s = self.entropy.decode(np.frombuffer(payload, dtype="<u4"), tokens)  # (T, C)
        return self._synthesise(self.entropy.dequantize(s)).unsqueeze(0)

    # -- helpers -------------------------------------------------------------------------------
    def describe(self) -> str:
        m = self.meta
        return f"{m.model_id} {m.task} k={m.split} lambda={m.lam:g} C={m.channels}"

    def _codec_tag(self) -> bytes:
        if self._tag is None:
            if not self.entropy.ready:
                raise EdgeAIError("codec has no symbol tables: call update() after training")
            fields = asdict(self.meta)
            if fields["arch"] == "mlp":  # the tag codecs had before `arch` existed
                del fields["arch"]
            meta = json.dumps(fields, sort_keys=True).encode()
            tables = (
                self.entropy.table_pmf.numpy().tobytes() + self.entropy.table_lo.numpy().tobytes()
            )
            self._tag = struct.pack("<I", zlib.crc32(meta + tables))
        return self._tag

    def _check(self, h: torch.Tensor) -> None:
        if h.dim() != 3 or h.shape[-1] != self.meta.d_model:
            raise EdgeAIError(
                f"codec {self.describe()} takes [B, T, {self.meta.d_model}], got {tuple(h.shape)}"
            )
        if not torch.isfinite(h).all():
            raise EdgeAIError("activation to compress holds NaN or infinity")


def save_codec(codec: FeatureCodec, path: Path | str, extra: dict | None = None) -> None:
    """Write the codec (weights, symbol tables, metadata and optional training record)."""
    if not codec.entropy.ready:
        codec.update()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The symbol tables in float32 (half the file; a fine-step codec's tables are most of it).
    # Both ends load the same rounded tables (float64 again in memory), so they agree exactly;
    # the saved codec itself is rounded the same way, so it keeps agreeing with its file.
    with torch.no_grad():
        codec.entropy.table_pmf.copy_(codec.entropy.table_pmf.float().double())
    codec._tag = None
    state = codec.state_dict()
    state["entropy.table_pmf"] = state["entropy.table_pmf"].float()
    torch.save({"meta": asdict(codec.meta), "state": state, "extra": extra or {}}, path)


def load_codec(path: Path | str) -> FeatureCodec:
    """Read a codec written by `save_codec`, ready to compress/decompress (eval mode);
    WeightsError when the file is missing, does not load or has no symbol tables."""
    return checkpoints.load(path, "codec checkpoint", _codec_from)


def _codec_from(blob: dict) -> FeatureCodec:
    codec = FeatureCodec(CodecMeta(**blob["meta"]))
    codec.load_state_dict(blob["state"])
    codec.entropy.table_pmf = codec.entropy.table_pmf.double()
    codec.entropy._models = None
    if not codec.entropy.ready:
        raise ValueError("it has no symbol tables")
    return codec.eval()


def default_codec_path(task: str) -> Path:
    """The shipped codec a task uses by default."""
    if task in RUNTIME_CODECS:
        return CHECKPOINT_DIR / RUNTIME_CODECS[task][0]
    if task not in DEFAULT_CODECS:
        raise EdgeAIError(
            f"no shipped feature codec for task '{task}' (have: {sorted(DEFAULT_CODECS)})"
        )
    return CHECKPOINT_DIR / DEFAULT_CODECS[task]


def task_codec_paths(task: str) -> list[Path]:
    """The shipped codecs a task's runtime holds: the default first, then other split points."""
    if task in RUNTIME_CODECS:
        return [CHECKPOINT_DIR / f for f in RUNTIME_CODECS[task]]
    return [default_codec_path(task)] + [
        CHECKPOINT_DIR / f for f in OTHER_SPLIT_CODECS.get(task, ())
    ]
