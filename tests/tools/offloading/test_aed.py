"""AED solver: fast decoder equals the torch decoder, feasibility, shipped checkpoint quality,
training and ALEF smoke runs on the real code paths, CLI."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from edgeai.cli import main
from edgeai.tools.offloading import SOLVERS, generate_instance, load_decision, score, solve
from edgeai.tools.offloading.aed import (
    AEDConfig,
    FastDecoder,
    build_model,
    checkpoint_dir,
    features,
    load_model,
    solve_aed,
)
from edgeai.tools.offloading.evaluate import Evaluator
from edgeai.tools.offloading.exact import optimal_targets
from edgeai.tools.offloading.train import (
    AlefArgs,
    TrainArgs,
    finetune,
    make_batch,
    rollout,
    to_targets,
    train,
)

OBJECTIVES = ("min_latency", "min_energy")
SHIPPED = checkpoint_dir() / "aed.pt"
EDGEAI = Path(sys.executable).parent / "edgeai"


@pytest.mark.parametrize("hint", [False, True])
@pytest.mark.parametrize("scenario", ["lambo-50", "lambo-50-tight", "shifted"])
def test_fast_decoder_equals_torch_greedy_decode(scenario: str, hint: bool) -> None:
    torch.manual_seed(0)
    model = build_model(AEDConfig(hint=hint), seed=3).eval()
    fast = FastDecoder(model)
    for seed, objective in [(1, "min_latency"), (2, "min_energy"), (3, "min_latency")]:
        ev = Evaluator(generate_instance(12, 4, seed, scenario, objective), objective)
        feats = features(ev, hint)
        with torch.no_grad():
            out = rollout(model, make_batch([ev], [feats]), "greedy", np.random.default_rng(0))
            pre, local, _ = model.encode(*_inputs(make_batch([ev], [feats])))
        slow = to_targets(feats, out.choices[0])
        quick, _ = fast.decode(
            feats, pre[0].double().numpy(), local[0].double().numpy(), 1, np.random.default_rng(0)
        )
        np.testing.assert_array_equal(quick[0], slow)


def _inputs(batch):
    return batch.ue, batch.server, batch.pair, batch.prompt


def test_aed_is_registered() -> None:
    assert "aed" in SOLVERS
    assert SOLVERS["aed"].target in ("edgeai.tools.offloading.aed:solve_aed", solve_aed)


@pytest.mark.parametrize("scenario", ["lambo-50", "lambo-50-tight", "shifted"])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_aed_decisions_are_feasible(scenario: str, objective: str) -> None:
    for n in (5, 30):
        inst = generate_instance(n, 4, 77, scenario, objective)
        for opts in ({}, {"samples": 1, "search": False}):
            decision = solve(inst, solver="aed", **opts)
            s = score(inst, decision)
            assert s.feasible, s.violations
            assert decision.solver == "aed" and decision.solve_seconds > 0
            assert "fallback" not in decision.model_extra


def test_aed_handles_other_m_and_no_server() -> None:
    for m in (0, 1, 6):
        inst = generate_instance(10, m, 5, "lambo-50-tight", "min_latency")
        assert score(inst, solve(inst, solver="aed")).feasible


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_shipped_checkpoint_near_exact_at_n8(objective: str) -> None:
    """Fresh seeds (never used in training: those start at 10 000 000)."""
    gaps = []
    for seed in range(900, 910):
        for scenario in ("lambo-50", "lambo-50-tight"):
            inst = generate_instance(8, 4, seed, scenario, objective)
            ev = Evaluator(inst, objective)  # type: ignore[arg-type]
            _, best = optimal_targets(ev)
            value = score(inst, solve(inst, solver="aed")).objective_value
            gaps.append(value / ev.objective_of_total(best) - 1.0)
    assert np.mean(gaps) <= 0.01
    assert min(gaps) >= -1e-9  # never better than the optimum: the yardstick holds


def test_shipped_checkpoint_records_how_it_was_made() -> None:
    meta = load_model().meta
    assert meta["command"].startswith("edgeai offload train")
    assert "seed" in meta["args"]
    assert SHIPPED.stat().st_size < 5_000_000


def test_train_and_finetune_smoke(tmp_path: Path) -> None:
    args = TrainArgs(sup_instances=6, sup_sizes=(5,), sup_epochs=1, acl_iters=2, acl_sizes=(6,))
    out = tmp_path / "aed.pt"
    meta = train(args, out, command="test")
    loaded = load_model(out)
    assert meta["parameters"] == sum(p.numel() for p in loaded.model.parameters())
    inst = generate_instance(6, 4, 1, "lambo-50", "min_energy")
    assert score(inst, solve_aed(inst, "min_energy", checkpoint=out)).feasible

    model = loaded.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    done = finetune(model, AlefArgs(labels=3, rounds=2, pool=8, n=5, epochs=2, replay=2))
    assert done["expert"] == "exact" and len(done["labelled"]) == 3 == len(set(done["labelled"]))
    assert [r["labels"] for r in done["rounds"]] == [2, 3]
    for r in done["rounds"]:  # most uncertain first: disagreement, ties by entropy
        keys = list(zip(r["disagreement"], r["entropy"], strict=True))
        assert keys == sorted(keys, reverse=True)
    after = model.state_dict()
    decoder = {id(p) for p in model.decoder_parameters()}
    names = {n for n, p in model.named_parameters() if id(p) in decoder}
    for name, value in after.items():
        if name.startswith(("encoder.", "ue_in.", "server_in.", "prompt_in.", "kind.")):
            assert torch.equal(value, before[name]), name  # encoder frozen
    assert any(not torch.equal(after[n], before[n]) for n in names)  # decoder moved


def test_cli_solve_defaults_to_aed(tmp_path: Path) -> None:
    inst = generate_instance(20, 4, 3, "lambo-50-tight", "min_energy")
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(inst.to_dict()))
    proc = subprocess.run(
        [str(EDGEAI), "offload", "solve", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    decision = json.loads(proc.stdout)
    assert decision["solver"] == "aed" and decision["solve_seconds"] > 0
    assert len(decision["assignments"]) == 20


def test_cli_missing_checkpoint_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            str(EDGEAI),
            "offload",
            "finetune",
            "--checkpoint",
            str(tmp_path / "nope.pt"),
            "--out",
            str(tmp_path / "x.pt"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "nope.pt" in proc.stderr


def test_cli_moves_budget_and_its_one_line_errors(tmp_path: Path, capsys) -> None:
    inst = generate_instance(30, 4, 3, "lambo-50-tight", "min_energy")
    path, out = tmp_path / "inst.json", tmp_path / "d.json"
    path.write_text(json.dumps(inst.to_dict()))
    assert main(["offload", "solve", str(path), "--moves", "0", "--out", str(out)]) == 0
    policy = solve_aed(inst, "min_energy", search=False)
    assert load_decision(out).assignments == policy.assignments
    capsys.readouterr()
    for bad in ("-3", "many", "2.5"):
        with pytest.raises(SystemExit) as exit_:
            main(["offload", "solve", str(path), "--moves", bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--moves" in err
    assert main(["offload", "solve", str(path), "--solver", "greedy", "--moves", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--moves applies to the aed and search solvers only" in err
    assert main(["offload", "solve", str(path), "--solver", "search", "--moves", "5"]) == 0
    capsys.readouterr()


def test_hinted_mixed_size_training_from_an_unhinted_checkpoint(tmp_path: Path) -> None:
    """`--hint --init OLD.pt`: an unhinted checkpoint's weights are widened with zero weights on
    the rule's feature (so the decode starts unchanged), labels come from exact (N <= 12) and
    from the search teacher beyond, with N, M and the scenario drawn per instance."""
    from edgeai.tools.offloading.aed import save_checkpoint

    inst = generate_instance(30, 4, 5, "lambo-50", "min_energy")
    ev = Evaluator(inst, "min_energy")
    unhinted = build_model(AEDConfig(), seed=4).eval()
    init = save_checkpoint(unhinted, tmp_path / "unhinted.pt", {})
    args = TrainArgs(
        sup_instances=4,
        sup_sizes=(6, 30),
        m_choices=(2, 5),
        scenarios=("lambo-50", "shifted"),
        sup_epochs=1,
        acl_iters=0,
        lr=0.0,  # weights unchanged: the widened model must decode like the shipped one
        hint=True,
        init=str(init),
        teacher_moves_per_ue=1,
    )
    out = tmp_path / "hinted.pt"
    meta = train(args, out, command="test")
    assert meta["args"]["config"]["hint"] is True
    hinted = load_model(out)
    assert hinted.model.cfg.hint
    from edgeai.tools.offloading.aed import policy_targets
    from edgeai.tools.offloading.train import loaded_from

    same, _ = policy_targets(loaded_from(unhinted), ev, 1)
    widened, _ = policy_targets(hinted, ev, 1)
    np.testing.assert_array_equal(same, widened)
    assert score(inst, solve_aed(inst, "min_energy", checkpoint=out)).feasible


def test_cli_train_flags_refuse_bad_lists_in_one_line(capsys) -> None:
    for flag, bad in (("--sup-sizes", "10,0"), ("--m-choices", "a,b"), ("--scenarios", "moon")):
        with pytest.raises(SystemExit) as exit_:
            main(["offload", "train", "--out", "x.pt", flag, bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and flag in err


def test_alef_rounds_label_with_the_certified_expert_at_the_target_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ALEF beyond the exact solver's N: every label (pool and replay) is the certified MILP's
    decision on an instance of the target size, and each round trains on all labels so far
    plus the replay set (original distribution, lambo-50)."""
    import copy

    from edgeai.tools.offloading import train as train_mod

    model = copy.deepcopy(load_model().model)
    args = AlefArgs(labels=3, rounds=2, rollouts=4, pool=4, n=14, m=3, epochs=1, replay=2)
    calls: list[tuple[int, str]] = []
    trained: list[list] = []
    real_expert, real_fit = train_mod.expert_targets, train_mod.fit_supervised

    def expert(ev: Evaluator, name: str) -> np.ndarray:
        calls.append((ev.n, name))
        return real_expert(ev, name)

    def fit(model_: object, data: list, *rest: object, **kw: object) -> list[float]:
        trained.append(list(data))
        return real_fit(model_, data, *rest, **kw)

    monkeypatch.setattr(train_mod, "expert_targets", expert)
    monkeypatch.setattr(train_mod, "fit_supervised", fit)
    done = finetune(model, args)
    assert done["expert"] == "certified" and done["label_n"] == [14]
    assert calls == [(14, "certified")] * (3 + 2)
    assert [len(d) for d in trained] == [2 + 2, 3 + 2]
    replay = train_mod.alef_pool(args, "lambo-50", 2, offset=50_000)
    assert [x.evaluator.instance for x in trained[-1][-2:]] == [e.instance for e in replay]
    for x in trained[-1]:  # each label is the certified MILP's own decision
        inst = x.evaluator.instance
        decision = solve(inst, x.evaluator.objective, solver="certified")
        index = inst.server_index
        want = np.array([-1 if a.is_local else index[a.target] for a in decision.assignments])
        assert np.array_equal(x.choices, np.asarray(want)[x.feats.order] + 1)


