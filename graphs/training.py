"""The training sub-graph (Fig. 4's loop): codegen -> validate -> approve -> run -> tune -> register.

When a request names a task no registered model serves but that the shipped template can train
(image classification), the request graph routes here instead of only saying what is missing.
`prepare_training` splits the data among the clients; `generate_code` asks the codegen agent for
a configuration and validated code (a rejected proposal is recorded with its reasons and another
one is made); `approve_code` pauses the graph before the first run of generated code
(LangGraph `interrupt`; `--yes` approves in scripted runs) ; `run_training` runs the trial in the
sandbox; `tune_training` lets the FL-tuner read the curve and either narrow the space for the next
trial or stop; `register_model` registers the best trial's model in the knowledge store with a
runtime, after which the request graph plans the request again and answers with the new model.
`build_training_graph` compiles the same nodes alone for `edgeai fl auto`.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Literal

from edgeai.agents import codegen, fl_tuner
from edgeai.graphs.state import EdgeContext, EdgeState, FLOptions, Training
from edgeai.graphs.state import trace_step as _step
from edgeai.tools.federated.template import load_manifest
from edgeai.tools.federated.trial import prepare_data, run_trial
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt


def _emit(ctx: EdgeContext, **event: Any) -> None:
    if ctx.progress is not None:
        ctx.progress(event)


def _home(ctx: EdgeContext) -> Path:
    if ctx.home is None:
        raise ValueError("training needs the data home in the run context (EdgeContext.home)")
    return ctx.home


def prepare_training(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """Split the data among the clients (in this trusted process) and open the run's folder."""
    started = time.perf_counter()
    ctx = runtime.context
    opts: FLOptions = ctx.fl or FLOptions()
    home = _home(ctx)
    purpose = state.effective_request or state.request
    _emit(ctx, event="prepare", data=opts.data, clients=opts.clients)
    data = prepare_data(opts.data, home / "cache" / "fl", clients=opts.clients, scheme=opts.scheme,
                        alpha=opts.alpha, seed=opts.seed, n_train=opts.n_train)
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    training = Training(graph_run=state.run, run_id=run_id, dir=str(home / "runs" / "fl" / run_id),
                        purpose=purpose, options=opts, data=data)
    Path(training.dir).mkdir(parents=True, exist_ok=True)
    row = training.model_dump(mode="json")
    return {"training": row} | _step("prepare_training", started, state, data=data.profile)


