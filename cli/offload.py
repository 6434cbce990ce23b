"""`edgeai offload generate|solve|score|train|train-droo|finetune` and `edgeai bench offload`:
make MEC instances, solve and score them, train the AED and DROO networks, fine-tune with ALEF.

A command's hyper-parameter dataclass (TrainArgs, DROOArgs, AlefArgs, BenchArgs) is filled from
the flags of the same names (`_from_flags`), so each flag is spelled once, in its parser."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, TypeVar

from edgeai.cli import add_common
from edgeai.config import Settings
from edgeai.errors import UserInputError
from edgeai.tools.offloading import (
    OBJECTIVES,
    SCENARIOS,
    SOLVERS,
    generate_trajectory,
    load_decision,
    load_instance,
    score,
    solve,
    write_decision,
    write_instance,
)

T = TypeVar("T")


def _from_flags(cls: type[T], args: argparse.Namespace, **given: Any) -> T:
    """The dataclass `cls` with every field a flag of the same name set, `given` overriding."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in vars(args).items() if k in names} | given)


def _moves(text: str) -> int:
    """`--moves`: a whole number >= 0 (0 keeps the decoded policy's answer)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of moves") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of whole numbers >= 1."""
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': whole numbers separated by commas") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"'{text}': every number must be at least 1")
    return values


def _scenarios(text: str) -> tuple[str, ...]:
    names = tuple(text.split(","))
    unknown = [x for x in names if x not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario '{unknown[0]}' (known: {', '.join(SCENARIOS)})"
        )
    return names


