"""`edgeai run SCENARIO.yaml [--report DIR] [--home H]`: a scripted run, checked, with a report.

Only the command line lives here: where the home and the report go, and the lines printed. The
scenario's schema, the run through the app (the same `App.ask` as `edgeai ask`), the checks and
the report are graphs/scenario.py's, which the API server calls too.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from edgeai.cli import add_common
from edgeai.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="a scripted run: a scenario file's requests, checked, with a report",
        description="Load the scenario's manuals into a data home (--home, or a fresh one at "
        "<default home>/scenarios/<name>, emptied first), ask its requests in order as "
        "`edgeai ask` would, check each against its expectation and write report.json + "
        "report.md. Exit 0: every check passed; 1: one failed; 2: a bad file (nothing written).",
    )
    run.add_argument("scenario", type=Path, help="the scenario file (YAML; see examples/scenarios)")
    run.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="folder for report.json + report.md (default: the scenario's report:, else "
        "<home>/runs/scenarios/<name>)",
    )
    add_common(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Validate everything (scenario, report folder) before writing anything; then load the
    manuals into the home (a fresh one under <home>/scenarios/ unless --home names one), ask
    every request, write the report. Exit 0 when every check passed, 1 when one failed."""
    from edgeai.graphs.app import App
    from edgeai.graphs.scenario import (
        check_report_dir,
        load_scenario,
        prepare_home,
        run_scenario,
        slug,
        write_report,
    )

    path: Path = args.scenario
    given_home = args.home is not None
    settings.store = None  # the scenario's manuals go to the home's embedded store, never a server
    scenario = load_scenario(path, also_known=_home_models(settings.home) if given_home else ())
    name = slug(scenario.name or path.stem)
    if not given_home:  # a fresh home of its own, so the user's store is never touched
        settings.home = settings.home / "scenarios" / name
    if args.report is not None:
        report_dir = args.report
    elif scenario.report is not None:
        report_dir = path.parent / scenario.report
    else:
        report_dir = settings.runs_dir / "scenarios" / name
    report_dir = check_report_dir(report_dir)
    if not given_home:
        shutil.rmtree(settings.home, ignore_errors=True)
    print(f"loading {', '.join(scenario.pools)} into {settings.home}", file=sys.stderr)
    prepare_home(scenario, settings.home, base=path.parent)
    report = run_scenario(scenario, App.open(settings))
    written = write_report(report, report_dir)
    for turn in report.turns:
        check = turn.check
        chosen = ", ".join(check.chosen) or "unsupported"
        verdict = "PASS" if check.passed else "FAIL"
        print(f"{verdict}  {turn.index + 1}. {turn.request}  -> {chosen}"
              + ("" if check.passed else f"  ({check.detail})"))
    print(f"{report.checks - report.failed}/{report.checks} checks passed")
    print(f"report: {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0 if report.passed else 1


def _home_models(home: Path) -> list[str]:
    """The model ids a given home's store already holds (a scenario may expect them too)."""
    if not (home / "store").is_dir():
        return []
    from edgeai.knowledge.store import open_store

    return [m.name for m in open_store(home).models()]
