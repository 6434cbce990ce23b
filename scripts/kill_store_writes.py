"""Fault injection: `kill -9` an `edgeai knowledge add` / `remove` at random points, then check the
store (issue 35, acceptance 1).

Usage: python scripts/kill_store_writes.py --runs 200 --seed 0 --out DIR [--pool healthcare]

A base home holds the pool's manuals. Each run copies it, starts one command as a real process
(re-add one manual = replace a device, or remove one device; drawn with the run's seed) and
SIGKILLs it: in half the runs at a uniform time over the command's whole measured duration, in
the other half inside the write itself (the moment the store's journal appears, plus a uniform
delay over the measured write window). Then `edgeai knowledge list --json` must equal the state
before or the state after the command (each computed once by an uninterrupted run), and
`edgeai plan` must exit 0 without a traceback. Every run is a row of `DIR/kills.csv` (seed,
command, where, delay, outcome); the counts are printed and written to `DIR/summary.json`.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
REQUEST = "how is my mood today?"
JOURNAL = "write-journal.json"


def edgeai(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgeai.cli", *argv],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def listing(home: Path) -> tuple[str | None, str]:
    proc = edgeai("knowledge", "list", "--json", "--home", str(home))
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1:][0] if proc.stderr.strip() else "?"
    devices = json.loads(proc.stdout)
    for device in devices:  # when and by whom differ run to run; the manual's digest does not
        for key in ("added_at", "added_by"):
            device.get("provenance", {}).pop(key, None)
    return json.dumps(devices, sort_keys=True), ""


def command(op: tuple[str, str], home: Path) -> list[str]:
    kind, target = op
    return ["knowledge", kind, target, "--home", str(home)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", default="healthcare")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    manuals = sorted((KNOWLEDGE / "samples" / args.pool / "manuals").glob("*.md"))
    base = out / "base"
    proc = edgeai("knowledge", "add", *map(str, manuals), "--home", str(base))
    assert proc.returncode == 0, proc.stderr
    before, _ = listing(base)
    devices = [d["device"] for d in json.loads(before or "[]")]
    ops = [("add", str(m)) for m in manuals] + [("remove", d) for d in devices]

    # the state after each command, its duration, and its write window, from uninterrupted runs
    reference: dict[tuple[str, str], dict] = {}
    for op in ops:
        home = out / "reference"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(base, home)
        started = time.monotonic()
        p = subprocess.Popen([sys.executable, "-m", "edgeai.cli", *command(op, home)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen = gone = None
        while p.poll() is None:
            exists = (home / "store" / JOURNAL).exists()
            now = time.monotonic() - started
            if exists and seen is None:
                seen = now
            if seen is not None and not exists and gone is None:
                gone = now
            time.sleep(0.002)
        total = time.monotonic() - started
        assert p.returncode == 0, op
        after, _ = listing(home)
        reference[op] = {"after": after, "total": total, "journal": (seen, gone or total)}
        print(f"reference {op[0]} {Path(op[1]).name}: {total:.1f} s, journal {seen}-{gone}",
              file=sys.stderr)

    rng = random.Random(args.seed)
    counts: dict[str, int] = {}
    rows = []
    for run in range(args.runs):
        op = rng.choice(ops)
        ref = reference[op]
        in_write = run % 2 == 1 and ref["journal"][0] is not None
        seen, gone = ref["journal"]
        delay = rng.uniform(0, 1.2 * (gone - seen)) if in_write else rng.uniform(0, ref["total"])
        home = out / "run"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(base, home)
        p = subprocess.Popen([sys.executable, "-m", "edgeai.cli", *command(op, home)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        if in_write:  # wait for the journal: the write has begun
            while p.poll() is None and not (home / "store" / JOURNAL).exists():
                time.sleep(0.001)
            started = time.monotonic()
        while p.poll() is None and time.monotonic() - started < delay:
            time.sleep(0.001)
        finished = p.poll() is not None
        if not finished:
            p.send_signal(signal.SIGKILL)
        p.wait()
        state, error = listing(home)
        outcome = (
            "error" if state is None
            else "before" if state == before
            else "after" if state == ref["after"]
            else "other"
        )
        plan = edgeai("plan", REQUEST, "--home", str(home))
        plan_ok = plan.returncode == 0 and "Traceback" not in plan.stderr
        key = f"{outcome}{'' if plan_ok else ' + plan failed'}{' (finished first)' if finished else ''}"
        counts[key] = counts.get(key, 0) + 1
        rows.append({
            "run": run, "seed": args.seed, "command": op[0], "target": Path(op[1]).name,
            "where": "write" if in_write else "anywhere", "delay_s": round(delay, 4),
            "killed": not finished, "outcome": outcome, "plan_ok": plan_ok,
            "error": error or (plan.stderr.strip().splitlines()[-1:] or [""])[0] if not plan_ok
            else error,
        })
        print(f"{run:3d} {op[0]:6s} {Path(op[1]).name:28s} {rows[-1]['where']:8s} "
              f"{delay:6.3f}s {key}", file=sys.stderr)
    with (out / "kills.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "summary.json").write_text(json.dumps({"runs": args.runs, "seed": args.seed,
                                                  "counts": counts}, indent=2))
    print(json.dumps(counts, indent=2))
    return 0 if all(k.split()[0] in ("before", "after") and "failed" not in k for k in counts) else 1


if __name__ == "__main__":
    sys.exit(main())
