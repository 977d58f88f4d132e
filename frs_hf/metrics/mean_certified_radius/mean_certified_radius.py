"""Mean certified radius (ACR): the certified radius where the prediction is correct, else 0.

A Hugging Face ``evaluate`` module of ``frs_hf``:
``evaluate.load(frs_hf.metrics.metric_path('mean_certified_radius'))`` loads it offline.
Abstentions are ``-1`` in ``predictions``, missing radii ``-1`` in ``radii``.
"""

import datasets
import evaluate

from frs_hf.evaluation import metrics
from frs_hf.metrics import FEATURES, as_answers

_FEATURES = {name: datasets.Value(dtype) for name, dtype in FEATURES.items()}


class MeanCertifiedRadius(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=__doc__,
            citation="",
            inputs_description="predictions, references, radii",
            features=datasets.Features({**_FEATURES, "radii": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, radii, **_):
        return {
            "mean_certified_radius": metrics.mean_certified_radius(
                references, as_answers(predictions), as_answers(radii)
            )
        }
