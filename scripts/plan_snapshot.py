"""Write every plan of every pool as JSON lines, so a refactor can show that not one plan changed.

Usage: python scripts/plan_snapshot.py --out snapshot.jsonl [--pool DIR ...] [--home DIR]

For each pool (default: every pool under knowledge/samples, knowledge/training and
knowledge/heldout, sorted), a fresh store is built from the pool's manuals in a temporary home
and every labelled request is planned by the embedded planner and the TF-IDF baseline. Each line
is {"pool", "planner", "request", "plan"} with the plan as the planner returned it (all fields but
its wall time `seconds`), keys sorted, so two snapshots compare with `cmp`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


def all_pools() -> list[Path]:
    return [
        p
        for group in ("samples", "training", "heldout")
        for p in sorted((KNOWLEDGE / group).iterdir())
        if (p / "manuals").is_dir()
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pool", type=Path, action="append", help="pool folder (repeatable)")
    ap.add_argument("--home", type=Path, help="scratch data home (default: a temporary folder)")
    args = ap.parse_args(argv)

    from edgeai.agents.planning import EmbeddedPlanner, TfidfPlanner
    from edgeai.agents.planning.evaluate import load_requests
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.store import add_to_home, open_store

    scratch = args.home or Path(tempfile.mkdtemp(prefix="edgeai-snapshot-"))
    pools = args.pool or all_pools()
    tmp = args.out.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as fh:
        for pool in pools:
            home = scratch / pool.name
            shutil.rmtree(home, ignore_errors=True)
            add_to_home(home, [pool / "manuals"], build_units)
            store = open_store(home)
            for planner in (EmbeddedPlanner(store), TfidfPlanner(store)):
                for item in load_requests(pool / "requests.jsonl"):
                    plan = planner.plan(item.request).model_dump(mode="json")
                    plan.pop("seconds", None)  # wall time, the one field that differs run to run
                    line = {"pool": pool.name, "planner": planner.name, "request": item.request}
                    fh.write(json.dumps({**line, "plan": plan}, ensure_ascii=False, sort_keys=True))
                    fh.write("\n")
            print(f"{pool.name}: done", file=sys.stderr, flush=True)
            del store
    tmp.replace(args.out)
    if args.home is None:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
