"""The codegen agent (Sec. III-B of the paper): from a purpose, a data profile and the template's
manifest, propose a configuration and write it into the template's marked regions.

Two ways to propose, one way in: whatever proposes, the code goes through the validator
(tools/federated/validate.py) before it may run, and a rejection comes back with its reasons.
- Embedded (the default, no LLM needed): Optuna's TPE sampler over the manifest's space. The
  study is rebuilt from the thread's finished trials on every call (`create_trial` + `add_trial`),
  so nothing but the trials themselves has to be checkpointed. The FL-tuner may narrow the space
  (fix the architecture, move the learning-rate window, require augmentation); Optuna searches
  what is left. Trial 1 is the manifest's defaults (what a Flower quickstart would start from).
- OpenAI-compatible LLM: the model is shown the same context (every configuration with its
  allowed values, the data profile, the purpose, earlier trials' curves) and answers JSON with
  values and, optionally, the new code of whole regions. Its text is validated like any other;
  when it is rejected, the rejection is recorded and the embedded search proposes instead.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from edgeai.tools.federated.template import (
    GENERATED,
    Manifest,
    SearchSpace,
    join_regions,
    split_regions,
)
from edgeai.tools.federated.validate import CodeRejected, validate
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

SYSTEM_PROMPT = (
    "You are the code-generation agent of an edge AI system. You configure a Flower federated "
    "learning app from a template. Only the marked regions of {file} may change. Answer JSON: "
    '{{"values": {{NAME: value, ...}}, "regions": {{REGION: "python code", ...}}, '
    '"rationale": "one sentence"}}. "regions" is optional: give the full new body of a region '
    "only to change its code; it must still assign every configuration of that region.\n"
    "What you know (JSON): {context}"
)
# the last message is the request itself: small models echo a long last message instead of
# answering it, so the context goes in the system message and the ask comes last
PROPOSE_PROMPT = ("Propose the configuration of trial {trial} as the JSON object described: "
                  "values within the allowed ranges, improving on the earlier trials' curves.")


class Proposal(BaseModel):
    """One configuration, the code it renders to, who proposed it and why."""

    config: dict[str, Any]
    text: str = Field(description="the generated task.py")
    source: str = Field(description="default, optuna or llm")
    rationale: str = ""


class Rejection(BaseModel):
    """A proposal the validator refused, kept in the run's record."""

    source: str
    reasons: list[str]


def context(manifest: Manifest, profile: dict[str, Any], purpose: str,
            history: list[dict[str, Any]], space: SearchSpace | None = None) -> dict[str, Any]:
    """What the agent knows before proposing (also what an LLM is shown)."""
    return {
        "purpose": purpose,
        "template": manifest.name,
        "configurations": [
            {"name": c.name, "region": c.region, "allowed": c.describe(), "default": c.default,
             "help": c.help}
            for c in manifest.configurations
        ],
        "data": {k: v for k, v in profile.items() if k != "examples_per_client"},
        "trials": history,
        "tuner": (space or SearchSpace()).model_dump(),
    }


def _distributions(manifest: Manifest, space: SearchSpace) -> dict[str, Any]:
    import optuna

    out: dict[str, Any] = {}
    for c in manifest.configurations:
        if c.name in space.fixed:
            continue
        if c.kind == "categorical":
            choices = [v for v in space.choices.get(c.name, list(c.choices)) if v in c.choices]
            out[c.name] = optuna.distributions.CategoricalDistribution(choices or list(c.choices))
            continue
        low, high = space.windows.get(c.name, (c.low, c.high))
        low, high = max(low, c.low), min(high, c.high)
        if low > high:
            low, high = c.low, c.high
        if c.kind == "int":
            out[c.name] = optuna.distributions.IntDistribution(int(low), int(high))
        else:
            out[c.name] = optuna.distributions.FloatDistribution(float(low), float(high), log=c.log)
    return out


def _inside(dist: Any, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def search_proposal(manifest: Manifest, finished: list[tuple[dict[str, Any], float | None]],
                    space: SearchSpace, *, trial: int, seed: int = 0) -> Proposal:
    """Optuna's next configuration inside `space`, informed by the finished trials."""
    if trial == 1 and not finished:
        config = {**manifest.defaults(), **space.fixed}
        return Proposal(config=config, text=manifest.render(config), source="default",
                        rationale="the template's defaults (a Flower quickstart start)")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = _distributions(manifest, space)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed + trial, n_startup_trials=1),
    )
    # Optuna refuses a categorical whose choices change between trials, and a past value outside
    # today's range: each finished trial joins with the parameters that lie in the space left open
    for config, value in finished:
        params = {k: v for k, v in config.items() if k in dists and _inside(dists[k], v)}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: dists[k] for k in params},
            value=value, state=(optuna.trial.TrialState.COMPLETE if value is not None
                                else optuna.trial.TrialState.FAIL)))
    t = study.ask(dists)
    config = {**space.fixed, **t.params}
    config = {c.name: config.get(c.name, c.default) for c in manifest.configurations}
    narrowed = f" ({'; '.join(space.notes)})" if space.notes else ""
    return Proposal(config=config, text=manifest.render(config), source="optuna",
                    rationale=f"Optuna TPE over the space the tuner left open{narrowed}")


class LLMAnswer(BaseModel):
    values: dict[str, Any] = Field(default_factory=dict)
    regions: dict[str, str] = Field(default_factory=dict)
    rationale: str = ""


