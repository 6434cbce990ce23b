"""Factorised entropy model for the feature codec: learned per-channel densities, real range coding.

Ballé et al. 2018 ("Variational image compression with a scale hyperprior", appendix 6.1): each
channel c has its own monotone cumulative F_c(x) = sigmoid(f_c(x)), where f_c is a small MLP
1 -> 3 -> 3 -> 3 -> 1 whose weights pass through softplus (so f_c is increasing) with
tanh-gated non-linearities. The probability of a quantised value is F_c(y + 0.5) - F_c(y - 0.5)
(lower-bounded so the rate stays finite).

Training sees y + U(-0.5, 0.5) for the rate (a differentiable upper bound of the quantised rate);
inference rounds around a learned per-channel median. `update()` freezes the model into integer
symbol tables (per channel: a finite support [lo, hi] around the median holding all but 1e-6 of
the mass, plus one escape symbol for values outside it); the tables are buffers in the state
dict, so encoder and decoder on different machines use bit-identical probabilities. `encode` /
`decode` run constriction's range coder (`constriction.stream.queue`) with one
`Categorical` model per channel, built once and cached. An escaped value is coded losslessly
after the main stream as two uniform bytes of its offset (|offset| <= 32767: the quantiser clamps
symbols to that range in every path, training, rounding and coding alike).
"""

from __future__ import annotations

import math

import constriction
import numpy as np
import torch
import torch.nn.functional as F
from edgeai.errors import EdgeAIError
from torch import nn

LIKELIHOOD_BOUND = 1e-9  # smallest probability a symbol gets in the rate (caps its cost ~30 bits)
TAIL_MASS = 1e-6  # mass left outside each channel's coded support (both tails together)
MAX_SYMBOL = 32767  # |round(y - median)| is clamped here so escapes fit two bytes
MAX_SUPPORT = 4095  # most symbols in one channel's table (plus the escape)
_SCAN = 2048  # half-width of the integer grid scanned for the support


class CodecError(EdgeAIError):
    """Compressed feature bytes are corrupt, truncated, or do not belong to this codec."""


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still flows where it would push x up past the bound."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad < 0)
        return grad * pass_through, None


