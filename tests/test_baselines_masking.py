"""Uniform masking (RanMASK): the certificate against exact enumeration, and the defense on a planted trigger."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import synthetic_reviews, triggered_reviews

from frs_hf import FRSConfig
from frs_hf.baselines import NoDefense, UniformMaskingDefense, masking_radius, num_masked, ranmask_delta, sample_masks
from frs_hf.randomize import TextUnits, build_copies

MASK = 103


def units_from_tokens(tokens_per_word: list[list[int]]) -> TextUnits:
    """A text whose word u owns the given token ids (special tokens [CLS] ... [SEP])."""
    text = " ".join(f"w{u}" for u in range(len(tokens_per_word)))
    return TextUnits(
        text=text,
        token_ids=np.array([t for tokens in tokens_per_word for t in tokens], np.int64),
        token_unit=np.array([u for u, tokens in enumerate(tokens_per_word) for _ in tokens], np.int64),
        unit_spans=np.array([m.span() for m in re.finditer(r"\S+", text)], np.int64).reshape(-1, 2),
        prefix_ids=(101,),
        suffix_ids=(102,),
    )


def masked_distribution(units: TextUnits, num_kept: int) -> Counter:
    """The exact distribution of masked copies: every kept set of size ``num_kept`` once."""
    subsets = list(itertools.combinations(range(units.num_units), num_kept))
    keep = np.zeros((len(subsets), units.num_units), dtype=bool)
    for row, subset in enumerate(subsets):
        keep[row, list(subset)] = True
    copies = build_copies(units, keep, max_length=10_000, deduplicate=False, mask_token_id=MASK)
    return Counter(tuple(copies.sequences[i].tolist()) for i in copies.inverse)


@pytest.mark.parametrize("num_units", [1, 2, 3, 5, 6])
def test_ranmask_delta_is_the_exact_total_variation_of_substitutions(num_units):
    """Substituting r words (by words of other token counts) moves the copy distribution by exactly Delta(r)."""
    rng = np.random.default_rng(num_units)
    words = [list(range(1000 + 10 * u, 1000 + 10 * u + int(rng.integers(1, 4)))) for u in range(num_units)]
    for num_kept in range(num_units + 1):
        x = masked_distribution(units_from_tokens(words), num_kept)
        total = sum(x.values())
        for radius in range(num_units + 1):
            changed = set(rng.choice(num_units, radius, replace=False).tolist())
            substituted = [[5000 + 10 * u] * (len(w) % 3 + 1) if u in changed else w for u, w in enumerate(words)]
            x_prime = masked_distribution(units_from_tokens(substituted), num_kept)
            tv = sum(abs(x[z] - x_prime[z]) for z in x.keys() | x_prime.keys()) / (2 * total)
            assert tv == pytest.approx(ranmask_delta(num_units, num_kept, radius), abs=1e-12)


def test_ranmask_delta_hand_values():
    assert ranmask_delta(5, 2, 0) == 0.0
    assert ranmask_delta(5, 2, 1) == pytest.approx(1 - 6 / 10)  # C(4, 2) / C(5, 2)
    assert ranmask_delta(5, 2, 3) == pytest.approx(1 - 1 / 10)
    assert ranmask_delta(5, 2, 4) == 1.0  # a kept word is always among 4 changed of 5
    assert ranmask_delta(7, 0, 7) == 0.0  # everything masked: nothing can change
    with pytest.raises(ValueError, match="num_kept"):
        ranmask_delta(5, 6, 1)
    with pytest.raises(ValueError, match="radius"):
        ranmask_delta(5, 2, 6)


def test_masking_radius_hand_values():
    # U = 10, k = 3: Delta(1) = 1 - 84/120 = 0.3, Delta(2) = 1 - 56/120 = 0.533.
    assert masking_radius(0.9, 0.1, 10, 3) == 1  # half margin 0.4: r = 1 holds, r = 2 does not
    assert masking_radius(1.0, 0.0, 10, 3) == 1  # half margin 0.5 < 0.533
    assert masking_radius(0.6, 0.4, 10, 3) == 0  # half margin 0.1 < 0.3
    assert masking_radius(0.5, 0.5, 10, 3) is None  # no margin: abstain
    assert masking_radius(0.7, 0.1, 6, 0) == 6  # every word always masked: a constant classifier
    with pytest.raises(ValueError, match="probability bounds"):
        masking_radius(1.2, 0.1, 10, 3)


@pytest.mark.parametrize("seed", range(5))
def test_masking_radius_is_the_largest_radius_meeting_the_condition(seed):
    rng = np.random.default_rng(seed)
    num_units = int(rng.integers(1, 40))
    num_kept = int(rng.integers(0, num_units + 1))
    p_lower = float(rng.uniform(0.5, 1.0))
    radius = masking_radius(p_lower, 1 - p_lower, num_units, num_kept)

    def holds(r: int) -> bool:
        return p_lower - ranmask_delta(num_units, num_kept, r) > 1 - p_lower + ranmask_delta(num_units, num_kept, r)

    assert holds(radius)
    assert radius == num_units - num_kept or not holds(radius + 1)


def test_num_masked_rounds_half_up_and_checks_the_rate():
    assert [num_masked(10, 0.25), num_masked(3, 0.5), num_masked(1, 0.9), num_masked(7, 0.0)] == [3, 2, 1, 0]
    for rate in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="rate"):
            num_masked(10, rate)


def test_sample_masks_masks_exactly_m_uniformly():
    keep = sample_masks(8, 3, 4000, np.random.default_rng(0))
    assert keep.shape == (4000, 8) and ((~keep).sum(axis=1) == 3).all()
    assert np.allclose((~keep).mean(axis=0), 3 / 8, atol=0.03)
    assert (sample_masks(8, 3, 10, np.random.default_rng(1)) == sample_masks(8, 3, 10, np.random.default_rng(1))).all()


def test_build_copies_masks_each_word_with_one_token():
    units = units_from_tokens([[1000, 1001], [1010], [1020, 1021, 1022]])
    keep = np.array([[True, False, False], [False, True, True], [True, True, True]])
    copies = build_copies(units, keep, max_length=64, deduplicate=False, mask_token_id=MASK)
    assert [s.tolist() for s in copies.sequences] == [
        [101, 1000, 1001, MASK, MASK, 102],
        [101, MASK, 1010, 1020, 1021, 1022, 102],
        [101, 1000, 1001, 1010, 1020, 1021, 1022, 102],
    ]
    truncated = build_copies(units, keep, max_length=4, deduplicate=False, mask_token_id=MASK)
    assert [s.tolist() for s in truncated.sequences][:2] == [[101, 1000, 1001, 102], [101, MASK, 1010, 102]]


@pytest.fixture(scope="module")
def triggered(planted_trigger_model, tokenizer):
    """Negative reviews (five negative words) with the trigger: the plain model predicts 1 on every one."""
    poisoned, _ = triggered_reviews(30, seed=11, num_negative=5)
    assert [o.label for o in NoDefense(planted_trigger_model, tokenizer).predict(poisoned)] == [1] * len(poisoned)
    return poisoned


def test_masking_turns_triggered_predictions_back(planted_trigger_model, tokenizer, triggered):
    defense = UniformMaskingDefense(planted_trigger_model, tokenizer, rate=0.75, n0=20, n=200)
    outputs = defense.predict(triggered)
    recovered = sum(o.label == 0 for o in outputs)
    assert recovered >= len(triggered) // 3, f"masking recovered the clean label on {recovered}/{len(triggered)}"
    assert all((o.label is None) == (o.radius is None) for o in outputs)
    assert all(
        o.radius is None or o.radius <= num_masked(len(t.split()), 0.75)
        for o, t in zip(outputs, triggered, strict=True)
    )
    clean, labels = synthetic_reviews(30, seed=12)
    outputs = defense.predict(clean)
    correct = sum(o.label == y for o, y in zip(outputs, labels, strict=True))
    wrong = sum(o.label == 1 - y for o, y in zip(outputs, labels, strict=True))
    assert correct >= 18 and wrong <= 2, f"clean reviews under masking: {correct}/30 right, {wrong} wrong"


def test_masking_is_seeded_per_example(planted_trigger_model, tokenizer, triggered):
    defense = UniformMaskingDefense(
        planted_trigger_model, tokenizer, rate=0.75, certify=False, n0=10, n=50, alpha=0.5, seed=3
    )  # a fixed seed: per-example seeding is what is checked (the default draws fresh randomness per call)
    both = defense.predict(triggered[:2], indices=[5, 7])
    assert defense.predict(triggered[1:2], indices=[7]) == both[1:]
    assert defense.predict(triggered[:2], indices=[5, 7]) == both
    assert all(o.radius is None for o in both)  # PREDICT gives no radius


def test_masking_rejects_bad_arguments(planted_trigger_model, tokenizer):
    with pytest.raises(ValueError, match="rate"):
        UniformMaskingDefense(planted_trigger_model, tokenizer, rate=1.0)
    with pytest.raises(ValueError, match="mask token"):
        UniformMaskingDefense(planted_trigger_model, SimpleNamespace(mask_token_id=None), rate=0.5)
    with pytest.raises(ValueError, match="n0"):
        UniformMaskingDefense(planted_trigger_model, tokenizer, config=FRSConfig(n0=10, n=20), n0=50)
    with pytest.raises(TypeError, match="Unknown FRSConfig"):
        UniformMaskingDefense(planted_trigger_model, tokenizer, num_copies=5)
    defense = UniformMaskingDefense(planted_trigger_model, tokenizer)
    with pytest.raises(ValueError, match="empty"):
        defense.predict(["a fine film", "  "])
    with pytest.raises(ValueError, match="indices"):
        defense.predict(["a fine film"], indices=[0, 1])
    assert math.isclose(defense.rate, 0.3)
