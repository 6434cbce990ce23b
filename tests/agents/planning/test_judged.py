"""The learned relevance judge: labels from the declared structure, peft's adapter on exactly the
encoder layers' Linear modules, a real (tiny) LoRA training run on a training pool, save/load round
trip (peft's keys and the shipped pre-peft ones), the judged planner on a real store, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from edgeai.agents.planning import relevance
from edgeai.agents.planning.judged import JudgedPlanner
from edgeai.cli import main
from edgeai.errors import WeightsError
from edgeai.knowledge.pools import SAMPLES_DIR as SAMPLES
from edgeai.knowledge.store import open_store

TRAINING = SAMPLES.parent / "training"


@pytest.fixture(scope="module")
def healthcare_pool() -> relevance.Pool:
    return relevance.read_pool(SAMPLES / "healthcare")


def test_forced_producers_follow_single_producer_types(healthcare_pool: relevance.Pool) -> None:
    cards = healthcare_pool.cards
    # mood-from-vitals needs a heart rate and a breathing rate, which only the speaker makes
    assert relevance.forced_producers(cards, ["mood-from-vitals"]) == {
        "heartbeat-acoustic",
        "respiration-acoustic",
    }
    labels = relevance.pair_labels(
        cards, ["mood-from-vitals", "heartbeat-acoustic", "respiration-acoustic"]
    )
    assert labels["mood-from-vitals"] == 1.0
    assert labels["heartbeat-acoustic"] is None  # brought in by the structure: no label
    assert labels["mood-from-apps"] == 0.0


def test_cards_name_the_model_and_its_io(healthcare_pool: relevance.Pool) -> None:
    card = next(c for c in healthcare_pool.cards if c.model == "traffic-app-usage")
    assert "traffic app usage" in card.text
    assert card.inputs and card.outputs
    assert all(len(c.text.split()) < 200 for c in healthcare_pool.cards)


def test_every_training_pool_is_consistent_with_the_structure() -> None:
    # a label set that the structure could never produce would teach the judge nonsense
    for folder in relevance.training_pools(TRAINING):
        pool = relevance.read_pool(folder)
        for r in pool.requests:
            gold = set(r.get("models", []))
            assert relevance.forced_producers(pool.cards, gold) <= gold, (pool.name, r["request"])


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A judge trained for a few real steps on a slice of one training pool."""
    pool = relevance.read_pool(relevance.training_pools(TRAINING)[0])
    pool.requests = pool.requests[:6]
    cfg = relevance.TrainConfig(epochs=1, batch=16, neg_per_request=2, rank=4)
    steps = []
    judge = relevance.train([pool], cfg, lambda s, t, loss: steps.append((s, t, loss)))
    assert steps and steps[-1][0] == steps[-1][1]
    path = tmp_path_factory.mktemp("judge") / "judge.pt"
    judge.save(path, {"threshold": 0.5})
    assert path.stat().st_size < 1_000_000  # the adapter and head only, not MiniLM
    return path


def test_saved_judge_loads_and_scores_the_same(tiny_judge: Path) -> None:
    a = relevance.Judge.load(tiny_judge)
    b = relevance.Judge.load(tiny_judge)
    cards = ["heartbeat monitoring: measures heart rate", "turns the lights on"]
    pa, pb = (
        a.probabilities("what is my pulse?", cards),
        b.probabilities("what is my pulse?", cards),
    )
    assert pa.shape == (2,) and ((pa >= 0) & (pa <= 1)).all()
    assert abs(pa - pb).max() < 1e-6
    assert a.meta["threshold"] == 0.5


def test_judged_planner_names_only_stored_models(tiny_judge: Path, healthcare_home: Path) -> None:
    store = open_store(healthcare_home)
    registered = {m.name for m in store.models()}
    for threshold in (0.0, 1.01):
        planner = JudgedPlanner(store, judge=relevance.Judge.load(tiny_judge), threshold=threshold)
        plan = planner.plan("how is my mood today?")
        assert set(plan.model_ids()) <= registered
        if threshold == 0.0:  # every model is asked for: the whole pool, with its edges
            assert set(plan.model_ids()) == registered
            assert ("traffic-app-usage", "mood-from-apps") in plan.edges()
        else:  # nothing clears the bar: unsupported, and the reason names the closest model
            assert plan.subtasks == [] and "closest is" in plan.unsupported[0]


BLOCK = ("attention.self.query", "attention.self.key", "attention.self.value")
BLOCK += ("attention.output.dense", "intermediate.dense", "output.dense")


def test_adapter_sits_on_the_encoder_layers_linear_modules_only() -> None:
    judge = relevance.load_judge()
    adapted = {n for n, m in judge.encoder.named_modules() if hasattr(m, "lora_A")}
    layers = len(judge.encoder.encoder.layer)
    assert adapted == {f"encoder.layer.{i}.{name}" for i in range(layers) for name in BLOCK}
    assert not hasattr(judge.encoder.pooler.dense, "lora_A")  # the pooler is never run through
    trainable = [n for n, p in judge.encoder.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)


def test_shipped_pre_peft_weights_resave_in_peft_format(tmp_path: Path) -> None:
    shipped = relevance.load_judge()
    assert "format" not in torch.load(relevance.CHECKPOINT, weights_only=True)  # pre-peft keys
    shipped.save(tmp_path / "peft.pt", shipped.meta)
    again = relevance.Judge.load(tmp_path / "peft.pt")
    assert torch.load(tmp_path / "peft.pt", weights_only=True)["format"] == "peft"
    cards = ["heartbeat monitoring: measures heart rate", "turns the lights on"]
    pa = shipped.probabilities("what is my pulse?", cards)
    pb = again.probabilities("what is my pulse?", cards)
    assert abs(pa - pb).max() == 0.0  # the same fp16 numbers under peft's own keys


def test_broken_weights_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        relevance.Judge.load(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be loaded"):
        relevance.Judge.load(bad)


def test_cli_refuses_bad_training_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        main(["judge", "train", "--hold-out", "no-such-pool", "--out", str(tmp_path / "j.pt")]) == 2
    )
    assert "no-such-pool" in capsys.readouterr().err
    assert main(["judge", "train", "--pools", str(tmp_path / "nowhere")]) == 2
    assert main(["judge", "eval", "healthcare", "--weights", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err
    assert not (tmp_path / "j.pt").exists()


def test_shipped_judge_was_never_trained_on_a_sample_pool() -> None:
    judge = relevance.load_judge()
    samples = {p.name for p in SAMPLES.iterdir() if (p / "manuals").is_dir()}
    trained = set(judge.meta["train_pools"])
    assert trained and not trained & samples
    assert trained <= {p.name for p in relevance.training_pools(TRAINING)}
    assert set(judge.meta["held_out"]) == {"pharma-lab", "school-campus"}
    assert judge.meta["threshold"] == 0.6
    assert relevance.CHECKPOINT.stat().st_size < 4_000_000
