"""The `edgeai` command line: one argparse tree; errors become one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from edgeai.config import Settings, configure_logging
from edgeai.errors import EdgeAIError
from pydantic import ValidationError

# Each module defines `register(sub)` adding its sub-commands, and may define
# `register_bench(bench_sub)` adding `edgeai bench <name>` entries.
COMMAND_MODULES = [
    "edgeai.cli.models",
    "edgeai.cli.knowledge",
    "edgeai.cli.offload",
    "edgeai.cli.llm",
    "edgeai.cli.plan",
    "edgeai.cli.judge",
    "edgeai.cli.ask",
    "edgeai.cli.demo",
    "edgeai.cli.split",
]

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


def add_common(parser: argparse.ArgumentParser) -> None:
    """Flags every command accepts: where the data lives, which LLM, how chatty."""
    parser.add_argument(
        "--home", type=Path, help="data home (default: $EDGEAI_HOME or the user data dir)"
    )
    parser.add_argument("--llm-backend", choices=["embedded", "openai"], help="LLM backend")
    parser.add_argument(
        "--llm-base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"
    )
    parser.add_argument("--llm-model", help="model name on the OpenAI-compatible server")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags override the environment; parsed once per invocation."""
    overrides = {
        key: getattr(args, key)
        for key in ("home", "llm_backend", "llm_base_url", "llm_model", "log_level")
        if getattr(args, key, None) is not None
    }
    settings = Settings(**overrides)
    if settings.home is not None:
        settings.home = settings.home.expanduser()
    return settings


def require_home(settings: Settings) -> None:
    """Commands that read a store refuse a home that does not exist instead of creating it."""
    from edgeai.errors import HomeNotFoundError

    if not settings.home.is_dir():
        raise HomeNotFoundError(
            f"data home '{settings.home}' does not exist "
            "(create one with `edgeai knowledge add FILE --home DIR` or `edgeai demo --home DIR`)"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="edgeai", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    bench = sub.add_parser(
        "bench", help="benchmarks: tables on stdout, CSV + PNG under the data home"
    )
    bench_sub = bench.add_subparsers(dest="bench", required=True, parser_class=OneLineParser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
        if hasattr(module, "register_bench"):
            module.register_bench(bench_sub)
    return parser


def format_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or exc.title
    return f"{exc.title}: field '{where}': {first['msg']}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
