"""The codegen agent's embedded search and the FL-tuner's reading of curves, on small hand-made
curves (Prepare / Execute / Assert): what each diagnosis changes in the next search space."""

from __future__ import annotations

from edgeai.agents import codegen, fl_tuner
from edgeai.tools.federated.template import load_manifest
from edgeai.tools.federated.trial import TrialRecord
from edgeai.tools.federated.validate import validate


def _curve(accs: list[float], losses: list[float] | None = None) -> list[dict]:
    losses = losses or [2.0 - a for a in accs]
    return [{"round": i, "val_accuracy": a, "val_loss": l, "test_accuracy": a}
            for i, (a, l) in enumerate(zip(accs, losses))]


def _trial(n: int, accs: list[float], **config) -> TrialRecord:
    m = load_manifest()
    return TrialRecord(trial=n, config={**m.defaults(), **config}, source="x", status="ok",
                       curve=_curve(accs), rounds=len(accs) - 1, clients=10)


def test_first_proposal_is_the_manifests_defaults_and_validates():
    m = load_manifest()
    p, values, rejected = codegen.propose(m, trial=1, profile={}, purpose="p", finished=[],
                                          history=[], space=codegen.SearchSpace())
    assert p.source == "default" and values == m.defaults() and not rejected


def test_optuna_proposals_stay_inside_the_space_the_tuner_left():
    m = load_manifest()
    space = codegen.SearchSpace(fixed={"ARCH": "resnet"}, windows={"LEARNING_RATE": (0.01, 0.02)},
                                choices={"AUGMENTATION": ["flip", "crop"]})
    finished = [({**m.defaults(), "ARCH": "resnet"}, 0.5)]
    for trial in (2, 3, 4):
        p, values, _ = codegen.propose(m, trial=trial, profile={}, purpose="p", finished=finished,
                                       history=[], space=space, seed=trial)
        assert p.source == "optuna"
        assert values["ARCH"] == "resnet" and 0.01 <= values["LEARNING_RATE"] <= 0.02
        assert values["AUGMENTATION"] in ("flip", "crop")
        assert validate(p.text, m) == values


def test_diagnoses_read_the_curve():
    d = fl_tuner.diagnose(_curve([0.1, 0.5, 0.3, 0.6, 0.35, 0.62]), 10)
    assert d.oscillating
    d = fl_tuner.diagnose(_curve([0.1, 0.3, 0.4, 0.5, 0.6, 0.7]), 10)
    assert d.still_rising and not d.oscillating
    d = fl_tuner.diagnose(_curve([0.1, 0.6, 0.7, 0.7, 0.7, 0.705]), 10)
    assert d.plateau and not d.still_rising
    d = fl_tuner.diagnose(_curve([0.1, 0.11, 0.1, 0.12]), 10)
    assert d.stalled and not d.diverged
    d = fl_tuner.diagnose(_curve([0.1, 0.1, 0.1], [2.3, 5.0, 9.0]), 10)
    assert d.diverged
    d = fl_tuner.diagnose(_curve([0.1, 0.6, 0.7, 0.72, 0.73], [2.3, 1.0, 0.8, 0.95, 1.1]), 10)
    assert d.overfitting


def test_next_space_keeps_the_architecture_and_answers_the_diagnosis():
    m = load_manifest()
    oscillating = _trial(1, [0.1, 0.5, 0.3, 0.6, 0.35, 0.62], ARCH="mobilenet", LEARNING_RATE=0.2)
    space = fl_tuner.next_space(m, [oscillating], 10)
    assert space.fixed["ARCH"] == "mobilenet"
    assert space.windows["LEARNING_RATE"] == (0.02, 0.1)
    assert space.windows["GLOBAL_DECAY"][1] < 1.0
    rising = _trial(1, [0.1, 0.3, 0.4, 0.5, 0.6, 0.7], LEARNING_RATE=0.01, OPTIMIZER="sgd")
    space = fl_tuner.next_space(m, [rising], 10)
    assert space.windows["LEARNING_RATE"][0] == 0.01 and space.windows["LEARNING_RATE"][1] > 0.01
    assert space.fixed["OPTIMIZER"] == "momentum"  # same rate scale as plain SGD
    assert space.windows["LOCAL_EPOCHS"] == (2, 3)
    overfit = _trial(1, [0.1, 0.6, 0.7, 0.72, 0.73])
    overfit.curve[-1]["val_loss"], overfit.curve[1]["val_loss"] = 1.5, 1.0
    space = fl_tuner.next_space(m, [overfit], 10)
    assert "none" not in space.choices["AUGMENTATION"]


