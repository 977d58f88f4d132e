"""Pure statistics of deletion smoothing: confidence bounds, abstention and certified radii.

Nothing here touches a model. Every function takes vote counts or probabilities and returns
numbers, so each can be checked against hand computation (see ``docs/theory.md`` for the proofs).

Direction convention, fixed once for all radii below: ``x`` is the input we certified (the one
we observed), ``x'`` is the input an attacker could have produced or that we compare against.
Each radius bounds the number of *word units* that differ between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, binomtest


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) lower confidence bound on a binomial probability from k of n."""
    if k <= 0:
        return 0.0
    return float(beta.ppf(alpha, k, n - k + 1))


def clopper_pearson_upper(k: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) upper confidence bound on a binomial probability from k of n."""
    if k >= n:
        return 1.0
    return float(beta.ppf(1 - alpha, k + 1, n - k))


def vote_bounds(counts: np.ndarray, label: int, alpha: float) -> tuple[float, float]:
    """Bounds ``(p_lower_A, p_upper_B)`` for the candidate ``label`` and the best other class.

    Binary: ``p_upper_B = 1 - p_lower_A`` with the whole ``alpha``. Multi-class: ``alpha`` is split
    in two halves; the upper bound is taken on the largest other count, which bounds every other
    class at once because the Clopper-Pearson bound grows with the count.
    """
    counts = np.asarray(counts)
    n = int(counts.sum())
    if n == 0:
        raise ValueError("vote_bounds needs at least one vote.")
    k_a = int(counts[label])
    if len(counts) <= 2:
        p_lower = clopper_pearson_lower(k_a, n, alpha)
        return p_lower, 1.0 - p_lower
    p_lower = clopper_pearson_lower(k_a, n, alpha / 2)
    k_b = int(np.delete(counts, label).max())
    return p_lower, min(1.0 - p_lower, clopper_pearson_upper(k_b, n, alpha / 2))


# Radii ---------------------------------------------------------------------------------------------
# Each certificate holds at distance r when a margin condition holds with q = w**r, the probability
# that the r differing units are all deleted. Every condition has the form q > threshold, so the
# radius is the largest integer r with w**r > threshold (None: the condition fails already at r = 0,
# i.e. the smoothed classifier abstains).


def _largest_radius(threshold: float, w: float) -> int | None:
    if not 0.0 <= w < 1.0:
        raise ValueError(f"deletion rate must be in [0, 1), got {w!r}")
    if threshold >= 1.0:
        return None
    if threshold <= 0.0:
        raise ValueError("p_lower = 1 and p_upper = 0 would certify every radius; a finite sample never proves that.")
    if w == 0.0:
        return 0
    r = max(0, math.ceil(math.log(threshold) / math.log(w)) - 1)
    # Guard the closed form against rounding at the boundary: the definition is w**r > threshold.
    while w ** (r + 1) > threshold:
        r += 1
    while r > 0 and not w**r > threshold:
        r -= 1
    return r


def _check(p_lower: float, p_upper: float) -> float:
    if not (0.0 <= p_lower <= 1.0 and 0.0 <= p_upper <= 1.0):
        raise ValueError(f"probability bounds must lie in [0, 1], got {p_lower!r}, {p_upper!r}")
    return p_lower - p_upper


def levenshtein_radius(p_lower: float, p_upper: float, w: float) -> int | None:
    """Edits anywhere (insertions, deletions, substitutions; one substitution = one edit).

    Holds when ``p_lower - (1 - w**r) > p_upper + (1 - w**r)`` with ``w`` the smallest deletion
    rate in use. Binary: ``r < log(1.5 - p_lower) / log(w)``.
    """
    return _largest_radius(1.0 - _check(p_lower, p_upper) / 2.0, w)


def removal_radius(p_lower: float, p_upper: float, w_high: float) -> int | None:
    """Trigger removal: deleting any <= r units of ``x`` whose rate is >= ``w_high`` keeps label A.

    Holds when ``p_lower - (1 - q) > p_upper`` with ``q = w_high**r``. Binary:
    ``r < log(2 (1 - p_lower)) / log(w_high)``. This is the ``area_radius`` of a result.
    """
    return _largest_radius(1.0 - _check(p_lower, p_upper), w_high)


def insertion_radius(p_lower: float, p_upper: float, w: float) -> int | None:
    """Trigger insertion: inserting any <= r units (each with rate >= ``w``) into the certified
    ``x``, shared units keeping their rates, keeps label A.

    Holds when ``q p_lower > q p_upper + (1 - q)`` with ``q = w**r``. Binary:
    ``r < log(1 / (2 p_lower)) / log(w)``.
    """
    margin = _check(p_lower, p_upper)
    return _largest_radius(1.0 / (1.0 + margin) if margin > 0 else 1.0, w)


def share_needed(radius: int, w: float) -> float | None:
    """The smallest binary ``p_lower`` (with ``p_upper = 1 - p_lower``) that certifies ``radius`` edits anywhere
    at rate ``w``, or None when no vote share can. Found on :func:`levenshtein_radius` itself, so it cannot drift
    from the certificate; it is what choosing ``omega_low`` trades against (docs/theory.md)."""
    if (levenshtein_radius(1.0 - 1e-15, 1e-15, w) or 0) < radius:
        return None
    low, high = 0.5, 1.0 - 1e-15  # low never certifies radius, high always does
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if (levenshtein_radius(mid, 1.0 - mid, w) or -1) >= radius else (mid, high)
    return high


# Decision rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """Outcome of :func:`certify_from_counts`; ``label`` is None when the classifier abstains."""

    label: int | None
    p_lower: float
    p_upper: float
    radius: int | None
    area_radius: int | None

    @property
    def abstained(self) -> bool:
        return self.label is None


def certify_from_counts(
    selection_counts: np.ndarray,
    estimation_counts: np.ndarray,
    alpha: float,
    w_min: float,
    w_area: float | None = None,
    area_size: int | None = None,
) -> Certificate:
    """Cohen et al.'s CERTIFY for deletion smoothing.

    The candidate class is the top of ``selection_counts`` (n0 copies); its probability is bounded
    on the independent ``estimation_counts`` (n copies). ``w_min`` is the smallest deletion rate in
    use (for ``radius``), ``w_area`` the rate of the flagged area (for ``area_radius``; None when
    no unit carries it). ``area_size``, the number of units carrying ``w_area``, caps
    ``area_radius``: removing all of them is the most the certificate can speak about.
    """
    label = int(np.argmax(selection_counts))
    p_lower, p_upper = vote_bounds(estimation_counts, label, alpha)
    return certificate(label, p_lower, p_upper, w_min, w_area, area_size)


def certificate(
    label: int, p_lower: float, p_upper: float, w_min: float, w_area: float | None = None, area_size: int | None = None
) -> Certificate:
    """The certificate that probability bounds ``p_lower`` (candidate ``label``) and ``p_upper`` (any other
    class) give: both radii, or an abstention when even ``radius = 0`` fails."""
    radius = levenshtein_radius(p_lower, p_upper, w_min)
    if radius is None:
        return Certificate(None, p_lower, p_upper, None, None)
    area_radius = None if w_area is None else removal_radius(p_lower, p_upper, w_area)
    if area_radius is not None and area_size is not None:
        area_radius = min(area_radius, area_size)
    return Certificate(label, p_lower, p_upper, radius, area_radius)


# Sequential certification --------------------------------------------------------------------------
# The votes are looked at after n_1 < n_2 < ... < n_L = n copies and sampling stops once the answer is
# decided. Looking more than once needs its own alpha per look: a bound at the full alpha at every look,
# reported at the best look, fails more often than alpha (the optional-stopping trap). Here look l gets
# alpha_l (half of alpha on the last look, the other half split evenly over the earlier ones), so with
# probability >= 1 - alpha every bound of every look holds at once and any stopping rule keeps the
# guarantee. The candidate class is the top of the very counts it is bounded on, so within a look alpha_l
# is split again over the classes (no separate selection sample is needed).

FUTILITY = 0.1
"""Stop early when, even at the upper (1 - FUTILITY) bound of the candidate's share, the last look could not
certify more than already proven. Only decides when to stop, so it costs power, never validity."""


def look_schedule(first: int, n: int) -> list[int]:
    """Copies counted at each look: ``first``, doubling, then ``n`` (cumulative)."""
    if not 1 <= first <= n:
        raise ValueError(f"the first look ({first}) must be between 1 and n ({n}).")
    looks = []
    while first < n:
        looks.append(first)
        first *= 2
    return [*looks, n]


def look_alphas(alpha: float, num_looks: int) -> list[float]:
    """The share of ``alpha`` spent at each look (they sum to ``alpha``)."""
    if num_looks == 1:
        return [alpha]
    return [alpha / 2 / (num_looks - 1)] * (num_looks - 1) + [alpha / 2]


def simultaneous_bounds(counts: np.ndarray, alpha: float) -> tuple[int, float, float]:
    """``(label, p_lower, p_upper)`` for the top class of ``counts`` itself, valid whichever class tops them.

    Binary: a lower bound per class at ``alpha / 2`` (the other class's upper bound is one minus it).
    Multi-class: a lower and an upper bound per class at ``alpha / (2 K)``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        raise ValueError("simultaneous_bounds needs at least one vote.")
    label = int(np.argmax(counts))
    if len(counts) <= 2:
        p_lower = clopper_pearson_lower(int(counts[label]), n, alpha / 2)
        return label, p_lower, 1.0 - p_lower
    share = alpha / (2 * len(counts))
    p_lower = clopper_pearson_lower(int(counts[label]), n, share)
    p_upper = clopper_pearson_upper(int(np.delete(counts, label).max()), n, share)
    return label, p_lower, min(1.0 - p_lower, p_upper)


def _rank(cert: Certificate | None) -> tuple[int, int]:
    if cert is None or cert.label is None:
        return (-1, -1)
    return (cert.radius, -1 if cert.area_radius is None else cert.area_radius)


def sequential_look(
    counts: np.ndarray,
    look: int,
    looks: list[int],
    alpha: float,
    w_min: float,
    w_area: float | None = None,
    area_size: int | None = None,
    *,
    best: Certificate | None = None,
    target_radius: int | None = None,
    futility: float = FUTILITY,
) -> tuple[Certificate, bool]:
    """Look ``look`` (0-based) of the schedule ``looks`` at the ``counts`` of all copies so far.

    Returns the best certificate of this and the earlier looks (``best``) and whether to stop: at the last
    look; when the last look could not plausibly certify more (a larger ``radius`` or ``area_radius``) even
    at the upper ``(1 - futility)`` bound of the candidate's share; with ``target_radius``, as soon as that
    radius is proven or out of reach.
    """
    counts = np.asarray(counts, dtype=np.int64)
    alphas = look_alphas(alpha, len(looks))
    cert = certificate(*simultaneous_bounds(counts, alphas[look]), w_min, w_area, area_size)
    if best is not None and _rank(best) >= _rank(cert):
        cert = best
    if look == len(looks) - 1:
        return cert, True
    # The most the last look could certify if the candidate's share were at its optimistic bound now.
    label, total = int(np.argmax(counts)), looks[-1]
    share = clopper_pearson_upper(int(counts[label]), int(counts.sum()), futility)
    hoped = np.zeros(len(counts), dtype=np.int64)
    hoped[label] = math.floor(share * total)
    hoped[(label + 1) % len(counts)] = total - hoped[label]
    ceiling = certificate(*simultaneous_bounds(hoped, alphas[-1]), w_min, w_area, area_size)
    if target_radius is not None and cert.label is not None and cert.radius >= target_radius:
        return cert, True
    if target_radius is not None and (ceiling.label is None or ceiling.radius < target_radius):
        return cert, True
    return cert, _rank(cert) >= _rank(ceiling)


def radius_ceiling(n: int, alpha: float, w: float, num_labels: int = 2, num_looks: int | None = None) -> int:
    """The radius of a unanimous vote over ``n`` copies at rate ``w``: the most any input can certify.

    ``num_looks=None`` is Cohen et al.'s fixed ``n``; a number is sequential certification with that many looks,
    whose last look spends its share of ``alpha`` split over the classes (:func:`look_alphas`,
    :func:`simultaneous_bounds`), even when it is the only look.
    """
    counts = np.zeros(max(num_labels, 2), dtype=np.int64)
    counts[0] = n
    if num_looks is not None:
        _, p_lower, p_upper = simultaneous_bounds(counts, look_alphas(alpha, num_looks)[-1])
    else:
        p_lower, p_upper = vote_bounds(counts, 0, alpha)
    return levenshtein_radius(p_lower, p_upper, w) or 0


def predict_from_counts(counts: np.ndarray, alpha: float) -> tuple[int | None, float]:
    """Cohen et al.'s PREDICT: the top class if a two-sided binomial test separates it from the
    runner-up at level ``alpha``, else abstain (None). Returns ``(label, p_value)``."""
    counts = np.asarray(counts, dtype=np.int64)
    order = np.argsort(-counts, kind="stable")
    n_a, n_b = int(counts[order[0]]), int(counts[order[1]]) if len(counts) > 1 else 0
    p_value = float(binomtest(n_a, n_a + n_b, 0.5).pvalue) if n_a + n_b > 0 else 1.0
    return (int(order[0]) if p_value <= alpha else None), p_value
