"""The request graph's federated fine-tuning node: a request to adapt the language model.

"adapt the assistant to my family's messages without uploading them" names no task a registered
model serves, and `trainable_task` reads it as language model adaptation: the FL-tuner chooses
the strategy from what the request says about the people and their devices
(`fl_tuner.choose_fedtune`), the run adapts the language model with Flower (only adapters and
metrics leave a user; the users' text is the offline corpus standing in for their messages, and
the answer says so), the FL-tuner reads the curve (`fl_tuner.review_fedtune`), and the adapted
model is registered in the home and its manual added to the knowledge store.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from edgeai.agents import fl_tuner
from edgeai.graphs.state import EdgeContext, EdgeState, FLOptions, Turn
from edgeai.graphs.state import trace_step as _step
from langgraph.runtime import Runtime


def fedtune_language_model(state: EdgeState, runtime: Runtime[EdgeContext]) -> dict[str, Any]:
    from edgeai.agents.planning.units import build_units
    from edgeai.tools.federated.fedtune.job import FedtuneJob
    from edgeai.tools.federated.fedtune.registry import register_adapter
    from edgeai.tools.federated.fedtune.run import run_fedtune

    started = time.perf_counter()
    ctx = runtime.context
    if ctx.home is None:
        raise ValueError("federated fine-tuning needs the data home (EdgeContext.home)")
    opts = ctx.fl or FLOptions()
    purpose = state.effective_request or state.request
    choice = fl_tuner.choose_fedtune(purpose)
    users = opts.fedtune_users
    job = FedtuneJob(method=choice.method, users=users, rounds=opts.fedtune_rounds,
                     corpus=opts.fedtune_corpus, base=opts.fedtune_base, seed=opts.seed,
                     clusters=min(4, users), edges=min(2, users),
                     stragglers=0.25 if choice.method == "async-lora" else 0.0).check()
    emit = ctx.progress or (lambda event: None)
    emit({"event": "fedtune", "method": job.method, "reason": choice.reason, "users": users,
          "rounds": job.rounds})
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    out = ctx.home / "runs" / "fedtune" / run_id
    result = run_fedtune(job, out, on_round=lambda row: emit(
        {"event": "fedtune_round", "round": row["round"], "mean_loss": row["mean_loss"],
         "sim_s": row["sim_s"]}))
    mid, manual = register_adapter(ctx.home, result, purpose)
    ctx.store.add_manuals([manual], build_units)
    if ctx.replan is not None:
        ctx.planner = ctx.replan()
    notes = fl_tuner.review_fedtune(result.rows)
    s = result.summary
    answer = (
        f"Adapted the language model by federated fine-tuning and registered it as {mid}: "
        f"{job.method} ({choice.reason}), {users} users, {job.rounds} rounds. Only adapter "
        f"updates ({s['adapter_bytes']:,} bytes each, {s['bytes_up']:,} bytes uploaded in all, "
        f"{s['sim_s']:.1f} s of simulated wireless time) left the users' devices; their text "
        f"never did. The FL-tuner's reading: {'; '.join(notes)}. The users' text in this run is "
        f"the offline {result.job.corpus} corpus standing in for their messages. Curve and "
        f"adapters: {out}"
    )
    turn = Turn(request=state.request, effective_request=purpose, day=state.day, answer=answer)
    return {"answer": answer, "history": [turn.model_dump()]} | _step(
        "fedtune_language_model", started, state, model=mid, method=job.method,
        images=[str((out / "curve.png").relative_to(ctx.home))])
