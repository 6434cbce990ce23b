"""Scripted runs: a scenario file (YAML) of pools and requests with expectations, run through the
app, checked, and written up as a report.

This module owns the scenario's schema and its loading (every bad field is refused in one line
naming the file, the line and the field, before anything is written), the home's preparation
(the scenario's manuals loaded into it), the run (`run_scenario(scenario, app)`: each request
through `App.ask`, the same path as `edgeai ask`, threads kept per label so follow-ups work), the
checks (expected models vs the plan's, `unsupported` vs answered) and the report (JSON +
Markdown, with each turn's answer and trace). `edgeai run` (cli/run.py) and the API server call
it; it imports nothing from cli/.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from edgeai.errors import EdgeAIError, UserInputError
from edgeai.inputs import check_text
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from edgeai.graphs.app import App

MAX_SCENARIO_BYTES = 1024 * 1024
"""Largest scenario file read: a thousand requests fit in a tenth of it."""

UNSUPPORTED = "unsupported"
"""The expectation that no model serves a request (the plan has no sub-task)."""


class ScenarioError(UserInputError):
    """A scenario file that does not parse or validate; names the file, the line and the field."""

    def __init__(self, source: str, line: int | None, field: str | None, message: str) -> None:
        self.source, self.line, self.field = source, line, field
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: " + (f"field '{field}': " if field else "") + message)


class ScenarioRequest(BaseModel):
    """One request of a scenario and what it should get."""

    model_config = ConfigDict(extra="forbid")

    request: str = Field(description="the request, as a person would type it to `edgeai ask`")
    thread: str | None = Field(
        None,
        description="conversation label: requests with the same label share one thread (in "
        "order), so a follow-up sees the earlier turns; none: a thread of its own",
    )
    expect: list[str] | Literal["unsupported"] = Field(
        description="the model ids the plan should choose (as a set), or 'unsupported'"
    )

    @field_validator("request")
    @classmethod
    def _request_text(cls, value: str) -> str:
        from edgeai.agents.planning.read import validate_request

        try:
            return validate_request(value)
        except UserInputError as exc:
            raise PydanticCustomError("request", str(exc)) from None

    @field_validator("thread")
    @classmethod
    def _thread_label(cls, value: str | None) -> str | None:
        if value is not None and not check_text(value, "the thread label").strip():
            raise PydanticCustomError("thread", "is empty: name the thread, or leave it out")
        return value

    @field_validator("expect", mode="before")
    @classmethod
    def _expect_shape(cls, value: Any) -> Any:
        """One clear message for both wrong shapes (pydantic would report each union arm)."""
        if value == UNSUPPORTED:
            return value
        if (isinstance(value, list) and value
                and all(isinstance(m, str) and m.strip() for m in value)):
            return [m.strip() for m in value]
        raise PydanticCustomError(
            "expect", "must be a non-empty list of model ids, or 'unsupported' (got {got})",
            {"got": repr(value)},
        )


class Scenario(BaseModel):
    """A scripted run: which manuals to load, which requests to ask in order, what to expect."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="the scenario's name (default: the file's stem)")
    description: str = ""
    pools: list[str] = Field(
        min_length=1,
        description="manuals to load: a shipped pool's name (healthcare, photo, ...), or a pool "
        "folder, manuals folder or manual file (relative paths: from the scenario file)",
    )
    today: dt.date | None = Field(None, description="the date 'today' means (default: today)")
    seed: int = Field(0, description="which simulated household the models read")
    objective: Literal["min_latency", "min_energy"] = "min_latency"
    solver: str | None = Field(None, description="offloading solver (default: the graph's)")
    report: str | None = Field(
        None, description="folder for report.json + report.md (relative: from the scenario file)"
    )
    requests: list[ScenarioRequest] = Field(min_length=1)

    @field_validator("solver")
    @classmethod
    def _known_solver(cls, value: str | None) -> str | None:
        if value is not None:
            from edgeai.tools.offloading import SOLVERS

            if value not in SOLVERS:
                raise PydanticCustomError("solver", "unknown solver '{name}' (choose from {known})",
                                          {"name": value, "known": ", ".join(SOLVERS)})
        return value


# ---- loading: YAML with line marks -> Scenario, or one line naming file, line and field ----


