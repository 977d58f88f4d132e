"""What every ``evaluate`` module of ``frs_hf.metrics`` shares: its inputs and how its card is described.

Kept out of ``frs_hf.metrics/__init__`` so that ``import frs_hf`` does not import ``evaluate``.
"""

from __future__ import annotations

from typing import ClassVar

import datasets
import evaluate

from . import FEATURES


class FRSMetric(evaluate.Metric):
    """A module's description is its class docstring; ``with_radii`` adds the ``radii`` input."""

    inputs: ClassVar[str] = "predictions, references"
    with_radii: ClassVar[bool] = False

    def _info(self) -> evaluate.MetricInfo:
        features = dict(FEATURES, **({"radii": "int64"} if self.with_radii else {}))
        return evaluate.MetricInfo(
            module_type="metric",
            description=self.__doc__ or "",
            citation="",
            inputs_description=self.inputs + " (class ids; -1: abstained / no radius)",
            features=datasets.Features({name: datasets.Value(dtype) for name, dtype in features.items()}),
        )
