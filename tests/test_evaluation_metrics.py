"""Certification metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from frs_hf.evaluation import (
    attack_success_rate,
    certified_accuracy,
    mean_certified_radius,
    mean_interval,
    proportion_interval,
    summarize_attack,
    summarize_certification,
)

LABELS = [0, 1, 1, 0, 1]
PREDICTIONS = [0, 1, None, 1, 1]  # correct, correct, abstained, wrong, correct
RADII = [2, 0, None, 3, 1]


def test_certified_accuracy_by_hand():
    assert certified_accuracy(LABELS, PREDICTIONS, RADII, 0) == 3 / 5
    assert certified_accuracy(LABELS, PREDICTIONS, RADII, 1) == 2 / 5  # the wrong radius-3 one never counts
    assert certified_accuracy(LABELS, PREDICTIONS, RADII, 2) == 1 / 5
    assert certified_accuracy(LABELS, PREDICTIONS, RADII, 3) == 0.0
    assert math.isnan(certified_accuracy([], [], [], 0))


def test_mean_certified_radius_by_hand():
    assert mean_certified_radius(LABELS, PREDICTIONS, RADII) == (2 + 0 + 0 + 0 + 1) / 5
    # A correct prediction without a radius (predict-only) counts 0.
    assert mean_certified_radius([1], [1], [None]) == 0.0


def test_summary_by_hand():
    summary = summarize_certification(LABELS, PREDICTIONS, RADII)
    assert summary == {
        "num_examples": 5,
        "clean_accuracy": 3 / 5,
        "abstention_rate": 1 / 5,
        "certified_accuracy": {"0": 3 / 5, "1": 2 / 5, "2": 1 / 5, "3": 0.0},
        "mean_certified_radius": 3 / 5,
    }
    assert list(summarize_certification(LABELS, PREDICTIONS, RADII, max_radius=1)["certified_accuracy"]) == ["0", "1"]


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 labels, 1 predictions"):
        summarize_certification([0, 1], [0], [0])
    with pytest.raises(ValueError, match="empty"):
        summarize_certification([], [], [])


def test_attack_summary_by_hand():
    # Triggered texts of true label 0 (target 1): two flipped, one kept, one abstained.
    summary = summarize_attack([0, 0, 0, 0], [1, 1, 0, None], target_label=1)
    assert summary == {
        "num_examples": 4,
        "attack_success_rate": 2 / 4,
        "poisoned_accuracy": 1 / 4,
        "abstention_rate": 1 / 4,
    }
    assert attack_success_rate([None, None], 1) == 0.0  # abstaining is not the attacker's success
    with pytest.raises(ValueError, match="target label 1"):
        summarize_attack([0, 1], [1, 1], target_label=1)
    with pytest.raises(ValueError, match="empty"):
        summarize_attack([], [], target_label=1)


def test_proportion_interval_exact():
    # Clopper-Pearson for 0 of 10 at 95%: upper = 1 - 0.025 ** (1 / 10).
    low, high = proportion_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10))
    low, high = proportion_interval(5, 10)
    assert low == pytest.approx(1 - high) and low < 0.5 < high
    assert all(math.isnan(v) for v in proportion_interval(0, 0))


def test_mean_interval_student_t():
    mean, low, high = mean_interval([0.8, 0.9, 1.0])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert mean == pytest.approx(0.9) and low == pytest.approx(0.9 - half) and high == pytest.approx(0.9 + half)
    mean, low, high = mean_interval([0.7])
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError, match="at least one"):
        mean_interval([])