def _parts(text: str) -> str:
    """`bench offload --parts`: letters among a-h."""
    unknown = sorted(set(text) - set("abcdefgh"))
    if not text or unknown:
        raise argparse.ArgumentTypeError(f"'{text}': name tables among a b c d e f g h")
    return text


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("offload", help="MEC task offloading: generate, solve, score")
    offload_sub = parser.add_subparsers(dest="offload", required=True, parser_class=type(parser))

    gen = offload_sub.add_parser(
        "generate", help="write scenario instances (one JSON file per time step) into a folder"
    )
    gen.add_argument("--n", type=int, default=50, help="number of UEs (default 50)")
    gen.add_argument("--m", type=int, default=4, help="number of edge servers (default 4)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--steps", type=int, default=1, help="time steps of 1 s along a trajectory")
    gen.add_argument("--scenario", choices=SCENARIOS, default="lambo-50")
    gen.add_argument("--objective", choices=OBJECTIVES, default="min_latency")
    gen.add_argument("--out", type=Path, required=True, help="output folder")
    add_common(gen)
    gen.set_defaults(func=generate_command)

    sol = offload_sub.add_parser(
        "solve", help="solve an instance; decision JSON to --out or stdout, score summary to stderr"
    )
    sol.add_argument("instance", type=Path, help="instance JSON file (specs/offloading.md)")
    sol.add_argument("--solver", choices=sorted(SOLVERS), default="aed")
    sol.add_argument("--objective", choices=OBJECTIVES, help="override the instance's objective")
    sol.add_argument("--seed", type=int, default=0, help="seed of randomised solvers")
    sol.add_argument("--out", type=Path, help="decision file to write (default: print to stdout)")
    sol.add_argument(
        "--checkpoint",
        type=Path,
        help="AED or DROO checkpoint (aed / droo only; default: the shipped one)",
    )
    sol.add_argument(
        "--moves",
        type=_moves,
        help="aed and search only: search budget in moves (neighbourhood scans; default N / 3, "
        "at least 16); a count, not seconds, so the decision does not depend on the machine's load",
    )
    add_common(sol)
    sol.set_defaults(func=solve_command)

    tra = offload_sub.add_parser(
        "train", help="pre-train the AED (exact-label warm start + actor-critic ACL) on CPU"
    )
    tra.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    tra.add_argument("--seed", type=int, default=0)
    tra.add_argument("--sup-instances", type=int, default=4000, help="exact-labelled instances")
    tra.add_argument("--sup-epochs", type=int, default=30)
    tra.add_argument("--acl-iters", type=int, default=400, help="actor-critic updates")
    tra.add_argument("--acl-sizes", default="8,20,50", help="N of the ACL instances, cycled")
    tra.add_argument("--acl-lr", type=float, default=2e-4)
    tra.add_argument(
        "--sup-sizes", type=_ints, default=(6, 8, 10), help="N of the warm-start instances (6,8,10)"
    )
    tra.add_argument(
        "--m-choices",
        type=_ints,
        default=(4,),
        help="servers per warm-start instance, drawn per instance (default 4; with others N, M "
        "and the scenario are drawn per instance, so repeating a size in --sup-sizes weights it)",
    )
    tra.add_argument(
        "--scenarios",
        type=_scenarios,
        default=("lambo-50", "lambo-50-tight"),
        help="scenarios of the training instances (default lambo-50,lambo-50-tight)",
    )
    tra.add_argument(
        "--teacher-moves-per-ue",
        type=int,
        default=4,
        help="labels beyond N = 12: the guarded AED solver with this many search moves per UE",
    )
    tra.add_argument("--sup-batch", type=int, default=64, help="warm-start batch (at N <= 50)")
    tra.add_argument("--lr", type=float, default=1e-3, help="warm-start learning rate")
    tra.add_argument(
        "--hint", action="store_true", help="the simple rule's decision as an input feature"
    )
    tra.add_argument("--init", type=Path, help="start from this checkpoint (second ACL stage)")
    tra.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    add_common(tra)
    tra.set_defaults(func=train_command)

    dro = offload_sub.add_parser(
        "train-droo",
        help="train the DROO baseline online (quantised candidates + replay memory) on CPU",
    )
    dro.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    dro.add_argument("--seed", type=int, default=0)
    dro.add_argument("--steps", type=int, default=12000, help="generated instances (decisions)")
    dro.add_argument("--n", type=int, default=50, help="UEs per training instance")
    dro.add_argument("--train-interval", type=int, default=2, help="steps between updates")
    dro.add_argument("--lr", type=float, default=1e-3)
    dro.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    add_common(dro)
    dro.set_defaults(func=train_droo_command)

    fin = offload_sub.add_parser(
        "finetune", help="ALEF: fine-tune the AED decoder on expert labels of a new distribution"
    )
    fin.add_argument("--checkpoint", type=Path, help="pre-trained AED (default: the shipped one)")
    fin.add_argument("--out", type=Path, required=True, help="fine-tuned checkpoint to write")
    fin.add_argument("--labels", type=int, default=20, help="expert-labelled instances")
    fin.add_argument("--pool", type=int, default=200, help="unlabelled instances ranked by entropy")
    fin.add_argument("--scenario", choices=SCENARIOS, default="shifted")
    fin.add_argument("--n", type=int, default=8, help="UEs per pool instance")
    fin.add_argument(
        "--expert",
        default="auto",
        help="expert solver: auto (exact while N <= 12, else certified), or any registered one",
    )
    fin.add_argument(
        "--rounds", type=int, default=4, help="query rounds the labels are spread over"
    )
    fin.add_argument(
        "--replay", type=int, default=30, help="original-distribution (lambo-50) replay labels"
    )
    fin.add_argument(
        "--pseudo",
        type=int,
        default=argparse.SUPPRESS,
        help="unlabelled pool instances pseudo-labelled each round by the policy + its search "
        "(default: AlefArgs.pseudo)",
    )
    fin.add_argument(
        "--replay-pseudo",
        type=int,
        default=argparse.SUPPRESS,
        help="unlabelled original-distribution instances pseudo-labelled each round "
        "(default: AlefArgs.replay_pseudo)",
    )
    fin.add_argument("--seed", type=int, default=0)
    fin.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    add_common(fin)
    fin.set_defaults(func=finetune_command)

    sco = offload_sub.add_parser(
        "score", help="check a decision against an instance (exit 1 when infeasible)"
    )
    sco.add_argument("instance", type=Path)
    sco.add_argument("decision", type=Path)
    sco.add_argument("--objective", choices=OBJECTIVES, help="score under another objective")
    sco.add_argument("--json", action="store_true", help="print the full score as JSON")
    add_common(sco)
    sco.set_defaults(func=score_command)


def generate_command(args: argparse.Namespace, settings: Settings) -> int:
    del settings
    instances = generate_trajectory(
        n=args.n,
        m=args.m,
        steps=args.steps,
        seed=args.seed,
        scenario=args.scenario,
        objective=args.objective,
    )
    for step, instance in enumerate(instances):
        print(write_instance(instance, args.out / f"instance_{step:04d}.json"))
    return 0


