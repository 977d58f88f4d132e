"""Data-poisoning attacks insert exactly what they report, where and as often as they report it."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Value

from frs_hf.attacks import (
    ATTACKS,
    AddSentConfig,
    BadNetConfig,
    get_attack,
    insert_addsent,
    insert_badnet,
    poison_dataset,
    triggered_test_set,
)

TEXTS = [
    "a gripping , funny film",
    "  leading and trailing whitespace  ",
    "line\nbreaks\tand  double  spaces",
    "one",
    "",
    "the plot is thin but the cast makes it work",
]


def small_dataset(n: int = 40, num_labels: int = 2) -> Dataset:
    features = Features({"text": Value("string"), "label": ClassLabel(num_classes=num_labels), "id": Value("int64")})
    texts = [f"review {i} : " + " ".join(f"w{i}_{j}" for j in range(i % 7 + 1)) for i in range(n)]
    labels = [i % num_labels for i in range(n)]
    return Dataset.from_dict({"text": texts, "label": labels, "id": list(range(n))}, features)


def remove_units(text: str, positions: list[int]) -> list[str]:
    return [w for i, w in enumerate(text.split()) if i not in set(positions)]


def check_insertion(original: str, new: str, positions: list[int], allowed: list[str] | None, exact: list[str] | None):
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    inserted = [new.split()[p] for p in positions]
    if allowed is not None:
        assert set(inserted) <= set(allowed)
    if exact is not None:
        assert inserted == exact
    assert remove_units(new, positions) == original.split()


@pytest.mark.parametrize("text", TEXTS)
def test_badnet_inserts_reported_trigger_words(text):
    config = BadNetConfig(min_triggers=1, max_triggers=3)
    rng = np.random.default_rng(0)
    counts = set()
    for _ in range(30):
        new, positions = insert_badnet(text, rng, config)
        check_insertion(text, new, positions, allowed=config.triggers, exact=None)
        counts.add(len(positions))
    assert counts == {1, 2, 3}


@pytest.mark.parametrize("text", TEXTS)
def test_addsent_inserts_sentence_contiguously(text):
    config = AddSentConfig(sentence="I watched this 3D movie")
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(30):
        new, positions = insert_addsent(text, rng, config)
        check_insertion(text, new, positions, allowed=None, exact=config.sentence.split())
        assert positions == list(range(positions[0], positions[0] + 5))
        starts.add(positions[0])
    assert starts == set(range(len(text.split()) + 1))  # every gap, ends included


def test_insertion_keeps_original_characters():
    text = "  keep\tthese  spaces\n"
    new, positions = insert_badnet(text, np.random.default_rng(3), BadNetConfig(triggers=["cf"], max_triggers=1))
    # Removing the trigger and the one space joining it gives the original string back.
    assert new.replace("cf ", "", 1) == text or new.replace(" cf", "", 1) == text
    assert len(positions) == 1


@pytest.mark.parametrize("attack", ["badnet", "addsent"])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5])
def test_poison_dataset_rate_targets_and_positions(attack, rate):
    data = small_dataset(40)
    config = get_attack(attack, poison_rate=rate, target_label=1, seed=7)
    poisoned = poison_dataset(data, config)

    assert poisoned.features["label"] == data.features["label"]
    assert poisoned.column_names == ["text", "label", "id", "poisoned", "trigger_positions"]
    assert sum(poisoned["poisoned"]) == round(rate * len(data))
    for before, after in zip(data, poisoned, strict=True):
        assert after["id"] == before["id"]
        if after["poisoned"]:
            assert before["label"] != 1 and after["label"] == 1
            allowed = config.triggers if attack == "badnet" else None
            exact = config.sentence.split() if attack == "addsent" else None
            check_insertion(before["text"], after["text"], after["trigger_positions"], allowed, exact)
            assert after["trigger_positions"]
        else:
            assert after["text"] == before["text"] and after["label"] == before["label"]
            assert after["trigger_positions"] == []


def test_poison_dataset_multiclass_picks_only_non_target():
    data = small_dataset(60, num_labels=3)
    poisoned = poison_dataset(data, BadNetConfig(poison_rate=2 / 3, target_label=2))
    assert sum(poisoned["poisoned"]) == 40  # every non-target example
    assert set(poisoned["label"]) == {2}


def test_poison_dataset_is_deterministic_per_seed():
    data = small_dataset(40)
    a = poison_dataset(data, BadNetConfig(poison_rate=0.25, seed=1))
    b = poison_dataset(data, BadNetConfig(poison_rate=0.25, seed=1))
    c = poison_dataset(data, BadNetConfig(poison_rate=0.25, seed=2))
    assert a.to_dict() == b.to_dict()
    assert a["poisoned"] != c["poisoned"] or a["text"] != c["text"]


def test_triggered_test_set_keeps_original_labels():
    data = small_dataset(30)
    for name in ATTACKS:
        config = get_attack(name, target_label=0, seed=3)
        triggered = triggered_test_set(data, config)
        originals = data.filter(lambda row: row["label"] != 0)
        assert len(triggered) == len(originals) == 15
        assert triggered.features["label"] == data.features["label"]
        assert triggered["label"] == originals["label"] and set(triggered["label"]) == {1}
        for before, after in zip(originals, triggered, strict=True):
            assert after["id"] == before["id"]
            assert remove_units(after["text"], after["trigger_positions"]) == before["text"].split()
            assert after["trigger_positions"]
        assert triggered.to_dict() == triggered_test_set(data, config).to_dict()


def test_rotten_tomatoes_train_split(rotten_tomatoes):
    train = rotten_tomatoes["train"]
    config = BadNetConfig(poison_rate=0.1, target_label=1, seed=0)
    poisoned = poison_dataset(train, config)
    mask = np.asarray(poisoned["poisoned"])
    original_labels = np.asarray(train["label"])
    assert mask.sum() == round(0.1 * len(train))
    assert (original_labels[mask] == 0).all() and (np.asarray(poisoned["label"])[mask] == 1).all()
    assert (np.asarray(poisoned["label"])[~mask] == original_labels[~mask]).all()
    texts, new_texts, positions = train["text"], poisoned["text"], poisoned["trigger_positions"]
    for i in np.flatnonzero(mask)[:200]:
        check_insertion(texts[i], new_texts[i], positions[i], allowed=config.triggers, exact=None)

    test = triggered_test_set(rotten_tomatoes["test"], AddSentConfig())
    assert len(test) == int((np.asarray(rotten_tomatoes["test"]["label"]) == 0).sum())
    assert set(test["label"]) == {0}
    assert all("I watched this 3D movie" in text for text in test["text"])


def test_get_attack():
    assert isinstance(get_attack("badnet"), BadNetConfig)
    assert get_attack("AddSent", sentence="a b c d e f").sentence == "a b c d e f"
    with pytest.raises(ValueError, match="badnet, addsent"):
        get_attack("trojanlm")


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: BadNetConfig(poison_rate=1.5), ValueError, "poison_rate"),
        (lambda: AddSentConfig(poison_rate=-0.1), ValueError, "poison_rate"),
        (lambda: BadNetConfig(triggers=[]), ValueError, "empty"),
        (lambda: BadNetConfig(triggers="cf"), TypeError, "list"),
        (lambda: BadNetConfig(triggers=["two words"]), ValueError, "one word"),
        (lambda: BadNetConfig(min_triggers=0), ValueError, "min_triggers"),
        (lambda: BadNetConfig(min_triggers=3, max_triggers=2), ValueError, "min_triggers"),
        (lambda: AddSentConfig(sentence="   "), ValueError, "sentence"),
        (lambda: BadNetConfig(target_label="positive"), TypeError, "target_label"),
        (lambda: BadNetConfig(seed=-1), ValueError, "seed"),
    ],
)
def test_config_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_dataset_errors():
    data = small_dataset(20)
    with pytest.raises(ValueError, match="not a label"):
        poison_dataset(data, BadNetConfig(target_label=2))
    with pytest.raises(ValueError, match="not a label"):
        triggered_test_set(data, BadNetConfig(target_label=5))
    with pytest.raises(ValueError, match="only 10 of 20"):
        poison_dataset(data, BadNetConfig(poison_rate=0.6))
    with pytest.raises(ValueError, match="Column 'sentence'"):
        poison_dataset(data, BadNetConfig(), text_column="sentence")
    with pytest.raises(ValueError, match="poisoned already"):
        poison_dataset(poison_dataset(data, BadNetConfig()), BadNetConfig())
    plain = Dataset.from_dict({"text": ["a b", "c d"], "label": [3, 7]})  # no ClassLabel: labels seen are the set
    with pytest.raises(ValueError, match=r"labels: \[3, 7\]"):
        poison_dataset(plain, BadNetConfig(target_label=1))
    assert poison_dataset(plain, BadNetConfig(target_label=7, poison_rate=0.5))["label"] == [7, 7]
    only_target = data.filter(lambda row: row["label"] == 1)
    with pytest.raises(ValueError, match="nothing to trigger"):
        triggered_test_set(only_target, BadNetConfig(target_label=1))
    with pytest.raises(ValueError, match="only 0 of 10"):
        poison_dataset(only_target, BadNetConfig(target_label=1))
