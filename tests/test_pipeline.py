"""FRSPipeline: the "frs-certified-classification" task of transformers.pipeline."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, pipeline
from transformers.pipelines import check_task
from transformers.pipelines.pt_utils import KeyDataset

import frs_hf
from frs_hf import FRSConfig, FRSPipeline, SmoothedModelForSequenceClassification
from frs_hf.config import unflatten
from frs_hf.pipeline import TASK, text_index

CONFIG = FRSConfig(n0=10, n=50, seed=3, omega_low=0.3, sequential=False)
TEXTS = [
    "a gripping , beautifully acted film",
    "dull and tedious",
    "the plot is a mess",
    "one of the best movies of the year",
    "i wanted my money back",
    "a warm , funny and wise little picture",
]
FIELDS = {
    "label",
    "score",
    "certified",
    "abstained",
    "fallback",
    "p_lower",
    "radius",
    "area_radius",
    "vulnerable_spans",
    "num_copies",
    "num_forwards",
    "seed",
    "index",
}


@pytest.fixture(scope="module")
def saved_path(tiny_sentiment_model, tokenizer, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("frs-tiny")
    SmoothedModelForSequenceClassification.from_model(tiny_sentiment_model, tokenizer, CONFIG).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def certifier(saved_path) -> FRSPipeline:
    return pipeline(TASK, model=saved_path)


def test_task_is_registered_by_import():
    _, targeted, _ = check_task(TASK)
    assert targeted["impl"] is FRSPipeline
    assert targeted["pt"] == (AutoModelForSequenceClassification,)
    assert targeted["type"] == "text"
    assert "FRSPipeline" in frs_hf.__all__


def test_no_default_model():
    with pytest.raises(RuntimeError, match="no default model"):
        pipeline(TASK)


def test_output_fields_come_from_certify(certifier):
    outputs = certifier(TEXTS)
    assert any(out["certified"] for out in outputs)
    for text, out in zip(TEXTS, outputs, strict=True):
        assert set(out) == FIELDS
        reference = certifier.smoothed.certify(text, indices=[text_index(text)])
        assert out["certified"] is (not out["abstained"]) is (out["radius"] is not None)
        assert out["certified"] is (out["p_lower"] > 0.5)  # two labels: p_upper = 1 - p_lower
        assert out["p_lower"] == reference.p_lower and out["radius"] == reference.radius
        assert out["label"] == reference.label_name
        if out["certified"]:
            assert isinstance(out["label"], str) and isinstance(out["radius"], int) and out["radius"] >= 0
            assert out["score"] == reference.counts[reference.label] / CONFIG.n
        assert out["area_radius"] is None and out["vulnerable_spans"] == []  # no fuzzing, no area
        assert out["num_copies"] == CONFIG.n0 + CONFIG.n
        assert out["num_forwards"] == reference.num_forwards > 0


def test_abstention(certifier):
    # 10 of 10 votes bound p at 1e-4 ** (1 / 10) < 0.5: every text abstains.
    out = certifier(TEXTS[0], n0=5, n=10, alpha=1e-4, top_k=None)
    assert out["abstained"] and not out["certified"]
    assert out["label"] is out["score"] is out["radius"] is out["area_radius"] is None
    assert isinstance(out["p_lower"], float) and out["p_lower"] <= 0.5
    assert sum(s["score"] for s in out["scores"]) == pytest.approx(1.0)


def test_fallback_answers_an_abstention_without_a_certificate(certifier):
    out = certifier(TEXTS[0], n0=5, n=10, alpha=1e-4, fallback=True)
    reference = certifier.smoothed.certify(TEXTS[0], n0=5, n=10, alpha=1e-4, fallback=True)
    assert out["fallback"] and not out["abstained"] and not out["certified"]
    assert out["label"] == reference.label_name is not None
    assert out["score"] is out["radius"] is None  # the base model's answer, not the vote's
    assert not certifier(TEXTS[0])["fallback"]


def test_same_certificate_alone_in_a_list_and_in_a_dataset(certifier):
    alone = [certifier(text) for text in TEXTS]
    assert certifier(TEXTS) == alone
    assert certifier(TEXTS[::-1], batch_size=4)[::-1] == alone
    dataset = Dataset.from_dict({"text": TEXTS})
    for batch_size in (1, 4):
        assert list(certifier(KeyDataset(dataset, "text"), batch_size=batch_size)) == alone


def test_without_a_seed_each_call_draws_fresh_randomness(saved_path):
    """The default: a text's draws depend neither on the text (no CRC key an attacker could search
    whitespace variants for) nor on anything public; the output records what was drawn."""
    fresh = pipeline(TASK, model=saved_path, seed=None)
    assert fresh.frs_config.seed is None
    outputs = [fresh("cf the plot good"), fresh("cf the plot good"), fresh("cf  the plot good")]
    assert len({out["seed"] for out in outputs}) == 3
    replay = fresh.smoothed.certify("cf the plot good", seed=outputs[0]["seed"], indices=[outputs[0]["index"]])
    assert (replay.p_lower, replay.radius) == (outputs[0]["p_lower"], outputs[0]["radius"])


def test_serving_from_a_thread_pool_matches_sequential_calls(saved_path):
    """One pipeline shared by worker threads (the serving case), with weight noise on."""
    from concurrent.futures import ThreadPoolExecutor

    server = pipeline(TASK, model=saved_path, weight_noise_sigma=0.05, weight_noise_draws=3)
    before = {k: v.clone() for k, v in server.model.state_dict().items()}
    texts = [f"{t} {'!' * i}" for i, t in enumerate(TEXTS * 2)]
    expected = [server(t) for t in texts]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(server, texts)) == expected
    assert all(torch.equal(v, before[k]) for k, v in server.model.state_dict().items())


def test_a_batch_is_one_certify_call(tiny_sentiment_model, tokenizer, monkeypatch):
    pipe = pipeline(TASK, model=tiny_sentiment_model, tokenizer=tokenizer, frs_config=CONFIG)
    sizes = []
    certify = pipe.smoothed.certify

    def spy(texts, **kwargs):
        sizes.append(len(texts))
        return certify(texts, **kwargs)

    monkeypatch.setattr(pipe.smoothed, "certify", spy)
    pipe(TEXTS, batch_size=4)
    assert sizes == [4, 2]


def test_model_object_matches_path(certifier, tiny_sentiment_model, tokenizer):
    pipe = pipeline(TASK, model=tiny_sentiment_model, tokenizer=tokenizer, frs_config=CONFIG)
    assert pipe(TEXTS[:3]) == certifier(TEXTS[:3])


def test_call_time_parameters(certifier):
    text = TEXTS[0]
    assert certifier(text, n0=5, n=30)["num_copies"] == 35
    reference = certifier.smoothed.certify(text, indices=[text_index(text)], seed=11, n=80)
    out = certifier(text, seed=11, n=80)
    assert (out["label"], out["p_lower"]) == (reference.label_name, reference.p_lower)
    assert certifier(text, alpha=0.2)["p_lower"] > certifier(text, alpha=1e-6)["p_lower"]
    assert "scores" not in certifier(text)
    scores = certifier(text, top_k=None)["scores"]
    assert [s["label"] for s in scores] in (["LABEL_0", "LABEL_1"], ["LABEL_1", "LABEL_0"])
    assert scores[0]["score"] >= scores[1]["score"] and sum(s["score"] for s in scores) == pytest.approx(1.0)
    assert all((s["score"] * CONFIG.n).is_integer() for s in scores)
    assert certifier(text, top_k=1)["scores"] == scores[:1]
    assert certifier.frs_config == CONFIG  # calls never change the pipeline's settings


def test_fuzzing_forwards_are_counted(certifier):
    text = "the film cf was a bore , a long and dull bore"
    fuzz = dict(fuzzing=True, fuzzing_budget=8, fuzzing_min_kl=0.0)  # the pipeline takes flat names
    reference = certifier.smoothed.certify(text, indices=[text_index(text)], **unflatten(fuzz))
    out = certifier(text, **fuzz)
    assert reference.fuzzing_forwards > 0
    assert out["num_forwards"] == reference.num_forwards + reference.fuzzing_forwards
    assert out["vulnerable_spans"] == reference.area_spans
    for start, end, span in out["vulnerable_spans"]:
        assert text[start:end] == span


def test_settings_priority(saved_path):
    assert pipeline(TASK, model=saved_path).frs_config == CONFIG  # frs_config.json
    pipe = pipeline(TASK, model=saved_path, frs_config=FRSConfig(n0=4, n=16, sequential=False))
    assert pipe.frs_config == FRSConfig(n0=4, n=16, sequential=False)
    assert pipe(TEXTS[0])["num_copies"] == 20
    pipe = pipeline(TASK, model=saved_path, n=40, top_k=None)  # pipeline(...) kwargs: new defaults
    assert pipe.frs_config == CONFIG.replace(n=40)
    out = pipe(TEXTS[0])
    assert out["num_copies"] == 50 and len(out["scores"]) == 2
    assert pipe(TEXTS[0], n=20)["num_copies"] == 30


def test_packaged_minilm(minilm_path):
    pipe = pipeline(TASK, model=minilm_path, model_kwargs={"num_labels": 2}, n0=5, n=20, sequential=False)
    assert pipe.frs_config == FRSConfig(n0=5, n=20, sequential=False)  # no frs_config.json: the defaults
    for out in pipe(TEXTS[:2], top_k=None):
        assert set(out) == FIELDS | {"scores"}
        assert out["label"] in ("LABEL_0", "LABEL_1", None)
        assert out["num_copies"] == 25


def test_save_pretrained_loads_without_remote_code(certifier, tmp_path):
    certifier.save_pretrained(tmp_path)
    assert FRSConfig.from_pretrained(tmp_path) == CONFIG
    assert not (tmp_path / "pipeline.py").exists()
    assert "custom_pipelines" not in json.loads((tmp_path / "config.json").read_text())
    assert pipeline(TASK, model=str(tmp_path))(TEXTS[:2]) == certifier(TEXTS[:2])


def test_bad_inputs(certifier):
    with pytest.raises(ValueError, match="empty"):
        certifier("")
    with pytest.raises(ValueError, match="Text 1 is empty"):
        certifier(["a fine film", "   "])
    with pytest.raises(TypeError, match="not a string"):
        certifier(["a fine film", None])
    with pytest.raises(TypeError, match="takes a string"):
        certifier(3)
    with pytest.raises(ValueError, match="empty"):
        list(certifier(KeyDataset(Dataset.from_dict({"text": ["a fine film", " "]}), "text")))
    with pytest.raises(TypeError, match="unknown parameter"):
        certifier("a fine film", num_samples=10)
    with pytest.raises(ValueError, match="n0"):
        certifier("a fine film", n0=100)
    with pytest.raises(ValueError, match="top_k"):
        certifier("a fine film", top_k=0)
    with pytest.raises(ValueError, match="empty list"):
        certifier([])