def test_finetune_pseudo_labels_come_from_the_unlabelled_pool_without_the_expert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Self-training: the expert labels only the queried pool instances and the replay set;
    the pseudo-labels are the policy + search decisions on the other pool instances (and on
    unlabelled original-distribution ones), never worse than the greedy decode or the rule."""
    from edgeai.tools.offloading import train as train_module
    from edgeai.tools.offloading.aed import policy_targets
    from edgeai.tools.offloading.baselines import rule_targets

    expert_calls: list[int] = []
    real_expert = train_module.expert_targets

    def spy(ev: Evaluator, expert: str) -> np.ndarray:
        expert_calls.append(id(ev))
        return real_expert(ev, expert)

    searched: list[int] = []
    real_search = train_module.search_targets

    def spy_search(loaded, ev, samples, moves, seed):  # type: ignore[no-untyped-def]
        searched.append(id(ev))
        out = real_search(loaded, ev, samples, moves, seed)
        greedy = policy_targets(loaded, ev, 1, want_entropy=False)[0][0]
        for other in (greedy, rule_targets(ev)):
            assert ev.total(out)[0] <= ev.total(other)[0] + 1e-12
        return out

    monkeypatch.setattr(train_module, "expert_targets", spy)
    monkeypatch.setattr(train_module, "search_targets", spy_search)
    args = AlefArgs(labels=3, rounds=2, pool=8, n=6, epochs=1, replay=2, pseudo=4, replay_pseudo=2)
    pool = train_module.alef_pool(args)
    replay = train_module.alef_pool(args, "lambo-50", 2, offset=50_000)
    model = copy.deepcopy(load_model(SHIPPED).model)
    done = finetune(model, args, pool=pool, replay=replay)
    labelled = {id(pool[i]) for i in done["labelled"]}
    assert set(expert_calls) == labelled | {id(ev) for ev in replay}
    assert len(expert_calls) == 3 + 2  # each expert label once, nothing else
    pool_ids = {id(ev) for ev in pool}
    assert not set(searched) & labelled  # no pseudo-label on an expert-labelled instance
    assert not set(searched) & {id(ev) for ev in replay}
    assert [r["pseudo_labels"] for r in done["rounds"]] == [4 + 2, 4 + 2]
    assert sum(i in pool_ids for i in searched) == 8  # 4 pool instances per round
    assert done["pseudo_labels_per_round"] == 6


def test_finetune_encoder_lr_moves_the_encoder() -> None:
    model = build_model(AEDConfig(hint=True), seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finetune(model, AlefArgs(labels=2, rounds=1, pool=4, n=5, epochs=2, replay=0, encoder_lr=1e-3))
    after = model.state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("encoder."))


def test_finetune_selection_never_keeps_a_worse_policy_than_the_round_start() -> None:
    """Label-free selection: each round keeps the parameters with the lowest mean excess cost
    (new + original distribution) over the search reference, the round's start included; so
    with a harmful learning rate the selected policy still scores no worse than the start."""
    from edgeai.tools.offloading.train import Selector

    model = copy.deepcopy(load_model(SHIPPED).model)
    args = AlefArgs(
        labels=2, rounds=2, pool=4, n=6, epochs=3, replay=0, lr=0.05, select=4, select_every=1
    )
    start = Selector(copy.deepcopy(model), args).best[0]  # same instances and references
    done = finetune(model, args)
    for r in done["rounds"]:
        assert 0 <= r["selected_epoch"] <= 3
    assert done["rounds"][-1]["selection_excess_pct"] <= 100 * start + 1e-9
