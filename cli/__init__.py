"""The `edgeai` command line: one argparse tree; errors become one line on stderr and exit 2.

This module owns the tree's root (commands, common flags, settings from flags, error handling);
each command group lives in its own module, imported only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from edgeai.config import Settings, configure_logging, require_home
from edgeai.errors import EdgeAIError, UserInputError
from pydantic import ValidationError

# Each command's module defines `register(sub)` adding it, and may define `register_bench(bench_sub)`
# adding `edgeai bench <name>`. Only the module of the command being run is imported, so that
# `edgeai --help` and light commands never pay for torch or chromadb; the others are listed by
# the help line below (tests/cli/test_startup.py checks each line against its module's own).
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("edgeai.cli.models", "healthcare-home models: list, run, train"),
    "knowledge": ("edgeai.cli.knowledge", "device manuals: add, list, search, remove"),
    "offload": ("edgeai.cli.offload", "MEC task offloading: generate, solve, score"),
    "llm": ("edgeai.cli.llm", "the language model: serve it over HTTP, or chat with it once"),
    "plan": ("edgeai.cli.plan", "plan a request: sub-tasks, models, dependencies"),
    "judge": ("edgeai.cli.judge", "the planner's learned relevance judge: train, eval"),
    "chooser": ("edgeai.cli.chooser", "the planner's learned set decision: train"),
    "ask": (
        "edgeai.cli.ask",
        "answer a request end to end (plan, select, offload, run, fuse)",
    ),
    "demo": (
        "edgeai.cli.demo",
        "the main job, offline: sample pools + a few requests end to end",
    ),
    "split": (
        "edgeai.cli.split",
        "split inference: device/edge co-inference with a learned feature codec",
    ),
    "fl": ("edgeai.cli.fl", "automatic federated learning: auto (trials + tuning), run"),
    "fedtune": ("edgeai.cli.fedtune", "federated fine-tuning of the language model: run"),
    "serve": (
        "edgeai.cli.serve",
        "serve the agent API (LangGraph Agent Server API; docs at /docs)",
    ),
    "run": (
        "edgeai.cli.run",
        "a scripted run: a scenario file's requests, checked, with a report",
    ),
}
BENCHES: dict[str, tuple[str, str]] = {
    "models": ("edgeai.cli.models", "held-out accuracy/error of every healthcare model"),
    "offload": (
        "edgeai.cli.offload",
        "offloading solvers side by side: gaps, feasibility, time, ALEF",
    ),
    "plan": ("edgeai.cli.plan", "Table I: plan quality of our planner vs a TF-IDF baseline"),
    "split": (
        "edgeai.cli.split",
        ("split inference: bytes at equal quality vs the cheapest image baseline (Table II) and "
        "emulated/measured latency vs rate (Fig. 3)"),
    ),
    "split-effnet": (
        "edgeai.cli.split.effnet",
        "EfficientNet-Lite0 split: codec bytes and agreement vs JPEG/WebP/AVIF/PNG, held-out photos",
    ),
    "fl": ("edgeai.cli.fl", "Fig. 4: automatic FL trials vs a grid-searched baseline"),
    "fedtune": (
        "edgeai.cli.fedtune",
        ("Fig. 5/6 analogues, async vs sync, hierarchical vs flat: federated fine-tuning of "
        "SmolLM2-135M"),
    ),
    "serve": (
        "edgeai.cli.serve",
        "the API under load: p50/p95 latency per turn and throughput vs concurrent chats",
    ),
    "startup": (
        "edgeai.cli.startup",
        "start-up: median wall time of --help, knowledge list and plan, as a new user pays it",
    ),
}

# Offline by default: no hub look-ups, no telemetry, whatever the caller's shell says.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (still exit status 2)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _home_arg(text: str) -> Path:
    """`--home`: refused when empty (argparse's Path would make it the current folder) or not
    valid UTF-8."""
    from edgeai.inputs import check_text

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: name a folder (or leave it out for the default)")
    try:
        check_text(text, "the path")
    except UserInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return Path(text)


def add_common(parser: argparse.ArgumentParser) -> None:
    """Flags every command accepts: where the data lives, which LLM, how chatty."""
    parser.add_argument(
        "--home", type=_home_arg, help="data home (default: $EDGEAI_HOME or the user data dir)"
    )
    parser.add_argument(
        "--planner",
        choices=["embedded", "learned"],
        help="which chooser plans with the embedded LLM backend (default: $EDGEAI_PLANNER or "
        "the one that scores best in docs/BENCHMARKS.md)",
    )
    parser.add_argument("--llm-backend", choices=["embedded", "openai"], help="LLM backend")
    parser.add_argument(
        "--llm-base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"
    )
    parser.add_argument("--llm-model", help="model name on the OpenAI-compatible server")
    parser.add_argument(
        "--llm-max-tokens",
        type=int,
        help="longest answer the planner asks the LLM for (default 400; $EDGEAI_LLM_MAX_TOKENS)",
    )
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def add_store(parser: argparse.ArgumentParser) -> None:
    """`--store`, for the commands that read or write the user's store of manuals (the ones
    that fill a throw-away home of their own, demo, run and the benches, keep it embedded)."""
    parser.add_argument(
        "--store", metavar="embedded|http://HOST:PORT",
        help="where the manuals are kept: 'embedded' (chromadb under the home, the default) or "
             "a chromadb server (`chroma run`), http://HOST:PORT[/DATABASE], that several "
             "workers or machines share (default: $EDGEAI_STORE)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags override the environment; parsed once per invocation."""
    overrides = {
        key: getattr(args, key)
        for key in (
            "home", "planner", "llm_backend", "llm_base_url", "llm_model", "llm_max_tokens",
            "log_level", "store",
        )
        if getattr(args, key, None) is not None
    }
    from edgeai.inputs import check_home

    if "home" not in overrides and os.environ.get("EDGEAI_HOME", None) == "":
        raise UserInputError("EDGEAI_HOME is empty: name a folder, or unset it for the default")
    settings = Settings(**overrides)
    if hasattr(args, "store"):  # a command that reads or writes the store (add_store)
        from edgeai.knowledge.location import parse_store

        settings.store = parse_store(settings.store)  # one line naming --store, before anything
    # commands that only read (set_defaults(reads_only=True)) run on a read-only home
    settings.home = check_home(settings.home, writes=not getattr(args, "reads_only", False))
    return settings