def test_a_stalled_run_gets_more_local_work_and_adam_on_adams_scale():
    m = load_manifest()
    stalled = _trial(1, [0.1, 0.11, 0.1, 0.12], LEARNING_RATE=0.05, LOCAL_EPOCHS=1)
    space = fl_tuner.next_space(m, [stalled], 10)
    assert space.windows["LOCAL_EPOCHS"] == (2, 3)
    assert space.choices["AUGMENTATION"] == ["none"]  # no regularisation while underfitting
    assert space.fixed["OPTIMIZER"] == "adam"
    assert space.windows["LEARNING_RATE"] == fl_tuner.ADAM_RATES


def test_a_flat_start_then_a_climb_is_a_slow_start():
    # the generated photos' signature: near chance for a third of the rounds, then rising
    accs = [0.1, 0.11, 0.1, 0.12, 0.11, 0.11, 0.2, 0.35, 0.5, 0.6, 0.7, 0.75, 0.8]
    d = fl_tuner.diagnose(_curve(accs), 10)
    assert d.slow_start and d.still_rising and not d.stalled
    space = fl_tuner.next_space(load_manifest(), [_trial(1, accs)], 10)
    assert space.fixed["OPTIMIZER"] == "adam"
    adam = _trial(1, accs, OPTIMIZER="adam", LEARNING_RATE=0.001)
    space = fl_tuner.next_space(load_manifest(), [adam], 10)  # already Adam: its own rate, higher
    assert space.fixed["OPTIMIZER"] == "adam" and space.windows["LEARNING_RATE"][0] == 0.001


def test_stop_rules():
    a, b, c = _trial(1, [0.1, 0.5]), _trial(2, [0.1, 0.6]), _trial(3, [0.1, 0.55])
    assert fl_tuner.stop_reason([a], max_trials=3) is None
    assert "budget" in fl_tuner.stop_reason([a, b, c], max_trials=3)
    assert "target" in fl_tuner.stop_reason([a, b], max_trials=5, target=0.6)
    assert "no gain" in fl_tuner.stop_reason([b, a, c], max_trials=5, patience=2)


def test_a_compute_budget_caps_local_epochs_and_stops_the_loop():
    # Prepare: 3 trials of 5 rounds x 10 clients; the grid spent 4 x 50 = 200 client-epochs
    m = load_manifest()
    first = _trial(1, [0.1, 0.11, 0.1, 0.12, 0.11, 0.12], LOCAL_EPOCHS=1)  # stalled: wants more
    # Execute
    cap = fl_tuner.epochs_cap([first], max_trials=3, rounds=5, clients=10, budget=200)
    space = fl_tuner.next_space(m, [first], 10, epochs_cap=cap)
    # Assert: 150 left, 50 kept for trial 3, so trial 2 may use 2 epochs however stalled
    assert first.client_epochs == 50 and cap == 2
    assert space.windows["LOCAL_EPOCHS"] == (2, 2)
    assert any("compute budget" in n for n in space.notes)
    second = _trial(2, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], LOCAL_EPOCHS=2)
    assert fl_tuner.epochs_cap([first, second], max_trials=3, rounds=5, clients=10,
                               budget=200) == 1
    spent = fl_tuner.epochs_cap([first, second], max_trials=3, rounds=5, clients=10, budget=140)
    assert spent < 1
    assert "compute budget" in fl_tuner.stop_reason([first, second], max_trials=3,
                                                    epochs_left=spent)
    assert fl_tuner.epochs_cap([first], max_trials=3, rounds=5, clients=10, budget=None) is None


def test_trainable_requests_name_a_task_and_an_image():
    assert codegen.trainable_task("train an image classifier for my photos")
    assert codegen.trainable_task("which shape is in my photo? classify it")
    assert codegen.trainable_task("recognise handwritten digits in these images")
    assert codegen.trainable_task("how is my mood today?") is None
    assert codegen.trainable_task("classify my emails") is None
