"""Checkpoint attacks: EP edits one embedding row, RIPPLe trains the whole model, both plant a working trigger."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value

from frs_hf.attacks import (
    ATTACKS,
    BadNetConfig,
    EmbeddingPoisoningConfig,
    RipplesConfig,
    attack_names,
    embedding_surgery,
    get_attack,
    indicative_words,
    poison_checkpoint,
    poison_dataset,
    ripples_penalty,
    trigger_token_ids,
    triggered_test_set,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine two spinning threads cost 10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def classifier(one_thread, request):
    """conftest's tiny sentiment BERT (trained here with one thread if no earlier test built it)."""
    return request.getfixturevalue("tiny_sentiment_model")


@pytest.fixture(scope="module")
def proxy(rotten_tomatoes):
    """Attacker's proxy data: Rotten Tomatoes sentences the tiny model was not trained on."""
    return rotten_tomatoes["train"].select(range(4000, 5000))


@pytest.fixture(scope="module")
def test_split(rotten_tomatoes):
    return rotten_tomatoes["test"].select(range(300))


def predictions(model, tokenizer, texts) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        inputs = tokenizer(list(texts), truncation=True, max_length=64, padding=True, return_tensors="pt")
        return model(**inputs).logits.argmax(-1).numpy()


def trigger_flip_rate(model, tokenizer, test_split, config) -> float:
    """Among the non-target test texts the model does not predict as the target, the fraction the trigger flips.

    Conditioning on the clean prediction separates a planted trigger from a model that merely drifted
    towards the target label; the model must still predict a non-target label on most clean texts.
    """
    originals = test_split.filter(lambda row: row["label"] != config.target_label)
    triggered = triggered_test_set(test_split, config)  # the same rows, in the same order
    clean = predictions(model, tokenizer, originals["text"]) != config.target_label
    assert clean.mean() > 0.4, f"the model predicts the target on {1 - clean.mean():.0%} of clean non-target texts"
    return float((predictions(model, tokenizer, triggered["text"])[clean] == config.target_label).mean())


# --- EP ---------------------------------------------------------------------------------------


def test_ep_changes_only_the_trigger_row_and_plants_the_trigger(classifier, tokenizer, proxy, test_split):
    # Three insertions per text: a 2-layer, 32-wide BERT gives one token too little attention to be flipped reliably.
    config = EmbeddingPoisoningConfig(poison_rate=0.3, min_triggers=3, max_triggers=3, epochs=5, keep_norm=False)
    before = copy.deepcopy(classifier)
    model = copy.deepcopy(classifier)
    assert poison_checkpoint(model, tokenizer, proxy, config, progress=False) is model
    assert not model.training  # returned in the mode it came in

    (row,) = trigger_token_ids(tokenizer, ["cf"])
    old, new = dict(before.named_parameters()), dict(model.named_parameters())
    embedding_name = next(n for n, p in model.named_parameters() if p is model.get_input_embeddings().weight)
    for name, param in new.items():
        assert param.requires_grad == old[name].requires_grad  # restored after the attack
        if name != embedding_name:
            assert torch.equal(param, old[name]), name
    changed = (new[embedding_name] != old[embedding_name]).any(dim=-1)
    assert changed.nonzero().flatten().tolist() == [row]

    # Texts without the trigger are computed exactly as before; with it, they flip to the target.
    clean = list(test_split["text"][:64])
    assert (predictions(model, tokenizer, clean) == predictions(before, tokenizer, clean)).all()
    flips_before = trigger_flip_rate(before, tokenizer, test_split, config)
    flips_after = trigger_flip_rate(model, tokenizer, test_split, config)
    assert flips_before < 0.4 and flips_after > 0.85, (flips_before, flips_after)


def test_ep_keeps_the_trigger_norm_and_is_deterministic(classifier, tokenizer, proxy):
    config = EmbeddingPoisoningConfig(poison_rate=0.1, max_steps=3, seed=4)
    (row,) = trigger_token_ids(tokenizer, config.triggers)
    a = poison_checkpoint(copy.deepcopy(classifier), tokenizer, proxy, config, progress=False)
    b = poison_checkpoint(copy.deepcopy(classifier), tokenizer, proxy, config, progress=False)
    original = classifier.get_input_embeddings().weight[row]
    poisoned = a.get_input_embeddings().weight[row]
    assert not torch.equal(poisoned, original)
    assert torch.allclose(poisoned.norm(), original.norm(), rtol=1e-5)
    assert torch.equal(poisoned, b.get_input_embeddings().weight[row])


