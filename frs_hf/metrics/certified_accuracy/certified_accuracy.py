"""Certified accuracy at radius r: correct and certified with a radius of at least r (Cohen et al. 2019).

A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metrics.metric_path('certified_accuracy'))`` loads it offline.
Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``.
"""

import datasets
import evaluate

from frs_hf.evaluation import metrics
from frs_hf.metrics import FEATURES, as_answers

_FEATURES = {name: datasets.Value(dtype) for name, dtype in FEATURES.items()}


class CertifiedAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=__doc__,
            citation="",
            inputs_description="predictions, references, radii; radius (int, default 0)",
            features=datasets.Features({**_FEATURES, "radii": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, radii, radius=0, **_):
        return {
            "certified_accuracy": metrics.certified_accuracy(
                references, as_answers(predictions), as_answers(radii), radius
            )
        }
