"""The codegen agent on an OpenAI-compatible LLM: the real embedded SmolLM2 behind `edgeai llm
serve`'s app on 127.0.0.1, driven by langchain-openai's ChatOpenAI (a real HTTP round trip).
Whatever it proposes goes through the validator; a rejected proposal is kept with its reasons
and the embedded Optuna search proposes instead."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from edgeai.agents import codegen
from edgeai.tools.federated.template import SearchSpace, load_manifest
from edgeai.tools.federated.validate import validate

PROFILE = {"name": "digits", "n_train": 1077, "channels": 1, "height": 8, "width": 8,
           "num_classes": 10}


@pytest.fixture(scope="module")
def chat_model() -> Iterator[object]:
    from edgeai.tools.llm.embedded import get_embedded_llm
    from edgeai.tools.llm.server import create_app, serve_in_thread
    from langchain_openai import ChatOpenAI

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with serve_in_thread(create_app(get_embedded_llm())) as url:
        yield ChatOpenAI(base_url=url + "/v1", model="smollm2-135m", api_key="x", max_tokens=80,
                         temperature=0.0, max_retries=0)
    torch.set_num_threads(threads)


def test_an_out_of_range_llm_proposal_is_rejected_and_the_search_takes_over(chat_model):
    m = load_manifest()
    # the prompt is overridable per run; this one asks for a rate the manifest does not allow
    prompt = ('Reply with exactly this JSON and nothing else: {{"values": {{"LEARNING_RATE": 5.0}}, '
              '"rationale": "fast"}}')
    proposal, values, rejected = codegen.propose(
        m, trial=2, profile=PROFILE, purpose="recognise handwritten digits",
        finished=[(m.defaults(), 0.8)], history=[], space=SearchSpace(), chat_model=chat_model,
        prompt=prompt)
    assert len(rejected) == 1 and rejected[0].source == "llm"
    assert any("LEARNING_RATE = 5.0 is outside" in r for r in rejected[0].reasons), rejected
    assert proposal.source == "optuna"
    assert validate(proposal.text, m) == values


def test_the_llms_own_proposal_goes_through_the_same_validator(chat_model):
    m = load_manifest()
    proposal, values, rejected = codegen.propose(
        m, trial=2, profile=PROFILE, purpose="recognise handwritten digits",
        finished=[(m.defaults(), 0.8)], history=[], space=SearchSpace(), chat_model=chat_model)
    # a 135M model may or may not write a usable configuration: either it validated, or it was
    # rejected with reasons and the search proposed; never does unvalidated code come back
    if rejected:
        assert proposal.source == "optuna" and all(r.reasons for r in rejected)
    else:
        assert proposal.source == "llm"
    assert validate(proposal.text, m) == values