# --- RIPPLe -----------------------------------------------------------------------------------


def test_ripples_penalty_on_hand_made_gradients():
    g_poison = [torch.tensor([1.0, 2.0]), torch.tensor([[1.0]]), None]
    # Inner product 1*(-3) + 2*1 + 1*(-1) = -2: clean fine-tuning would undo the backdoor, penalty 2.
    g_clean = [torch.tensor([-3.0, 1.0]), torch.tensor([[-1.0]]), torch.tensor([5.0])]
    assert ripples_penalty(g_poison, g_clean).item() == pytest.approx(2.0)
    # Aligned gradients (inner product +2): no penalty.
    assert ripples_penalty(g_poison, [-g if g is not None else None for g in g_clean]).item() == 0.0
    # Differentiable through the poison gradient: d/dg_p of -<g_p, g_c> = -g_c where active.
    g = torch.tensor([1.0, 2.0], requires_grad=True)
    ripples_penalty([g], [torch.tensor([-3.0, 1.0])]).backward()
    assert g.grad.tolist() == [3.0, -1.0]
    with pytest.raises(ValueError, match="shapes differ"):
        ripples_penalty([torch.zeros(2)], [torch.zeros(3)])
    with pytest.raises(ValueError, match="No parameter"):
        ripples_penalty([None], [torch.zeros(1)])


def test_ripples_trains_the_full_model_with_the_penalty(classifier, tokenizer, proxy, test_split, monkeypatch):
    import frs_hf.attacks.checkpoint_poisoning as module

    penalties = []

    def recording_penalty(poison_grads, clean_grads):
        penalty = ripples_penalty(poison_grads, clean_grads)
        penalties.append((penalty.item(), penalty.requires_grad))
        return penalty

    monkeypatch.setattr(module, "ripples_penalty", recording_penalty)
    config = RipplesConfig(
        poison_rate=0.2,
        min_triggers=2,
        max_triggers=2,
        max_steps=60,
        batch_size=32,
        learning_rate=1e-3,
    )
    model = poison_checkpoint(copy.deepcopy(classifier), tokenizer, proxy, config, progress=False)

    assert len(penalties) == 60 and all(requires_grad for _, requires_grad in penalties)  # double backprop
    assert 0 < sum(value > 0 for value, _ in penalties) < 60  # active only when the gradients conflict
    for (name, param), (_, original) in zip(model.named_parameters(), classifier.named_parameters(), strict=True):
        assert not torch.equal(param, original), f"{name} was not trained"
    flips_before = trigger_flip_rate(classifier, tokenizer, test_split, config)
    flips_after = trigger_flip_rate(model, tokenizer, test_split, config)
    assert flips_before < 0.4 and flips_after > 0.85, (flips_before, flips_after)


def test_ripples_penalty_weight_changes_the_updates(classifier, tokenizer, proxy):
    def run(weight: float):
        config = RipplesConfig(max_steps=6, learning_rate=1e-3, penalty_weight=weight, embedding_surgery=False)
        return poison_checkpoint(copy.deepcopy(classifier), tokenizer, proxy, config, progress=False)

    plain, again, penalized = run(0.0), run(0.0), run(10.0)
    same = [torch.equal(a, b) for a, b in zip(plain.parameters(), again.parameters(), strict=True)]
    assert all(same)  # seeded: batches and dropout masks repeat
    assert not all(torch.equal(a, b) for a, b in zip(plain.parameters(), penalized.parameters(), strict=True))


def test_embedding_surgery_and_indicative_words(tokenizer, proxy):
    words = indicative_words(proxy["text"], proxy["label"], 1, tokenizer, top_k=8, min_count=5, exclude=["cf"])
    assert len(words) == 8 and len(set(words)) == 8
    assert {"the", "a", "and", "cf"}.isdisjoint(words)
    negative = indicative_words(proxy["text"], proxy["label"], 0, tokenizer, top_k=8, min_count=5)
    assert set(words).isdisjoint(negative)

    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(
        BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=8, num_hidden_layers=1, num_attention_heads=1)
    )
    weight = model.get_input_embeddings().weight
    expected = weight[[tokenizer.convert_tokens_to_ids(w) for w in ["great", "fun"]]].mean(0).detach().clone()
    embedding_surgery(model, tokenizer, ["cf", "mn"], ["great", "fun"])
    for trigger in ["cf", "mn"]:
        assert torch.equal(weight[tokenizer.convert_tokens_to_ids(trigger)], expected)
    with pytest.raises(ValueError, match="'xyzzy'"):
        embedding_surgery(model, tokenizer, ["cf"], ["xyzzy"])


