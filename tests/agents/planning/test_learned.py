"""The learned chooser: its trees ship as JSON and predict exactly as scikit-learn's, features are
relative to the pool, `edgeai chooser train` retrains reproducibly from a folder of pools (a real
run on small pools cut from the sample pools), the shipped chooser plans only stored models, and
bad arguments are one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from edgeai.agents.planning.learned import (
    CANDIDATES,
    CHECKPOINT,
    FEATURES,
    SET_FEATURES,
    LearnedPlanner,
    SetModel,
    TreeEnsemble,
    dump_hgb,
    load_set_model,
)
from edgeai.cli import main
from edgeai.errors import WeightsError
from edgeai.knowledge.pools import SAMPLES_DIR as SAMPLES
from edgeai.knowledge.store import open_store


def test_shipped_trees_predict_as_scikit_learn(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take the learned side
    y = ((x[:, 0] > 0.2) ^ (np.nan_to_num(x[:, 3]) < -0.5)).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(x, y)
    ours = TreeEnsemble(json.loads(json.dumps(dump_hgb(clf))))
    probe = rng.normal(size=(200, 5))
    probe[::7, 2] = np.nan
    assert np.abs(ours.predict_proba(probe) - clf.predict_proba(probe)).max() < 1e-9
    SetModel(clf, 0.4, {"features": ["a"]}, sets=clf).save(tmp_path / "c.json")
    assert not (tmp_path / "c.json.tmp").exists()


def test_shipped_chooser_has_its_manifest() -> None:
    model = load_set_model()
    meta = model.meta
    assert meta["features"] == list(FEATURES)
    assert meta["set_features"] == list(SET_FEATURES) and meta["candidates"] == CANDIDATES
    assert meta["command"].startswith("edgeai chooser train")
    assert isinstance(meta["seed"], int) and meta["pools"] >= 150
    assert 0.0 < model.threshold < 1.0
    tower = CHECKPOINT.with_suffix(".pt")
    assert meta["tower"]["file"] == tower.name
    assert CHECKPOINT.stat().st_size + tower.stat().st_size < 100_000_000
    # the request encoder and the classifier never saw each other's pools
    assert not set(meta["tower_pools"]) & set(meta["chooser_pools"])


def test_learned_planner_plans_only_stored_models(healthcare_home: Path) -> None:
    store = open_store(healthcare_home)
    registered = {m.name for m in store.models()}
    planner = LearnedPlanner(store)
    plan = planner.plan("how is my heart rate right now?")
    assert plan.planner == "learned"
    assert plan.model_ids() and set(plan.model_ids()) <= registered
    for s in plan.subtasks:
        assert 0.0 <= s.relevance <= 1.0
    # a set classifier that scores refusing (the empty plan) above every plan: refused, and the
    # reason names the closest model
    shipped = load_set_model()
    size = SET_FEATURES.index("size")
    refuse = TreeEnsemble({"baseline": 0.0, "trees": [{
        "feature": [size, 0, 0], "threshold": [0.5, 0.0, 0.0], "missing_left": [0, 0, 0],
        "left": [1, 0, 0], "right": [2, 0, 0], "leaf": [0, 1, 1], "value": [0.0, 5.0, -5.0],
    }]})
    strict = SetModel(shipped.clf, shipped.threshold, {}, shipped.tower, refuse)
    refused = LearnedPlanner(store, strict).plan("how is my heart rate right now?")
    assert refused.subtasks == [] and "closest is" in refused.unsupported[0]


def test_settings_select_the_planner(healthcare_home: Path) -> None:
    from edgeai.agents.planning.planner import make_planner
    from edgeai.config import Settings

    store = open_store(healthcare_home)
    assert make_planner(Settings(planner="learned"), store).name == "learned"
    assert make_planner(Settings(planner="embedded"), store).name == "embedded"


def _small_pools(root: Path, per_pool: int = 6) -> Path:
    """Four pools cut from the sample pools: their manuals, their first requests."""
    for name in ("healthcare", "photo", "hotel", "retail"):
        target = root / name
        shutil.copytree(SAMPLES / name / "manuals", target / "manuals")
        lines = (SAMPLES / name / "requests.jsonl").read_text(encoding="utf-8").splitlines()
        (target / "requests.jsonl").write_text("\n".join(lines[:per_pool]) + "\n")
    return root


def test_train_command_retrains_reproducibly(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pools = _small_pools(tmp_path / "pools")
    home = tmp_path / "home"
    args = ["chooser", "train", "--pools", str(pools), "--folds", "2", "--jobs", "1"]
    args += ["--epochs", "1"]
    assert main([*args, "--home", str(home), "--out", str(tmp_path / "a.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["pools"] == 4 and printed["requests"] == 24 and printed["seed"] == 0
    assert printed["command"].startswith("edgeai chooser train")
    assert list((home / "cache" / "chooser").glob("*.npz"))  # features kept for a retrain
    assert (tmp_path / "a.pt").is_file()  # the request encoder beside the classifier
    assert printed["tower_pools"] == ["hotel"]
    # the same command again (features from the cache) writes the same weights
    assert main([*args, "--home", str(home), "--out", str(tmp_path / "b.json")]) == 0
    capsys.readouterr()
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["model"] == b["model"] and a["threshold"] == b["threshold"]
    assert a["set_model"] == b["set_model"] and a["set_model"]["trees"]
    import torch

    ta, tb = (torch.load(tmp_path / f"{n}.pt", weights_only=True)["state"] for n in "ab")
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    model = load_set_model(tmp_path / "a.json")
    store = open_store(_home_of(tmp_path, "healthcare"))
    plan = LearnedPlanner(store, model).plan("what is my heart rate?")
    assert set(plan.model_ids()) <= {m.name for m in store.models()}


def _home_of(tmp_path: Path, pool: str) -> Path:
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.store import add_to_home

    home = tmp_path / f"home-{pool}"
    add_to_home(home, [SAMPLES / pool / "manuals"], build_units)
    return home


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--pools", "/nonexistent/pools"], "is not a folder"),
        (["--folds", "1"], "--folds must be at least 2"),
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--epochs", "0"], "--epochs must be at least 1"),
    ],
)
def test_train_command_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    pools = _small_pools(tmp_path / "pools", per_pool=1)
    args = ["chooser", "train", "--pools", str(pools), "--home", str(tmp_path / "h"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "h").exists() or not list((tmp_path / "h").rglob("*.npz"))


def test_bad_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(WeightsError, match="not a chooser checkpoint"):
        load_set_model(bad)
    with pytest.raises(WeightsError, match="no trained chooser"):
        load_set_model(tmp_path / "missing.json")


def test_an_enhancer_of_a_type_the_user_has_is_nobody_s_producer(tmp_path: Path) -> None:
    """The photo enhancer (image -> image) can feed every image model but none needs it: the
    learned features follow only types the user cannot supply, so it is not their producer
    (the classifier had learned "feeds the best model" as "belongs to the plan")."""
    from edgeai.agents.planning.structure import PoolGraph
    from edgeai.knowledge.store import PoolModel

    def model(name: str, inputs: tuple, outputs: tuple) -> PoolModel:
        return PoolModel(name, "dev", "", "", "", inputs, outputs, {})

    graph = PoolGraph.of([
        model("enhancer", ("image",), ("image",)),
        model("classifier", ("image",), ("label",)),
        model("ocr", ("image",), ("text",)),
        model("translator", ("text",), ("text_en",)),
    ])
    assert graph.raw_available == {"image"}
    assert graph.upstream("classifier") == {"enhancer"}
    assert graph.upstream("classifier", raw=False) == set()
    assert graph.upstream("translator", raw=False) == {"ocr"}
    assert graph.upstream("translator") == {"ocr", "enhancer"}
