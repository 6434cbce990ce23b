"""Embedded planner on real chromadb stores built from the shipped healthcare and photo manuals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edgeai.agents.planning import EmbeddedPlanner, PlannerConfig
from edgeai.agents.planning.read import negated_phrases, split_clauses
from edgeai.agents.planning.units import limit_fragments, retrieval_units
from edgeai.errors import UserInputError
from edgeai.knowledge.manuals import parse_manual
from edgeai.knowledge.pools import SAMPLES_DIR as SAMPLES
from edgeai.knowledge.store import open_store


@pytest.fixture(scope="module")
def healthcare(healthcare_home: Path) -> EmbeddedPlanner:
    return EmbeddedPlanner(open_store(healthcare_home))


@pytest.fixture
def photo(photo_planner: EmbeddedPlanner) -> EmbeddedPlanner:
    return photo_planner


def test_chain_request_brings_its_producers_and_deps(healthcare: EmbeddedPlanner) -> None:
    plan = healthcare.plan("Work out my mood from my heartbeat and breathing.")
    assert set(plan.model_ids()) == {
        "heartbeat-acoustic",
        "respiration-acoustic",
        "mood-from-vitals",
    }
    assert plan.edges() == {
        ("heartbeat-acoustic", "mood-from-vitals"),
        ("respiration-acoustic", "mood-from-vitals"),
    }
    assert not plan.unsupported


def test_raw_quantity_takes_only_its_producer(healthcare: EmbeddedPlanner) -> None:
    assert plan_models(healthcare, "What's my heart rate right now?") == {"heartbeat-acoustic"}


def test_unsupported_request_gets_no_subtasks_and_a_reason(healthcare: EmbeddedPlanner) -> None:
    plan = healthcare.plan("Order more printer ink online.")
    assert plan.subtasks == []
    assert plan.unsupported and "no registered model" in plan.unsupported[0]


def test_translation_of_user_text_has_no_producer(photo: EmbeddedPlanner) -> None:
    # text the user supplies is not produced by OCR, captioning or VQA
    plan = photo.plan("Translate this into Spanish: The museum opens at nine.")
    assert set(plan.model_ids()) == {"text-translator"}
    assert plan.edges() == set()


def test_clauses_route_to_their_own_models(photo: EmbeddedPlanner) -> None:
    plan = photo.plan("Enhance this blurry photo first, then classify it.")
    assert set(plan.model_ids()) == {"photo-enhancer", "vit-image-classifier"}
    assert plan.edges() == {("photo-enhancer", "vit-image-classifier")}


def test_plans_name_only_stored_models(healthcare: EmbeddedPlanner, photo: EmbeddedPlanner) -> None:
    for planner, requests in (
        (
            healthcare,
            ["Monitor my emotions.", "Wie ist meine Laune heute?", "Lock the front door."],
        ),
        (photo, ["Describe this photo and classify it.", "照片里有几只猫？", "Write me a sonnet."]),
    ):
        owners = planner.index.store.owner_of()
        for request in requests:
            for sub in planner.plan(request).subtasks:
                assert owners[sub.model] == sub.device


@pytest.mark.parametrize("request_text", ["", "   ", None])
def test_empty_request_is_refused(healthcare: EmbeddedPlanner, request_text: str | None) -> None:
    with pytest.raises(UserInputError):
        healthcare.plan(request_text)  # type: ignore[arg-type]


def test_empty_store_says_add_manuals(tmp_path: Path) -> None:
    store = open_store(tmp_path, create=True)
    plan = EmbeddedPlanner(store, PlannerConfig()).plan("how is my mood?")
    assert plan.subtasks == [] and "no models" in plan.unsupported[0]


def test_alternatives_are_same_output_similar_task(
    healthcare: EmbeddedPlanner, photo: EmbeddedPlanner
) -> None:
    assert healthcare.index.alternatives["mood-from-apps"] == {"mood-from-vitals"}
    # captioning, VQA, OCR and transcription all return text but are different tasks
    assert photo.index.alternatives["blip-image-captioner"] == set()


def test_generated_units_and_limit_fragments() -> None:
    units = retrieval_units(
        parse_manual(SAMPLES / "healthcare" / "manuals" / "living-room-speaker.md")
    )
    assert ("heartbeat-acoustic", "query", "what is my heart rate bpm?") in units
    limits = {text for _, kind, text in units if kind == "limit"}
    assert "oxygen saturation" in limits
    # the affirmative part before a negation is not a limit
    assert limit_fragments("It detects people, not who they are.") == ["not who they are"]
    assert limit_fragments("It measures the pulse.") == []


def test_split_clauses_keeps_multi_part_requests_apart() -> None:
    assert split_clauses("Check my pulse and tell me who is at the door") == [
        "Check my pulse",
        "tell me who is at the door",
    ]
    assert split_clauses("heart rate + which apps am i using") == [
        "heart rate",
        "which apps am i using",
    ]
    assert split_clauses("pulse & breathing rate") == ["pulse", "breathing rate"]
    # a two-character Chinese word is a clause ("heart rate and breathing rate, measure both")
    assert split_clauses("心率和呼吸频率都测一下") == ["心率", "呼吸频率都测一下"]
    assert split_clauses("Do it y ya") == ["Do it"]


def plan_models(planner: EmbeddedPlanner, request: str) -> set[str]:
    return set(planner.plan(request).model_ids())


def test_alternatives_fuse_unless_one_chain_is_named(healthcare: EmbeddedPlanner) -> None:
    fused = healthcare.plan("How is my mood today?")
    assert set(fused.model_ids()) == {
        "heartbeat-acoustic",
        "respiration-acoustic",
        "mood-from-vitals",
        "traffic-app-usage",
        "mood-from-apps",
    }
    assert fused.combine and "fuse" in fused.combine
    # the evidence is named in one clause of a two-part request
    named = healthcare.plan(
        "Check my mood from my vital signs and let me know if someone is at the front door."
    )
    assert "mood-from-vitals" in named.model_ids()
    assert "mood-from-apps" not in named.model_ids()
    apps = healthcare.plan("Judging from the apps I've been using, what mood am I in?")
    assert set(apps.model_ids()) == {"traffic-app-usage", "mood-from-apps"}


def test_negated_phrases_are_cut_out_of_the_request() -> None:
    assert negated_phrases("Infer my mood from my body signals, not from my phone.") == (
        "Infer my mood from my body signals.",
        ["not from my phone"],
    )
    assert negated_phrases("Estimate my mood without my heart data") == (
        "Estimate my mood",
        ["without my heart data"],
    )
    # negating determiners, in English and in other languages
    assert negated_phrases("Just the vibration readings, no diagnosis.") == (
        "Just the vibration readings.",
        ["no diagnosis"],
    )
    assert negated_phrases("Ich brauche nur die Rohwerte, keine Prognose.")[1] == ["keine Prognose"]
    assert negated_phrases("Alleen het stuurgedrag graag, geen oordeel.")[1] == ["geen oordeel"]
    # a negated verb, a trailing "or not" and "without" + verb are not contrastive phrases
    for text in (
        "Is one of the cylinders not firing?",
        "Was the class into the lesson or not?",
        "Who left without paying?",
        "Has anyone gone down and not got back up?",
    ):
        assert negated_phrases(text) == (text, [])


def test_a_negated_chain_leaves_the_plan(healthcare: EmbeddedPlanner) -> None:
    vitals = {"heartbeat-acoustic", "respiration-acoustic", "mood-from-vitals"}
    apps = {"traffic-app-usage", "mood-from-apps"}
    assert (
        plan_models(healthcare, "Infer my mood from my body signals, not from my phone.") == vitals
    )
    assert plan_models(healthcare, "How am I feeling? Go by my apps, not my heartbeat.") == apps
    assert plan_models(healthcare, "Estimate my mood without my breathing and heart data.") == apps
    # without a negation the same request fuses both chains
    assert plan_models(healthcare, "How am I feeling?") == vitals | apps


def test_candidates_are_the_exact_nearest_units(healthcare: EmbeddedPlanner) -> None:
    # retrieval is exact over the stored units (chromadb's HNSW top-k is approximate and
    # changed from run to run), so the same request always gets the same plan
    index = healthcare.index
    rng = np.random.default_rng(0)
    for enc in ("minilm", "multilingual"):
        metas, emb = index.store.units(enc)
        for _ in range(20):
            q = rng.normal(size=emb.shape[1]).astype(np.float32)
            q /= np.linalg.norm(q)
            sims = emb @ q
            order = np.argsort(-sims, kind="stable")  # ties: in storage order
            for k in (1, 10, 60):
                want = {metas[i]["model"] for i in order[:k]} & set(index.models)
                assert index.candidates(enc, q, k) == want
    request = "How dangerous is the traffic around us? Should I be worried?"
    assert healthcare.plan(request).model_ids() == healthcare.plan(request).model_ids()


def test_alternatives_fuse_when_clauses_name_different_chains(healthcare: EmbeddedPlanner) -> None:
    # each clause names one chain's evidence: both chains were asked for, so both are fused
    both = plan_models(healthcare, "Combine my app usage and my vital signs to estimate my mood.")
    assert both == {
        "heartbeat-acoustic",
        "respiration-acoustic",
        "mood-from-vitals",
        "traffic-app-usage",
        "mood-from-apps",
    }


def test_mentioned_medium_grounds_the_input(photo: EmbeddedPlanner) -> None:
    # the translator reads text; the request says where that text comes from (a voice note),
    # so the model that reads audio feeds it instead of the user typing the text
    request = "I recorded a message in German; give me the English text."
    assert "audio" in photo.index.mentioned_types(request, photo.config.mention_sim)
    plan = photo.plan(request)
    assert plan.edges() == {("speech-transcriber", "text-translator")}
    # a producer needs every input it reads mentioned: no photo, no question -> no VQA
    assert plan_models(photo, "how do u say 'thank you for dinner' in japanese") == {
        "text-translator"
    }
    off = EmbeddedPlanner(photo.index.store, PlannerConfig(ground_media=False))
    assert set(off.plan(request).model_ids()) == {"text-translator"}


def test_what_no_manual_covers_is_refused_with_the_manual_sentence(photo: EmbeddedPlanner) -> None:
    # the edge server's manual: "None of these models ... works on video"; no model's own
    # units come near making a video, so the pool cannot do it, whatever a photo word matches
    plan = photo.plan("Erstelle ein Video aus diesen Fotos.")
    assert plan.subtasks == []
    assert "edge-server-rtx4090" in plan.unsupported[0] and "video" in plan.unsupported[0]
    # the classifier's manual says it "does not describe scenes in sentences", but the
    # captioner does: a limit that another model covers refuses nothing
    assert plan_models(photo, "What's going on in this picture? Describe the scene.") == {
        "blip-image-captioner"
    }
    off = EmbeddedPlanner(photo.index.store, PlannerConfig(pool_limit_margin=None))
    assert off.plan("Erstelle ein Video aus diesen Fotos.").subtasks != []


def test_a_manual_does_not_cover_what_it_denies_its_own_models(
    healthcare: EmbeddedPlanner,
) -> None:
    # the thermostat's "does not know the outdoor weather forecast" lies close to its own
    # indoor forecaster; only models on other devices can cover a device's limit
    index = healthcare.index
    texts = [m["text"] for m in index.limits["minilm"][0]]
    weather = texts.index("It does not know the outdoor weather forecast")
    assert index.limit_cover[weather] < healthcare.config.pool_limit_cover
    assert index._limit_cover(other_devices=False)[weather] > index.limit_cover[weather]
