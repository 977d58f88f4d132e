"""Metrics of a certification run, as small pure functions over per-example arrays.

Conventions (Cohen et al. 2019): an abstention counts as wrong; ``radius`` is -1 where there is no
certificate (abstained, or no radius), so "certified at radius r" is ``correct and radius >= r``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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


def summarize_certification(
    labels: Sequence[int],
    predictions: Sequence[int | None],
    radii: Sequence[int | None],
    max_radius: int | None = None,
) -> dict:
    """Clean accuracy of the smoothed classifier, abstention rate, certified accuracy at every radius
    from 0 to ``max_radius`` (default: the largest radius reached), and the mean certified radius."""
    correct, abstained, radius = _arrays(labels, predictions, radii)
    if not len(correct):
        raise ValueError("Cannot summarize an empty certification run.")
    top = int(radius.max(initial=0)) if max_radius is None else max_radius
    return {
        "num_examples": int(len(correct)),
        "clean_accuracy": float(correct.mean()),
        "abstention_rate": float(abstained.mean()),
        "certified_accuracy": {str(r): certified_accuracy(labels, predictions, radii, r) for r in range(top + 1)},
        "mean_certified_radius": mean_certified_radius(labels, predictions, radii),
    }
