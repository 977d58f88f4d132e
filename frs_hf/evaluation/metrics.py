"""Metrics of a certification run, as small pure functions over per-example arrays.

Conventions (Cohen et al. 2019): an abstention counts as wrong; ``radius`` is -1 where there is no
certificate (abstained, or no radius), so "certified at radius r" is ``correct and radius >= r``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def _arrays(labels: Sequence[int], predictions: Sequence[int | None], radii: Sequence[int | None]):
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels) == len(predictions) == len(radii):
        raise ValueError(f"Got {len(labels)} labels, {len(predictions)} predictions and {len(radii)} radii.")
    abstained = np.array([p is None for p in predictions], dtype=bool)
    correct = np.array([p is not None and p == y for p, y in zip(predictions, labels, strict=True)], dtype=bool)
    radius = np.array([-1 if r is None else int(r) for r in radii], dtype=np.int64)
    return correct, abstained, radius


def certified_accuracy(
    labels: Sequence[int], predictions: Sequence[int | None], radii: Sequence[int | None], radius: int
) -> float:
    """Fraction of examples predicted correctly with a certified radius of at least ``radius``."""
    correct, _, radii_ = _arrays(labels, predictions, radii)
    return float((correct & (radii_ >= radius)).mean()) if len(correct) else float("nan")


def mean_certified_radius(
    labels: Sequence[int], predictions: Sequence[int | None], radii: Sequence[int | None]
) -> float:
    """Average certified radius (ACR): the radius where the prediction is correct, else 0."""
    correct, _, radii_ = _arrays(labels, predictions, radii)
    return float(np.where(correct, np.maximum(radii_, 0), 0).mean()) if len(correct) else float("nan")


def abstention_rate(predictions: Sequence[int | None]) -> float:
    """Fraction of examples on which the smoothed classifier abstained (None)."""
    return float(np.mean([p is None for p in predictions])) if len(predictions) else float("nan")


def summarize_certification(
    labels: Sequence[int],
    predictions: Sequence[int | None],
    radii: Sequence[int | None],
    max_radius: int | None = None,
) -> dict:
    """Clean accuracy of the smoothed classifier, abstention rate, certified accuracy at every radius
    from 0 to ``max_radius`` (default: the largest radius reached), and the mean certified radius."""
    correct, _, radius = _arrays(labels, predictions, radii)
    if not len(correct):
        raise ValueError("Cannot summarize an empty certification run.")
    top = int(radius.max(initial=0)) if max_radius is None else max_radius
    return {
        "num_examples": int(len(correct)),
        "clean_accuracy": float(correct.mean()),
        "abstention_rate": abstention_rate(predictions),
        "certified_accuracy": {str(r): certified_accuracy(labels, predictions, radii, r) for r in range(top + 1)},
        "mean_certified_radius": mean_certified_radius(labels, predictions, radii),
    }


def attack_success_rate(predictions: Sequence[int | None], target_label: int) -> float:
    """Fraction of triggered (non-target) examples predicted as ``target_label``; abstentions do not count
    as successes, so report `abstention rate <summarize_attack>` next to it."""
    if not len(predictions):
        return float("nan")
    return float(np.mean([p is not None and p == target_label for p in predictions]))


def summarize_attack(labels: Sequence[int], predictions: Sequence[int | None], target_label: int) -> dict:
    """On the triggered test set (true labels are never the target): attack success rate (ASR), poisoned
    accuracy (PA: still the true label) and the abstention/rejection rate; the three need not sum to 1
    when there are more than two classes."""
    if not len(labels):
        raise ValueError("Cannot summarize an attack on an empty triggered set.")
    if target_label in set(np.asarray(labels).tolist()):
        raise ValueError(f"The triggered set holds examples of the target label {target_label}; drop them first.")
    correct, _, _ = _arrays(labels, predictions, [None] * len(predictions))
    return {
        "num_examples": int(len(labels)),
        "attack_success_rate": attack_success_rate(predictions, target_label),
        "poisoned_accuracy": float(correct.mean()),
        "abstention_rate": abstention_rate(predictions),
    }


def proportion_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval for a proportion measured on one run."""
    if trials <= 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds and its Student-t interval ``(mean, low, high)``; the interval is NaN for one seed."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        raise ValueError("mean_interval needs at least one value.")
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(mean - half), float(mean + half)
