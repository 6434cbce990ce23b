"""Codec training against a frozen tiny model: the model stays frozen, lambda trades rate, real bytes, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from edgeai.cli import main
from edgeai.errors import UserInputError
from edgeai.tools.split_inference.codec import load_codec
from edgeai.tools.split_inference.models import build_model, save_model
from edgeai.tools.split_inference.train_codec import evaluate_codec, train_codec
from edgeai.tools.split_inference.world import make_examples

torch.set_num_threads(1)
TINY = {"image_size": 32, "patch": 8, "dim": 16, "depth": 2, "heads": 2, "head_layers": 1}


@pytest.fixture(scope="module")
def pool():
    return make_examples("classify", 48, 2_000_000)


def test_training_keeps_model_frozen_and_lambda_trades_rate(pool) -> None:
    torch.manual_seed(0)
    model = build_model("classify", **TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cheap, rec = train_codec(
        model, 1, 0.05, 4, steps=60, seed=0, hidden=16, batch=16, examples=pool, progress=False
    )
    rich, _ = train_codec(
        model, 1, 0.0, 4, steps=60, seed=0, hidden=16, batch=16, examples=pool, progress=False
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert rec["args"]["lam"] == 0.05 and rec["seconds"] > 0
    assert cheap.meta.split == 1 and cheap.meta.d_model == 16 and cheap.meta.channels == 4

    test = make_examples("classify", 12, 0)
    a = evaluate_codec(model, cheap, 1, test)
    b = evaluate_codec(model, rich, 1, test)
    raw = evaluate_codec(model, None, 1, test)
    assert a["mean_bytes"] < b["mean_bytes"]
    assert raw["mean_bytes"] == 16 * 16 * 4  # T * D float32
    assert 0.0 <= a["score"] <= 100.0 and a["n"] == 12
    # real bytes: header plus range-coded words, close to the estimate
    assert a["estimated_bytes"] <= a["mean_bytes"] <= 1.1 * a["estimated_bytes"] + 12
    assert a["max_bytes"] >= a["mean_bytes"]


def test_training_is_reproducible_from_the_seed(pool) -> None:
    model = build_model("classify", **TINY)
    runs = [
        train_codec(
            model,
            2,
            0.01,
            3,
            steps=8,
            seed=3,
            hidden=8,
            batch=8,
            examples=pool[:16],
            progress=False,
        )[0]
        for _ in range(2)
    ]
    for (k, v), w in zip(runs[0].state_dict().items(), runs[1].state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_bad_split_point_is_a_user_error(pool) -> None:
    model = build_model("classify", **TINY)
    for k in (0, model.n_stages):
        with pytest.raises(UserInputError, match="split point"):
            train_codec(model, k, 0.01, 4, steps=1, examples=pool[:4], progress=False)


def test_cli_trains_saves_and_records(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    save_model(build_model("vqa", **TINY), tmp_path / "models" / "vqa.pt")
    out = tmp_path / "codecs" / "c.pt"
    argv = [
        "split",
        "train-codec",
        "--task",
        "vqa",
        "--split",
        "1",
        "--lam",
        "0.01",
        "--channels",
        "4",
        "--hidden",
        "16",
        "--steps",
        "5",
        "--pool",
        "16",
        "--eval-n",
        "6",
        "--seed",
        "1",
        "--model-dir",
        str(tmp_path / "models"),
        "--out",
        str(out),
        "--no-progress",
        "--home",
        str(tmp_path),
    ]
    assert main(argv) == 0
    codec = load_codec(out)
    assert codec.meta.task == "vqa" and codec.meta.model_id == "blip-vqa"
    entry = json.loads((out.parent / "manifest.json").read_text())["c"]
    assert "--lam 0.01" in entry["command"] and "--seed 1" in entry["command"]
    assert entry["metrics"]["n"] == 6 and "score" in entry["metrics_raw"]
    assert (
        main(
            [
                "split",
                "eval-codec",
                str(out),
                "--n",
                "4",
                "--model-dir",
                str(tmp_path / "models"),
                "--home",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "raw float32" in capsys.readouterr().out
    # bad input: one line, exit 2
    assert main(argv[:5] + ["0"] + argv[6:]) == 2
    assert main(["split", "eval-codec", str(tmp_path / "nope.pt"), "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "split point" in err[0] and "not found" in err[1]
