"""Train the healthcare-home models (router app classifier, mood tree, mood forest) and ship them.

Usage: python scripts/train_healthcare.py --seed 0 [--out DIR] [--apps-days N] ...
Same as `edgeai models train`; writes the joblib files and manifest.json that the package ships.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from edgeai.tools.healthcare.training import TrainConfig, train_all
from edgeai.tools.healthcare.weights import CHECKPOINT_DIR


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig(progress=False)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="checkpoint folder")
    parser.add_argument("--traffic-days", type=int, default=defaults.traffic_days)
    parser.add_argument("--apps-days", type=int, default=defaults.apps_days)
    parser.add_argument("--vitals-days", type=int, default=defaults.vitals_days)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    manifest = train_all(TrainConfig(
        seed=args.seed, out_dir=args.out, traffic_days=args.traffic_days,
        apps_days=args.apps_days, vitals_days=args.vitals_days,
    ))
    print(json.dumps(manifest["scores"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