def llm_proposal(manifest: Manifest, chat_model: BaseChatModel, ctx: dict[str, Any],
                 base: dict[str, Any], prompt: str | None = None) -> Proposal:
    """Ask the LLM; its values fill the regions and its region code replaces theirs. The text is
    returned unvalidated: the caller validates every proposal the same way. A reply that holds
    no configuration at all is a rejection too (it must not pass as the LLM's proposal)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    messages = [SystemMessage(SYSTEM_PROMPT.format(file=GENERATED,
                                                   context=json.dumps(ctx, default=str))),
                HumanMessage((prompt or PROPOSE_PROMPT).format(
                    trial=len(ctx.get("trials", [])) + 1))]
    # JSON mode (OpenAI, vLLM, llama.cpp and `edgeai llm serve` all take it): the reply parses
    reply = chat_model.bind(response_format={"type": "json_object"}).invoke(messages)
    answer = parse_llm_answer(str(reply.content))
    if not answer.values and not answer.regions:
        raise CodeRejected([f"the LLM's reply held no configuration {answer.rationale}".strip()])
    unknown = sorted(k for k in answer.values if k not in manifest.names())
    if unknown:
        raise CodeRejected([f"unknown configuration '{k}'" for k in unknown])
    known = {**base, **answer.values}
    try:  # out-of-range values are written as given: the validator says what is wrong
        text = manifest.render(known, check=False)
    except (TypeError, ValueError) as exc:
        raise CodeRejected([f"a value cannot be written into the template: {exc}"]) from None
    if answer.regions:
        outside, bodies = split_regions(text)
        bodies.update(answer.regions)
        text = join_regions(outside, bodies)
    return Proposal(config=known, text=text, source="llm", rationale=answer.rationale)


def parse_llm_answer(content: str) -> LLMAnswer:
    """The JSON object in an LLM's reply (fenced or bare); an empty answer when there is none."""
    start, end = content.find("{"), content.rfind("}")
    if start < 0 or end <= start:
        return LLMAnswer(rationale="(no JSON in the reply)")
    try:
        raw = json.loads(content[start:end + 1])
    except json.JSONDecodeError as exc:
        return LLMAnswer(rationale=f"(unparseable JSON: {exc.msg})")
    if not isinstance(raw, dict):
        return LLMAnswer()
    values = raw.get("values") if isinstance(raw.get("values"), dict) else {}
    regions = raw.get("regions") if isinstance(raw.get("regions"), dict) else {}
    return LLMAnswer(values=values, regions={str(k): str(v) for k, v in regions.items()},
                     rationale=str(raw.get("rationale", ""))[:300])


def propose(manifest: Manifest, *, trial: int, profile: dict[str, Any], purpose: str,
            finished: list[tuple[dict[str, Any], float | None]], history: list[dict[str, Any]],
            space: SearchSpace, chat_model: BaseChatModel | None = None,
            seed: int = 0, prompt: str | None = None,
            ) -> tuple[Proposal, dict[str, Any], list[Rejection]]:
    """The next validated proposal, its validated values and any rejected ones before it."""
    rejections: list[Rejection] = []
    if chat_model is not None:
        base = search_proposal(manifest, finished, space, trial=trial, seed=seed).config
        try:
            proposal = llm_proposal(manifest, chat_model, context(manifest, profile, purpose,
                                                                  history, space), base,
                                    prompt)
            return proposal, validate(proposal.text, manifest), rejections
        except CodeRejected as exc:
            rejections.append(Rejection(source="llm", reasons=exc.reasons))
        except Exception as exc:  # noqa: BLE001 - server down, timed out, or nonsense: the search proposes
            rejections.append(Rejection(source="llm", reasons=[f"no usable answer: {exc}"]))
    proposal = search_proposal(manifest, finished, space, trial=trial, seed=seed)
    return proposal, validate(proposal.text, manifest), rejections


# What the shipped template can train, and the words that ask for it. A request is trainable when
# it names the task (classify, recognise, ...) and an image-like input; checked only after the
# planner found no registered model, so these words never compete with the manuals.
_TASK_WORDS = re.compile(
    r"\b(classif\w*|categori[sz]\w*|recogni[sz]\w*|identif\w*|label\w*|sort\w*|which (shape|digit|"
    r"object|class)\w*|what (shape|digit|object)\w*|train\w*|classer|classifi\w*|reconna\w*|"
    r"klassifi\w*|erkenn\w*|clasific\w*|reconoc\w*)\b", re.IGNORECASE)
_IMAGE_WORDS = re.compile(
    r"\b(photo\w*|image\w*|picture\w*|pic|pics|shape\w*|digit\w*|handwrit\w*|camera|snapshot\w*|"
    r"bild\w*|foto\w*|imagen\w*)\b", re.IGNORECASE)


# Adapting the language model to people's own text: federated fine-tuning (no template code).
_ADAPT_WORDS = re.compile(
    r"\b(adapt\w*|train\w*|fine[- ]?tun\w*|personali[sz]\w*|customi[sz]\w*|tailor\w*|teach\w*|"
    r"tune\w*|learn\w* (from|our|my)|anpass\w*|adapter|adaptar|personnalis\w*)\b", re.IGNORECASE)
_LM_WORDS = re.compile(
    r"\b(assistant|language model|llm|chatbot|chat bot|smollm\w*|messages?|texts?|writing|"
    r"wording|replies|emails?|notes|chats?|autocomplete|sprachmodell|modelo de lenguaje)\b",
    re.IGNORECASE)
LANGUAGE_ADAPTATION = "language model adaptation"


def trainable_task(request: str) -> str | None:
    """The task a request asks to train ("image classification": the template; "language model
    adaptation": federated fine-tuning of the assistant's language model), or None."""
    if _TASK_WORDS.search(request) and _IMAGE_WORDS.search(request):
        return "image classification"
    if _ADAPT_WORDS.search(request) and _LM_WORDS.search(request):
        return LANGUAGE_ADAPTATION
    return None
