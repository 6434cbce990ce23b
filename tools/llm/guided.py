"""Guided (constrained) JSON decoding: walk a JSON Schema, force its fixed parts, let the model fill in the rest.

The embedded SmolLM2 cannot write valid JSON, let alone pick ids from a list, by free generation. As
vLLM's and llama.cpp's servers do for `response_format={"type": "json_schema"}`, the decoder here only
lets the model decide what the schema leaves open, and always within what the schema allows:

- punctuation and property names are forced (``{"subtasks": [``);
- enums, consts, booleans, the branch of an ``anyOf`` and the end of an array are *choices*: each option's
  text is scored by the model's log-likelihood and the most likely one wins;
- strings, integers and numbers are *generated* token by token with the vocabulary masked to what keeps
  the value valid (no quotes or backslashes inside strings, digits only in numbers), with length caps.

So the output always parses and validates against the (supported part of) the schema. Keywords that
cannot be enforced this way (``pattern``, ``format``, ...) are refused up front with
:class:`UnsupportedSchemaError` rather than silently producing output that may not validate.

Text is fed to the model lazily: forced text waits in ``pending`` until the model must decide, and is then
tokenized together with the option being scored, so token boundaries look like the ones the model saw in
training (``"]`` and ``",`` are single tokens in SmolLM2's vocabulary).
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from edgeai.errors import EdgeAIError, UserInputError

# Keywords that constrain values in ways the decoder cannot enforce; a schema using them is refused.
UNSUPPORTED_KEYWORDS = frozenset(
    {
        "pattern",
        "format",
        "multipleOf",
        "patternProperties",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)
DIGITS = tuple("0123456789")
NUMBER_END_CHARS = frozenset(",}] \n\r\t")
JsonSchema = dict[str, Any] | bool


class UnsupportedSchemaError(UserInputError):
    """The JSON Schema uses a keyword or shape that guided decoding cannot enforce."""


class GenerationCancelled(EdgeAIError):
    """The consumer went away (e.g. an HTTP client disconnected) and asked decoding to stop."""


class ContextOverflowError(UserInputError):
    """Prompt plus output would not fit the model's context window."""


@dataclass(frozen=True)
class GuidedOptions:
    """Limits that keep a guided generation finite; the schema's own limits win where tighter."""

    max_tokens: int = 1024
    """Token budget; past it the decoder closes every open value as soon as the schema allows."""
    max_string_chars: int = 200
    """Cap on a generated string without `maxLength` (small models tend to ramble or loop)."""
    max_array_items: int = 32
    """Cap on an array without `maxItems`."""
    max_object_properties: int = 8
    """Cap on a free-form object (no `properties`) without `maxProperties`."""
    max_digits: int = 12
    """Cap on the digits of a generated integer part (and of a fraction)."""
    max_depth: int = 24
    """Nesting depth past which arrays and free objects close and free values become scalars."""
    temperature: float = 0.0
    """0 = greedy; else generated tokens (strings, numbers) are sampled. Choices are always argmax."""
    top_p: float = 1.0
    seed: int | None = None


# --------------------------------------------------------------------------- vocabulary


