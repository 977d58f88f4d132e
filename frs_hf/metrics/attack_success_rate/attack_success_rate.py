"""Attack success rate on triggered texts: the share predicted as the attacker's target (abstaining is no success).

A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metrics.metric_path('attack_success_rate'))`` loads it offline.
Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``.
"""

import datasets
import evaluate

from frs_hf.evaluation import metrics
from frs_hf.metrics import FEATURES, as_answers

_FEATURES = {name: datasets.Value(dtype) for name, dtype in FEATURES.items()}


class AttackSuccessRate(evaluate.Metric):
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
            "attack_success_rate": metrics.summarize_attack(references, as_answers(predictions), target_label)[
                "attack_success_rate"
            ]
        }
