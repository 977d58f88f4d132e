"""Deletion smoothing as a defense: FRS itself, and uniform deletion (FRS without fuzzing, CERT-ED style).

Both wrap a `SmoothedModelForSequenceClassification`; they differ only in the config: FRS fuzzes each
input and deletes at ``omega_high`` inside the area and ``omega_low`` elsewhere, uniform deletion
deletes every word at one rate and has no area.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..modeling import SmoothedModelForSequenceClassification
from .base import Defense, DefenseOutput


class SmoothingDefense(Defense):
    """`SmoothedModelForSequenceClassification.certify` (or ``predict``) behind the `Defense` interface.

    ``overrides`` are FRSConfig fields for every call (``n=200``, ``fuzzing=True``...).
    """

    name = "frs"
    certifies = True

    def __init__(self, smoothed: SmoothedModelForSequenceClassification, *, certify: bool = True, **overrides: Any):
        self.smoothed = smoothed
        self.config = smoothed.frs_config.replace(**overrides)  # validates the overrides now, not mid-run
        self.certify = certify

    def predict(self, texts: Sequence[str], *, indices: Sequence[int] | None = None) -> list[DefenseOutput]:
        method = self.smoothed.certify if self.certify else self.smoothed.predict
        results = method(list(texts), indices=indices, **self.config.to_dict())
        return [
            DefenseOutput(label=r.label, radius=r.radius, area_radius=r.area_radius if r.area_spans else None)
            for r in results
        ]


class FRSDefense(SmoothingDefense):
    """Fuzzed Randomized Smoothing: MCTS fuzzing on, high deletion inside the area."""

    name = "frs"

    def __init__(self, smoothed: SmoothedModelForSequenceClassification, *, certify: bool = True, **overrides: Any):
        super().__init__(smoothed, certify=certify, **{"fuzzing": True, **overrides})


class UniformDeletionDefense(SmoothingDefense):
    """Every word deleted with the same probability ``rate`` (CERT-ED / RS-Del style), no fuzzing."""

    name = "uniform-deletion"

    def __init__(
        self,
        smoothed: SmoothedModelForSequenceClassification,
        rate: float | None = None,
        *,
        certify: bool = True,
        **overrides: Any,
    ):
        rate = smoothed.frs_config.omega_low if rate is None else rate
        super().__init__(
            smoothed, certify=certify, **{**overrides, "fuzzing": False, "omega_low": rate, "omega_high": rate}
        )
