"""HF ViT / BLIP loading and block-boundary splitting on tiny random checkpoints saved to a temp folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from edgeai.errors import EdgeAIError, UserInputError, WeightsError
from edgeai.tools.split_inference.base import Example
from edgeai.tools.split_inference.hf import load_hf_model

torch.set_num_threads(1)

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]",
    "a", "red", "blue", "green", "cat", "dog", "car", "tree", "what", "is", "color", "the",
    "how", "many", "two", "three", "on", "in", "?", "yes", "no", "photo", "of", "grass",
]  # fmt: skip
LABELS = ["cat", "dog", "car", "tree"]
QUESTIONS = ["what color is the car?", "how many dogs on the grass?"]


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48, 3), dtype=np.uint8)


def _write_tokenizer(folder: Path) -> None:
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "bos_token": "[DEC]"}
        ),
        encoding="utf-8",
    )


def _blip_config() -> object:
    from transformers import BlipConfig, BlipTextConfig, BlipVisionConfig

    text = BlipTextConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=32, bos_token_id=5, pad_token_id=0,
        sep_token_id=3, eos_token_id=3, initializer_range=0.5,
    )  # fmt: skip
    vision = BlipVisionConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
        image_size=32, patch_size=8, initializer_range=0.5,
    )  # fmt: skip
    return BlipConfig(text_config=text, vision_config=vision, projection_dim=16)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny ViT (with an image processor) and BLIP caption/VQA checkpoints (config-only preprocessing)."""
    from transformers import (
        BlipForConditionalGeneration,
        BlipForQuestionAnswering,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessorPil,
    )

    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    vit_cfg = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        image_size=32, patch_size=8, num_labels=len(LABELS), initializer_range=0.5,
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
    )  # fmt: skip
    ViTForImageClassification(vit_cfg).save_pretrained(root / "vit")
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(root / "vit")
    cap = BlipForConditionalGeneration(_blip_config())
    vqa = BlipForQuestionAnswering(_blip_config())
    for model in (cap, vqa):  # random decoders emit special tokens ([SEP] ends); make them speak
        with torch.no_grad():
            model.text_decoder.cls.predictions.bias[:6] = -50.0
    cap.save_pretrained(root / "caption")
    vqa.save_pretrained(root / "vqa")
    for name in ("caption", "vqa"):
        _write_tokenizer(root / name)
    return {"classify": root / "vit", "caption": root / "caption", "vqa": root / "vqa"}


