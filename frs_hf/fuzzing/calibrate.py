"""Fitting the fuzzing floor (``FuzzingConfig.min_kl``) to a model on clean texts."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable


def calibrate_min_kl(
    empty_share: Callable[[float], float],
    *,
    empty_fraction: float = 0.8,
    low: float = 0.05,
    high: float = 5.0,
    steps: int = 7,
) -> float:
    """The smallest floor (``min_kl``, nats) at which at least ``empty_fraction`` of a set of clean
    texts get no area, by bisection on a log scale in ``[low, high]``; ``empty_share(floor)`` runs
    the search at that floor and returns the share of texts left without an area.

    Why: how far deleting a word moves the output depends on the model -- a classifier trained on
    less data, or less confident, moves less for triggers and opinion words alike -- so a floor in
    nats tuned on one model can hide the triggers of another (docs/fuzzing.md). What transfers is the
    floor's purpose: on clean text, usually flag nothing. Returns ``high`` when even that leaves
    fewer than ``empty_fraction`` of the texts without an area, with a warning.
    """
    if not 0 < empty_fraction <= 1:
        raise ValueError(f"empty_fraction must be in (0, 1], got {empty_fraction}.")
    if not 0 < low < high:
        raise ValueError(f"Need 0 < low < high, got low={low}, high={high}.")
    lo, hi, reached = math.log(low), math.log(high), False
    for _ in range(steps):
        mid = (lo + hi) / 2
        if empty_share(math.exp(mid)) >= empty_fraction:
            hi, reached = mid, True
        else:
            lo = mid
    if not reached and (share := empty_share(high)) < empty_fraction:
        warnings.warn(
            f"Only {share:.0%} of the calibration texts get no area even at min_kl={high} nats (wanted "
            f"{empty_fraction:.0%}): are they clean? Using {high}.",
            stacklevel=2,
        )
    return float(math.exp(hi))
