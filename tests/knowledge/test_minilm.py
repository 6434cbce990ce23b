"""The numpy MiniLM against the reference: transformers' BertModel on the same shipped weights,
mean-pooled over the attention mask and normalised (sentence-transformers' pipeline for this
model), on padded batches of mixed lengths, including an empty text and one past 256 tokens."""

from __future__ import annotations

import numpy as np
import pytest
from edgeai.knowledge.minilm import MAX_TOKENS, minilm, model_dir

TEXTS = [
    "What's my heart rate right now?",
    "caption this picture in Spanish",
    "wie hoch ist mein Puls?",
    "",
    "The doorbell camera detects visitors at the front door and reports a short description. " * 30,
    "is the fridge door open",
    "how is my mood today?",
]


def reference(texts: list[str]) -> np.ndarray:
    torch = pytest.importorskip("torch")
    from transformers import AutoTokenizer, BertModel

    tok = AutoTokenizer.from_pretrained(str(model_dir()))
    model = BertModel.from_pretrained(str(model_dir())).eval()
    batch = tok(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()


def test_matches_transformers_bert_with_mean_pooling() -> None:
    ours = minilm().encode(TEXTS)
    ref = reference(TEXTS)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 2e-6
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_a_text_is_embedded_the_same_alone_or_in_a_batch() -> None:
    alone = minilm().encode([TEXTS[0]])[0]
    batched = minilm().encode(TEXTS)[0]
    assert np.abs(alone - batched).max() < 1e-6
    assert minilm().encode([]).shape == (0, 384)
