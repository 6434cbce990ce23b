"""Check labelled pools against the spec (shared/specs/planning.md) before anyone trains or
scores on them: `python scripts/check_pool.py POOL [POOL ...]` (a pool: a folder holding
`manuals/*.md` and `requests.jsonl`; a folder of pools is expanded). Exit 0 when every pool is
clean, 1 when one has a problem (each printed as `pool: file:line: what`), 2 on bad arguments.

What it checks, so that a label means what the labelling rules say (knowledge/samples/building/
README.md, "How labels were made"):
- every manual parses with the store's own parser (front matter, fields, types), model ids are
  unique across the pool, and at least one device hosts no model is only reported (a count);
- every request line has the keys request, models, edges, unsupported, kind, lang; `models` is
  a set (no repeats; order free) naming only models of the pool; `unsupported` is true exactly when `models`
  is empty; `kind` is one of KINDS;
- `edges` is exactly the set of [producer, consumer] pairs inside `models` where an output type
  of the producer is an input type of the consumer (computed from the front matter);
- closure (a warning, printed but not failing: a type may be raw as well as made): a chosen consumer whose input type some pool model produces has a producer of that
  type in `models` (a consumer brings its producers), unless the type is also a raw type that
  no model needs to make (the consumer can read it directly: then nothing is required).
It reads files only; it plans nothing (writers of blind pools may run it).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO.parent) not in sys.path and (REPO / "__init__.py").exists():
    sys.path.insert(0, str(REPO.parent))

KINDS = ("single", "chain", "fused", "multi", "unsupported", "partial")
KEYS = ("request", "models", "edges", "unsupported", "kind", "lang")


def check_pool(pool: Path) -> tuple[list[str], dict[str, object]]:
    """The problems of one pool (empty: clean) and its counts."""
    from edgeai.knowledge.manuals import ManualError, parse_manual

    problems: list[str] = []
    warnings: list[str] = []
    manuals = sorted(p for p in (pool / "manuals").glob("*.md"))
    if not manuals:
        return [f"{pool}/manuals: no manual (*.md)"], {}
    models: dict[str, object] = {}
    devices, empty_devices = set(), 0
    for path in manuals:
        try:
            entry = parse_manual(path).entry
        except ManualError as exc:
            problems.append(str(exc))
            continue
        if entry.device in devices:
            problems.append(f"{path}: device '{entry.device}' is declared twice in the pool")
        devices.add(entry.device)
        empty_devices += not entry.models
        for m in entry.models:
            if m.name in models:
                problems.append(f"{path}: model '{m.name}' is declared by two devices")
            models[m.name] = m
    produced: dict[str, set[str]] = {}
    for m in models.values():
        for t in m.outputs:
            produced.setdefault(t, set()).add(m.name)
    req_path = pool / "requests.jsonl"
    if not req_path.is_file():
        return problems + [f"{req_path}: missing"], {}
    kinds: Counter = Counter()
    langs: Counter = Counter()
    n = 0
    for i, line in enumerate(req_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{req_path}:{i}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict) or set(row) != set(KEYS):
            got = sorted(row) if isinstance(row, dict) else type(row).__name__
            problems.append(f"{where}: keys must be {list(KEYS)}, got {got}")
            continue
        n += 1
        chosen, kind = row["models"], row["kind"]
        kinds[kind] += 1
        langs[row["lang"]] += 1
        if not isinstance(row["request"], str) or not row["request"].strip():
            problems.append(f"{where}: field 'request' is empty")
        if kind not in KINDS:
            problems.append(f"{where}: field 'kind': '{kind}' is not one of {', '.join(KINDS)}")
        if not isinstance(chosen, list) or not all(isinstance(m, str) for m in chosen):
            problems.append(f"{where}: field 'models' must be a list of model ids")
            continue
        unknown = [m for m in chosen if m not in models]
        if unknown:
            problems.append(f"{where}: field 'models': '{unknown[0]}' is no model of the pool")
            continue
        if len(chosen) != len(set(chosen)):
            problems.append(f"{where}: field 'models' names a model twice")
        if row["unsupported"] is not (not chosen):
            problems.append(f"{where}: field 'unsupported' must be {not chosen} "
                            f"({'no' if not chosen else len(chosen)} models)")
        if (kind == "unsupported") != (not chosen):
            problems.append(f"{where}: field 'kind': 'unsupported' exactly when models is empty")
        want = sorted([p, c] for p in chosen for c in chosen if p != c
                      and set(models[p].outputs) & set(models[c].inputs))
        got = row["edges"]
        if not isinstance(got, list) or sorted(map(list, got)) != want:
            problems.append(f"{where}: field 'edges' must be {want} (from the manuals' "
                            f"inputs/outputs), got {got}")
        for c in chosen:
            for t in models[c].inputs:
                # a model that takes the type it makes (an enhancer: image -> image) shows the
                # type is raw too: its consumers can read it directly
                makers = {p for p in produced.get(t, set()) - {c} if t not in models[p].inputs}
                if makers and not makers & set(chosen):
                    warnings.append(f"{where}: '{c}' needs '{t}', made by "
                                    f"{sorted(makers)}, none of which is in 'models'")
    if n == 0:
        problems.append(f"{req_path}: no requests")
    counts = {"devices": len(devices), "devices_without_model": empty_devices,
              "models": len(models), "requests": n, "kinds": dict(kinds),
              "non_english": n - langs.get("en", 0), "languages": sorted(langs), "warnings": warnings}
    return problems, counts


def expand(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if (p / "manuals").is_dir():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if (q / "manuals").is_dir()))
    return out


def main(argv: list[str]) -> int:
    if not argv or any(a.startswith("-") for a in argv):
        print("usage: python scripts/check_pool.py POOL_OR_FOLDER [...]", file=sys.stderr)
        return 2
    pools = expand([Path(a) for a in argv])
    if not pools:
        print("check_pool: no pool (a folder with manuals/) among the arguments", file=sys.stderr)
        return 2
    bad = 0
    for pool in pools:
        problems, counts = check_pool(pool)
        for p in problems:
            print(f"{pool.name}: {p}")
        for w in counts.pop("warnings", []):
            print(f"{pool.name}: warning: {w}")
        bad += bool(problems)
        print(f"{pool.name}: {'OK' if not problems else f'{len(problems)} problems'} {counts}")
    print(f"{len(pools) - bad}/{len(pools)} pools clean")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