def load_scenario(path: Path, *, also_known: Iterable[str] = ()) -> Scenario:
    """Read and validate a scenario file (see `parse_scenario`); relative paths in it are taken
    from its folder."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SCENARIO_BYTES:
            raise ScenarioError(str(path), None, None,
                                f"{size:,} bytes; the limit is {MAX_SCENARIO_BYTES:,}")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(str(path), None, None, "no such file") from None
    except IsADirectoryError:
        raise ScenarioError(str(path), None, None, "is a folder, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(str(path), None, None, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(str(path), line, None, "not UTF-8 text") from None
    return parse_scenario(text, str(path), base=path.parent, also_known=also_known)


def parse_scenario(
    text: str, source: str, *, base: Path | None = None, also_known: Iterable[str] = (),
    paths: bool = True,
) -> Scenario:
    """The scenario in `text` (YAML, or JSON, which is YAML), validated: its fields, that every
    pool resolves (from `base`, default the current folder) and that every expected model is
    one the pools' manuals (or `also_known`, e.g. a given home's store) declare. Any failure is
    a ScenarioError naming `source`, the line and the field. `paths=False` (a scenario that came
    over the network): a pool must be a shipped pool's name, never a file-system path."""
    root = _compose(text, source)
    if root is None:
        raise ScenarioError(source, 1, None, "is empty: a scenario needs pools: and requests:")
    if not isinstance(root, yaml.MappingNode):
        raise ScenarioError(source, _line(root), None,
                            "must be a YAML mapping (pools:, requests:, ...)")
    _refuse_duplicate_keys(root, source)
    data = yaml.SafeLoader("").construct_document(root)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = "missing" if first["type"] == "missing" else first["msg"]
        raise ScenarioError(source, _line_of(root, first["loc"]), field_path(first["loc"]),
                            message) from None
    base = Path.cwd() if base is None else Path(base)
    known = set(also_known)
    for i, pool in enumerate(scenario.pools):
        try:
            known |= _declared_models(resolve_manuals(pool, base, paths=paths))
        except EdgeAIError as exc:
            raise ScenarioError(source, _line_of(root, ("pools", i)), f"pools[{i}]",
                                str(exc)) from None
    for i, step in enumerate(scenario.requests):
        unknown = [m for m in step.expect if m not in known] if step.expect != UNSUPPORTED else []
        if unknown:
            raise ScenarioError(
                source, _line_of(root, ("requests", i, "expect")), f"requests[{i}].expect",
                f"model '{unknown[0]}' is in none of the pools' manuals "
                f"(known: {', '.join(sorted(known))})")
    if scenario.name is None:
        scenario.name = Path(source).stem
    return scenario


def _compose(text: str, source: str) -> yaml.Node | None:
    """The YAML node tree (it keeps each value's line); bad YAML is one line with its line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "cannot parse"
        raise ScenarioError(source, line, None, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, None, None, f"not valid YAML: {exc}") from None


def _refuse_duplicate_keys(node: yaml.Node, source: str, path: tuple = ()) -> None:
    """YAML keeps the last of two equal keys silently; a scenario refuses them (one is a typo)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                raise ScenarioError(source, _line(key), field_path((*path, key.value)),
                                    "appears twice")
            seen.add(key.value)
            _refuse_duplicate_keys(value, source, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, source, (*path, i))


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _line_of(root: yaml.Node, loc: Iterable[Any]) -> int:
    """The line of the deepest node on the field path `loc` that the file has (a field's key;
    a list's item); a missing field points at the mapping that should hold it."""
    node, line = root, _line(root)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = _line(match[0]), match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = _line(node)
        else:
            break
    return line


