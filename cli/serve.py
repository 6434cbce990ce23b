"""`edgeai serve`: the API (server.py: /plan, /ask and the LangGraph Agent Server API) under uvicorn;
`edgeai bench serve`: that API under N concurrent chats (graphs/serve_bench.py does the work).

Only the command line lives here: flags, the token, and the refusal to listen beyond this machine
without one. The server itself is built by `edgeai.server` from the environment this command sets
(EDGEAI_HOME, EDGEAI_API_TOKEN_FILE, EDGEAI_CHECKPOINTER, EDGEAI_STORE), so that each of
`--workers N` processes builds the same. With `--checkpointer postgres://...` threads, their history and the
API's run and thread records live in that database, so any worker answers for any thread; with
`--store http://HOST:PORT` the manuals live on that chromadb server (`chroma run`); the workers
still share one data home (the store's lock and caches, the per-thread turn locks, trained
models).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
from pathlib import Path

from edgeai.cli import add_common, add_store
from edgeai.config import Settings, require_home
from edgeai.errors import UserInputError


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="serve the agent API (LangGraph Agent Server API; docs at /docs)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                       "127.0.0.1; any other needs a token)")
    serve.add_argument("--port", type=int, default=2024, help="port (default 2024)")
    serve.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    serve.add_argument("--checkpointer", default=None, metavar="sqlite|postgres://...",
                       help="where threads are kept: 'sqlite' (default: a file under the home) "
                            "or postgres://USER@HOST:PORT/DB, which several workers share "
                            "(default: $EDGEAI_CHECKPOINTER)")
    serve.add_argument("--token-file", type=Path,
                       help="file holding the API token (default: $EDGEAI_API_TOKEN)")
    add_common(serve)
    add_store(serve)
    serve.set_defaults(func=cmd_serve)


def _count(low: int, high: int):
    """An argparse type: a whole number in low..high (a bench bounded in size)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high}, got {value}")
        return value

    return parse


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    b = bench_sub.add_parser(
        "serve", help="the API under load: p50/p95 latency per turn and throughput vs "
        "concurrent chats", description="Start `edgeai serve` on a free loopback port over a "
        "throw-away home with the sample pools, then run N concurrent chats (threads.create + K "
        "runs.wait turns, follow-ups included) per N; a table on stdout, serve.csv, "
        "serve-turns.csv and serve.png under <home>/bench/. Exit 1 if any turn failed or was "
        "cut by --timeout.")
    b.add_argument("--chats", type=_count(1, 500), nargs="+", default=[10, 50],
                   help="concurrent chats, one measurement per value (default: 10 50)")
    b.add_argument("--requests-per-chat", type=_count(1, 50), default=3,
                   help="turns per chat, K (default 3: a request, a follow-up, a request)")
    b.add_argument("--checkpointer", default="sqlite", metavar="sqlite|postgres|postgres://...",
                   help="sqlite (default), postgres (a throw-away PostgreSQL started here) or a "
                        "postgres:// URL")
    b.add_argument("--store", dest="bench_store", default="embedded",
                   metavar="embedded|chroma|http://...",
                   help="where the manuals are kept: embedded (default), chroma (a throw-away "
                        "chromadb server started here) or a chromadb server's URL (the sample "
                        "pools are added to it, replacing devices of the same names)")
    b.add_argument("--workers", type=_count(1, 32), default=1, help="server processes (default 1)")
    b.add_argument("--timeout", type=float, default=900.0,
                   help="seconds each N may take; turns not started by then count as unfinished "
                        "(default 900)")
    b.add_argument("--seed", type=int, default=0, help="which pool requests the chats draw")
    add_common(b)
    b.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.graphs.persistence import parse_checkpointer

    if args.checkpointer != "postgres":
        parse_checkpointer(args.checkpointer)  # one line, before anything starts
    if args.bench_store != "chroma":
        from edgeai.knowledge.location import check_store, parse_store

        if parse_store(args.bench_store) is not None:
            check_store(args.bench_store)
    if not 0 < args.timeout <= 24 * 3600:
        raise UserInputError("--timeout must be in (0, 86400] seconds")
    from edgeai.graphs.serve_bench import run_bench

    signal.signal(signal.SIGTERM, _interrupted)  # the servers it started (API, PostgreSQL,
    # chromadb) end too
    settings.home.mkdir(parents=True, exist_ok=True)
    summary = run_bench(settings, chats=args.chats, requests_per_chat=args.requests_per_chat,
                        checkpointer=args.checkpointer, workers=args.workers,
                        timeout_s=args.timeout, seed=args.seed, store=args.bench_store)
    return 0 if all(s["errors"] == 0 and s["unfinished"] == 0 for s in summary) else 1


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is None:
        return os.environ.get("EDGEAI_API_TOKEN") or None
    try:
        token = args.token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UserInputError(f"--token-file: cannot read it ({exc.strerror})") from None
    if not token:
        raise UserInputError("--token-file: the file is empty")
    return token


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.workers < 1 or not 0 < args.port < 65536:
        raise UserInputError("--workers must be >= 1 and --port in 1..65535")
    token = _token(args)
    if token is None and not _loopback(args.host):
        raise UserInputError(f"refusing to listen on {args.host} without a token: set "
                             "EDGEAI_API_TOKEN or --token-file (or use --host 127.0.0.1)")
    from edgeai.graphs.persistence import check_connection, parse_checkpointer, redact

    url = parse_checkpointer(args.checkpointer if args.checkpointer is not None
                             else settings.checkpointer)
    require_home(settings)
    if url is not None:
        check_connection(url)  # one line now, rather than every worker's failed warm-up
    if settings.store is not None:
        from edgeai.knowledge.location import check_store

        check_store(settings.store)  # likewise for the chromadb server of the manuals
    import uvicorn

    os.environ["EDGEAI_HOME"] = str(settings.home)
    os.environ["EDGEAI_CHECKPOINTER"] = url or "sqlite"
    os.environ["EDGEAI_STORE"] = settings.store or "embedded"
    if args.token_file is not None:
        os.environ["EDGEAI_API_TOKEN_FILE"] = str(args.token_file.resolve())
    where = f"http://{args.host}:{args.port}"
    kept = "SQLite under the home" if url is None else redact(url)
    manuals = "chromadb under the home" if settings.store is None else settings.store
    print(f"edgeai: serving {settings.home} at {where} (API docs: {where}/docs; threads in "
          f"{kept}; manuals in {manuals}; {args.workers} worker{'s' if args.workers > 1 else ''})",
          file=sys.stderr, flush=True)
    uvicorn.run("edgeai.server:app", host=args.host, port=args.port, workers=args.workers,
                log_level=settings.log_level.lower() if settings.log_level else "info")
    return 0
