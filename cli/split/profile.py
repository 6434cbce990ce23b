"""`edgeai split profile | partition`: per-stage profile of a split model (ours or a local Hugging
Face folder) and the best split point for a link rate and the pool's device manuals."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeai.cli import add_common
from edgeai.cli.split.common import SHIPPED, TASK_CHOICES, table
from edgeai.config import Settings
from edgeai.errors import UserInputError
from edgeai.tools.split_inference import PHOTO_MANUALS

if TYPE_CHECKING:
    import numpy as np
    from edgeai.tools.split_inference.base import SplitModel

log = logging.getLogger(__name__)


def _default_codec(task: str) -> Path | None:
    """The task's shipped feature codec (codec.DEFAULT_CODECS), when there is one."""
    from edgeai.tools.split_inference.codec import DEFAULT_CODECS

    name = DEFAULT_CODECS.get(task)
    path = SHIPPED / name if name else None
    return path if path is not None and path.is_file() else None


def _model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=TASK_CHOICES)
    parser.add_argument(
        "--hf", type=Path, help="local Hugging Face ViT/BLIP folder (default: our shipped model)"
    )
    parser.add_argument(
        "--checkpoints", type=Path, help="folder of our model checkpoints <task>.pt"
    )
    parser.add_argument("--images", type=int, default=4, help="photos profiled (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per stage (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def register(split_sub: argparse._SubParsersAction) -> None:
    prof = split_sub.add_parser(
        "profile", help="time a split model stage by stage; activation sizes and cycle shares"
    )
    _model_flags(prof)
    prof.add_argument("--out", type=Path, help="also write the profile JSON to this file")
    add_common(prof)
    prof.set_defaults(func=profile_command)

    part = split_sub.add_parser(
        "partition",
        help="choose the split point (or client-only) for a link rate, from a profile and the manuals",
    )
    _model_flags(part)
    part.add_argument(
        "--rate", help="uplink rate, e.g. 300KB/s, 2.4Mbit/s (default: the device manual's uplink)"
    )
    part.add_argument("--rtt-ms", type=float, default=20.0, help="round-trip time (default 20)")
    part.add_argument("--objective", choices=("latency", "device_energy"), default="latency")
    part.add_argument(
        "--profile", type=Path, help="a profile JSON from `split profile --out` (skips measuring)"
    )
    part.add_argument(
        "--manuals", type=Path, default=PHOTO_MANUALS, help="folder of the pool's device manuals"
    )
    part.add_argument("--device", help="client device id in the manuals (default: the camera)")
    part.add_argument(
        "--scaling",
        choices=("manual", "measured"),
        default="manual",
        help="host times from the manual's cycles x measured shares (default) or measured x clocks",
    )
    codec = part.add_mutually_exclusive_group()
    codec.add_argument(
        "--codec",
        type=Path,
        help="feature codec file: its measured bytes at its split point "
        "(default for our models: the task's shipped codec)",
    )
    codec.add_argument(
        "--no-codec", action="store_true", help="raw float16 activations at every split point"
    )
    part.add_argument("--tx-power-w", type=float, default=1.0, help="device radio power (W)")
    part.add_argument("--device-power-w", type=float, default=1.0, help="device compute power (W)")
    add_common(part)
    part.set_defaults(func=partition_command)


def _load(args: argparse.Namespace) -> SplitModel:
    if args.hf is not None:
        from edgeai.tools.split_inference.hf import load_hf_model
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar in a table's output
        return load_hf_model(args.hf, args.task)
    from edgeai.tools.split_inference.models import load_model

    return load_model(args.task, args.checkpoints)


def _photos(args: argparse.Namespace) -> tuple[np.ndarray, list[str | None] | None]:
    import numpy as np
    from edgeai.tools.split_inference.world import make_examples

    if not 1 <= args.images <= 64:
        raise UserInputError(f"--images must be in 1..64, got {args.images}")
    if args.repeats < 1:
        raise UserInputError(f"--repeats must be >= 1, got {args.repeats}")
    examples = make_examples(args.task, args.images, seed=0)
    questions = [e.question for e in examples] if args.task == "vqa" else None
    return np.stack([e.image for e in examples]), questions


def _measure(args: argparse.Namespace) -> tuple[Any, SplitModel | None, np.ndarray]:
    from edgeai.tools.split_inference.profile import profile_model

    model = _load(args)
    images, questions = _photos(args)
    return profile_model(model, images, repeats=args.repeats, questions=questions), model, images


def _print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console

    console = Console(width=max(120, len(title)))
    console.print(title, highlight=False)
    console.print(table(columns, rows))


def profile_command(args: argparse.Namespace, settings: Settings) -> int:
    profile, _, _ = _measure(args)
    if args.out is not None:
        profile.save(args.out)
    if args.json:
        print(profile.model_dump_json(indent=2))
        return 0
    shares = profile.cycle_fractions()
    rows = [
        ["preprocess", f"{profile.preprocess_seconds * 1e3:.3f}", "", "", "", ""],
    ]
    for stage, share in zip(profile.stages, shares, strict=False):
        rows.append(
            [
                f"stage {stage.index}",
                f"{stage.seconds * 1e3:.3f}",
                "x".join(map(str, stage.output_shape)),
                f"{stage.bytes_fp16:,}",
                f"{share:.1%}",
                f"{stage.params:,}",
            ]
        )
    rows.append(
        [
            "head",
            f"{profile.head.seconds * 1e3:.3f}",
            "",
            "",
            f"{shares[-1]:.1%}",
            f"{profile.head.params:,}",
        ]
    )
    title = (
        f"{profile.model_id} ({profile.task}): {profile.total_seconds() * 1e3:.2f} ms per image "
        f"here, 1 thread; photo PNG {profile.input_png_bytes:,} B"
    )
    _print_table(title, ["part", "ms here", "activation", "fp16 bytes", "share", "params"], rows)
    return 0


def partition_command(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.tools.split_inference.link import format_rate, parse_rate
    from edgeai.tools.split_inference.partition import (
        choose_split,
        codec_payload_bytes,
        photo_hosts_from_manuals,
    )
    from edgeai.tools.split_inference.profile import ModelProfile

    if not (args.rtt_ms >= 0):
        raise UserInputError(f"--rtt-ms must be >= 0, got {args.rtt_ms}")
    hosts = photo_hosts_from_manuals(args.manuals, device=args.device)
    # bytes/s; the manual's uplink_bps is in bits/s
    rate = parse_rate(args.rate) if args.rate is not None else float(hosts.device.uplink_bps) / 8
    payload = None
    if args.profile is not None:
        profile = ModelProfile.load(args.profile)
        if profile.task != args.task:
            raise UserInputError(
                f"{args.profile} profiles task '{profile.task}', not '{args.task}'"
            )
        if args.codec is not None:
            raise UserInputError("--codec needs the model: leave out --profile")
    else:
        profile, model, images = _measure(args)
        codec_file = args.codec
        if codec_file is None and args.hf is None and not args.no_codec:
            codec_file = _default_codec(args.task)
        if codec_file is not None:
            from edgeai.tools.split_inference.codec import load_codec

            payload = codec_payload_bytes(model, load_codec(codec_file), images)
            log.info("payload at k=%s measured with codec %s", *payload, codec_file)
    decision = choose_split(
        profile,
        hosts.cost_model(profile, scaling=args.scaling),
        link_bps=rate * 8.0,
        rtt_s=args.rtt_ms / 1e3,
        payload_bytes=payload,
        objective=args.objective,
        tx_power_w=args.tx_power_w,
        device_power_w=args.device_power_w,
    )
    if args.json:
        print(json.dumps(decision.model_dump(mode="json"), indent=2))
        return 0
    rows = []
    for r in decision.rows:
        mark = " *" if r.split == decision.choice else ""
        rows.append(
            [
                f"{r.split}{mark}",
                f"{r.payload_bytes:,}",
                f"{r.device_s * 1e3:.1f}",
                f"{r.uplink_s * 1e3:.1f}",
                f"{r.edge_s * 1e3:.1f}",
                f"{r.latency_s * 1e3:.1f}",
                f"{r.device_energy_j:.3f}",
            ]
        )
    title = (
        f"{decision.model_id} at {format_rate(rate)}, rtt {args.rtt_ms:g} ms, "
        f"{hosts.device.device} -> {hosts.edge.device}: best for {decision.objective} = "
        f"{decision.choice}"
    )
    _print_table(
        title,
        ["split k", "bytes sent", "device ms", "uplink ms", "edge ms", "latency ms", "device J"],
        rows,
    )
    return 0