def slug(name: str) -> str:
    """A scenario's name as a folder name: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "scenario"


def field_path(loc: Iterable[Any]) -> str:
    """pydantic's error location as a reader writes it: requests[0].expect."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def resolve_manuals(pool: str, base: Path, *, paths: bool = True) -> list[Path]:
    """The manual files a `pools:` entry names: a path (relative to `base`) to a pool folder,
    manuals folder or manual file, else a shipped pool's name; `paths=False`: only the name of
    a shipped pool (the value is not repeated in the refusal: it may be a path of this machine)."""
    from edgeai.knowledge.manuals import collect_manual_files
    from edgeai.knowledge.pools import resolve_pool, sample_pools

    check_text(pool, "the pool")
    if not paths:
        if pool not in sample_pools():
            raise UserInputError(f"must name a shipped pool ({', '.join(sample_pools())}); "
                                 "a path is not accepted here")
        return collect_manual_files([resolve_pool(pool)])
    path = (base / pool).expanduser()
    if not path.exists():
        path = resolve_pool(pool)  # a shipped pool's name, or a one-line refusal
    return collect_manual_files([path])


def _declared_models(files: list[Path]) -> set[str]:
    from edgeai.knowledge.manuals import parse_manual

    return {m.name for f in files for m in parse_manual(f).entry.models}


# ---- running: the home's manuals, each request through App.ask, its check ----


class Check(BaseModel):
    """One expectation and whether the turn met it."""

    kind: Literal["models", "unsupported"]
    passed: bool
    expected: list[str] | Literal["unsupported"]
    chosen: list[str] = Field(description="the models the plan chose (empty: unsupported)")
    detail: str = Field(description="what differed, in words (empty when passed)")


class TurnReport(BaseModel):
    """One request of the run: its check, the answer and the graph's trace of the turn."""

    index: int
    request: str
    thread_label: str | None
    thread: str = Field(description="the app's thread id (`edgeai ask --thread` continues it)")
    followup: bool = Field(description="planned as a follow-up of the thread's previous request")
    effective_request: str | None
    day: str | None
    check: Check
    unsupported: list[str] = Field(description="why the planner refused (parts of) the request")
    answer: str | None
    awaiting_approval: bool = Field(
        False, description="the graph proposed training code and stopped for a person's approval"
    )
    seconds: float
    trace: list[dict[str, Any]]


class ScenarioReport(BaseModel):
    """What `run_scenario` returns and `write_report` writes: every turn and whether all passed."""

    name: str
    description: str
    home: str
    today: dt.date
    started_at: dt.datetime
    seconds: float
    passed: bool
    checks: int
    failed: int
    turns: list[TurnReport]


def prepare_home(
    scenario: Scenario, home: Path, *, base: Path | None = None, paths: bool = True
) -> dict[str, list]:
    """Load the scenario's manuals into `home` (created when absent; devices already there are
    replaced by the manuals' versions); what `edgeai knowledge add` reports. `paths=False`:
    shipped pools only (see `resolve_manuals`)."""
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.store import add_to_home

    base = Path.cwd() if base is None else Path(base)
    files = [f for pool in scenario.pools for f in resolve_manuals(pool, base, paths=paths)]
    return add_to_home(home, files, build_units)


def run_scenario(scenario: Scenario, app: App) -> ScenarioReport:
    """Ask every request of `scenario` in order through `app` (as `edgeai ask` would, with the
    scenario's day, seed and objective), requests with one thread label on one thread, and
    check each against its expectation. Training the graph proposes is never approved here."""
    today = scenario.today or dt.date.today()
    started_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    threads: dict[str, str] = {}
    turns = []
    for i, step in enumerate(scenario.requests):
        t0 = time.perf_counter()
        out = app.ask(step.request, threads.get(step.thread) if step.thread else None,
                      today=today, seed=scenario.seed, objective=scenario.objective,
                      solver=scenario.solver)
        if step.thread is not None:
            threads[step.thread] = out["thread"]
        turns.append(_turn_report(i, step, out, time.perf_counter() - t0))
    failed = sum(not t.check.passed for t in turns)
    return ScenarioReport(
        name=scenario.name or "scenario", description=scenario.description,
        home=str(app.settings.home), today=today, started_at=started_at,
        seconds=round(time.perf_counter() - started, 3), passed=failed == 0,
        checks=len(turns), failed=failed, turns=turns,
    )


