"""Federated fine-tuning (issue 34) on a tiny random Llama saved locally: the same code path as
SmolLM2-135M (the base loads from a local folder exactly as a real one would), real Flower
simulation, real peft adapters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from edgeai.cli import main
from edgeai.tools.channel import Cell
from edgeai.tools.federated.fedtune import app, text
from edgeai.tools.federated.fedtune.bench import ari, finished, paired_interval, time_to_reach
from edgeai.tools.federated.fedtune.job import METHODS, FedtuneJob
from edgeai.tools.federated.fedtune.model import (
    ADAPTERS,
    BaseModelError,
    adapter_arrays,
    load_adapter_arrays,
    load_base,
    make_adapter,
    save_tiny_model,
)
from edgeai.tools.federated.fedtune.run import run_fedtune
from edgeai.tools.federated.fedtune.strategies import (
    ALLOWED_METRICS,
    ClusteredFedAvg,
    HierarchicalFedAvg,
    Timing,
    Update,
    weighted_mean,
)
from flwr.app import ArrayRecord, MetricRecord


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    texts = [e.text for e in text.corpus_examples("generated", 60)]
    return str(save_tiny_model(tmp_path_factory.mktemp("tinylm") / "model", texts))


def small_job(tiny: str, method: str, **kw: object) -> FedtuneJob:
    settings = {"corpus": "generated", "users": 4, "rounds": 2, "local_steps": 2, "batch": 4,
                "per_user": 12, "held_out": 6, "max_tokens": 32, "base": tiny, "lr": 3e-2}
    return FedtuneJob(method=method, **{**settings, **kw})


# --- data ---------------------------------------------------------------------------------

def test_users_hold_one_domain_and_keep_held_out_apart() -> None:
    ex = text.corpus_examples("generated", 30, seed=1)
    users = text.partition_users(ex, 8, per_user=10, held_out=5, seed=1)
    assert [u["domain"] for u in users] == [u % 4 for u in range(8)]
    for u in users:
        assert {r["domain"] for r in u["train"] + u["test"]} == {u["domain"]}
        assert not {r["text"] for r in u["train"]} & {r["text"] for r in u["test"]}
        assert len(u["test"]) == 5 and len(u["train"]) == 10
    assert text.generated_texts("recipe", 3, 0) == text.generated_texts("recipe", 3, 0)
    assert text.generated_texts("recipe", 3, 0) != text.generated_texts("recipe", 3, 1)


@pytest.mark.skipif(not text.fortunes_installed(), reason="fortunes not installed")
def test_fortunes_domains() -> None:
    ex = text.corpus_examples("fortunes", 20)
    assert {e.category for e in ex} == {c for pair in text.FORTUNE_DOMAINS for c in pair}
    assert all("\n%\n" not in e.text and len(e.text) <= text.MAX_CHARS for e in ex)


# --- model and adapters ---------------------------------------------------------------------

@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapter_trains_only_itself_and_round_trips(tiny: str, adapter: str) -> None:
    model, _ = make_adapter(adapter, tiny)
    base, _ = load_base(tiny)
    assert not any(p.requires_grad for p in base.parameters())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(("lora_" in n) or ("prompt_encoder" in n) for n in trainable)
    arrays = adapter_arrays(model)
    changed = {k: v + 1.0 for k, v in arrays.items()}
    load_adapter_arrays(model, changed)
    assert all(np.allclose(adapter_arrays(model)[k], changed[k]) for k in arrays)
    with pytest.raises(ValueError, match="do not match"):
        load_adapter_arrays(model, {"nope": np.zeros(2, np.float32)})


@pytest.mark.parametrize("adapter", ["prefix", "prompt"])
def test_prefix_and_prompt_start_as_the_base_reading_a_sentence(tiny: str, adapter: str) -> None:
    from edgeai.tools.federated.fedtune.model import _init_ids

    model, tok = make_adapter(adapter, tiny)
    base, _ = load_base(tiny)
    ids = tok("Chop the onions and fry them", return_tensors="pt")["input_ids"]
    init = torch.tensor([_init_ids(tok)])
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[:, -ids.shape[1]:]
        want = base(input_ids=torch.cat([init, ids], dim=1)).logits[:, -ids.shape[1]:]
    assert torch.allclose(got, want, atol=1e-4)


def test_bad_base_paths_are_clear(tmp_path: Path) -> None:
    with pytest.raises(BaseModelError, match="no such base model"):
        load_base(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaseModelError, match="no config.json"):
        load_base(str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BaseModelError, match="not valid JSON"):
        load_base(str(tmp_path / "bad"))
    (tmp_path / "x.gguf").write_bytes(b"this is not a gguf file")
    with pytest.raises(BaseModelError, match="cannot load"):
        load_base(str(tmp_path / "x.gguf"))


# --- strategies without Flower --------------------------------------------------------------

def test_weighted_mean_and_clock() -> None:
    a, b = {"w": np.zeros(3, np.float32)}, {"w": np.ones(3, np.float32)}
    assert np.allclose(weighted_mean([(a, 1.0), (b, 3.0)])["w"], 0.75)
    t = Timing(np.array([10.0, 90.0]), np.array([1.0, 5.0]))
    near, far = t.client_s(0, 2.0, 10_000), t.client_s(1, 2.0, 10_000)
    assert near == pytest.approx(2.0 + 8e4 / float(Cell().rate_bps(10.0, 2)))
    assert far > 5 * 2.0 > near


def _update(node: int, user: int, w: np.ndarray) -> Update:
    return Update(node, user, {"w": w.astype(np.float32)}, 1.0, 1.0, 0.0)


def test_clustering_recovers_separated_users() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 50))
    s = ClusteredFedAvg(clusters=4, cluster_round=1, users=12,
                        timing=Timing(np.full(12, 50.0), np.ones(12)))
    s.groups = {0: {"w": np.zeros(50, np.float32)}}
    ups = [_update(100 + u, u, centres[u % 4] + 0.05 * rng.normal(size=50)) for u in range(12)]
    s.aggregate_groups(1, ups)
    assert ari(s.found, 12) == pytest.approx(1.0)
    assert len(s.groups) == 4
    for u in ups:  # each cluster's adapter is the mean of its own users' adapters
        members = [v.arrays["w"] for v in ups if v.user % 4 == u.user % 4]
        assert np.allclose(s.arrays_for(u.node)["w"], np.mean(members, axis=0), atol=1e-5)


def test_hierarchical_backhaul_only_at_cloud_rounds() -> None:
    s = HierarchicalFedAvg(edges=2, cloud_period=2, users=4,
                           timing=Timing(np.full(4, 50.0), np.ones(4)))
    s.groups = {0: {"w": np.zeros(10, np.float32)}}
    ups = [_update(u, u, np.full(10, float(u))) for u in range(4)]
    s.aggregate_groups(1, ups)
    assert s.backhaul_bytes == 0 and not np.allclose(s.groups[0]["w"], s.groups[1]["w"])
    s.aggregate_groups(2, ups)
    assert s.backhaul_bytes == 2 * 2 * 40  # two edges, up and down, 40 bytes each
    assert np.allclose(s.groups[0]["w"], 1.5) and np.allclose(s.groups[1]["w"], 1.5)


def test_bench_helpers() -> None:
    mean, lo, hi = paired_interval([3.0, 4.0, 5.0], [2.0, 3.5, 4.0])
    assert mean == pytest.approx(0.8333, abs=1e-3) and lo <= mean <= hi
    rows = [{"mean_loss": 5.0, "sim_s": 0.0}, {"mean_loss": 4.0, "sim_s": 3.0},
            {"mean_loss": 3.0, "sim_s": 7.0}]
    assert time_to_reach(rows, 3.5) == 7.0 and time_to_reach(rows, 1.0) is None


# --- end to end on Flower's Simulation Engine -----------------------------------------------

def test_only_adapters_and_metrics_cross_the_boundary(tiny: str, tmp_path: Path) -> None:
    seen = []
    app.STRATEGY_HOOKS.append(seen.append)
    try:
        result = run_fedtune(small_job(tiny, "lora"), tmp_path / "run")
    finally:
        app.STRATEGY_HOOKS.clear()
    strategy = seen[0]
    model, _ = make_adapter("lora", tiny)
    keys = set(adapter_arrays(model))
    assert len(strategy.crossed) == 4 * (1 + 2 + 2)  # base eval + 2 x (train + eval) per user
    texts = [r["text"] for u in range(4) for r in
             json.loads((tmp_path / "run" / "users" / f"user_{u}.json").read_text())["train"]]
    for content in strategy.crossed:
        assert set(content.keys()) <= {"arrays", "metrics"}
        assert isinstance(content["metrics"], MetricRecord)
        assert set(content["metrics"].keys()) <= ALLOWED_METRICS
        assert all(isinstance(v, (int, float)) for v in content["metrics"].values())
        if "arrays" in content:
            record = content["arrays"]
            assert isinstance(record, ArrayRecord) and set(record.keys()) == keys
            blob = b"".join(a.data for a in record.values())
            assert not any(t[:24].encode() in blob for t in texts)
    assert all(result.final_losses[u] < result.base_losses[u] for u in range(4))
    assert (tmp_path / "run" / "rounds.csv").exists() and (tmp_path / "run" / "curve.png").exists()


@pytest.mark.parametrize("method,extra", [
    ("prompt", {}),
    ("cfl-lora", {"task": "classification", "users": 8, "clusters": 4}),
    ("hier-lora", {"edges": 2, "cloud_period": 1}),
    ("async-lora", {"stragglers": 0.25}),
])
def test_methods_run_and_improve_every_user(tiny: str, tmp_path: Path, method: str,
                                            extra: dict) -> None:
    job = small_job(tiny, method, **extra)
    result = run_fedtune(job, tmp_path / method)
    assert len(result.rows) == result.job.rounds + 1
    # the bench's --resume reuses exactly this job's finished run, and nothing else
    assert finished(job, tmp_path / method).rows == result.rows
    assert finished(job.model_copy(update={"rounds": 3}), tmp_path / method) is None
    assert all(result.final_losses[u] < result.base_losses[u] for u in result.base_losses)
    s = result.summary
    assert s["bytes_up"] == result.job.users * result.job.rounds * s["adapter_bytes"]
    if method == "cfl-lora":
        assert set(s["found_clusters"]) == {str(u) for u in range(8)}
        assert "mean_acc" in result.rows[-1]
    if method == "hier-lora":  # one merged adapter per edge up and down, every round
        assert s["backhaul_bytes"] == 2 * 2 * result.job.rounds * s["adapter_bytes"]
    if method == "async-lora":  # the stragglers do fewer of the updates, so time runs shorter
        assert s["slowdown"].count(5.0) == 1


# --- CLI: bad input is one line and exit 2 ----------------------------------------------------

def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [
    (["--method", "fedsgd"], "invalid choice"),
    (["--method", "lora", "--rounds", "0"], "--rounds"),
    (["--method", "lora", "--rounds", "-3"], "--rounds"),
    (["--method", "cfl-lora", "--users", "4", "--clusters", "5"], "more clusters than users"),
    (["--method", "lora", "--base", "/nonexistent/model"], "no such base model"),
])
def test_fedtune_bad_input(capsys, tmp_path: Path, argv: list[str], needle: str) -> None:
    code, err = _cli(capsys, "fedtune", "run", *argv, "--home", str(tmp_path / "home"))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not (tmp_path / "home" / "runs").exists()


def test_fedtune_corrupt_local_model(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    code, err = _cli(capsys, "fedtune", "run", "--method", "lora", "--base", str(bad),
                     "--corpus", "generated", "--home", str(tmp_path / "home"))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "cannot load the base model" in lines[0], err


def test_every_method_is_known() -> None:
    assert set(METHODS) == {"lora", "prefix", "prompt", "cfl-lora", "hier-lora", "async-lora"}
    assert torch.get_num_threads() >= 1


@pytest.mark.slow
def test_the_same_apps_run_on_the_deployment_engine(tiny: str, tmp_path: Path) -> None:
    """`flwr run` on a local SuperLink with one SuperNode per user (loopback), then nothing left."""
    import psutil

    lines: list[str] = []
    result = run_fedtune(small_job(tiny, "lora"), tmp_path / "dep", deployment=True,
                         on_line=lines.append, timeout_s=600)
    assert len(result.rows) == 3 and result.summary["bytes_up"] == 4 * 2 * 7168
    assert all(result.final_losses[u] < result.base_losses[u] for u in range(4))
    assert (tmp_path / "dep" / "app" / "pyproject.toml").is_file() and lines
    alive = [p for p in psutil.process_iter(["cmdline"])
             if any("flower-super" in c for c in (p.info["cmdline"] or []))
             and str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert not alive


def test_async_stops_at_its_target_loss(tiny: str, tmp_path: Path) -> None:
    job = small_job(tiny, "async-lora", stragglers=0.25, async_budget=3.0, target_loss=1e9)
    result = run_fedtune(job, tmp_path / "async")
    assert result.summary["reached"] and len(result.rows) == 2  # base + the first evaluation
    assert result.summary["bytes_up"] >= 4 * result.summary["adapter_bytes"]
