"""A request to adapt the language model goes to federated fine-tuning in the request graph: the
FL-tuner picks the strategy, the run adapts a (tiny, local) language model with Flower, and the
adapted model is registered in the home and its manual in the knowledge store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edgeai.agents.codegen import LANGUAGE_ADAPTATION, trainable_task
from edgeai.agents.fl_tuner import choose_fedtune, review_fedtune


@pytest.mark.parametrize("request_text", [
    "adapt the assistant to my family's messages without uploading them",
    "fine-tune the language model on our team's emails, keeping them on our phones",
    "personalise the chatbot to how I write my notes",
])
def test_language_adaptation_requests_are_trainable(request_text: str) -> None:
    assert trainable_task(request_text) == LANGUAGE_ADAPTATION


@pytest.mark.parametrize("request_text", [
    "train an image classifier for my photos",
    "what is my heart rate today?",
    "summarise my messages from yesterday",
])
def test_other_requests_are_not_language_adaptation(request_text: str) -> None:
    assert trainable_task(request_text) != LANGUAGE_ADAPTATION


@pytest.mark.parametrize("request_text,method", [
    ("adapt the assistant to my family's messages without uploading them", "lora"),
    ("adapt the assistant to the messages of three different families", "cfl-lora"),
    ("fine-tune the language model on our texts; some phones are slow and old", "async-lora"),
    ("adapt the chatbot to our notes across several offices with their own edge servers",
     "hier-lora"),
    ("personalise the assistant to my texts over a metered data plan", "prompt"),
])
def test_fl_tuner_chooses_the_strategy(request_text: str, method: str) -> None:
    assert choose_fedtune(request_text).method == method


def test_fl_tuner_reads_the_curve() -> None:
    rows = [{"mean_loss": 4.0, "loss_u0": 4.0, "loss_u1": 4.0},
            {"mean_loss": 3.8, "loss_u0": 3.7, "loss_u1": 3.9},
            {"mean_loss": 3.5, "loss_u0": 3.4, "loss_u1": 4.1}]
    notes = review_fedtune(rows)
    assert "user(s) 1 did not improve" in notes[0] and "still falling" in notes[1]


@pytest.mark.slow
def test_ask_adapts_registers_and_answers(fresh_home: Path, tmp_path: Path) -> None:
    from edgeai.config import Settings
    from edgeai.graphs.app import App
    from edgeai.graphs.state import FLOptions
    from edgeai.tools.federated.fedtune.model import save_tiny_model
    from edgeai.tools.federated.fedtune.text import corpus_examples

    tiny = save_tiny_model(tmp_path / "tinylm", [e.text for e in corpus_examples("generated", 60)])
    fl = FLOptions(fedtune_base=str(tiny), fedtune_corpus="generated", fedtune_users=4,
                   fedtune_rounds=2)
    app = App.open(Settings(home=fresh_home))
    events: list[dict] = []
    out = app.ask("adapt the assistant to my family's messages without uploading them", None,
                  fl=fl, progress=events.append)
    steps = [s["node"] for s in out["trace"]]
    assert steps == ["plan_request", "fedtune_language_model"], steps
    assert out["answer"].startswith("Adapted the language model by federated fine-tuning")
    assert "their text never did" in out["answer"]
    assert [e["round"] for e in events if e["event"] == "fedtune_round"] == [0, 1, 2]
    (meta_path,) = (fresh_home / "models").glob("*/adapter.json")
    meta = json.loads(meta_path.read_text())
    assert meta["method"] == "lora" and (meta_path.parent / "adapters.npz").is_file()
    assert all(meta["final_loss"][u] < meta["base_loss"][u] for u in meta["base_loss"])
    devices = {m.device for m in app.store.manuals()}
    assert "edgeai-adapted-language-models" in devices