class VocabIndex:
    """Per-tokenizer masks over the vocabulary: which tokens may appear inside a string, a number, ..."""

    def __init__(self, tokenizer: Any, vocab_size: int | None = None) -> None:
        self.tokenizer = tokenizer
        special = set(tokenizer.all_special_ids)
        texts = [
            "" if i in special else tokenizer.decode([i], clean_up_tokenization_spaces=False)
            for i in range(len(tokenizer))
        ]
        # The model's output layer may be padded past the tokenizer; those ids are never allowed.
        texts += [""] * max(0, (vocab_size or 0) - len(texts))
        self.texts: list[str] = texts

        def mask(pred: Callable[[str], bool]) -> torch.Tensor:
            return torch.tensor([bool(t) and pred(t) for t in texts], dtype=torch.bool)

        self.string_safe = mask(
            lambda t: (
                '"' not in t
                and "\\" not in t
                and "\ufffd" not in t
                and all(ord(c) >= 0x20 and c != "\x7f" for c in t)
            )
        )
        self.quote_start = mask(lambda t: t.startswith('"'))
        self.digits = mask(lambda t: t.isascii() and t.isdigit())
        self.minus = mask(lambda t: t == "-")
        self.dot = mask(lambda t: t == ".")
        self.number_end = mask(lambda t: t[0] in NUMBER_END_CHARS)
        self.lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)
        self._prefix_cache: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    def starting_with(self, prefix: str) -> torch.Tensor:
        """Ids of the tokens whose text starts with `prefix` (the ways the model can begin that text)."""
        with self._lock:
            ids = self._prefix_cache.get(prefix)
            if ids is None:
                ids = torch.tensor(
                    [i for i, t in enumerate(self.texts) if t.startswith(prefix)], dtype=torch.long
                )
                if len(self._prefix_cache) < 4096:
                    self._prefix_cache[prefix] = ids
            return ids


# --------------------------------------------------------------------------- model cursor


@functools.cache
def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def _crop(cache: Any, n_remove: int) -> None:
    """Drop the last `n_remove` positions of a transformers DynamicCache (v5: negative count; v4: length)."""
    if n_remove <= 0:
        return
    if _transformers_major() >= 5:
        cache.crop(-n_remove)
    else:
        cache.crop(cache.get_seq_length() - n_remove)


