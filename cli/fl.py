"""`edgeai fl auto "PURPOSE"` (automatic federated learning: trials, tuning, registration) and
`edgeai fl run` (one configuration on the Simulation or the Deployment Engine); `edgeai bench fl`.

`fl auto` runs the training graph (graphs/training.py) on the data home: the codegen agent
proposes, the validator checks, the person approves the first run of generated code (a prompt
on a terminal, `--yes` in scripts), each trial runs sandboxed with a progress bar per trial, the
FL-tuner reads the curve, and the best model is registered in the store so `edgeai plan` and
`edgeai ask` use it. Everything a trial wrote stays under `<home>/runs/fl/<run>/`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edgeai.cli import add_common, add_store
from edgeai.config import Settings
from edgeai.errors import UserInputError


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def add_training_flags(p: argparse.ArgumentParser, *, trials: bool = True) -> None:
    p.add_argument("--data", default="generated",
                   help="generated (synthetic 32x32 photos, 10 classes), digits (scikit-learn) "
                        "or cifar10:PATH (a local cifar-10-batches-py folder)")
    if trials:
        p.add_argument("--trials", type=_positive, default=3, help="at most this many trials")
        p.add_argument("--target", type=float, help="stop once validation accuracy reaches it")
        p.add_argument("--budget", type=_positive,
                       help="most client-epochs the trials may spend together (one client "
                            "training one local epoch); default: no cap")
    p.add_argument("--clients", type=_positive, default=10, help="simulated clients (default 10)")
    p.add_argument("--rounds", type=_positive, default=10, help="global rounds per trial")
    p.add_argument("--partition", choices=["iid", "dirichlet"], default="iid")
    p.add_argument("--alpha", type=_alpha, default=0.5, help="Dirichlet alpha (non-IID)")
    p.add_argument("--n-train", type=_positive, help="use only this many training examples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=1800.0, help="seconds per sandboxed trial")
    p.add_argument("--memory-mb", type=_positive, default=6144, help="memory cap per trial")


def register(sub: argparse._SubParsersAction) -> None:
    fl = sub.add_parser("fl", help="automatic federated learning: auto (trials + tuning), run")
    fl_sub = fl.add_subparsers(dest="fl_command", required=True)
    auto = fl_sub.add_parser("auto", help="train a model for a purpose: trials, tuning, registration")
    auto.add_argument("purpose", help='what the model is for, e.g. "train an image classifier for my photos"')
    add_training_flags(auto)
    auto.add_argument("--yes", action="store_true", help="approve generated code without asking")
    auto.add_argument("--json", action="store_true", help="print the run's record as JSON")
    add_common(auto)
    add_store(auto)
    auto.set_defaults(func=cmd_auto)
    run = fl_sub.add_parser("run", help="run one configuration of the template")
    run.add_argument("--config", help="JSON object of configuration values (default: the template's)")
    run.add_argument("--deployment", action="store_true",
                     help="Flower's Deployment Engine: a local SuperLink and SuperNodes on 127.0.0.1")
    add_training_flags(run, trials=False)
    add_common(run)
    run.set_defaults(func=cmd_run)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    b = bench_sub.add_parser("fl", help="Fig. 4: automatic FL trials vs a grid-searched baseline")
    b.add_argument("--data", nargs="+", default=["generated", "digits"])
    b.add_argument("--partition", nargs="+", default=["iid", "dirichlet"], choices=["iid", "dirichlet"])
    b.add_argument("--alpha", type=_alpha, default=0.5)
    b.add_argument("--clients", type=_positive, default=10)
    b.add_argument("--rounds", type=_positive, default=10)
    b.add_argument("--trials", type=_positive, default=3)
    b.add_argument("--grid", default="0.003,0.01,0.03,0.1,0.3",
                   help="the baseline's learning rates (comma-separated)")
    b.add_argument("--baseline-arch", default="resnet")
    b.add_argument("--baseline-epochs", type=_positive, default=1,
                   help="the baseline's local epochs (3 gives it the trials' local computation)")
    b.add_argument("--budget", default="equal",
                   help="the trials' client-epoch budget: 'equal' (what the grid spends, the "
                        "default), 'none', or a number")
    b.add_argument("--n-train", type=_positive)
    b.add_argument("--seed", type=int, default=0)
    add_common(b)
    b.set_defaults(func=cmd_bench)


def _options(args: argparse.Namespace) -> Any:
    from edgeai.graphs.state import FLOptions
    from edgeai.tools.federated.data import check_spec

    check_spec(args.data)  # one line, before anything is created
    return FLOptions(
        data=args.data, clients=args.clients, rounds=args.rounds,
        trials=getattr(args, "trials", 1), target=getattr(args, "target", None),
        budget=getattr(args, "budget", None),
        scheme=args.partition, alpha=args.alpha, n_train=args.n_train, seed=args.seed,
        seconds=args.time_limit, memory_mb=args.memory_mb,
    )


class Progress:
    """Training events as progress bars on stderr: one bar per trial, one tick per round."""

    def __init__(self, quiet: bool = False) -> None:
        self.bar: Any = None
        self.quiet = quiet

    def __call__(self, event: dict[str, Any]) -> None:
        from tqdm import tqdm

        kind = event["event"]
        if self.quiet:
            return
        if kind == "prepare":
            print(f"preparing {event['data']} for {event['clients']} clients ...", file=sys.stderr)
        elif kind == "rejected":
            print(f"trial {event['trial']}: {event['source']} proposal rejected: "
                  f"{'; '.join(event['reasons'])}", file=sys.stderr)
        elif kind == "proposal":
            c = event["config"]
            print(f"trial {event['trial']} ({event['source']}): {json.dumps(c)}", file=sys.stderr)
        elif kind == "trial_start":
            self.bar = tqdm(total=event["rounds"], desc=f"trial {event['trial']}", unit="round",
                            file=sys.stderr, leave=True)
        elif kind == "round" and self.bar is not None and event.get("round", 0) > 0:
            self.bar.update(1)
            self.bar.set_postfix(val_acc=f"{event['val_accuracy']:.3f}")
        elif kind == "trial_end":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            if event["status"] != "ok":
                print(f"trial {event['trial']}: {event['status']}", file=sys.stderr)
        elif kind == "tune" and event.get("stop"):
            print(f"tuner: stop ({event['stop']})", file=sys.stderr)
        elif kind == "tune":
            print(f"tuner: {'; '.join(event['notes'])}", file=sys.stderr)
        elif kind == "registered":
            print(f"registered {event['model']}", file=sys.stderr)
        elif kind == "fedtune":
            print(f"federated fine-tuning: {event['method']} ({event['reason']}), "
                  f"{event['users']} users, {event['rounds']} rounds", file=sys.stderr)
            self.bar = tqdm(total=event["rounds"] + 1, desc="fedtune", unit="round",
                            file=sys.stderr, leave=True)
        elif kind == "fedtune_round" and self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{event['mean_loss']:.3f}")
            if event["round"] >= self.bar.total - 1:
                self.bar.close()
                self.bar = None


def _codegen_model(settings: Settings) -> Any:
    if settings.llm_backend != "openai":
        return None  # the embedded default proposes with Optuna; the small LLM only phrases
    from edgeai.agents.llm_backend import get_chat_model

    return get_chat_model(settings, max_tokens=600)


def cmd_auto(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.agents.planning.read import validate_request

    purpose = validate_request(args.purpose)
    options = _options(args)
    if not args.yes and not sys.stdin.isatty():
        raise UserInputError("generated code needs a person's approval before it runs: "
                             "run on a terminal, or pass --yes")
    from edgeai.graphs.training import train_in_home

    out = train_in_home(settings, purpose, options, approve=args.yes,
                        codegen_model=_codegen_model(settings), progress=Progress(args.json),
                        ask=_ask_approval)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(out["answer"])
    return 0 if out.get("model") else 1


def _ask_approval(request: dict[str, Any]) -> bool:
    print(f"\n--- generated code for trial {request['trial']} ---\n{request['code']}", file=sys.stderr)
    print(f"configuration: {json.dumps(request['config'])}", file=sys.stderr)
    answer = input(f"{request['question']} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.federated.data import check_spec
    from edgeai.tools.federated.fl_run import run_once

    check_spec(args.data)
    config = None
    if args.config:
        try:
            config = json.loads(args.config)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"--config is not JSON: {exc.msg}") from None
        if not isinstance(config, dict):
            raise UserInputError("--config must be a JSON object of configuration values")
    from edgeai.tools.federated.template import load_manifest

    manifest = load_manifest()
    manifest.render({**manifest.defaults(), **(config or {})})  # refuses before anything is made
    settings.home.mkdir(parents=True, exist_ok=True)
    out = run_once(settings.home, config, data=args.data, clients=args.clients,
                   rounds=args.rounds, scheme=args.partition, alpha=args.alpha,
                   n_train=args.n_train, seed=args.seed, deployment=args.deployment,
                   seconds=args.time_limit, memory_mb=args.memory_mb,
                   on_line=lambda line: print(line, file=sys.stderr))
    print(json.dumps(out, indent=2, default=str))
    return 0 if out["status"] == "ok" else 1


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.graphs.fl_bench import run_bench
    from edgeai.tools.federated.data import check_spec

    for spec in args.data:
        check_spec(spec)
    try:
        grid = [float(x) for x in args.grid.split(",") if x.strip()]
    except ValueError:
        raise UserInputError(f"--grid: '{args.grid}' is not a comma-separated list of rates") from None
    if not grid:
        raise UserInputError("--grid needs at least one learning rate")
    budget = _bench_budget(args.budget)
    settings.home.mkdir(parents=True, exist_ok=True)
    run_bench(settings, data=args.data, partitions=args.partition, alpha=args.alpha,
              clients=args.clients, rounds=args.rounds, trials=args.trials, grid=grid,
              baseline_arch=args.baseline_arch, baseline_epochs=args.baseline_epochs,
              n_train=args.n_train, seed=args.seed, budget=budget)
    return 0


def _bench_budget(text: str) -> int | str | None:
    if text in ("equal", "none"):
        return None if text == "none" else "equal"
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise UserInputError(f"--budget: '{text}' is not 'equal', 'none' or a positive "
                             f"number of client-epochs") from None


__all__ = ["register", "register_bench"]
