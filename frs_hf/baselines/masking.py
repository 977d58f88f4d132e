"""Uniform masking (RanMASK, Zeng et al. 2023): certified robustness to word substitutions.

Each randomized copy masks exactly ``m = round(rate * U)`` of the text's ``U`` word units, chosen
uniformly at random, and keeps the other ``k = U - m``; the smoothed classifier is the majority
vote. A masked word becomes ONE mask token whatever its number of tokens, so a copy reveals nothing
about a masked word, not even its length.

Certificate (RanMASK, Theorem 1 with its worst case beta = 1). Let ``x'`` differ from ``x`` by
substituting ``r`` of its ``U`` words (same number of words; insertions and deletions are not
covered). The copies of ``x`` and ``x'`` coincide whenever all ``r`` substituted positions are
masked, which happens with probability ``C(U - r, k) / C(U, k)``; hence for every class ``c``,
``|p_c(x) - p_c(x')| <= Delta(r) = 1 - C(U - r, k) / C(U, k)``, and the vote for ``A`` stays on top
when ``p_lower_A - Delta(r) > p_upper_B + Delta(r)`` (binary: ``p_lower_A - Delta(r) > 1/2``).
RanMASK's paper and code replace the factor ``beta = 1`` in front of ``Delta`` by an estimate of
the probability of ``A`` given that a changed word is kept; that estimate is not a bound, so this
module keeps ``beta = 1`` (the sound certificate).

With i.i.d. masking at rate ``rho`` instead (each word masked independently), the same coupling
gives ``Delta(r) = 1 - rho**r``; fixed-``k`` sampling follows RanMASK.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..certify import predict_from_counts, vote_bounds
from ..config import FRSConfig
from ..randomize import build_copies, segment
from ..utils import derive_seed, fresh_seed
from .base import Defense, DefenseOutput, forward_sequences, pad_token_id, token_limit


def num_masked(num_units: int, rate: float) -> int:
    """Words masked per copy: ``rate * num_units`` rounded half up."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be a masking probability in [0, 1), got {rate!r}.")
    return min(num_units, math.floor(rate * num_units + 0.5))


def ranmask_delta(num_units: int, num_kept: int, radius: int) -> float:
    """``1 - C(U - r, k) / C(U, k)``: how far the probability of any class can move when ``radius``
    of ``num_units`` words are substituted and every copy keeps ``num_kept`` of them."""
    if not 0 <= num_kept <= num_units:
        raise ValueError(f"num_kept must be in [0, num_units={num_units}], got {num_kept!r}.")
    if not 0 <= radius <= num_units:
        raise ValueError(f"radius must be in [0, num_units={num_units}], got {radius!r}.")
    return 1.0 - math.comb(num_units - radius, num_kept) / math.comb(num_units, num_kept)


def masking_radius(p_lower: float, p_upper: float, num_units: int, num_kept: int) -> int | None:
    """Largest number ``r`` of word substitutions with ``p_lower - Delta(r) > p_upper + Delta(r)``
    (`ranmask_delta`); None when the condition fails already at ``r = 0`` (abstain).

    Never more than the number of masked words: a substitution at a kept position can change a copy.
    """
    if not (0.0 <= p_lower <= 1.0 and 0.0 <= p_upper <= 1.0):
        raise ValueError(f"probability bounds must lie in [0, 1], got {p_lower!r}, {p_upper!r}")
    half_margin = (p_lower - p_upper) / 2.0
    if half_margin <= 0.0:
        return None
    radius = 0
    while radius < num_units - num_kept and ranmask_delta(num_units, num_kept, radius + 1) < half_margin:
        radius += 1
    return radius


def sample_masks(num_units: int, masked: int, num_copies: int, rng: np.random.Generator) -> np.ndarray:
    """``keep`` matrix ``[num_copies, num_units]``: each row masks a uniformly random set of ``masked`` units."""
    keep = np.ones((num_copies, num_units), dtype=bool)
    chosen = np.argsort(rng.random((num_copies, num_units)), axis=1)[:, :masked]
    np.put_along_axis(keep, chosen, False, axis=1)
    return keep


