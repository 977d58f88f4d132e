"""Certification metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from frs_hf.evaluation import certified_accuracy, mean_certified_radius, summarize_certification

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