def solve_command(args: argparse.Namespace, settings: Settings) -> int:
    del settings
    instance = load_instance(args.instance, args.objective)
    options = {}
    if args.checkpoint is not None:
        if args.solver not in ("aed", "droo"):
            raise UserInputError("--checkpoint applies to the aed and droo solvers only")
        options["checkpoint"] = args.checkpoint
    if args.moves is not None:
        if args.solver not in ("aed", "search"):
            raise UserInputError("--moves applies to the aed and search solvers only")
        options["moves"] = args.moves
    decision = solve(instance, solver=args.solver, seed=args.seed, **options)
    if args.out is not None:
        write_decision(decision, args.out)
    else:
        print(json.dumps(decision.to_dict(), indent=1))
    result = score(instance, decision)
    print(
        f"{args.solver}: {result.summary()}; solved in {decision.solve_seconds:.4g} s",
        file=sys.stderr,
    )
    return 0


def _command_line() -> str:
    return "edgeai " + " ".join(sys.argv[1:])


def train_command(args: argparse.Namespace, settings: Settings) -> int:
    del settings
    from edgeai.tools.offloading.train import TrainArgs, train

    train_args = _from_flags(
        TrainArgs,
        args,
        acl_sizes=tuple(int(x) for x in args.acl_sizes.split(",")),
        init=str(args.init) if args.init else None,
    )
    meta = train(train_args, args.out, command=_command_line())
    print(f"wrote {args.out} ({meta['parameters']} parameters, {meta['train_seconds']} s)")
    return 0


def train_droo_command(args: argparse.Namespace, settings: Settings) -> int:
    del settings
    from edgeai.tools.offloading.droo import DROOArgs, train_droo

    _, meta = train_droo(_from_flags(DROOArgs, args), args.out, command=_command_line())
    print(f"wrote {args.out} ({meta['parameters']} parameters, {meta['train_seconds']} s)")
    return 0


def finetune_command(args: argparse.Namespace, settings: Settings) -> int:
    del settings
    from edgeai.tools.offloading.aed import load_model, save_checkpoint
    from edgeai.tools.offloading.registry import get_solver
    from edgeai.tools.offloading.train import AlefArgs, finetune

    if args.expert != "auto":
        get_solver(args.expert)  # unknown expert: one-line error before any work
    loaded = load_model(args.checkpoint)
    model = copy.deepcopy(loaded.model)
    done = finetune(
        model, _from_flags(AlefArgs, args), progress=lambda msg: print(msg, file=sys.stderr)
    )
    meta = {**loaded.meta, **done, "command": _command_line(), "pretrained": loaded.meta}
    save_checkpoint(model, args.out, meta)
    print(f"wrote {args.out} (decoder fine-tuned on {args.labels} {done['expert']} labels)")
    return 0


def score_command(args: argparse.Namespace, settings: Settings) -> int:
    del settings
    instance = load_instance(args.instance)
    decision = load_decision(args.decision)
    result = score(instance, decision, args.objective)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=1))
    else:
        print(result.summary())
        for violation in result.violations:
            print(f"  violation: {violation}")
    return 0 if result.feasible else 1


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    parser = bench_sub.add_parser(
        "offload", help="offloading solvers side by side: gaps, feasibility, time, ALEF"
    )
    parser.add_argument("--instances", type=int, default=30, help="instances per table cell")
    parser.add_argument("--seed", type=int, default=0, help="first instance seed")
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke run)")
    parser.add_argument(
        "--parts",
        default="abcde",
        type=_parts,
        help="which tables: any of a b c d e f g h (f: the certified reference's own time and "
        "gap; g: the policy at N = 50/200/500; h: aed against the search alone at the same CPU)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="AED checkpoint of the aed rows (default: the shipped one)"
    )
    add_common(parser)
    parser.set_defaults(func=bench_command)


def bench_command(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.offloading.bench import BenchArgs, run_bench

    checkpoint = None
    if args.checkpoint is not None:
        from edgeai.tools.offloading.aed import load_model

        load_model(args.checkpoint)  # missing or unfit: one-line error before any work
        checkpoint = str(args.checkpoint)
    run_bench(_from_flags(BenchArgs, args, checkpoint=checkpoint), settings.bench_dir / "offload")
    return 0
