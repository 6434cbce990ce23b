"""`edgeai llm serve` (the embedded model as an OpenAI-compatible server) and `edgeai llm chat` (one-shot)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from edgeai.cli import add_common
from edgeai.errors import EdgeAIError, UserInputError

if TYPE_CHECKING:
    from edgeai.config import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    llm = sub.add_parser("llm", help="the language model: serve it over HTTP, or chat with it once")
    llm_sub = llm.add_subparsers(dest="llm_command", required=True)

    serve = llm_sub.add_parser(
        "serve",
        help="serve the embedded model as an OpenAI-compatible API (/v1/chat/completions)",
        description="Serve SmolLM2 over HTTP the way vLLM or llama.cpp do: chat completions, "
        "streaming, response_format json_object / json_schema (guided decoding).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument(
        "--threads", type=int, help="torch CPU threads for the model (default: torch's choice)"
    )
    add_common(serve)
    serve.set_defaults(func=serve_command)

    chat = llm_sub.add_parser(
        "chat",
        help="ask the configured LLM backend one question (handy to check a server)",
        description="Send one prompt through the backend the settings select (--llm-backend "
        "embedded|openai, --llm-base-url) and print the answer as it streams.",
    )
    chat.add_argument("prompt", help="the user message")
    chat.add_argument("--system", help="an optional system message")
    chat.add_argument("--max-tokens", type=int, default=256, help="answer length cap (tokens)")
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument(
        "--schema",
        type=Path,
        help="JSON Schema file: answer with JSON that validates against it (structured output)",
    )
    add_common(chat)
    chat.set_defaults(func=chat_command)


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from edgeai.tools.llm.embedded import get_embedded_llm
    from edgeai.tools.llm.server import create_app

    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port must be 0..65535, got {args.port}")
    if args.threads is not None:
        if args.threads < 1:
            raise UserInputError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    llm = get_embedded_llm()
    log.warning("serving %s on http://%s:%d/v1", llm.model_id, args.host, args.port)
    uvicorn.run(
        create_app(llm), host=args.host, port=args.port, log_level=settings.log_level.lower()
    )
    return 0


def chat_command(args: argparse.Namespace, settings: Settings) -> int:
    import openai

    try:
        return _chat(args, settings)
    except openai.APIError as exc:  # connection refused, 4xx/5xx: one line naming the server
        raise EdgeAIError(f"LLM server at {settings.llm_base_url}: {exc}") from exc


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.agents.llm_backend import get_chat_model
    from langchain_core.messages import HumanMessage, SystemMessage

    if args.max_tokens < 1:
        raise UserInputError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    model = get_chat_model(settings, max_tokens=args.max_tokens, temperature=args.temperature)
    messages = [SystemMessage(args.system)] if args.system else []
    messages.append(HumanMessage(args.prompt))
    if args.schema is not None:
        from edgeai.inputs import read_json_file

        schema = read_json_file(args.schema, f"--schema {args.schema}")
        if not isinstance(schema, dict):
            raise UserInputError(f"--schema {args.schema}: a JSON Schema must be an object")
        schema.setdefault("title", args.schema.stem.replace("-", "_") or "response")
        answer = model.with_structured_output(schema, method="json_schema").invoke(messages)
        print(json.dumps(answer, indent=2, ensure_ascii=False))
        return 0
    for chunk in model.stream(messages):
        sys.stdout.write(chunk.text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
