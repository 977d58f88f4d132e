"""Abstention rate: the share of examples on which the smoothed classifier abstained.

A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metrics.metric_path('abstention_rate'))`` loads it offline.
Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``.
"""

import datasets
import evaluate

from frs_hf.evaluation import metrics
from frs_hf.metrics import FEATURES, as_answers

_FEATURES = {name: datasets.Value(dtype) for name, dtype in FEATURES.items()}


class AbstentionRate(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=__doc__,
            citation="",
            inputs_description="predictions, references",
            features=datasets.Features({**_FEATURES}),
        )

    def _compute(self, predictions, references, **_):
        return {
            "abstention_rate": metrics.summarize_certification(
                references, as_answers(predictions), [None] * len(references), 0
            )["abstention_rate"]
        }
