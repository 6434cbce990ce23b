"""`edgeai offload generate|solve|score`: make instances, solve them, score decisions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeai.cli import add_common
from edgeai.config import Settings
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
    sol.add_argument("--solver", choices=sorted(SOLVERS), default="greedy")
    sol.add_argument("--objective", choices=OBJECTIVES, help="override the instance's objective")
    sol.add_argument("--seed", type=int, default=0, help="seed of randomised solvers")
    sol.add_argument("--out", type=Path, help="decision file to write (default: print to stdout)")
    add_common(sol)
    sol.set_defaults(func=solve_command)

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
    decision = solve(instance, solver=args.solver, seed=args.seed)
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