class LMCursor:
    """One sequence in a causal LM with a KV cache: commit tokens, score continuations, sample.

    `last_logprobs` always holds the next-token log-probabilities after everything committed so far.
    Scoring feeds candidate tokens and then rolls the cache back, so choices cost a forward pass over
    the few tokens of each option, never over the prompt again.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        vocab: VocabIndex,
        prompt_ids: Sequence[int],
        *,
        context_window: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        from transformers import DynamicCache

        self.model, self.tokenizer, self.vocab = model, tokenizer, vocab
        self.context_window = context_window
        self.temperature, self.top_p = temperature, top_p
        self.generator = torch.Generator().manual_seed(
            seed if seed is not None else int.from_bytes(os.urandom(4), "little")
        )
        self.cancel = cancel
        self.cache = DynamicCache()
        self.prompt_tokens = len(prompt_ids)
        self.n_generated = 0
        self.last_logprobs = torch.empty(0)
        self._feed(list(prompt_ids))

    @property
    def length(self) -> int:
        return self.prompt_tokens + self.n_generated

    def _check(self, extra: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise GenerationCancelled("generation cancelled by the caller")
        if self.length + extra > self.context_window:
            raise ContextOverflowError(
                f"prompt ({self.prompt_tokens} tokens) plus output would exceed the model's "
                f"context window of {self.context_window} tokens; shorten the prompt or max_tokens"
            )

    @torch.inference_mode()
    def _forward(self, ids: Sequence[int], keep_all: bool) -> torch.Tensor:
        """Run `ids` through the model on top of the cache; log-probs (len, V) or (1, V) of the last."""
        out = self.model(
            input_ids=torch.tensor([list(ids)], dtype=torch.long),
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=0 if keep_all else 1,
        )
        return torch.log_softmax(out.logits[0].float(), dim=-1)

    def _feed(self, ids: list[int]) -> None:
        if not ids:
            return
        # The prompt is already counted in `length`; later feeds add to it.
        self._check(len(ids) if self.last_logprobs.numel() else 0)
        self.last_logprobs = self._forward(ids, keep_all=False)[-1]

    def commit(self, ids: Sequence[int]) -> None:
        """Append tokens to the sequence for good (they count against the output budget)."""
        ids = list(ids)
        if ids:
            self._feed(ids)
            self.n_generated += len(ids)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), clean_up_tokenization_spaces=False)

    def score_suffixes(self, suffixes: Sequence[Sequence[int]]) -> list[float]:
        """Log-likelihood of each token sequence as the continuation of the committed sequence.

        The last token of each suffix is scored by the mass of every token that *starts with* its text
        (``]`` also counts ``],`` and ``]}``), so an option is the probability that the text begins
        that way, whichever token the model would use to close it. Suffixes sharing all but their last
        token share one forward pass.
        """
        self._check(max(len(s) for s in suffixes))
        by_prefix: dict[tuple[int, ...], torch.Tensor] = {}
        for s in suffixes:
            head = tuple(s[:-1])
            if head and head not in by_prefix:
                by_prefix[head] = self._forward(head, keep_all=True)
                _crop(self.cache, len(head))
        scores = []
        for s in suffixes:
            head = tuple(s[:-1])
            rows = [self.last_logprobs] + ([*by_prefix[head]] if head else [])
            total = sum(float(rows[j][s[j]]) for j in range(len(s) - 1))
            last_ids = (
                self.vocab.starting_with(self.vocab.texts[s[-1]])
                if self.vocab.texts[s[-1]]
                else None
            )
            if last_ids is None or last_ids.numel() == 0:
                total += float(rows[-1][s[-1]])
            else:
                total += float(torch.logsumexp(rows[-1][last_ids], dim=0))
            scores.append(total)
        return scores

    def sample(self, allowed: torch.Tensor) -> int:
        """Pick the next token among `allowed` (bool mask over the vocabulary)."""
        logits = self.last_logprobs.masked_fill(~allowed, float("-inf"))
        if not torch.isfinite(logits).any():
            raise EdgeAIError("guided decoding reached a state where no token is allowed")
        if self.temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_probs, dim=0) - sorted_probs < self.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
        return int(torch.multinomial(probs, 1, generator=self.generator))


# --------------------------------------------------------------------------- schema helpers


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


def _common_prefix(items: Sequence[Sequence[Any]]) -> int:
    n = min(len(x) for x in items)
    for i in range(n):
        if any(x[i] != items[0][i] for x in items[1:]):
            return i
    return n


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass
class _Schema:
    """The root schema, for resolving `$ref`s into `$defs` / `definitions`."""

    root: JsonSchema
    seen: set[str] = field(default_factory=set)

    def resolve(self, s: JsonSchema) -> JsonSchema:
        """Inline `$ref` and single-branch `allOf` (pydantic's way to attach a description to a ref)."""
        for _ in range(64):
            if not isinstance(s, dict):
                return s
            if "$ref" in s:
                target = self._lookup(s["$ref"])
                extra = {k: v for k, v in s.items() if k != "$ref"}
                s = {**target, **extra} if isinstance(target, dict) else target
                continue
            if "allOf" in s:
                merged: dict[str, Any] = {k: v for k, v in s.items() if k != "allOf"}
                for part in s["allOf"]:
                    part = self.resolve(part)
                    if part is False:
                        raise UnsupportedSchemaError(
                            "'allOf' with a false branch can never validate"
                        )
                    if part is True:
                        continue
                    for key, value in part.items():
                        if key == "properties":
                            merged["properties"] = {**merged.get("properties", {}), **value}
                        elif key == "required":
                            merged["required"] = [*merged.get("required", []), *value]
                        elif key in merged and merged[key] != value:
                            raise UnsupportedSchemaError(f"'allOf' branches disagree on '{key}'")
                        else:
                            merged[key] = value
                s = merged
                continue
            return s
        raise UnsupportedSchemaError("'$ref' chain too long (a reference cycle?)")

    def _lookup(self, ref: str) -> JsonSchema:
        if not ref.startswith("#"):
            raise UnsupportedSchemaError(f"only local '$ref's are supported, got '{ref}'")
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise UnsupportedSchemaError(f"'$ref' '{ref}' does not resolve inside the schema")
            node = node[part]
        if not isinstance(node, dict | bool):
            raise UnsupportedSchemaError(f"'$ref' '{ref}' does not point at a schema")
        return node


def _branches(s: dict[str, Any]) -> list[JsonSchema] | None:
    """The alternatives of a schema: `anyOf`/`oneOf`, or one per entry of a list-valued `type`."""
    for key in ("anyOf", "oneOf"):
        if key in s:
            base = {k: v for k, v in s.items() if k != key}
            return [{**base, **b} if isinstance(b, dict) and base else b for b in s[key]]
    if isinstance(s.get("type"), list):
        return [{**s, "type": t} for t in s["type"]]
    return None


def _kind(s: dict[str, Any]) -> str:
    t = s.get("type")
    if t is not None:
        return str(t)
    if "properties" in s or "additionalProperties" in s or "required" in s:
        return "object"
    if "items" in s or "prefixItems" in s:
        return "array"
    return "any"


def check_schema(schema: JsonSchema) -> None:
    """Refuse, before any decoding, a schema the decoder cannot enforce (names the keyword and where)."""
    ctx = _Schema(schema)

    def walk(s: JsonSchema, where: str, depth: int) -> None:
        if depth > 64:
            return  # recursive schemas: the shapes below were already checked once
        if isinstance(s, bool):
            if s is False:
                raise UnsupportedSchemaError(f"{where}: schema 'false' can never validate")
            return
        if not isinstance(s, dict):
            raise UnsupportedSchemaError(f"{where}: a schema must be an object or a boolean")
        bad = UNSUPPORTED_KEYWORDS & s.keys()
        if bad:
            raise UnsupportedSchemaError(
                f"{where}: keyword '{min(bad)}' cannot be enforced by guided decoding"
            )
        if s.get("uniqueItems"):
            raise UnsupportedSchemaError(f"{where}: keyword 'uniqueItems' cannot be enforced")
        if "$ref" in s and s["$ref"] in ctx.seen:
            return
        if "$ref" in s:
            ctx.seen.add(s["$ref"])
        r = ctx.resolve(s)
        if r is not s:
            walk(r, where, depth + 1)
            return
        if "enum" in s and not s["enum"]:
            raise UnsupportedSchemaError(f"{where}: 'enum' is empty")
        branches = _branches(s)
        if branches is not None:
            if not branches:
                raise UnsupportedSchemaError(f"{where}: 'anyOf' is empty")
            for i, b in enumerate(branches):
                walk(b, f"{where}/anyOf/{i}", depth + 1)
            return
        if "const" in s or "enum" in s:
            return
        kind = _kind(s)
        if kind not in {"object", "array", "string", "integer", "number", "boolean", "null", "any"}:
            raise UnsupportedSchemaError(f"{where}: unknown type '{kind}'")
        for name, sub in s.get("properties", {}).items():
            walk(sub, f"{where}/properties/{name}", depth + 1)
        if isinstance(s.get("additionalProperties"), dict):
            walk(s["additionalProperties"], f"{where}/additionalProperties", depth + 1)
        for i, sub in enumerate(s.get("prefixItems", [])):
            walk(sub, f"{where}/prefixItems/{i}", depth + 1)
        if "items" in s and s["items"] is not False:
            walk(s["items"], f"{where}/items", depth + 1)
        lo, hi = s.get("minLength", 0), s.get("maxLength")
        if hi is not None and lo > hi:
            raise UnsupportedSchemaError(f"{where}: 'minLength' exceeds 'maxLength'")
        lo, hi = s.get("minItems", 0), s.get("maxItems")
        if hi is not None and lo > hi:
            raise UnsupportedSchemaError(f"{where}: 'minItems' exceeds 'maxItems'")

    walk(schema, "#", 0)


# --------------------------------------------------------------------------- decoder


class GuidedDecoder:
    """Writes one JSON value that validates against `schema`, using the model for every open decision."""

    def __init__(
        self,
        cursor: LMCursor,
        schema: JsonSchema,
        options: GuidedOptions,
        on_text: Callable[[str], None] | None = None,
    ) -> None:
        check_schema(schema)
        self.cursor, self.schema, self.options = cursor, _Schema(schema), options
        self.on_text = on_text
        self.pending = ""  # forced text not yet fed to the model
        self.out: list[str] = []

    # -- text plumbing ----------------------------------------------------------------------

    @property
    def finishing(self) -> bool:
        """Out of budget: close everything as soon as the schema allows."""
        return self.cursor.n_generated >= self.options.max_tokens

    def _emit(self, text: str) -> None:
        if text:
            self.out.append(text)
            if self.on_text is not None:
                self.on_text(text)

    def force(self, text: str) -> None:
        """Text the schema fixes: it goes to the output now and to the model at the next decision."""
        self._emit(text)
        self.pending += text

    def flush(self) -> None:
        if self.pending:
            self.cursor.commit(self.cursor.encode(self.pending))
            self.pending = ""

    @cached_property
    def vocab(self) -> VocabIndex:
        return self.cursor.vocab

    def choose(self, options: Sequence[Sequence[str]], *, emit: bool) -> int:
        """Index of the most likely option; an option is a set of texts (its score: their total mass).

        With `emit`, each option is one text and the winner is written out; without, the choice only
        selects what comes next (an `anyOf` branch, another array item) and nothing is written.
        """
        if len(options) == 1:
            if emit:
                self.force(options[0][0])
            return 0
        flat = [(i, t) for i, texts in enumerate(options) for t in texts]
        encodings = [self.cursor.encode(self.pending + t) for _, t in flat]
        # Commit the tokens every option starts with, but only over text that is certain to come.
        certain = len(self.pending)
        if emit:
            certain += _common_prefix([t for _, t in flat])
        c = max(0, min(_common_prefix(encodings), min(len(e) for e in encodings) - 1))
        while c > 0:
            head = self.cursor.decode(encodings[0][:c])
            if len(head) <= certain and all((self.pending + t).startswith(head) for _, t in flat):
                break
            c -= 1
        consumed = len(self.cursor.decode(encodings[0][:c])) if c > 0 else 0
        self.cursor.commit(encodings[0][:c])
        scores = self.cursor.score_suffixes([e[c:] for e in encodings])
        per_option = [-math.inf] * len(options)
        for (i, _), score in zip(flat, scores, strict=True):
            per_option[i] = _logaddexp(per_option[i], score)
        win = max(range(len(options)), key=lambda i: per_option[i])
        if emit:
            text = options[win][0]
            self._emit(text)
            self.pending = (self.pending + text)[consumed:]
        else:
            self.pending = self.pending[consumed:]
        return win

    # -- schema walk ---------------------------------------------------------------------------

    def generate(self) -> str:
        """The whole JSON text (also streamed piece by piece through `on_text`)."""
        self.value(self.schema.root, 0)
        return "".join(self.out)

    def value(self, s: JsonSchema, depth: int) -> None:
        if depth > self.options.max_depth + 32:
            raise UnsupportedSchemaError(
                f"the schema forces nesting deeper than {depth} levels (a required recursive property?)"
            )
        s = self.schema.resolve(s)
        if s is True or s == {}:
            self.any_value(depth)
            return
        assert isinstance(s, dict)  # check_schema refused `false` and non-schemas
        if "const" in s:
            self.force(_dumps(s["const"]))
            return
        if "enum" in s:
            self.choose([[_dumps(v)] for v in s["enum"]], emit=True)
            return
        branches = _branches(s)
        if branches is not None:
            pick = self.choose([self.start_texts(b, detailed=True) for b in branches], emit=False)
            self.value(branches[pick], depth)
            return
        kind = _kind(s)
        if kind == "object":
            self.object(s, depth)
        elif kind == "array":
            self.array(s, depth)
        elif kind == "string":
            self.string(s.get("minLength", 0), s.get("maxLength"))
        elif kind in ("integer", "number"):
            self.number(s, integer=kind == "integer")
        elif kind == "boolean":
            self.choose([["true"], ["false"]], emit=True)
        elif kind == "null":
            self.force("null")
        else:
            self.any_value(depth)

    def start_texts(self, s: JsonSchema, *, detailed: bool) -> list[str]:
        """How a value of schema `s` can begin (scored to pick an `anyOf` branch or to open an item)."""
        s = self.schema.resolve(s)
        if s is True or s == {}:
            return ['"', "{", "[", "true", "false", "null", "-", *DIGITS]
        assert isinstance(s, dict)
        if "const" in s:
            text = _dumps(s["const"])
            return [text if detailed or not isinstance(s["const"], str) else '"']
        if "enum" in s:
            texts = [_dumps(v) if detailed or not isinstance(v, str) else '"' for v in s["enum"]]
            return list(dict.fromkeys(texts))
        branches = _branches(s)
        if branches is not None:
            texts = [t for b in branches for t in self.start_texts(b, detailed=detailed)]
            return list(dict.fromkeys(texts))
        kind = _kind(s)
        if kind in ("integer", "number"):
            low = s.get("minimum", s.get("exclusiveMinimum"))
            return [*DIGITS] if low is not None and low >= 0 else ["-", *DIGITS]
        return {
            "object": ["{"],
            "array": ["["],
            "string": ['"'],
            "boolean": ["true", "false"],
            "null": ["null"],
        }.get(kind, ['"', "{", "[", "true", "false", "null", "-", *DIGITS])

    def object(self, s: dict[str, Any], depth: int) -> None:
        self.force("{")
        properties: dict[str, JsonSchema] = dict(s.get("properties", {}))
        extra = s.get("additionalProperties", True)
        for name in s.get("required", []):  # required yet undeclared: typed by additionalProperties
            if name not in properties:
                if extra is False:
                    raise UnsupportedSchemaError(
                        f"property '{name}' is required but not allowed (additionalProperties: false)"
                    )
                properties[name] = extra
        if properties:
            # Every property is written, required or not: always valid, and the order stays fixed.
            for i, (name, sub) in enumerate(properties.items()):
                self.force((", " if i else "") + _dumps(name) + ": ")
                self.value(sub, depth + 1)
        else:
            if extra is not False:
                self.free_members(
                    extra,
                    depth,
                    s.get("minProperties", 0),
                    s.get("maxProperties", self.options.max_object_properties),
                )
        self.force("}")

    def free_members(self, value_schema: JsonSchema, depth: int, low: int, high: int) -> None:
        """Members of an object whose keys are not fixed: model-written keys, values per schema."""
        n = 0
        while n < high:
            if n >= low:
                if self.finishing or depth >= self.options.max_depth:
                    break
                more = ('"' if n == 0 else ', "',)
                if self.choose([["}"], more], emit=False) == 0:
                    break
            self.force(", " if n else "")
            self.string(1, 40)
            self.force(": ")
            self.value(value_schema, depth + 1)
            n += 1

    def array(self, s: dict[str, Any], depth: int) -> None:
        self.force("[")
        n = 0
        for sub in s.get("prefixItems", []):
            self.force(", " if n else "")
            self.value(sub, depth + 1)
            n += 1
        items = s.get("items", "prefixItems" not in s)
        if items is not False:
            low = s.get("minItems", 0)
            high = s.get("maxItems", n + self.options.max_array_items)
            starts = self.start_texts(items, detailed=False)
            while n < high:
                if n >= low:
                    if self.finishing or depth >= self.options.max_depth:
                        break
                    sep = ", " if n else ""
                    if self.choose([["]"], [sep + t for t in starts]], emit=False) == 0:
                        break
                self.force(", " if n else "")
                self.value(items, depth + 1)
                n += 1
        self.force("]")

    def string(self, low: int, high: int | None) -> None:
        """A string the model writes; it ends when the model would close the quote (or at the cap)."""
        cap = min(high, self.options.max_string_chars) if high is not None else None
        cap = self.options.max_string_chars if cap is None else max(cap, low)
        self.force('"')
        self.flush()
        v, size = self.vocab, 0
        while size < cap:
            if size >= low and self.finishing:
                break
            allowed = v.string_safe & (v.lengths <= cap - size)
            if size >= low:
                allowed = allowed | v.quote_start
            token = self.cursor.sample(allowed)
            if v.quote_start[token]:
                break
            self.cursor.commit([token])
            self._emit(v.texts[token])
            size += len(v.texts[token])
        self.force('"')

    def number(self, s: dict[str, Any], *, integer: bool) -> None:
        """Digits the model writes (sign, integer part, optional fraction), then clamped to the bounds."""
        low, high = s.get("minimum"), s.get("maximum")
        ex_low, ex_high = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
        if isinstance(ex_low, bool) or isinstance(ex_high, bool):  # draft-4 booleans
            ex_low = low if ex_low is True else None
            ex_high = high if ex_high is True else None
            low = None if ex_low is not None else low
            high = None if ex_high is not None else high
        self.flush()
        v, cur = self.vocab, self.cursor
        text, int_digits, frac_digits, in_frac = "", 0, 0, False
        allow_negative = (low is None or low < 0) and (ex_low is None or ex_low < 0)
        while True:
            has_digit = int_digits > 0 and (not in_frac or frac_digits > 0)
            if has_digit and self.finishing:
                break
            allowed = torch.zeros_like(v.digits)
            room = self.options.max_digits - (frac_digits if in_frac else int_digits)
            leading_zero = text in ("0", "-0")
            if room > 0 and not leading_zero:
                allowed |= v.digits & (v.lengths <= room)
            if text == "" and allow_negative:
                allowed |= v.minus
            if has_digit:
                allowed |= v.number_end
                if not integer and not in_frac:
                    allowed |= v.dot
            if not allowed.any():
                break
            token = cur.sample(allowed)
            if v.number_end[token]:
                break
            cur.commit([token])
            piece = v.texts[token]
            text += piece
            if piece == ".":
                in_frac = True
            elif piece != "-":
                if in_frac:
                    frac_digits += len(piece)
                else:
                    int_digits += len(piece)
        value: float | int = int(text) if integer else float(text)
        value = _clamp(value, low, high, ex_low, ex_high, integer)
        self._emit(_dumps(value))

    def any_value(self, depth: int) -> None:
        """A value of any type (schema `{}` or `true`); containers only above the depth cap."""
        kinds: list[tuple[str, list[str]]] = [
            ("string", ['"']),
            ("number", ["-", *DIGITS]),
            ("true", ["true"]),
            ("false", ["false"]),
            ("null", ["null"]),
        ]
        if depth < self.options.max_depth and not self.finishing:
            kinds += [("object", ["{"]), ("array", ["["])]
        kind = kinds[self.choose([texts for _, texts in kinds], emit=False)][0]
        if kind == "string":
            self.string(0, None)
        elif kind == "number":
            self.number({}, integer=False)
        elif kind in ("true", "false", "null"):
            self.force(kind)
        elif kind == "object":
            self.object({}, depth)
        else:
            self.array({}, depth)


def _clamp(
    value: float,
    low: float | None,
    high: float | None,
    ex_low: float | None,
    ex_high: float | None,
    integer: bool,
) -> float | int:
    """Bring a generated number inside the schema's bounds (the model is not told them)."""
    if integer:
        if ex_low is not None:
            low = max(low, math.floor(ex_low) + 1) if low is not None else math.floor(ex_low) + 1
        if ex_high is not None:
            high = min(high, math.ceil(ex_high) - 1) if high is not None else math.ceil(ex_high) - 1
        if low is not None and value < low:
            value = math.ceil(low)
        if high is not None and value > high:
            value = math.floor(high)
        return int(value)
    if low is not None and value < low:
        value = float(low)
    if high is not None and value > high:
        value = float(high)
    if ex_low is not None and value <= ex_low:
        value = math.nextafter(float(ex_low), math.inf)
    if ex_high is not None and value >= ex_high:
        value = math.nextafter(float(ex_high), -math.inf)
    return value


def json_object_schema() -> dict[str, Any]:
    """What `response_format={"type": "json_object"}` means: any JSON object."""
    return {"type": "object"}
