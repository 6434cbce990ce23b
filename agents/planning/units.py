"""Retrieval units: what the planner embeds and retrieves from a device manual.

Per model its task, name, description, the outputs it does not also consume and request-like
questions about each; the manual's passages and sentences, attributed to a model by name, by the
paragraph that names it, or by similarity to the model's own facets; and 'limit' units for what a
manual says cannot be done. `build_units` is what the knowledge store is given when manuals are
added (the store stores and retrieves; how a manual is cut into units is the planner's business).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
from edgeai.agents.planning.words import LIMIT_NEGATION, QUERY_TEMPLATES
from edgeai.knowledge.manuals import (
    Manual,
    ModelEntry,
    humanize,
    manual_sections,
    split_passages,
)


def named_models(text: str, models: list[ModelEntry]) -> list[str]:
    low = text.lower()
    return [
        m.name
        for m in models
        if m.name.lower() in low or humanize(m.name).lower() in low or m.task.lower() in low
    ]


def _transforms(out: str, inputs: list[str]) -> bool:
    """True when an output is a form of one of the model's inputs (image -> image, text ->
    translated_text): questions about it ("what is my translated text?") would match every
    request about the input ("read the text") rather than the transformation."""
    words = set(humanize(out).lower().split())
    return any(set(humanize(i).lower().split()) <= words for i in inputs)


def limit_fragments(sentence: str) -> list[str]:
    """The capabilities a 'cannot do' sentence denies, one per comma-separated part.

    Clauses (split at ';' and ':') without a negation say what the device does, not what it
    lacks, and are skipped; so are the parts before the first negation ("It detects people,
    not who they are" denies only "who they are").
    """
    out: list[str] = []
    for clause in re.split(r"[;:]", sentence):
        neg = LIMIT_NEGATION.search(clause)
        if not neg:
            continue
        parts = [p.strip(" .()") for p in re.split(r"[,()]", clause)]
        start = 0
        for i, part in enumerate(parts):
            if LIMIT_NEGATION.search(part):
                start = i
                break
        parts = [re.sub(r"^(and|or|nor)\s+", "", p, flags=re.IGNORECASE) for p in parts[start:]]
        out.extend(p for p in parts if len(p.split()) >= 2)
    return out


def retrieval_units(manual: Manual) -> list[tuple[str, str, str]]:
    """(model or '', kind, text) units of one manual: model facets, passages, sentences, limits.

    Per model: its task, name, description, the outputs it does not also consume, and
    request-like questions about each (QUERY_TEMPLATES; kind 'derived_query' when the output is a
    form of an input, like translated_text from text). A passage or sentence naming exactly one
    model belongs to it, and so does a sentence in a paragraph naming exactly one model; the
    others are left to the device ('') and attributed later by similarity (see
    attribute). Negated sentences become 'limit' units, whole and split into
    their comma-separated capabilities.
    """
    entry = manual.entry
    units: list[tuple[str, str, str]] = []
    for m in entry.models:
        units.append((m.name, "task", m.task))
        units.append((m.name, "name", humanize(m.name)))
        units.append((m.name, "description", m.description))
        new_outputs = [o for o in m.outputs if o not in m.inputs]
        if new_outputs:  # "estimates image" says nothing about an image -> image model
            units.append(
                (m.name, "outputs", "estimates " + ", ".join(humanize(o) for o in new_outputs))
            )
        for out in m.outputs:
            if out in m.inputs:  # a transformer (image -> image): "what is my image?" asks nothing
                continue
            # a form of an input (text -> translated text): weaker evidence ('derived_query')
            kind = "derived_query" if _transforms(out, m.inputs) else "query"
            units.extend((m.name, kind, t.format(out=humanize(out))) for t in QUERY_TEMPLATES)
    for passage in split_passages(manual.body):
        owners = named_models(passage, entry.models)
        units.append((owners[0] if len(owners) == 1 else "", "passage", passage))
    several = len(entry.models) > 1
    for headings, paragraph, sentences in manual_sections(manual.body):
        # a paragraph that names exactly one model ("**ocr-text-reader** finds text ...") is
        # about that model: its other sentences ("It handles street signs ...") are too
        para_owners = named_models(paragraph, entry.models) if several else []
        # the innermost heading that names exactly one model: the paragraph is in its section
        section = next((o for h in reversed(headings)
                        if len(o := named_models(h, entry.models)) == 1), []) if several else []
        for sentence in sentences:
            limits = limit_fragments(sentence) if len(sentence.split()) >= 4 else []
            if limits:
                # what the manual says the device or a model can NOT do: evidence against near
                # misses, as the whole sentence and as each denied capability. A limit in one
                # model's own sentence, paragraph or section is that model's (another model of
                # the device may do exactly that); one in the general text is the device's ('')
                owners = (named_models(sentence, entry.models) if several else []) or (
                    para_owners if len(para_owners) == 1 else section)
                owner = owners[0] if len(owners) == 1 else ""
                units.append((owner, "limit", sentence))
                units.extend((owner, "limit", frag) for frag in limits)
                continue
            owners = named_models(sentence, entry.models) or para_owners or section
            units.append((owners[0] if len(owners) == 1 else "", "sentence", sentence))
    return list(dict.fromkeys(units))


def attribute(
    metas: list[dict], emb: np.ndarray, margin: float = 0.05, floor: float = 0.25
) -> None:
    """Give a device-level sentence to the model of that device it is clearly about.

    "Asking how many guests appear in a party shot" names no model, but is nearest to the
    VQA model's own description; a sentence close to no model (or to several) stays with
    the device. Runs once at add time, on the English encoder.
    """
    facets: dict[str, list[int]] = {}
    for i, meta in enumerate(metas):
        if meta["model"] and meta["kind"] in ("task", "description", "outputs"):
            facets.setdefault(meta["model"], []).append(i)
    by_device: dict[str, list[str]] = {}
    for meta in metas:
        if meta["model"] and meta["model"] not in by_device.get(meta["device"], []):
            by_device.setdefault(meta["device"], []).append(meta["model"])
    for i, meta in enumerate(metas):
        if meta["model"] or meta["kind"] != "sentence":
            continue
        models = by_device.get(meta["device"], [])
        if not models:
            continue
        sims = [float(np.max(emb[facets[m]] @ emb[i])) for m in models]
        order = np.argsort(sims)[::-1]
        best = sims[order[0]]
        second = sims[order[1]] if len(models) > 1 else -1.0
        if best >= floor and best - second >= margin:
            meta["model"] = models[order[0]]
            meta["attributed"] = True


def build_units(manuals: list[Manual], embed: Callable[[str, list[str]], np.ndarray]) -> list[dict]:
    """The units of every manual, in order, as {device, model, kind, text} (plus `attributed`
    where a device-level sentence was given to a model by similarity on the English encoder)."""
    metas = [
        {"device": manual.entry.device, "model": model, "kind": kind, "text": text}
        for manual in manuals
        for model, kind, text in retrieval_units(manual)
    ]
    if metas:
        attribute(metas, embed("minilm", [m["text"] for m in metas]))
    return metas
