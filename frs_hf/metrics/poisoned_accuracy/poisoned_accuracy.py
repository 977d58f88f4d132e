"""Poisoned accuracy on triggered texts: the share still given their true label.

A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metrics.metric_path('poisoned_accuracy'))`` loads it offline.
Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``.
"""

import datasets
import evaluate

from frs_hf.evaluation import metrics
from frs_hf.metrics import FEATURES, as_answers

_FEATURES = {name: datasets.Value(dtype) for name, dtype in FEATURES.items()}


class PoisonedAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=__doc__,
            citation="",
            inputs_description="predictions, references (true labels, never the target); target_label (int)",
            features=datasets.Features({**_FEATURES}),
        )

    def _compute(self, predictions, references, target_label, **_):
        return {
            "poisoned_accuracy": metrics.summarize_attack(references, as_answers(predictions), target_label)[
                "poisoned_accuracy"
            ]
        }
