"""`edgeai bench fl`: automatic FL (the training graph, embedded codegen + FL-tuner) against the
grid-searched baseline, per data set and partitioning, in one run (Fig. 4 of the paper).

It lives in graphs/ because its automatic side is the whole training graph (agents and tools
wired); the baseline grid, the intervals and the figure are tools/federated/bench.py. Each
(data, partitioning) pair gets its own throw-away data home under the bench folder, so models
the trials register never touch the user's store. Output: a table on stdout, `fl.csv` (every
run), `fl-summary.csv` (one row per pair) and `fl.png` under `<home>/bench/`.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from edgeai.graphs.state import FLOptions
from edgeai.graphs.training import train_in_home
from edgeai.tools.federated import bench as fb
from edgeai.tools.federated.template import load_manifest
from edgeai.tools.federated.trial import TrialRecord, pooled, prepare_data, read_curve, run_trial

PURPOSES = {
    "generated": "train an image classifier for my photos",
    "digits": "train a classifier that recognises handwritten digits in images",
}


def run_bench(settings: Any, *, data: list[str], partitions: list[str], alpha: float,
              clients: int, rounds: int, trials: int, grid: list[float], baseline_arch: str,
              n_train: int | None, seed: int, baseline_epochs: int = 1, budget: int | str | None = "equal",
              progress: Any = None) -> list[dict[str, Any]]:
    """`budget`: the trials' client-epochs; "equal" gives them what the grid spends (the fair
    comparison: no more local computation than the baseline), None no cap."""
    manifest = load_manifest()
    out_dir = Path(settings.bench_dir)
    root = out_dir / "fl-runs" / time.strftime("%Y%m%d-%H%M%S")
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    panels: dict[str, dict[str, list[dict[str, Any]]]] = {}
    central: dict[tuple[str, float], TrialRecord] = {}
    started = time.perf_counter()
    for spec in data:
        for scheme in partitions:
            tag = f"{spec.split(':')[0]}-{scheme}"
            home = root / tag
            prepared = prepare_data(spec, Path(settings.home) / "cache" / "fl", clients=clients,
                                    scheme=scheme, alpha=alpha, seed=seed, n_train=n_train)
            n_test = int(prepared.profile["n_test"])
            print(f"[{tag}] baseline: {baseline_arch}, SGD, lr grid {grid}", flush=True)
            base = fb.run_grid(manifest, prepared, home / "grid", grid=grid, arch=baseline_arch,
                               rounds=rounds, seed=seed, epochs=baseline_epochs)
            best = fb.best_by_validation(base)
            ref = None
            if best is not None:  # the pooled-data ceiling, once per data set and rate
                key = (spec, float(best.config["LEARNING_RATE"]))
                if key not in central:
                    print(f"[{tag}] centralised reference: the baseline's model and rate on "
                          f"the pooled data", flush=True)
                    central[key] = run_trial(manifest, manifest.render(best.config),
                                             pooled(prepared), home / "central", trial=1,
                                             source="central", rounds=rounds, seed=seed)
                ref = central[key]
            cap = sum(r.client_epochs for r in base) if budget == "equal" else budget
            print(f"[{tag}] automatic FL: {trials} trials, budget {cap or 'none'} client-epochs",
                  flush=True)
            opts = FLOptions(data=spec, clients=clients, rounds=rounds, trials=trials,
                             scheme=scheme, alpha=alpha, n_train=n_train, seed=seed, budget=cap)
            s = _settings_for(settings, home)
            auto = train_in_home(s, PURPOSES.get(spec.split(":")[0], "train an image classifier"),
                                 opts, approve=True, progress=progress)
            records = [TrialRecord.model_validate_json(
                (Path(auto["dir"]) / f"trial-{t['trial']}" / "trial.json").read_text())
                for t in auto["trials"]]
            rows += fb.rows_for(spec, scheme, "baseline-grid", base, n_test)
            rows += fb.rows_for(spec, scheme, "auto-trial", records, n_test)
            if ref is not None:
                rows += fb.rows_for(spec, scheme, "central-reference", [ref], n_test)
            top = fb.best_by_validation(records)
            b_test = best.final("test_accuracy") if best else None
            a_test = top.final("test_accuracy") if top else None
            summary.append({
                "data": spec, "partition": scheme if scheme == "iid" else f"{scheme}(alpha={alpha})",
                "baseline_lr": best.config["LEARNING_RATE"] if best else None,
                "baseline_test": b_test, "baseline_ci": fb.wilson(b_test, n_test),
                "best_trial": top.trial if top else None, "auto_test": a_test,
                "auto_ci": fb.wilson(a_test, n_test),
                "gain_points": round(100 * (a_test - b_test), 2) if a_test is not None and b_test is not None else None,
                "baseline_client_rounds": sum(r.client_rounds for r in base),
                "auto_client_rounds": sum(r.client_rounds for r in records),
                # local computation: a client-round of E local epochs costs E client-epochs
                "baseline_client_epochs": sum(r.client_epochs for r in base),
                "auto_client_epochs": sum(r.client_epochs for r in records),
                "central_test": ref.final("test_accuracy") if ref else None,
                "trials": len(records), "stop": auto["stop"],
            })
            curves = {}
            if best:
                curves[f"baseline {baseline_arch} SGD+momentum lr={best.config['LEARNING_RATE']:g} E={baseline_epochs}"] = best.curve
            if ref is not None and ref.status == "ok":
                curves["central reference (pooled data, baseline's model and rate)"] = ref.curve
            for r in records:
                c = r.config
                curves[f"trial {r.trial}: {c['ARCH']} {c['OPTIMIZER']} lr={c['LEARNING_RATE']:.3g} "
                       f"E={c['LOCAL_EPOCHS']} aug={c['AUGMENTATION']}"] = read_curve(
                    Path(r.dir) / "out" / "curve.jsonl")
            panels[f"{spec.split(':')[0]}, {summary[-1]['partition']}"] = curves
            _table(summary[-1:])
    fb.write_csv(rows, out_dir / "fl.csv")
    fb.write_csv(summary, out_dir / "fl-summary.csv")
    fb.figure(panels, out_dir / "fl.png")
    print(f"\nmachine: {platform.node()} ({platform.machine()}, {_cores()} cores), "
          f"{time.strftime('%Y-%m-%d %H:%M')}; {time.perf_counter() - started:.0f} s")
    _table(summary)
    print(f"wrote {out_dir / 'fl.csv'}, {out_dir / 'fl-summary.csv'}, {out_dir / 'fl.png'}")
    return summary


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _settings_for(settings: Any, home: Path) -> Any:
    return settings.model_copy(update={"home": home})


def _table(summary: list[dict[str, Any]]) -> None:
    head = (f"{'data':<10} {'partition':<22} {'baseline test':>14} {'best trial test':>16} "
            f"{'gain (pts)':>10} {'client-rounds base/auto':>24} {'client-epochs base/auto':>24} "
            f"{'central':>8}")
    print(head)
    for s in summary:
        def pct(v: float | None) -> str:
            return f"{100 * v:.1f} %" if v is not None else "-"
        print(f"{s['data']:<10} {s['partition']:<22} {pct(s['baseline_test']):>14} "
              f"{pct(s['auto_test']):>16} {s['gain_points'] if s['gain_points'] is not None else '-':>10} "
              f"{str(s['baseline_client_rounds']) + ' / ' + str(s['auto_client_rounds']):>24} "
              f"{str(s.get('baseline_client_epochs')) + ' / ' + str(s.get('auto_client_epochs')):>24} "
              f"{pct(s.get('central_test')):>8}")
