"""`edgeai split serve-edge | infer | sample-image`: the device/edge runtime over a real socket
(an edge or cloud server, one device request through the emulated link, a generated photo)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeai.cli import add_common
from edgeai.config import Settings
from edgeai.errors import EdgeAIError, UserInputError
from edgeai.tools.split_inference import RUNTIME_TASKS, TASKS

log = logging.getLogger(__name__)

DEFAULT_EDGE_PORT = 7345
DEFAULT_CLOUD_PORT = 7346
PROFILE_SEED = 2_900_000  # photos that only time the stages (codec-training range, not test seeds)
SCHEME_CHOICES = ("coinfer", "split-raw", "edge-lossless", "edge-lossy", "client-only", "cloud")


def register(split_sub: argparse._SubParsersAction) -> None:
    srv = split_sub.add_parser(
        "serve-edge",
        help="run an edge (or cloud) server that finishes the photo models on what devices send",
    )
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    srv.add_argument(
        "--port",
        type=int,
        help=f"port (default {DEFAULT_EDGE_PORT} for edge, {DEFAULT_CLOUD_PORT} for cloud; 0 = any free)",
    )
    srv.add_argument("--role", choices=("edge", "cloud"), default="edge")
    _weights_flags(
        srv,
        action="append",
        default=[],
        help="feature codec file (repeatable; default: each task's shipped codecs, one per split point)",
    )
    srv.add_argument(
        "--plan-ms", type=float, default=0.0, help="cloud role: emulated planning time (ms)"
    )
    srv.add_argument(
        "--manuals",
        type=Path,
        help="report the emulated compute of these hosts' manuals (compute_hz, cycles) beside "
        "the measured, e.g. knowledge/samples/photo/manuals (default: measured only)",
    )
    add_common(srv)
    srv.set_defaults(func=serve_edge_command)

    inf = split_sub.add_parser(
        "infer",
        help="answer one photo request through the emulated link; prints answer, bytes, latency",
    )
    inf.add_argument("image", type=Path, help="PNG/JPEG/WebP photo")
    inf.add_argument(
        "--task",
        required=True,
        choices=RUNTIME_TASKS,
        help="classify/caption/vqa: the photo-world models; imagenet: EfficientNet-Lite0",
    )
    inf.add_argument("--question", help="the question (task vqa)")
    inf.add_argument("--scheme", choices=SCHEME_CHOICES, default="coinfer")
    inf.add_argument(
        "--rate",
        default="300KB/s",
        help="uplink rate (default 300KB/s; KB = 1000 B), e.g. 1MB/s, 2.4Mbit/s, 50000",
    )
    inf.add_argument("--downlink-rate", help="downlink rate (default: twice the uplink)")
    inf.add_argument(
        "--rtt-ms", type=float, default=20.0, help="device-edge round trip in ms (default 20)"
    )
    inf.add_argument(
        "--cloud-rtt-ms",
        type=float,
        default=300.0,
        help="device-cloud round trip in ms (default 300)",
    )
    inf.add_argument(
        "--edge", default=f"127.0.0.1:{DEFAULT_EDGE_PORT}", help="edge server HOST:PORT"
    )
    inf.add_argument(
        "--cloud", default=f"127.0.0.1:{DEFAULT_CLOUD_PORT}", help="cloud server HOST:PORT"
    )
    inf.add_argument("--split", type=int, help="split point k for split-raw")
    inf.add_argument(
        "--format", choices=("jpeg", "webp", "avif"), default="jpeg", help="edge-lossy codec"
    )
    inf.add_argument(
        "--side",
        type=int,
        default=None,
        help="edge-lossy: resize the photo to SIDE x SIDE before coding (e.g. 64, the photo "
        "models' input size; default: as taken)",
    )
    inf.add_argument("--quality", type=int, help="edge-lossy quality 1..100 (default 75)")
    inf.add_argument(
        "--max-bytes", type=int, help="edge-lossy: best quality within this many bytes"
    )
    inf.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds")
    _weights_flags(inf, help="feature codec file (default: the task's shipped one)")
    inf.add_argument(
        "--manuals",
        type=Path,
        help="emulate the device's compute from these manuals, reported beside the measured "
        "latency (start the server with the same flag)",
    )
    inf.add_argument("--device", help="the client device's name in the manuals (default: auto)")
    inf.add_argument("--json", action="store_true", help="print the result as JSON")
    add_common(inf)
    inf.set_defaults(func=infer_command)

    smp = split_sub.add_parser(
        "sample-image", help="write a generated photo-world image; prints its question and targets"
    )
    smp.add_argument("--task", required=True, choices=TASKS)
    smp.add_argument("--seed", type=int, default=0, help="image seed (held-out seeds: 0..99999)")
    smp.add_argument("--out", type=Path, required=True, help="PNG file to write")
    smp.add_argument("--json", action="store_true", help="print question and targets as JSON")
    add_common(smp)
    smp.set_defaults(func=sample_image_command)


# -- helpers ---------------------------------------------------------------------------------


def _weights_flags(parser: argparse.ArgumentParser, **codec: Any) -> None:
    """--checkpoints (a folder of <task>.pt) and --codec (`codec`: its action, default, help)."""
    parser.add_argument(
        "--checkpoints", type=Path, help="folder of model checkpoints <task>.pt (default: shipped)"
    )
    parser.add_argument("--codec", type=Path, **codec)


def _load_models(checkpoints: Path | None, tasks: tuple[str, ...]) -> dict[str, Any]:
    from edgeai.tools.split_inference.runtime import load_task_model

    return {task: load_task_model(task, checkpoints) for task in tasks}


def _load_codec_file(path: Path) -> Any:
    from edgeai.tools.split_inference.runtime import load_task_codec

    if not path.is_file():
        raise UserInputError(f"--codec: file '{path}' does not exist")
    return load_task_codec(path=path)


def _default_codecs(task: str) -> list[Any]:
    """The task's shipped codecs (one per split point, the default first), or none (coinfer
    then refused with a clear message)."""
    from edgeai.tools.split_inference.runtime import load_task_codecs

    try:
        return load_task_codecs(task)
    except EdgeAIError as exc:
        log.warning("no feature codec for %s (%s): scheme coinfer unavailable for it", task, exc)
        return []


def _compute_from_manuals(
    models: dict[str, Any], manuals: Path, device: str | None = None
) -> Callable[[str, int, int, bool, str], float]:
    """compute_seconds from the manuals' compute_hz and cycles, split by a stage profile measured here.

    Each model is profiled on two generated photos (seeds from the codec-training range, never
    test images); the profile says how the work divides over stages, the manual how much there is.
    """
    import numpy as np
    from edgeai.tools.split_inference import world
    from edgeai.tools.split_inference.partition import photo_hosts_from_manuals
    from edgeai.tools.split_inference.profile import make_compute_seconds, profile_model

    if not manuals.exists():
        raise UserInputError(f"--manuals: '{manuals}' does not exist")
    hosts = photo_hosts_from_manuals(manuals, device=device)
    costs = {}
    for task, model in models.items():
        if task not in TASKS:  # EfficientNet-Lite0 has no manual (its paced requests are refused)
            log.info("no manual for %s: requests for it fail with no cost model", model.model_id)
            continue
        examples = world.make_examples(task, 2, seed=PROFILE_SEED)
        images = np.stack([ex.image for ex in examples])
        questions = [ex.question for ex in examples] if task == "vqa" else None
        profile = profile_model(model, images, repeats=2, questions=questions)
        costs[model.model_id] = hosts.cost_model(profile)
    log.info("pacing compute to the manuals in %s (device %s)", manuals, hosts.device.device)
    return make_compute_seconds(costs)


# -- handlers --------------------------------------------------------------------------------


def serve_edge_command(args: argparse.Namespace, settings: Settings) -> int:
    import torch
    from edgeai.errors import WeightsError
    from edgeai.tools.split_inference.runtime import EdgeServer, load_task_model

    torch.set_num_threads(1)
    port = args.port
    if port is None:
        port = DEFAULT_CLOUD_PORT if args.role == "cloud" else DEFAULT_EDGE_PORT
    if not 0 <= port < 65536:
        raise UserInputError(f"--port must be in 0..65535, got {port}")
    if args.plan_ms < 0:
        raise UserInputError(f"--plan-ms must be >= 0, got {args.plan_ms}")
    if args.manuals is not None and not args.manuals.exists():
        raise UserInputError(f"--manuals: '{args.manuals}' does not exist")
    models: dict[str, Any] = {}
    for task in RUNTIME_TASKS:
        try:
            models[task] = load_task_model(task, args.checkpoints)
        except WeightsError as exc:
            log.warning("serving without %s: %s", task, exc)
    if not models:
        raise UserInputError(
            "no model checkpoints to serve (train them with `edgeai split train-model` or pass "
            "--checkpoints DIR)"
        )
    codecs: dict[str, Any] = {}
    for path in args.codec:
        codec = _load_codec_file(path)
        codecs[codec.meta.task] = codec
    if args.role == "edge":
        for task in models:
            if task not in codecs and (shipped := _default_codecs(task)):
                codecs[task] = shipped

    def ready(address: tuple[str, int]) -> None:
        print(
            f"{args.role} server listening on {address[0]}:{address[1]} "
            f"(tasks: {', '.join(models)}; coinfer codecs: {', '.join(codecs) or 'none'}); "
            "Ctrl-C stops it",
            flush=True,
        )

    compute = _compute_from_manuals(models, args.manuals) if args.manuals else None
    server = EdgeServer(
        args.host, port, models, codecs, compute, role=args.role, plan_seconds=args.plan_ms / 1e3
    )
    server.serve_until_interrupted(on_ready=ready)
    print(f"{args.role} server stopped", flush=True)
    return 0


def infer_command(args: argparse.Namespace, settings: Settings) -> int:
    import torch
    from edgeai.tools.split_inference.imagecodecs import read_image
    from edgeai.tools.split_inference.link import parse_rate
    from edgeai.tools.split_inference.protocol import parse_address
    from edgeai.tools.split_inference.runtime import DeviceClient

    torch.set_num_threads(1)
    rate = parse_rate(args.rate, "--rate")
    down = parse_rate(args.downlink_rate, "--downlink-rate") if args.downlink_rate else None
    for value, flag in ((args.rtt_ms, "--rtt-ms"), (args.cloud_rtt_ms, "--cloud-rtt-ms")):
        if not value >= 0 or value == float("inf"):
            raise UserInputError(f"{flag} must be a finite number >= 0, got {value}")
    if args.timeout <= 0:
        raise UserInputError(f"--timeout must be > 0, got {args.timeout}")
    if args.side is not None and not 8 <= args.side <= 4096:
        raise UserInputError(f"--side must be 8..4096 pixels, got {args.side}")
    if args.question is not None and args.task != "vqa":
        raise UserInputError(f"--question is for task vqa, not {args.task}")
    if args.task == "vqa" and not (args.question or "").strip():
        raise UserInputError("task vqa needs --question")
    if args.manuals is not None and not args.manuals.exists():
        raise UserInputError(f"--manuals: '{args.manuals}' does not exist")
    edge = parse_address(args.edge, "--edge")
    cloud = parse_address(args.cloud, "--cloud")
    image = read_image(str(args.image))
    codecs = {}
    if args.codec is not None:
        codec = _load_codec_file(args.codec)
        codecs[codec.meta.task] = codec
    models = _load_models(args.checkpoints, (args.task,))
    compute = _compute_from_manuals(models, args.manuals, args.device) if args.manuals else None
    client = DeviceClient(models=models, codecs=codecs, compute=compute, timeout_s=args.timeout)
    result = client.infer(
        image,
        args.task,
        args.scheme,
        rate,
        args.question,
        edge,
        one_way_delay_s=args.rtt_ms / 2000.0,
        downlink_rate_bps=down,
        split=args.split,
        lossy_format=args.format,
        quality=args.quality,
        max_bytes=args.max_bytes,
        lossy_side=args.side,
        cloud=cloud,
        cloud_one_way_s=args.cloud_rtt_ms / 2000.0,
    )
    if args.json:
        record = result.to_dict()
        record["rate_bps"] = rate
        record["downlink_rate_bps"] = down if down is not None else 2 * rate
        print(json.dumps(record, indent=2))
        return 0
    _print_result(result, rate, args)
    return 0


def _print_result(result: Any, rate: float, args: argparse.Namespace) -> None:
    from edgeai.tools.split_inference.link import format_rate
    from rich.console import Console
    from rich.table import Table

    where = {"cloud": "cloud", "client-only": "device"}.get(result.scheme, "edge")
    scheme = result.scheme
    if result.scheme in ("coinfer", "split-raw"):
        scheme += f" (split k={result.split})"
    elif result.quality is not None:
        scheme += f" ({args.format} q={result.quality})"
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("answer", result.answer)
    table.add_row("task", result.task)
    table.add_row("scheme", scheme)
    table.add_row("uplink rate", format_rate(rate))
    table.add_row("payload sent", f"{result.payload_bytes:,} B")
    table.add_row("bytes up / down", f"{result.bytes_up:,} B / {result.bytes_down:,} B")
    for label, total, b in (
        ("latency measured", result.seconds, result.breakdown),
        ("latency emulated", result.emulated_s, result.emulated),
    ):
        table.add_row(label, f"{total * 1000:.1f} ms")
        parts = [f"device {b.device_s * 1000:.1f}"]
        if result.scheme != "client-only":
            if b.plan_s:
                parts.append(f"planning {b.plan_s * 1000:.1f}")
            parts += [
                f"uplink {b.uplink_s * 1000:.1f}",
                f"{where} {b.server_s * 1000:.1f}",
                f"downlink {b.downlink_s * 1000:.1f}",
            ]
        table.add_row("  of which (ms)", ", ".join(parts))
    if not args.manuals:
        table.add_row("", "(emulated: no --manuals, so compute is this machine's measured time)")
    Console(file=sys.stdout, width=120).print(table)


def sample_image_command(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.split_inference import world
    from edgeai.tools.split_inference.imagecodecs import encode_png

    example = world.example(args.task, args.seed)
    data = encode_png(example.image)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(data)
    except OSError as exc:
        raise UserInputError(f"--out: cannot write '{args.out}' ({exc.strerror})") from exc
    if args.json:
        record = {
            "file": str(args.out),
            "task": args.task,
            "seed": args.seed,
            "bytes": len(data),
            "question": example.question,
            "targets": example.targets,
        }
        print(json.dumps(record, indent=2))
        return 0
    print(
        f"wrote {args.out} ({example.image.shape[1]}x{example.image.shape[0]} PNG, {len(data):,} B)"
    )
    if example.question is not None:
        print(f"question: {example.question}")
    print("targets: " + " | ".join(dict.fromkeys(example.targets)))
    return 0