def generate_code(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """The codegen agent's next configuration, rendered into the template and validated."""
    started = time.perf_counter()
    ctx = runtime.context
    t = state.training
    manifest = load_manifest(t.options.template)
    n = len(t.trials) + 1
    finished = [(r.config, r.final()) for r in t.trials]
    history = [r.summary() | {"config": r.config,
                              "curve": [{k: c[k] for k in ("round", "val_accuracy", "val_loss")}
                                        for c in r.curve]} for r in t.trials]
    proposal, values, rejections = codegen.propose(
        manifest, trial=n, profile=t.data.profile, purpose=t.purpose, finished=finished,
        history=history, space=t.space, chat_model=ctx.codegen_model, seed=t.options.seed)
    for r in rejections:
        _emit(ctx, event="rejected", trial=n, source=r.source, reasons=r.reasons)
    _emit(ctx, event="proposal", trial=n, source=proposal.source, config=values)
    t.proposal = proposal
    t.rejections = [*t.rejections, *rejections]
    return {"training": t.model_dump(mode="json")} | _step(
        "generate_code", started, state, trial=n, source=proposal.source, config=values,
        rejected=[r.model_dump() for r in rejections])


def approve_code(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """Pause for a person's approval before generated code first runs (LangGraph interrupt)."""
    started = time.perf_counter()
    t = state.training
    if not (t.approved or runtime.context.approve):
        answer = interrupt({
            "kind": "approve_code",
            "question": "Run this generated federated-learning code in the sandbox?",
            "trial": len(t.trials) + 1,
            "config": t.proposal.config,
            "code": t.proposal.text,
        })
        if not _yes(answer):
            t.stop = "the generated code was not approved, so nothing ran"
            return {"training": t.model_dump(mode="json")} | _step(
                "approve_code", started, state, approved=False)
    t.approved = True
    return {"training": t.model_dump(mode="json")} | _step("approve_code", started, state,
                                                           approved=True)


def _yes(answer: Any) -> bool:
    if isinstance(answer, dict):
        answer = answer.get("approve", answer.get("approved"))
    if isinstance(answer, str):
        return answer.strip().lower() in ("y", "yes", "true", "approve", "ok", "1")
    return bool(answer)


def run_training(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """Run the approved trial in the sandbox and keep its curve."""
    started = time.perf_counter()
    ctx = runtime.context
    t = state.training
    n = len(t.trials) + 1
    _emit(ctx, event="trial_start", trial=n, rounds=t.options.rounds, config=t.proposal.config)
    record = run_trial(
        load_manifest(t.options.template), t.proposal.text, t.data,
        Path(t.dir) / f"trial-{n}", trial=n, source=t.proposal.source, rounds=t.options.rounds,
        seed=t.options.seed, seconds=t.options.seconds, memory_mb=t.options.memory_mb,
        on_round=lambda row: _emit(ctx, event="round", trial=n, **row))
    _emit(ctx, **({"event": "trial_end"} | record.summary()))
    t.trials = [*t.trials, record]
    t.proposal = None
    # the curve's plot, named relative to the data home: the chat page shows it (server /files/)
    curve = Path(t.dir) / f"trial-{n}" / "curve.png"
    images = [f"runs/fl/{t.run_id}/trial-{n}/curve.png"] if curve.is_file() else []
    return {"training": t.model_dump(mode="json")} | _step(
        "run_training", started, state, trial=record.summary(), images=images)


def tune_training(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """The FL-tuner: stop, or narrow the space for the next proposal."""
    started = time.perf_counter()
    t = state.training
    o = t.options
    cap = fl_tuner.epochs_cap(t.trials, max_trials=o.trials, rounds=o.rounds,
                              clients=o.clients, budget=o.budget)
    t.stop = fl_tuner.stop_reason(t.trials, max_trials=o.trials, target=o.target,
                                  patience=o.patience, epochs_left=cap)
    if t.stop is None:
        t.space = fl_tuner.next_space(load_manifest(o.template), t.trials,
                                      t.data.profile["num_classes"], epochs_cap=cap)
    _emit(runtime.context, event="tune", stop=t.stop, notes=t.space.notes)
    return {"training": t.model_dump(mode="json")} | _step(
        "tune_training", started, state, stop=t.stop, space=t.space.model_dump())


def route_after_tuning(state: EdgeState) -> Literal["generate_code", "register_model"]:
    return "register_model" if state.training.stop else "generate_code"


def register_model(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """Register the best trial's model: weights and manual in the home, manual in the store."""
    started = time.perf_counter()
    ctx = runtime.context
    t = state.training
    best = fl_tuner.best_trial(t.trials)
    if best is None:
        t.stop = (t.stop or "") + "; no trial finished, so nothing was registered"
        return {"training": t.model_dump(mode="json")} | _step("register_model", started, state)
    from edgeai.agents.planning.units import build_units
    from edgeai.tools.federated.served import register_trained

    edge = [d.compute_hz for d in ctx.store.manuals() if d.tier == "edge" and d.compute_hz
            and d.device != "edgeai-trained-models"]
    mid, manual = register_trained(_home(ctx), trial=best, data=t.data, purpose=t.purpose,
                                   edge_compute_hz=max(edge) if edge else None)
    ctx.store.add_manuals([manual], build_units)
    if ctx.replan is not None:
        ctx.planner = ctx.replan()
    t.model = mid
    t.best_trial = best.trial
    _emit(ctx, event="registered", model=mid, test_accuracy=best.final("test_accuracy"))
    return {"training": t.model_dump(mode="json")} | _step(
        "register_model", started, state, model=mid, trial=best.trial)


def training_summary(t: Training) -> str:
    """One paragraph: what was trained, how well, and where it is."""
    ok = [r for r in t.trials if r.status == "ok"]
    failed = [f"trial {r.trial}: {r.status} ({r.message})" for r in t.trials if r.status != "ok"]
    parts = []
    if ok:
        parts.append("; ".join(
            f"trial {r.trial} ({r.config['ARCH']}, {r.config['OPTIMIZER']}, lr "
            f"{r.config['LEARNING_RATE']:.3g}, {r.config['AUGMENTATION']}) reached "
            f"{100 * r.final('val_accuracy'):.1f} % validation accuracy" for r in ok))
    if failed:
        parts.append("; ".join(failed))
    if t.rejections:
        parts.append(f"{len(t.rejections)} proposal(s) rejected by the validator")
    head = (f"Trained {t.model} by federated learning ({t.options.clients} clients, "
            f"{t.options.rounds} rounds per trial, {len(t.trials)} trial(s); nobody's data left "
            f"their device) and registered it on the edge server: "
            if t.model else "No model was registered: ")
    best = next((r for r in t.trials if r.trial == t.best_trial), None)
    acc = (f" Its held-out test accuracy is {100 * best.final('test_accuracy'):.1f} %."
           if best is not None and t.model else "")
    stop = f" Stopped because {t.stop}." if t.stop else ""
    return head + ". ".join(parts) + "." + acc + stop + f" Code, curves and plots: {t.dir}"


def finish_training(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    """The standalone graph's last node: the summary is the answer."""
    started = time.perf_counter()
    answer = training_summary(state.training)
    return {"answer": answer} | _step("finish_training", started, state, answer=answer)


def add_training_nodes(builder: StateGraph, after_register: str, after_decline: str) -> None:
    """Add the loop's nodes and edges to a graph builder (the request graph or the standalone one)."""
    for node in (prepare_training, generate_code, approve_code, run_training, tune_training,
                 register_model):
        builder.add_node(node)
    builder.add_edge("prepare_training", "generate_code")
    builder.add_edge("generate_code", "approve_code")
    builder.add_conditional_edges("approve_code", _after_approval(after_decline),
                                  ["run_training", after_decline])
    builder.add_edge("run_training", "tune_training")
    builder.add_conditional_edges("tune_training", route_after_tuning,
                                  ["generate_code", "register_model"])
    builder.add_edge("register_model", after_register)


def _after_approval(declined: str):
    def route_after_approval(state: EdgeState) -> str:
        return "run_training" if state.training and state.training.approved else declined

    return route_after_approval


def build_training_graph(checkpointer: Any = None):
    """The loop alone (`edgeai fl auto`): START -> prepare ... register -> finish -> END."""
    builder = StateGraph(EdgeState, context_schema=EdgeContext)
    add_training_nodes(builder, after_register="finish_training", after_decline="finish_training")
    builder.add_node(finish_training)
    builder.add_edge(START, "prepare_training")
    builder.add_edge("finish_training", END)
    return builder.compile(checkpointer=checkpointer)


def train_in_home(settings: Any, purpose: str, options: FLOptions, *, approve: bool = False,
                  codegen_model: Any = None, progress: Any = None,
                  ask: Any = None) -> dict[str, Any]:
    """`edgeai fl auto`: the loop on a data home (created if new), checkpointed in its SQLite
    file; an approval interrupt is answered by `ask(request) -> bool` (or refused when None)."""
    from edgeai.graphs.graph import sqlite_checkpointer
    from edgeai.knowledge.store import open_store
    from langgraph.types import Command

    home = Path(settings.home)
    store = open_store(home, create=True, url=getattr(settings, "store", None))
    graph = build_training_graph(sqlite_checkpointer(settings.checkpoint_db))
    run = uuid.uuid4().hex[:12]
    config = {"configurable": {"thread_id": f"fl-{run}"}}
    context = EdgeContext(store=store, planner=None, home=home, approve=approve, fl=options,
                          codegen_model=codegen_model, progress=progress)
    state = graph.invoke({"request": purpose, "effective_request": purpose, "run": run}, config,
                         context=context)
    while state.get("__interrupt__"):
        request = state["__interrupt__"][0].value
        state = graph.invoke(Command(resume=bool(ask(request)) if ask else False), config,
                             context=context)
    t = Training.model_validate(state["training"])
    return {"answer": state.get("answer"), "model": t.model, "dir": t.dir, "stop": t.stop,
            "thread": f"fl-{run}",
            "trials": [r.summary() | {"config": r.config} for r in t.trials],
            "rejections": [r.model_dump() for r in t.rejections]}