def test_vit_every_split_matches_unsplit_logits(folders: dict[str, Path]) -> None:
    model = load_hf_model(folders["classify"], "classify")
    images = _images(3)
    pixels = model.preprocess(images)
    with torch.no_grad():
        reference = model.hf(pixel_values=pixels).logits  # transformers' own forward
        assert model.n_stages == 3  # embeddings + 2 blocks
        for k in range(model.n_stages + 1):
            h = model.run_stages(pixels, 0, k)
            if k > 0:
                assert list(h.shape) == [3, 1 + (32 // 8) ** 2, 32]  # [B, tokens, hidden]
            torch.testing.assert_close(model.logits_from(h, k), reference, rtol=0, atol=1e-6)
            assert model.predict_from(h, k) == model.predict(images)
    assert set(model.predict(images)) <= set(LABELS)
    assert model.model_id == "vit-image-classifier"
    # the folder's image processor is the one used: ViT normalisation (x/255 - 0.5) / 0.5
    assert float(pixels.min()) >= -1.0 and float(pixels.max()) <= 1.0


def test_vit_loss_from_is_cross_entropy_and_reaches_the_activation(
    folders: dict[str, Path],
) -> None:
    model = load_hf_model(folders["classify"], "classify")
    images = _images(2)
    examples = [Example(images[0], None, ["dog"]), Example(images[1], None, ["tree"])]
    h = model.features(images, 1).detach().requires_grad_(True)
    loss = model.loss_from(h, 1, examples)
    expected = torch.nn.functional.cross_entropy(model.logits_from(h, 1), torch.tensor([1, 3]))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert h.grad is not None and float(h.grad.abs().sum()) > 0
    with pytest.raises(UserInputError):
        model.loss_from(h, 1, [Example(images[0], None, ["zebra"]), examples[1]])


def test_blip_caption_every_split_matches_hf_generate(folders: dict[str, Path]) -> None:
    model = load_hf_model(folders["caption"], "caption", max_new_tokens=6)
    images = _images(2, seed=1)
    pixels = model.preprocess(images)
    assert list(pixels.shape) == [2, 3, 32, 32]
    reference_ids = model.hf.generate(pixel_values=pixels, max_new_tokens=6)
    reference = [
        s.strip() for s in model.tokenizer.batch_decode(reference_ids, skip_special_tokens=True)
    ]
    assert all(reference)  # non-empty captions
    assert model.predict(images) == reference
    with torch.no_grad():
        for k in range(model.n_stages + 1):
            h = model.run_stages(pixels, 0, k)
            if k > 0:
                assert list(h.shape) == [2, 17, 32]
            assert model.predict_from(h, k) == reference


def test_blip_vqa_every_split_matches_hf_generate(folders: dict[str, Path]) -> None:
    model = load_hf_model(folders["vqa"], "vqa", max_new_tokens=5)
    images = _images(2, seed=2)
    pixels = model.preprocess(images)
    with torch.no_grad():
        for i, question in enumerate(QUESTIONS):  # one at a time: HF's generate ignores padding
            ids = model.tokenizer([question], return_tensors="pt")["input_ids"]
            out = model.hf.generate(input_ids=ids, pixel_values=pixels[i : i + 1], max_new_tokens=5)
            expected = model.tokenizer.batch_decode(out, skip_special_tokens=True)[0].strip()
            assert expected
            for k in range(model.n_stages + 1):
                h = model.run_stages(pixels[i : i + 1], 0, k)
                assert model.predict_from(h, k, [question]) == [expected]
        batch = model.predict(images, QUESTIONS)
        # questions of different lengths, padded together, answer as each would alone
        assert batch == [model.predict(images[i : i + 1], [q])[0] for i, q in enumerate(QUESTIONS)]
        for k in range(model.n_stages + 1):
            assert model.predict_from(model.features(images, k), k, QUESTIONS) == batch
    with pytest.raises(UserInputError):
        model.predict(images, None)


def test_blip_losses_are_finite_and_differentiable(folders: dict[str, Path]) -> None:
    images = _images(2, seed=3)
    cap = load_hf_model(folders["caption"], "caption")
    h = cap.features(images, 2).detach().requires_grad_(True)
    loss = cap.loss_from(
        h,
        2,
        [Example(images[0], None, ["a red car", "a car"]), Example(images[1], None, ["a dog"])],
    )
    loss.backward()
    assert torch.isfinite(loss) and h.grad is not None and float(h.grad.abs().sum()) > 0
    vqa = load_hf_model(folders["vqa"], "vqa")
    h = vqa.features(images, 1).detach().requires_grad_(True)
    examples = [
        Example(images[0], QUESTIONS[0], ["red"] * 7 + ["blue"] * 3),
        Example(images[1], QUESTIONS[1], ["two"] * 10),
    ]
    loss = vqa.loss_from(h, 1, examples)
    loss.backward()
    assert torch.isfinite(loss) and float(h.grad.abs().sum()) > 0
    # annotator answers weigh by their count: 7 x red + 3 x blue = 0.7 red + 0.3 blue
    one = h.detach()[:1]
    mixed = vqa.loss_from(one, 1, [examples[0]])
    red = vqa.loss_from(one, 1, [Example(images[0], QUESTIONS[0], ["red"])])
    blue = vqa.loss_from(one, 1, [Example(images[0], QUESTIONS[0], ["blue"])])
    torch.testing.assert_close(mixed, 0.7 * red + 0.3 * blue)


def test_clear_errors(folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no such folder"):
        load_hf_model(tmp_path / "nowhere", "classify")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="no config.json"):
        load_hf_model(tmp_path / "empty", "caption")
    with pytest.raises(WeightsError, match="needs a 'blip'"):
        load_hf_model(folders["classify"], "caption")
    with pytest.raises(WeightsError, match="needs a 'vit'"):
        load_hf_model(folders["vqa"], "classify")
    with pytest.raises(WeightsError, match="needs BlipForQuestionAnswering"):
        load_hf_model(folders["caption"], "vqa")
    with pytest.raises(UserInputError, match="unknown task"):
        load_hf_model(folders["classify"], "segment")  # type: ignore[arg-type]
    no_tok = tmp_path / "no-tokenizer"
    shutil.copytree(folders["caption"], no_tok)
    (no_tok / "vocab.txt").unlink()
    with pytest.raises(WeightsError, match="no tokenizer"):
        load_hf_model(no_tok, "caption")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(folders["classify"] / "config.json", no_weights / "config.json")
    with pytest.raises(WeightsError, match="cannot load"):
        load_hf_model(no_weights, "classify")
    (no_weights / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="cannot load"):
        load_hf_model(no_weights, "classify")
    model = load_hf_model(folders["classify"], "classify")
    with pytest.raises(UserInputError):
        model.run_stages(model.preprocess(_images(1)), 2, 5)
    with pytest.raises(UserInputError):
        model.preprocess(np.zeros((1, 8, 8), dtype=np.float32))
    assert issubclass(WeightsError, EdgeAIError)
