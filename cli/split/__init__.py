"""`edgeai split ...` and `edgeai bench split`: split inference (photo-world models, feature
codecs, the device/edge runtime, profiles and the partition point).

One module per command group, each with a `register(split_sub)` (or `register_bench`):
`train` (train-model), `codec` (train-codec, eval-codec), `runtime` (serve-edge, infer,
sample-image), `profile` (profile, partition), `effnet` (train-effnet-codec, bench
split-effnet), `bench` (bench split); `common` holds what they share. Registering imports no torch: every command imports the engines it runs inside itself.
"""

from __future__ import annotations

import argparse

from edgeai.cli.split import bench, codec, effnet, profile, runtime, train


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "split", help="split inference: device/edge co-inference with a learned feature codec"
    )
    split_sub = parser.add_subparsers(dest="split", required=True, parser_class=type(parser))
    for group in (train, codec, effnet, runtime, profile):
        group.register(split_sub)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    bench.register_bench(bench_sub)
