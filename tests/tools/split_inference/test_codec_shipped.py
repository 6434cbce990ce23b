"""Shipped feature codecs: load, fit their shipped model, code real photos exactly and keep its answers."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from edgeai.tools.split_inference.codec import (
    CHECKPOINT_DIR,
    DEFAULT_CODECS,
    default_codec_path,
    load_codec,
)
from edgeai.tools.split_inference.imagecodecs import encode_png
from edgeai.tools.split_inference.models import checkpoint_path, load_model
from edgeai.tools.split_inference.world import make_examples

torch.set_num_threads(1)


def test_every_task_has_a_default_codec_recorded_in_the_manifest() -> None:
    manifest = json.loads((CHECKPOINT_DIR / "manifest.json").read_text())
    assert DEFAULT_CODECS, "no shipped codec"
    for task, name in DEFAULT_CODECS.items():
        entry = manifest[name.removesuffix(".pt")]
        assert entry["command"].startswith("edgeai split train-codec")
        assert f"--out tools/split_inference/checkpoints/{name}" in entry["command"]
        # fitted to the model that is shipped now (a retrained model needs a retrained codec)
        model_bytes = checkpoint_path(task).read_bytes()  # type: ignore[arg-type]
        assert entry["model_sha256"] == hashlib.sha256(model_bytes).hexdigest()
        assert entry["metrics"]["score"] >= entry["metrics_raw"]["score"] - 0.5
        assert entry["bytes_ratio_vs_png"] >= 10


@pytest.mark.parametrize("task", sorted(DEFAULT_CODECS))
def test_shipped_codec_round_trip_on_photos(task: str) -> None:
    codec = load_codec(default_codec_path(task))
    model = load_model(task)  # type: ignore[arg-type]
    assert codec.meta.model_id == model.model_id and codec.meta.task == task
    examples = make_examples(task, 100, 90_000)  # held-out seeds not used for model selection
    images = np.stack([e.image for e in examples])
    h = model.features(images, codec.meta.split)
    blobs = [codec.compress(x[None]) for x in h[:8]]  # real bytes, as the device sends them
    assert torch.equal(torch.cat([codec.decompress(b) for b in blobs]), codec.reconstruct(h[:8]))
    png = np.mean([len(encode_png(e.image)) for e in examples[:4]])
    assert max(len(b) for b in blobs) * 10 < png
    questions = [e.question for e in examples]
    raw = model.predict_from(h, codec.meta.split, questions)
    coded = model.predict_from(codec.reconstruct(h), codec.meta.split, questions)
    agree = sum(a == b for a, b in zip(raw, coded, strict=True))
    # the edge mostly answers what the uncompressed model answers (a caption counts only if
    # every word is the same, so its bar is lower)
    assert agree >= (75 if task == "caption" else 85), agree