class UniformMaskingDefense(Defense):
    """RanMASK-style smoothing: majority vote over copies with ``rate`` of the words masked.

    The Monte Carlo settings (``n0``, ``n``, ``alpha``, ``batch_size``, ``seed``, ``max_length``,
    ``deduplicate``) come from an `FRSConfig` (``config`` plus keyword ``overrides``), so that masking
    and FRS can run under one budget; its deletion, fuzzing and weight-noise fields are not used.
    ``certify=True`` runs Cohen et al.'s CERTIFY (candidate on ``n0`` copies, Clopper-Pearson bound
    on ``n`` fresh ones, `masking_radius`; abstain when the bound does not clear the runner-up);
    ``certify=False`` runs PREDICT on ``n`` copies (binomial test, no radius).

    The radius counts word *substitutions* only (see the module docstring): unlike deletion
    smoothing, masking certifies nothing against inserting a trigger word.
    """

    name = "uniform-masking"
    certifies = True

    def __init__(
        self,
        model,
        tokenizer,
        rate: float = 0.3,
        *,
        config: FRSConfig | None = None,
        certify: bool = True,
        mask_token_id: int | None = None,
        **overrides: Any,
    ) -> None:
        num_masked(1, rate)  # validates the rate
        self.model, self.tokenizer, self.rate, self.certify = model, tokenizer, rate, certify
        # Cohen et al.'s fixed n0 + n: this baseline has no sequential looks.
        self.config = (config or FRSConfig()).replace(**{"sequential": False, **overrides})
        if self.config.sequential:
            raise ValueError("UniformMaskingDefense certifies with a fixed n0 + n; sequential=True is not supported.")
        self.mask_token_id = mask_token_id if mask_token_id is not None else tokenizer.mask_token_id
        if self.mask_token_id is None:
            raise ValueError(
                f"{type(tokenizer).__name__} has no mask token; pass mask_token_id (e.g. tokenizer.unk_token_id)."
            )
        self.max_length = token_limit(model, tokenizer, self.config.max_length)

    def predict(self, texts: Sequence[str], *, indices: Sequence[int] | None = None) -> list[DefenseOutput]:
        all_units = segment(self.tokenizer, texts)
        indices = range(len(all_units)) if indices is None else [int(i) for i in indices]
        if len(indices) != len(all_units):
            raise ValueError(f"Got {len(indices)} indices for {len(all_units)} texts.")
        config = self.config
        num_copies = config.n0 + config.n if self.certify else config.n
        seed = config.seed if config.seed is not None else fresh_seed()  # fresh per call unless seeded
        copies = []
        for units, index in zip(all_units, indices, strict=True):
            rng = np.random.default_rng(derive_seed(seed, index))
            keep = sample_masks(units.num_units, num_masked(units.num_units, self.rate), num_copies, rng)
            copies.append(
                build_copies(
                    units,
                    keep,
                    max_length=self.max_length,
                    deduplicate=config.deduplicate,
                    mask_token_id=self.mask_token_id,
                )
            )
        # Every distinct copy of every text in one length-sorted pass.
        labels = forward_sequences(
            self.model,
            [s for c in copies for s in c.sequences],
            pad_token_id(self.tokenizer),
            lambda output, _: output.logits.argmax(-1),
            batch_size=config.batch_size,
        ).astype(np.int64)
        sizes = np.cumsum([len(c.sequences) for c in copies])[:-1]
        num_labels = self.model.config.num_labels
        outputs = []
        for units, c, distinct in zip(all_units, copies, np.split(labels, sizes), strict=True):
            votes = distinct[c.inverse]
            if not self.certify:
                label, _ = predict_from_counts(np.bincount(votes, minlength=num_labels), config.alpha)
                outputs.append(DefenseOutput(label=label))
                continue
            label = int(np.bincount(votes[: config.n0], minlength=num_labels).argmax())
            p_lower, p_upper = vote_bounds(np.bincount(votes[config.n0 :], minlength=num_labels), label, config.alpha)
            kept = units.num_units - num_masked(units.num_units, self.rate)
            radius = masking_radius(p_lower, p_upper, units.num_units, kept)
            outputs.append(DefenseOutput(label=None if radius is None else label, radius=radius))
        return outputs