def _register(
    sub: argparse._SubParsersAction,
    table: dict[str, tuple[str, str]],
    chosen: str | None,
    hook: str,
) -> None:
    """The chosen entry registered by its module (every one when `chosen` is "*"); the others as
    a name and a help line, enough for the listing of `--help`."""
    for name, (module, help_line) in table.items():
        if chosen in (name, "*"):
            getattr(importlib.import_module(module), hook)(sub)
        else:
            sub.add_parser(name, help=help_line, add_help=False)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole command tree; of the command modules only the one `argv` names is imported
    (every one when `argv` is None)."""
    words = [a for a in argv if not a.startswith("-")] if argv is not None else ["*", "*"]
    parser = OneLineParser(prog="edgeai", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    bench = sub.add_parser(
        "bench", help="benchmarks: tables on stdout, CSV + PNG under the data home"
    )
    bench_sub = bench.add_subparsers(dest="bench", required=True, parser_class=OneLineParser)
    command = words[0] if words else None
    bench_name = words[1] if command in ("bench", "*") and len(words) > 1 else None
    _register(bench_sub, BENCHES, bench_name, "register_bench")
    _register(sub, COMMANDS, command, "register")
    return parser


def format_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or exc.title
    return f"{exc.title}: field '{where}': {first['msg']}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        settings = settings_from_args(args)
        configure_logging(settings.log_level)
        return int(args.func(args, settings) or 0)
    except EdgeAIError as exc:
        print(f"edgeai: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValidationError as exc:
        print(f"edgeai: error: {format_validation_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeai: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

__all__ = [
    "add_common", "add_store", "build_parser", "main", "require_home", "settings_from_args"
]
