"""The shared defense interface, the smoothing defenses (FRS, uniform deletion) and the registry by name."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import synthetic_reviews, triggered_reviews

from frs_hf import FRSConfig, SmoothedModelForSequenceClassification
from frs_hf.baselines import (
    DEFENSES,
    Defense,
    DefenseOutput,
    FRSDefense,
    NoDefense,
    ONIONDefense,
    STRIPDefense,
    UniformDeletionDefense,
    UniformMaskingDefense,
    build_defense,
    class_probabilities,
    forward_sequences,
    pad_token_id,
    token_limit,
)


def test_class_probabilities_match_one_text_at_a_time(planted_trigger_model, tokenizer):
    texts = ["a dull film", "the plot was brilliant and the cast was warm and witty", "cf", "bad " * 30]
    probs = class_probabilities(planted_trigger_model, tokenizer, texts, batch_size=2)
    with torch.no_grad():
        expected = [planted_trigger_model(**tokenizer(t, return_tensors="pt")).logits.softmax(-1)[0] for t in texts]
    assert probs == pytest.approx(torch.stack(expected).numpy(), abs=1e-5)
    assert probs.shape == (4, 2) and class_probabilities(planted_trigger_model, tokenizer, []).shape == (0, 2)


def test_class_probabilities_truncate_to_the_models_limit(planted_trigger_model, tokenizer):
    assert (
        token_limit(planted_trigger_model, tokenizer) == 128
    )  # the tiny BERT has 128 positions, MiniLM's tokenizer 512
    assert token_limit(planted_trigger_model, tokenizer, 16) == 16
    long_text = "the plot was dull " * 60  # 240 tokens
    short = class_probabilities(planted_trigger_model, tokenizer, [long_text], max_length=16)
    ids = tokenizer(long_text, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        assert short[0] == pytest.approx(planted_trigger_model(**ids).logits.softmax(-1)[0].numpy(), abs=1e-5)
    assert class_probabilities(planted_trigger_model, tokenizer, [long_text]).shape == (1, 2)  # no position overflow
    with pytest.raises(ValueError, match="max_length"):
        token_limit(planted_trigger_model, tokenizer, 2)


def test_forward_sequences_keeps_the_order_and_the_training_mode(planted_trigger_model):
    sequences = [np.array([101, *range(2000, 2000 + n), 102]) for n in (7, 1, 4, 9, 2)]
    planted_trigger_model.train()
    try:
        logits = forward_sequences(planted_trigger_model, sequences, 0, lambda out, _: out.logits, batch_size=2)
        assert planted_trigger_model.training
    finally:
        planted_trigger_model.eval()
    with torch.no_grad():
        expected = [planted_trigger_model(input_ids=torch.from_numpy(s)[None]).logits[0].numpy() for s in sequences]
    assert logits == pytest.approx(np.stack(expected), abs=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        forward_sequences(planted_trigger_model, sequences, 0, lambda out, _: out.logits, batch_size=0)


def test_pad_token_id_falls_back_to_eos():
    assert pad_token_id(SimpleNamespace(pad_token_id=0, eos_token_id=5)) == 0
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=5)) == 5
    with pytest.raises(ValueError, match="neither a pad nor an EOS"):
        pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=None))


def test_no_defense_is_the_plain_argmax(planted_trigger_model, tokenizer):
    texts, _ = synthetic_reviews(10, seed=40)
    probs = class_probabilities(planted_trigger_model, tokenizer, texts)
    assert NoDefense(planted_trigger_model, tokenizer).predict(texts) == [
        DefenseOutput(int(k)) for k in probs.argmax(-1)
    ]
    assert DefenseOutput(None, rejected=True).abstained and not DefenseOutput(0).abstained


@pytest.fixture(scope="module")
def smoothed(planted_trigger_model, tokenizer):
    return SmoothedModelForSequenceClassification.from_model(
        planted_trigger_model, tokenizer, FRSConfig(n0=20, n=200, sequential=False)
    )


def test_smoothing_defenses_set_their_config(smoothed):
    deletion = UniformDeletionDefense(smoothed, 0.4, fuzzing=True)
    assert (deletion.config.fuzzing, deletion.config.omega_low, deletion.config.omega_high) == (False, 0.4, 0.4)
    assert UniformDeletionDefense(smoothed).config.omega_low == smoothed.frs_config.omega_low
    frs = FRSDefense(smoothed, n=300)
    assert frs.config.fuzzing and frs.config.n == 300 and smoothed.frs_config.n == 200  # the model's config is kept
    with pytest.raises(ValueError, match="n0"):
        FRSDefense(smoothed, n0=500)


def test_deletion_and_frs_turn_triggered_predictions_back(planted_trigger_model, tokenizer, smoothed):
    triggered, _ = triggered_reviews(20, seed=41, num_negative=5)
    assert [o.label for o in NoDefense(planted_trigger_model, tokenizer).predict(triggered)] == [1] * 20
    deletion = UniformDeletionDefense(smoothed, 0.75).predict(triggered)
    recovered = sum(o.label == 0 for o in deletion)
    assert recovered >= 10, f"uniform deletion recovered the clean label on {recovered}/20"
    assert all(o.area_radius is None for o in deletion)
    frs = FRSDefense(smoothed).predict(triggered)
    recovered = sum(o.label == 0 for o in frs)
    assert recovered >= 15, f"FRS recovered the clean label on {recovered}/20"
    assert all(o.area_radius is not None for o in frs if o.label == 0)  # the fuzzed area holds the trigger


def test_registry_names_every_defense():
    assert list(DEFENSES) == ["none", "uniform-deletion", "uniform-masking", "strip", "onion", "frs"]
    assert all(issubclass(cls, Defense) and DEFENSES[cls.name] is cls for cls in DEFENSES.values())
    assert {name for name, cls in DEFENSES.items() if cls.certifies} == {"uniform-deletion", "uniform-masking", "frs"}


def test_build_defense_builds_each_by_name(planted_trigger_model, tokenizer, monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    model, config = planted_trigger_model, FRSConfig(n0=10, n=50, alpha=0.01)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=64, n_embd=8, n_layer=1, n_head=1))
    clean, _ = synthetic_reviews(20, seed=43)
    built = {
        name: build_defense(
            name, model, tokenizer, frs_config=config, clean_texts=clean, lm=lm, lm_tokenizer=tokenizer, seed=7
        )
        for name in DEFENSES
    }
    assert all(type(defense) is DEFENSES[name] for name, defense in built.items())
    # The same Monte Carlo budget as FRS, with Cohen et al.'s fixed n0 + n (masking has no sequential looks).
    assert built["uniform-masking"].config.replace(seed=None) == config.replace(sequential=False)
    assert (
        built["uniform-deletion"].config.seed == built["frs"].config.seed == built["uniform-masking"].config.seed == 7
    )
    assert built["strip"].threshold is not None and built["strip"].seed == 7
    assert build_defense("uniform-masking", model, tokenizer, rate=0.5).rate == 0.5
    outputs = {name: defense.predict(clean[:2], indices=[3, 4]) for name, defense in built.items()}
    assert all(len(out) == 2 and all(isinstance(o, DefenseOutput) for o in out) for out in outputs.values())

    monkeypatch.setattr(ONIONDefense, "from_packaged", classmethod(lambda cls, m, t, **kw: ("packaged", kw)))
    assert build_defense("onion", model, tokenizer, threshold=5.0) == ("packaged", {"threshold": 5.0})


def test_build_defense_errors(planted_trigger_model, tokenizer):
    with pytest.raises(ValueError, match="known defenses: none, uniform-deletion, uniform-masking, strip, onion, frs"):
        build_defense("ranmask", planted_trigger_model, tokenizer)
    with pytest.raises(ValueError, match="clean_texts"):
        build_defense("strip", planted_trigger_model, tokenizer)
    with pytest.raises(ValueError, match="both lm and lm_tokenizer"):
        build_defense("onion", planted_trigger_model, tokenizer, lm=planted_trigger_model)
    with pytest.raises(TypeError):
        build_defense("none", planted_trigger_model, tokenizer, rate=0.5)
    assert isinstance(
        build_defense("strip", planted_trigger_model, tokenizer, clean_texts=["a b", "c d"]), STRIPDefense
    )
    assert isinstance(build_defense("uniform-masking", planted_trigger_model, tokenizer), UniformMaskingDefense)
