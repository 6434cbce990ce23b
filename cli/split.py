"""`edgeai split ...`: split inference (photo-world models, codecs, device/edge runtime).

The sub-commands live in several modules; each defines `register_split(split_sub)` and is listed
in SPLIT_MODULES (one line per module). `edgeai bench split` is registered by `register_bench`.
"""

from __future__ import annotations

import argparse
import importlib

SPLIT_MODULES: list[str] = [
    "edgeai.cli.split_train",  # train-model (photo-pool models)
    "edgeai.cli.split_codec",  # train-codec, eval-codec (feature codec at the split point)
    "edgeai.cli.split_runtime",  # serve-edge, infer, sample-image
    "edgeai.cli.split_profile",  # profile, partition
]
SPLIT_BENCH_MODULES: list[str] = [
    "edgeai.cli.split_bench",  # edgeai bench split
]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "split", help="split inference: device/edge co-inference with a learned feature codec"
    )
    split_sub = parser.add_subparsers(dest="split", required=True, parser_class=type(parser))
    for name in SPLIT_MODULES:
        importlib.import_module(name).register_split(split_sub)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    for name in SPLIT_BENCH_MODULES:
        importlib.import_module(name).register_bench(bench_sub)