def check_turn(expect: list[str] | str, plan: dict[str, Any] | None) -> Check:
    """The expectation against the turn's plan: the same model set, or no sub-task at all."""
    chosen = [s["model"] for s in (plan or {}).get("subtasks", [])]
    refused = "; ".join((plan or {}).get("unsupported", [])) or "no plan"
    if expect == UNSUPPORTED:
        detail = "" if not chosen else f"answered with {', '.join(chosen)}"
        return Check(kind="unsupported", passed=not chosen, expected=expect, chosen=chosen,
                     detail=detail)
    want, got = set(expect), set(chosen)
    if not chosen:
        detail = f"refused as unsupported ({refused})"
    elif want != got:
        parts = [f"missing {', '.join(sorted(want - got))}" if want - got else "",
                 f"extra {', '.join(sorted(got - want))}" if got - want else ""]
        detail = "; ".join(p for p in parts if p)
    else:
        detail = ""
    return Check(kind="models", passed=not detail, expected=list(expect), chosen=chosen,
                 detail=detail)


def _turn_report(index: int, step: ScenarioRequest, out: dict[str, Any],
                 seconds: float) -> TurnReport:
    plan_step = next((s for s in out["trace"] if s["node"] == "plan_request"), {})
    return TurnReport(
        index=index, request=step.request, thread_label=step.thread, thread=out["thread"],
        followup=bool(plan_step.get("followup")), effective_request=out["effective_request"],
        day=out["day"], check=check_turn(step.expect, out["plan"]),
        unsupported=list((out["plan"] or {}).get("unsupported", [])), answer=out["answer"],
        awaiting_approval=out.get("interrupt") is not None, seconds=round(seconds, 3),
        trace=out["trace"],
    )


# ---- the report: report.json (the ScenarioReport) + report.md (for people) ----


def check_report_dir(path: Path) -> Path:
    """Refuse, before the run, a report folder that cannot be one (a file, or below a file)."""
    path = Path(path).expanduser()
    check_text(str(path), "the report folder")
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise UserInputError(f"report folder '{path}': '{p}' is a file")
            break
    return path


def write_report(report: ScenarioReport, out_dir: Path) -> list[Path]:
    """Write report.json and report.md into `out_dir` (created); the paths written."""
    out_dir = check_report_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out_dir / "report.json", out_dir / "report.md"
        json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        md_path.write_text(render_markdown(report), encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"report folder '{out_dir}': cannot write: {exc.strerror}") from None
    return [json_path, md_path]


def render_markdown(report: ScenarioReport) -> str:
    """The report for people: a table of checks, then each turn's answer and trace."""
    from edgeai.graphs.trace import summarize_step

    verdict = ("all checks passed" if report.passed
               else f"{report.failed} of {report.checks} checks failed")
    lines = [f"# Scenario: {report.name}", ""]
    if report.description:
        lines += [report.description.strip(), ""]
    lines += [
        (f"**{verdict}** — {report.checks} requests, day {report.today}, data home "
         f"`{report.home}`, {report.seconds:.1f} s "
         f"(started {report.started_at:%Y-%m-%d %H:%M} UTC)."),
        "",
        "| # | request | thread | expected | chosen | check |", "|---|---|---|---|---|---|",
    ]
    for t in report.turns:
        c = t.check
        expected = c.expected if c.expected == UNSUPPORTED else ", ".join(c.expected)
        result = "pass" if c.passed else f"**FAIL**: {c.detail}"
        lines.append("| " + " | ".join(_cell(x) for x in (
            str(t.index + 1), t.request, t.thread_label or "-", expected,
            ", ".join(c.chosen) or UNSUPPORTED, result)) + " |")
    for t in report.turns:
        lines += ["", f"## {t.index + 1}. {t.request}", ""]
        if t.followup:
            lines += [(f"Follow-up on thread `{t.thread_label}`: planned as "
                       f"“{t.effective_request}” for {t.day}."), ""]
        lines += [f"Check ({t.check.kind}): " + ("pass" if t.check.passed
                                                 else f"FAIL — {t.check.detail}"), ""]
        answer = (t.answer or "(no answer)").rstrip()
        fence = "`" * max(3, 1 + max((len(r) for r in re.findall("`+", answer)), default=0))
        lines += ["Answer:", "", f"{fence}text", answer, fence, "", "Trace:", ""]
        lines += [f"- `{s['node']}` ({s['seconds']:.2f} s): {summarize_step(s)}" for s in t.trace]
        if t.awaiting_approval:
            lines.append("- stopped: training code awaits a person's approval "
                         "(not given in scripted runs)")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