class EntropyBottleneck(nn.Module):
    """Per-channel learned density over quantised latents y: [..., C] (channels last)."""

    def __init__(
        self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0
    ) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(dims) - 1):
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        # Median of each channel's density, trained by `aux_loss` (f_c(median) = 0).
        self.medians = nn.Parameter(torch.zeros(channels))
        # Symbol tables written by update(); empty until then.
        self.register_buffer("table_lo", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("table_len", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("table_pmf", torch.zeros(0, 0, dtype=torch.float64))
        self._models: list | None = None

    # -- the density ------------------------------------------------------------------------
    def _logits_cumulative(self, x: torch.Tensor, stop_gradient: bool) -> torch.Tensor:
        """f_c(x) for x: [C, 1, N] -> [C, 1, N]; sigmoid of it is the cumulative."""
        logits = x
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            m = F.softplus(matrix.detach() if stop_gradient else matrix)
            b = bias.detach() if stop_gradient else bias
            logits = torch.matmul(m, logits) + b
            if i < len(self.factors):
                f = self.factors[i].detach() if stop_gradient else self.factors[i]
                logits = logits + torch.tanh(f) * torch.tanh(logits)
        return logits

    def _channel_likelihood(self, values: torch.Tensor) -> torch.Tensor:
        """P(value rounded) under each channel's density; values: [C, N] -> [C, N]."""
        v = values.unsqueeze(1)
        lower = self._logits_cumulative(v - 0.5, stop_gradient=False)
        upper = self._logits_cumulative(v + 0.5, stop_gradient=False)
        # Evaluate in the tail where the sigmoid is not saturated (Ballé's sign trick).
        sign = -torch.sign(lower + upper).detach()
        p = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return p.squeeze(1)

    def likelihoods(self, y: torch.Tensor) -> torch.Tensor:
        """Probability of each (noisy or quantised) value of y: [..., C] -> same shape."""
        if y.shape[-1] != self.channels:
            raise ValueError(f"expected {self.channels} channels last, got shape {tuple(y.shape)}")
        flat = y.reshape(-1, self.channels).t()  # (C, N)
        p = self._channel_likelihood(flat)
        p = _LowerBound.apply(p, LIKELIHOOD_BOUND)
        return p.t().reshape(y.shape)

    def bits(self, y: torch.Tensor) -> torch.Tensor:
        """Information content -log2 P of each value of y: [..., C] -> same shape."""
        return -torch.log2(self.likelihoods(y))

    def aux_loss(self) -> torch.Tensor:
        """Pulls each median to where the cumulative is 1/2 (only `medians` get its gradient)."""
        logits = self._logits_cumulative(self.medians.view(-1, 1, 1), stop_gradient=True)
        return logits.abs().sum()

    # -- quantisation -----------------------------------------------------------------------
    def noisy(self, y: torch.Tensor) -> torch.Tensor:
        """Training proxy of quantisation: y + U(-1/2, 1/2)."""
        return y + torch.empty_like(y).uniform_(-0.5, 0.5)

    def symbols(self, y: torch.Tensor) -> torch.Tensor:
        """Integer offsets round(y - median), clamped to +-MAX_SYMBOL: [..., C] -> int64."""
        s = torch.round(y - self.medians.detach())
        return s.clamp(-MAX_SYMBOL, MAX_SYMBOL).to(torch.int64)

    def dequantize(self, s: torch.Tensor) -> torch.Tensor:
        """The value a symbol stands for: s + median (float32)."""
        return s.to(torch.float32) + self.medians.detach()

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """Rounding path, straight-through: forward value dequantize(symbols(y)), gradient 1."""
        return y + (self.dequantize(self.symbols(y)) - y).detach()

    # -- symbol tables ----------------------------------------------------------------------
    @torch.no_grad()
    def update(self) -> None:
        """Freeze the current density into per-channel tables (call after training)."""
        grid = torch.arange(-_SCAN, _SCAN + 1, dtype=torch.float32)  # offsets from the median
        values = grid.unsqueeze(0) + self.medians.detach().unsqueeze(1)  # (C, G)
        cdf = torch.sigmoid(self._logits_cumulative(values.unsqueeze(1) + 0.5, True)).squeeze(1)
        pmf = self._channel_likelihood(values).double()  # (C, G)
        half = TAIL_MASS / 2
        los, lens, pmfs = [], [], []
        for c in range(self.channels):
            # Symbol i covers CDF(i - 1/2)..CDF(i + 1/2): keep from the one where the lower
            # tail's last TAIL_MASS/2 ends to the one where the upper tail's begins.
            lo = int(torch.searchsorted(cdf[c], torch.tensor([half])).clamp_max(len(grid) - 1))
            hi = int(torch.searchsorted(cdf[c], torch.tensor([1 - half]), right=True))
            hi = min(max(hi, lo), len(grid) - 1, lo + MAX_SUPPORT - 1)
            p = pmf[c, lo : hi + 1].clamp_min(LIKELIHOOD_BOUND)
            escape = max(1.0 - float(p.sum()), TAIL_MASS)
            los.append(lo - _SCAN)
            lens.append(hi - lo + 1)
            pmfs.append(torch.cat([p, p.new_tensor([escape])]))
        width = max(lens) + 1
        table = torch.zeros(self.channels, width, dtype=torch.float64)
        for c, p in enumerate(pmfs):
            table[c, : len(p)] = p
        self.table_lo = torch.tensor(los, dtype=torch.int32)
        self.table_len = torch.tensor(lens, dtype=torch.int32)
        self.table_pmf = table
        self._models = None

    @property
    def ready(self) -> bool:
        """Whether update() has written the symbol tables."""
        return self.table_len.numel() == self.channels

    def _coder_models(self) -> list:
        """One constriction Categorical per channel (built once from the tables, then cached)."""
        if self._models is None:
            if not self.ready:
                raise EdgeAIError(
                    "entropy model has no symbol tables: call update() after training"
                )
            lens = self.table_len.tolist()
            pmf = self.table_pmf.numpy()
            self._models = [
                constriction.stream.model.Categorical(pmf[c, : lens[c] + 1].copy(), perfect=False)
                for c in range(self.channels)
            ]
        return self._models

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[override]
        # Tables change shape with training: adopt the stored shapes before the copy.
        for name in ("table_lo", "table_len", "table_pmf"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key]))
        self._models = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- real coding ------------------------------------------------------------------------
    def encode(self, s: torch.Tensor) -> np.ndarray:
        """Range-code integer symbols s: [N, C] (from `symbols`) -> uint32 words."""
        models = self._coder_models()
        sym = s.detach().cpu().numpy().astype(np.int64)
        lo = self.table_lo.numpy().astype(np.int64)
        lens = self.table_len.numpy().astype(np.int64)
        idx = sym - lo  # (N, C) table index
        out = (idx < 0) | (idx >= lens)
        idx = np.where(out, lens, idx).astype(np.int32)  # escape symbol = index len
        enc = constriction.stream.queue.RangeEncoder()
        for c in range(self.channels):
            enc.encode(np.ascontiguousarray(idx[:, c]), models[c])
        if out.any():
            # Escaped offsets, channel-major like the main stream, as two uniform bytes each.
            escaped = sym.T[out.T] + MAX_SYMBOL  # 0 .. 2*MAX_SYMBOL
            pairs = np.stack([escaped >> 8, escaped & 0xFF], axis=1).reshape(-1).astype(np.int32)
            enc.encode(pairs, constriction.stream.model.Uniform(256))
        return enc.get_compressed()

    def decode(self, words: np.ndarray, n: int) -> torch.Tensor:
        """Inverse of `encode` for n rows: uint32 words -> int64 symbols [n, C]."""
        models = self._coder_models()
        lo = self.table_lo.numpy().astype(np.int64)
        lens = self.table_len.numpy().astype(np.int64)
        try:
            dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(words, np.uint32))
            idx = np.stack([dec.decode(models[c], n) for c in range(self.channels)], axis=1)
            idx = idx.astype(np.int64)
            out = idx >= lens
            sym = idx + lo
            n_esc = int(out.sum())
            if n_esc:
                pairs = dec.decode(constriction.stream.model.Uniform(256), 2 * n_esc)
                pairs = pairs.astype(np.int64).reshape(-1, 2)
                escaped = (pairs[:, 0] << 8 | pairs[:, 1]) - MAX_SYMBOL
                sym_t = sym.T.copy()
                sym_t[out.T] = escaped
                sym = sym_t.T
        except (ValueError, RuntimeError, AssertionError) as err:
            raise CodecError(f"compressed features do not decode: {err}") from err
        if np.abs(sym).max(initial=0) > MAX_SYMBOL:
            raise CodecError("compressed features decode to symbols out of range (corrupt data)")
        return torch.from_numpy(np.ascontiguousarray(sym))