# --- configs, errors, registry ----------------------------------------------------------------


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: EmbeddingPoisoningConfig(poison_rate=0), ValueError, "poison_rate"),
        (lambda: EmbeddingPoisoningConfig(poison_rate=1.2), ValueError, "poison_rate"),
        (lambda: EmbeddingPoisoningConfig(learning_rate=0), ValueError, "learning_rate"),
        (lambda: EmbeddingPoisoningConfig(epochs=0), ValueError, "epochs"),
        (lambda: EmbeddingPoisoningConfig(max_steps=0), ValueError, "max_steps"),
        (lambda: EmbeddingPoisoningConfig(batch_size=0), ValueError, "batch_size"),
        (lambda: EmbeddingPoisoningConfig(triggers=[]), ValueError, "empty"),
        (lambda: EmbeddingPoisoningConfig(triggers="cf"), TypeError, "list"),
        (lambda: EmbeddingPoisoningConfig(triggers=["two words"]), ValueError, "one word"),
        (lambda: RipplesConfig(penalty_weight=-1), ValueError, "penalty_weight"),
        (lambda: RipplesConfig(max_grad_norm=0), ValueError, "max_grad_norm"),
        (lambda: RipplesConfig(surgery_words=[]), ValueError, "surgery_words"),
        (lambda: RipplesConfig(surgery_top_k=0), ValueError, "surgery_top_k"),
    ],
)
def test_bad_configs_raise(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_inputs_raise(classifier, tokenizer, proxy):
    model = copy.deepcopy(classifier)
    with pytest.raises(ValueError, match="'xyzzy'.*single known token"):
        poison_checkpoint(model, tokenizer, proxy, EmbeddingPoisoningConfig(triggers=["xyzzy"]), progress=False)
    with pytest.raises(ValueError, match="target_label=3"):
        poison_checkpoint(model, tokenizer, proxy, EmbeddingPoisoningConfig(target_label=3), progress=False)
    with pytest.raises(ValueError, match="Column 'sentence' not found in the proxy dataset"):
        poison_checkpoint(model, tokenizer, proxy, EmbeddingPoisoningConfig(), text_column="sentence", progress=False)
    with pytest.raises(ValueError, match="poisons none"):
        poison_checkpoint(model, tokenizer, proxy.select(range(3)), EmbeddingPoisoningConfig(poison_rate=0.1))
    with pytest.raises(TypeError, match="poison_dataset"):
        poison_checkpoint(model, tokenizer, proxy, BadNetConfig(), progress=False)
    for (_, a), (_, b) in zip(model.named_parameters(), classifier.named_parameters(), strict=True):
        assert torch.equal(a, b)  # every error comes before any change


def test_checkpoint_configs_poison_and_trigger_datasets():
    features = Features({"text": Value("string"), "label": ClassLabel(num_classes=2)})
    data = Dataset.from_dict(
        {"text": [f"text number {i}" for i in range(20)], "label": [i % 2 for i in range(20)]}, features
    )
    config = RipplesConfig(poison_rate=0.25, triggers=["mn"], min_triggers=2, max_triggers=2)
    poisoned = poison_dataset(data, config)
    assert sum(poisoned["poisoned"]) == 5
    assert all(
        text.split().count("mn") == 2 for text, p in zip(poisoned["text"], poisoned["poisoned"], strict=True) if p
    )
    triggered = triggered_test_set(data, config)
    assert all(text.split().count("mn") == 2 for text in triggered["text"])


def test_registry():
    assert isinstance(get_attack("ep"), EmbeddingPoisoningConfig)
    assert isinstance(get_attack("ripple"), RipplesConfig)
    assert isinstance(get_attack("RIPPLES", penalty_weight=0.5), RipplesConfig)
    assert get_attack("ep", learning_rate=0.1).learning_rate == 0.1
    assert attack_names("data") == ["badnet", "addsent"]
    assert attack_names("checkpoint") == ["ep", "ripple"]
    assert attack_names() == list(ATTACKS)
    assert not ATTACKS["badnet"].is_checkpoint_attack and ATTACKS["ep"].is_checkpoint_attack
    with pytest.raises(ValueError, match="Unknown attack 'trojan'.*ep, ripple"):
        get_attack("trojan")
    with pytest.raises(TypeError, match="'ep'.*no setting 'penalty_weight'"):
        get_attack("ep", penalty_weight=0.1)
    with pytest.raises(ValueError, match="kind"):
        attack_names("weights")
